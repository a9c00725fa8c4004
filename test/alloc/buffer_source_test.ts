// memkit's blocks are views over ArrayBuffers (native memory wrapped, never a
// SharedArrayBuffer), and their types say so: TypeScript takes them wherever a
// BufferSource goes (crypto.subtle, Blob, Response, a GPU queue's writeBuffer).
// Under `deno test` this file is type-checked, so a return type widened back to
// Uint8Array<ArrayBufferLike> fails here; both runtimes run the calls.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AllocationError,
  type Allocator,
  Arena,
  BuddyAllocator,
  DebugAllocator,
  DynamicArray,
  FramePool,
  FreeListAllocator,
  LockedPageAllocator,
  mapPages,
  MemoryInterface,
  PoolAllocator,
  PurgeableBuffer,
  RegionAllocator,
  ResourceHeap,
  SecretAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";

/** What a Web API with a BufferSource parameter accepts (the check is the parameter's type). */
async function digest(bytes: Uint8Array<ArrayBuffer>): Promise<number> {
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  assert.equal(await new Blob([bytes]).size, bytes.length);
  return hash.byteLength;
}

test("every allocator's blocks are ArrayBuffer-backed BufferSources", async () => {
  using system = new SystemAllocator();
  using pool = new PoolAllocator({ blockSize: 64 });
  using freeList = new FreeListAllocator();
  using buddy = new BuddyAllocator({ capacity: 1 << 16 });
  using stack = new StackAllocator({ capacity: 1 << 16 });
  using arena = new Arena();
  using debug = new DebugAllocator(new SystemAllocator(), { detachFreed: true });
  using locked = new LockedPageAllocator();
  using secret = new SecretAllocator();
  const blocks = [
    system.alloc(32),
    system.resize(system.alloc(8), 32),
    system.tryAlloc(32)!,
    pool.alloc(32),
    pool.tryAlloc(32)!,
    freeList.alloc(32),
    freeList.resize(freeList.alloc(8), 32),
    freeList.handle(32).bytes,
    buddy.alloc(32),
    stack.alloc(32),
    arena.alloc(32),
    debug.alloc(32),
    debug.resize(debug.alloc(8), 32),
    locked.alloc(32),
    secret.alloc(32),
  ];
  for (const bytes of blocks) {
    assert.ok(bytes.buffer instanceof ArrayBuffer);
    bytes.fill(7);
    assert.equal(await digest(bytes), 32);
  }
});

test("mappings, HAL allocations, regions and struct arrays are ArrayBuffer-backed BufferSources", async () => {
  using pages = mapPages(1 << 16);
  using memory = new MemoryInterface({ pressure: false });
  using regions = new RegionAllocator();
  using values = new DynamicArray<number>("f32");
  values.pushMany([1, 2, 3, 4, 5, 6, 7, 8]);
  const audio = regions.allocateAudioData(8);
  const views: Uint8Array<ArrayBuffer>[] = [
    pages.bytes,
    pages.view(0, 4096),
    pages.read(0, 64),
    memory.allocateTyped(64, "pool").bytes,
    memory.allocate({ size: 64, type: "temporary" }).bytes,
    new Uint8Array(audio.buffer, audio.byteOffset, audio.byteLength),
    values.bytes,
  ];
  for (const bytes of views) assert.equal(await digest(bytes), 32);
});

test("a DebugAllocator refuses a backing's block over a SharedArrayBuffer (its blocks are ArrayBuffer memory)", () => {
  using idle = new SystemAllocator();
  const shared = new SharedArrayBuffer(1 << 12);
  let next = 0;
  const take = (size: number) => {
    const view = new Uint8Array(shared, next, size);
    next += (size + 63) & ~63;
    return view;
  };
  const backing = {
    kind: "system",
    alloc: take,
    tryAlloc: take,
    free() {},
    resize: (_view: ArrayBufferView, size: number) => take(size),
    owns: () => true,
    stats: () => idle.stats(), // counters of the right shape
  } as unknown as Allocator;
  for (const options of [{}, { safety: false }, { detachFreed: true }]) {
    using debug = new DebugAllocator(backing, options);
    assert.throws(
      () => debug.alloc(16),
      (e: unknown) =>
        e instanceof AllocationError && e.category === "corruption" && /SharedArrayBuffer/.test(e.message),
      JSON.stringify(options),
    );
    assert.equal(debug.stats().liveAllocations, 0);
  }
});

test("a DynamicArray refuses storage over a SharedArrayBuffer (SharedDynamicArray is the shared array)", () => {
  const backing = {
    kind: "system",
    alloc: (size: number) => new Uint8Array(new SharedArrayBuffer(size)),
    tryAlloc: (size: number) => new Uint8Array(new SharedArrayBuffer(size)),
    resize: (_view: ArrayBufferView, size: number) => new Uint8Array(new SharedArrayBuffer(size)),
    free() {},
    owns: () => true,
    stats: () => new SystemAllocator().stats(),
  } as unknown as Allocator;
  assert.throws(
    () => new DynamicArray<number>("f32", { allocator: backing }),
    (e: unknown) => e instanceof AllocationError && e.category === "corruption" && /SharedDynamicArray/.test(e.message),
  );
});

test("frames, purgeable buffers and heap resources are ArrayBuffer-backed BufferSources", async () => {
  using frames = new FramePool();
  const set = frames.acquireFrameSet({ width: 4, height: 2, bytesPerPixel: 4 })!;
  using purgeable = new PurgeableBuffer(4096);
  using heap = new ResourceHeap({ capacity: 1 << 16 });
  const resource = heap.allocate(32)!;
  const views: Uint8Array<ArrayBuffer>[] = [set.next.bytes, set.next.row(0), purgeable.bytes, resource.bytes];
  for (const bytes of views) assert.equal(await digest(bytes), 32);
  set.release();
});
