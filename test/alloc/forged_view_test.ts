// A view that lies about its buffer, offset or length (own properties, a
// subclass) never designates a block: allocators read views through internal
// slots only, so the lie is a foreign view (invalid-free) and the real block
// it names stays live.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  Arena,
  BuddyAllocator,
  DebugAllocator,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";

const makers: [string, () => Allocator & Disposable][] = [
  ["SystemAllocator", () => new SystemAllocator()],
  ["Arena", () => new Arena({ capacity: 1 << 16 })],
  ["StackAllocator", () => new StackAllocator({ capacity: 1 << 16 })],
  ["PoolAllocator", () => new PoolAllocator({ blockSize: 64 })],
  ["BuddyAllocator", () => new BuddyAllocator({ capacity: 1 << 16 })],
  ["FreeListAllocator", () => new FreeListAllocator({ capacity: 1 << 16 })],
  ["DebugAllocator", () => new DebugAllocator(new SystemAllocator(), { detachFreed: false })],
];

class Liar extends Uint8Array {
  #real: Uint8Array;
  constructor(real: Uint8Array) {
    super(64);
    this.#real = real;
  }
  override get buffer(): ArrayBuffer {
    return this.#real.buffer as ArrayBuffer;
  }
  override get byteOffset(): number {
    return this.#real.byteOffset;
  }
}

for (const [name, make] of makers) {
  test(`${name}: a view whose own buffer/byteOffset name a live block frees nothing`, () => {
    using allocator = make();
    const kept = allocator.alloc(64);
    kept.fill(7);
    const forged = Object.defineProperties(new Uint8Array(64), {
      buffer: { value: kept.buffer },
      byteOffset: { value: kept.byteOffset },
    });
    for (const lie of [forged, new Liar(kept)]) {
      assert.throws(() => allocator.free(lie), (error) => error instanceof AllocationError);
      assert.equal(allocator.owns(lie), false);
      assert.equal(kept.length, 64, "the real block was not freed");
      assert.equal(kept[63], 7);
    }
    const getterRan = Object.defineProperty(new Uint8Array(8), "buffer", {
      get() {
        throw new Error("an own getter ran");
      },
    });
    assert.throws(() => allocator.free(getterRan), (error) => error instanceof AllocationError);
    assert.equal(allocator.stats().liveAllocations, 1);
    allocator.free(kept);
    assert.equal(allocator.stats().liveAllocations, 0);
  });
}
