// The mistakes a new user of the profiler makes first, each answered with a
// TypeError that says what to write instead: one source given bare instead
// of named (it used to be read as a record of its own properties: "source
// 'kind' must be ..."), the same source under two names (it used to be
// counted twice in every total), and the profiler passed where its
// snapshots belong.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  FramePool,
  heatmap,
  leakSuspicion,
  MemoryBudget,
  MemoryProfiler,
  type MemorySnapshot,
  PoolAllocator,
  ResourceCache,
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

test("sources: an object with stats() that is no allocator or MemoryBudget (a ResourceCache, a FramePool) is refused", () => {
  using cache = new ResourceCache<number, Uint8Array>({ maxBytes: 8 << 20 });
  cache.set(1, new Uint8Array(1000), { size: 1000 });
  using frames = new FramePool();
  const sources: [string, unknown][] = [["cache", cache], ["frames", frames], ["stats", {
    stats: () => ({ bytes: 1 }),
  }]];
  for (const [name, source] of sources) {
    assert.throws(
      () => new MemoryProfiler({ sources: any({ [name]: source }) }),
      (error) =>
        error instanceof TypeError &&
        error.message.startsWith(`Cannot create MemoryProfiler as source '${name}' must be an allocator`) &&
        /MemoryBudget/.test(error.message) && /has stats\(\) but is none of these/.test(error.message),
      name,
    );
  }
  // A MemoryBudget is one.
  using budget = new MemoryBudget({ physicalBytes: 1 << 20 });
  using profiler = new MemoryProfiler({ sources: { budget } });
  assert.deepEqual(profiler.sourceNames, ["budget"]);
});
