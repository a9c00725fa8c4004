// The mistakes a new user of the profiler makes first, each answered with a
// TypeError that says what to write instead: one source given bare instead
// of named (it used to be read as a record of its own properties: "source
// 'kind' must be ..."), the same source under two names (it used to be
// counted twice in every total), and the profiler passed where its
// snapshots belong.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  FramePool,
  heatmap,
  leakSuspicion,
  mapFile,
  mapPages,
  MemoryBudget,
  MemoryProfiler,
  type MemorySnapshot,
  nativeInfo,
  PoolAllocator,
  PurgeableBuffer,
  ResourceCache,
  ResourceHeap,
} from "../../mod.ts";

const any = (value: unknown) => value as never;

test("sources: one source given bare is refused with how to name it", () => {
  using pool = new PoolAllocator({ blockSize: 64 });
  assert.throws(
    () => new MemoryProfiler({ sources: any(pool) }),
    (error) =>
      error instanceof TypeError &&
      /'sources' must be a record of named sources or an array: current value is one allocator source/.test(
        error.message,
      ) && /\{ sources: \{ heap \} \}/.test(error.message),
  );
  // Named or listed, it is accepted.
  using named = new MemoryProfiler({ sources: { pool } });
  assert.deepEqual(named.sourceNames, ["pool"]);
  using listed = new MemoryProfiler({ sources: [pool] });
  assert.deepEqual(listed.sourceNames, ["allocator-0"]);
});

test("sources: the same source under two names is refused, as its bytes would count twice", () => {
  using pool = new PoolAllocator({ blockSize: 64 });
  assert.throws(
    () => new MemoryProfiler({ sources: { pool, alsoPool: pool } }),
    (error) =>
      error instanceof TypeError &&
      error.message.includes("source 'alsoPool' is the same as source 'pool': its bytes would be counted twice"),
  );
  assert.throws(() => new MemoryProfiler({ sources: ["global", "global"] }), TypeError);
  assert.throws(() => new MemoryProfiler({ sources: [pool, pool] }), TypeError);
  // Two pools are two sources, each counted once.
  using other = new PoolAllocator({ blockSize: 64 });
  using profiler = new MemoryProfiler({ sources: { pool, other } });
  const block = pool.alloc(64);
  assert.equal(profiler.capture().totalAllocated, 64);
  pool.free(block);
});

test("heatmap() and leakSuspicion() given the profiler say to pass its snapshots", () => {
  using profiler = new MemoryProfiler();
  profiler.capture();
  const hint = /: pass its snapshots \(profiler\.snapshots\)$/;
  assert.throws(() => heatmap(any(profiler)), (e) => e instanceof TypeError && hint.test(e.message));
  assert.throws(() => leakSuspicion(any(profiler)), (e) => e instanceof TypeError && hint.test(e.message));
  // Anything else gets no such hint.
  assert.throws(() => heatmap(any({ a: 1 })), (e) => e instanceof TypeError && !hint.test(e.message));
  const snapshots: MemorySnapshot[] = profiler.snapshots;
  assert.ok(heatmap(snapshots).startsWith("<svg"));
  assert.equal(leakSuspicion(snapshots).suspected, false);
});

test("sources: an object with stats() that is no source (a ResourceCache) is refused, naming its class", () => {
  using cache = new ResourceCache<number, Uint8Array>({ maxBytes: 8 << 20 });
  cache.set(1, new Uint8Array(1000), { size: 1000 });
  class Gauge {
    stats() {
      return { bytes: 1 };
    }
    get [Symbol.toStringTag]() {
      return "Gauge";
    }
  }
  const sources: [string, unknown, RegExp][] = [
    ["cache", cache, /\(a ResourceCache is none of these: watch the MemoryBudget it draws from/],
    ["gauge", new Gauge(), /\(a Gauge has stats\(\) but is none of these: read its stats\(\) yourself\)/],
    [
      "stats",
      { stats: () => ({ bytes: 1 }) },
      /\(it has stats\(\) but is none of these: read its stats\(\) yourself\)/,
    ],
  ];
  for (const [name, source, hint] of sources) {
    assert.throws(
      () => new MemoryProfiler({ sources: any({ [name]: source }) }),
      (error) =>
        error instanceof TypeError &&
        error.message.startsWith(`Cannot create MemoryProfiler as source '${name}' must be an allocator`) &&
        /a FramePool, a PurgeableBuffer, a ResourceHeap, a mapping/.test(error.message) && hint.test(error.message) &&
        (name === "cache" || !/ResourceCache/.test(error.message)),
      name,
    );
  }
  // A MemoryBudget is one.
  using budget = new MemoryBudget({ physicalBytes: 1 << 20 });
  using profiler = new MemoryProfiler({ sources: { budget } });
  assert.deepEqual(profiler.sourceNames, ["budget"]);
});

test("sources: a FramePool, a PurgeableBuffer, a ResourceHeap and mappings are watched with what they hold", () => {
  const page = nativeInfo().pageSize;
  using frames = new FramePool();
  const set = frames.acquireFrameSet({ width: 1920, height: 1080, bytesPerPixel: 4 })!;
  set.next.bytes.fill(1);
  const purgeable = new PurgeableBuffer(10_000);
  const heap = new ResourceHeap({ capacity: 1 << 20 });
  const texture = heap.allocate(5000, { name: "albedo" })!;
  const pages = mapPages(3 * page);
  const dir = mkdtempSync(join(tmpdir(), "memkit-profiler-"));
  writeFileSync(join(dir, "data.bin"), new Uint8Array(1234));
  const file = mapFile(join(dir, "data.bin"));
  try {
    using profiler = new MemoryProfiler({ sources: { frames, purgeable, heap, pages, file } });
    const s = profiler.capture();
    const mapped = frames.stats().mappedBytes;
    assert.ok(mapped >= 3 * 1920 * 1080 * 4, `${mapped} bytes of frames`);
    assert.deepEqual(s.categoryBreakdown, {
      "frames.1920x1080x4x1": mapped,
      purgeable: Math.ceil(10_000 / page) * page,
      heap: heap.stats().usedBytes,
      pages: 3 * page,
      file: 1234,
    });
    assert.equal(s.totalAllocated, mapped + Math.ceil(10_000 / page) * page + heap.stats().usedBytes + 3 * page + 1234);
    assert.equal(s.largestAllocations[0].name, "frames.1920x1080x4x1", "the frames are the largest owner");
    assert.deepEqual(s.released, []);
    // Listed, each is named after its kind.
    using listed = new MemoryProfiler({ sources: [frames, purgeable, heap, pages] });
    assert.deepEqual(listed.sourceNames, ["frame-pool-0", "purgeable-1", "resource-heap-2", "mapping-3"]);
    // Figures follow what each holds: a trimmed pool, a released resource, an unmapped mapping.
    set.release();
    frames.trim();
    texture.release();
    pages.unmap();
    const after = profiler.capture();
    assert.equal(after.categoryBreakdown["frames.1920x1080x4x1"], 0);
    assert.equal(after.categoryBreakdown.heap, 0);
    assert.equal(after.categoryBreakdown.pages, 0);
    // Disposed holders read as 0 bytes and are listed as released.
    purgeable.dispose();
    heap.dispose();
    const gone = profiler.capture();
    assert.deepEqual([gone.categoryBreakdown.purgeable, gone.categoryBreakdown.heap], [0, 0]);
    assert.deepEqual(gone.released, ["purgeable", "heap"]);
  } finally {
    file.unmap();
    pages.unmap();
    purgeable.dispose();
    heap.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sources: budget holders are recognised by brand, and read through memkit's own state", () => {
  using frames = new FramePool();
  using heap = new ResourceHeap({ capacity: 1 << 16 });
  // A Proxy of one (or an object made from its prototype) is no source.
  for (const fake of [new Proxy(frames, {}), Object.create(ResourceHeap.prototype), new Proxy(heap, {})]) {
    assert.throws(
      () => new MemoryProfiler({ sources: { fake } }),
      (e) =>
        e instanceof TypeError && /it looks like a (FramePool|ResourceHeap) but is not one memkit made/.test(e.message),
    );
  }
  // stats() replaced on the instance changes nothing the profiler reads.
  heap.allocate(4096);
  Object.defineProperty(heap, "stats", { value: () => ({ usedBytes: 1e15, capacityBytes: -1 }) });
  Object.defineProperty(frames, "stats", { value: () => null });
  using profiler = new MemoryProfiler({ sources: { heap, frames } });
  assert.deepEqual(profiler.capture().categoryBreakdown, { heap: 4096, frames: 0 });
});
