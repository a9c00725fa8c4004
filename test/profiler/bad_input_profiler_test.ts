// Bad input to the profiler (issue 18): each row gets its documented error,
// makes no native call, and leaves the profiler usable.
import assert from "node:assert/strict";
import {
  Arena,
  blockMap,
  DebugAllocator,
  FreeListAllocator,
  heatmap,
  leakSuspicion,
  MemoryProfiler,
  type MemorySnapshot,
  PoolAllocator,
  serveLiveView,
  SystemAllocator,
} from "../../mod.ts";
import { badInputTable } from "../_bad_input.ts";
import { rangeBoundsTable } from "../budget/_range_bounds.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const create = (options: unknown) => () => new MemoryProfiler(any(options));

badInputTable<void>("new MemoryProfiler()", [
  { name: "intervalMs 0", act: create({ intervalMs: 0 }), expect: RangeError },
  { name: "intervalMs -10", act: create({ intervalMs: -10 }), expect: RangeError },
  { name: "intervalMs NaN", act: create({ intervalMs: NaN }), expect: RangeError },
  { name: "intervalMs Infinity", act: create({ intervalMs: Infinity }), expect: RangeError },
  { name: "intervalMs 2.5", act: create({ intervalMs: 2.5 }), expect: RangeError },
  { name: "intervalMs above an hour", act: create({ intervalMs: 3_600_001 }), expect: RangeError },
  { name: "intervalMs '100'", act: create({ intervalMs: "100" }), expect: TypeError },
  { name: "options 'fast'", act: create("fast"), expect: TypeError },
  { name: "an unknown option", act: create({ every: 10 }), expect: TypeError },
  { name: "sources 5", act: create({ sources: 5 }), expect: TypeError },
  { name: "sources 'global' (not in a list)", act: create({ sources: "global" }), expect: TypeError },
  { name: "an unknown source {}", act: create({ sources: [{}] }), expect: TypeError },
  { name: "an unknown source 42", act: create({ sources: { answer: 42 } }), expect: TypeError },
  { name: "an unknown source 'heap'", act: create({ sources: ["heap"] }), expect: TypeError },
  { name: "a null source", act: create({ sources: { gone: null } }), expect: TypeError },
  { name: "history 1", act: create({ history: 1 }), expect: RangeError },
  { name: "history NaN", act: create({ history: NaN }), expect: RangeError },
  { name: "largest -1", act: create({ largest: -1 }), expect: RangeError },
  { name: "gc: true (the option is gcEvery)", act: create({ gc: true }), expect: TypeError },
  { name: "gcEvery -1", act: create({ gcEvery: -1 }), expect: RangeError },
  { name: "gcEvery '10'", act: create({ gcEvery: "10" }), expect: TypeError },
  { name: "pressure {}", act: create({ pressure: {} }), expect: TypeError },
]);

badInputTable<MemoryProfiler>("MemoryProfiler", [
  {
    name: "capture('now')",
    arrange: () => new MemoryProfiler({ sources: [] }),
    act: (p) => p.capture(any("now")),
    expect: TypeError,
    after: (p) => {
      assert.equal(p.capture().totalAllocated, 0);
      p.dispose();
    },
  },
  {
    name: "capture({ gc: 1 })",
    arrange: () => new MemoryProfiler({ sources: [] }),
    act: (p) => p.capture(any({ gc: 1 })),
    expect: TypeError,
    after: (p) => {
      assert.equal(p.snapshots.length, 0); // nothing recorded by the failed call
      p.dispose();
    },
  },
  {
    name: "capture after dispose",
    arrange: () => {
      const p = new MemoryProfiler({ sources: [] });
      p.dispose();
      return p;
    },
    act: (p) => p.capture(),
    expect: "use-after-free",
  },
  {
    name: "start after dispose",
    arrange: () => {
      const p = new MemoryProfiler({ sources: [] });
      p.dispose();
      return p;
    },
    act: (p) => p.start(),
    expect: "use-after-free",
    after: (p) => assert.equal(p.running, false),
  },
  {
    name: "leakSuspicion({ window: 1 })",
    arrange: () => new MemoryProfiler({ sources: [] }),
    act: (p) => p.leakSuspicion({ window: 1 }),
    expect: RangeError,
    after: (p) => {
      assert.equal(p.leakSuspicion().suspected, false);
      p.dispose();
    },
  },
]);

const snapshot = (): MemorySnapshot => ({
  timestamp: 0,
  totalAllocated: 0,
  categoryBreakdown: {},
  largestAllocations: [],
  fragmentation: 0,
  rssBytes: 0,
  jsHeapBytes: 0,
  pressureLevel: null,
  afterGC: true,
  budgetBreakdown: {},
  released: [],
});

badInputTable<void>("leakSuspicion()", [
  { name: "snapshots 'all'", act: () => leakSuspicion(any("all")), expect: TypeError },
  { name: "a snapshot without totals", act: () => leakSuspicion(any([{}])), expect: TypeError },
  { name: "a null snapshot", act: () => leakSuspicion(any([snapshot(), null])), expect: TypeError },
  { name: "window NaN", act: () => leakSuspicion([snapshot()], { window: NaN }), expect: RangeError },
  { name: "window 0", act: () => leakSuspicion([snapshot()], { window: 0 }), expect: RangeError },
  { name: "window '5'", act: () => leakSuspicion([snapshot()], any({ window: "5" })), expect: TypeError },
  { name: "options 5", act: () => leakSuspicion([snapshot()], any(5)), expect: TypeError },
]);

const disposed = <T extends { dispose(): void }>(make: () => T) => () => {
  const allocator = make();
  allocator.dispose();
  return allocator;
};

badInputTable<{ dump(): unknown }>("dump() of a disposed allocator", [
  {
    name: "PoolAllocator",
    arrange: disposed(() => new PoolAllocator({ blockSize: 64 })),
    act: (a) => a.dump(),
    expect: "use-after-free",
  },
  {
    name: "FreeListAllocator",
    arrange: disposed(() => new FreeListAllocator({ capacity: 4096 })),
    act: (a) => a.dump(),
    expect: "use-after-free",
  },
  {
    name: "Arena",
    arrange: disposed(() => new Arena({ capacity: 4096 })),
    act: (a) => a.dump(),
    expect: "use-after-free",
  },
  {
    name: "SystemAllocator",
    arrange: disposed(() => new SystemAllocator()),
    act: (a) => a.dump(),
    expect: "use-after-free",
  },
  {
    name: "DebugAllocator",
    arrange: disposed(() => new DebugAllocator()),
    act: (a) => a.dump(),
    expect: "use-after-free",
  },
]);

const okDump = () => {
  using pool = new PoolAllocator({ blockSize: 64 });
  return pool.dump();
};

badInputTable<void>("heatmap() and blockMap()", [
  { name: "heatmap of 'all'", act: () => heatmap(any("all")), expect: TypeError },
  { name: "heatmap of no snapshots", act: () => heatmap([]), expect: RangeError },
  { name: "heatmap of a non-snapshot", act: () => heatmap(any([{ totalAllocated: 1 }])), expect: TypeError },
  { name: "heatmap width 10", act: () => heatmap([snapshot()], { width: 10 }), expect: RangeError },
  { name: "heatmap width NaN", act: () => heatmap([snapshot()], { width: NaN }), expect: RangeError },
  { name: "heatmap peakFraction 2", act: () => heatmap([snapshot()], { peakFraction: 2 }), expect: RangeError },
  { name: "heatmap title 5", act: () => heatmap([snapshot()], any({ title: 5 })), expect: TypeError },
  { name: "heatmap unknown option", act: () => heatmap([snapshot()], any({ colours: 3 })), expect: TypeError },
  { name: "blockMap of {}", act: () => blockMap(any({})), expect: TypeError },
  { name: "blockMap of null", act: () => blockMap(any(null)), expect: TypeError },
  {
    name: "blockMap of a version 2 dump",
    act: () => blockMap(any({ ...okDump(), version: 2 })),
    expect: TypeError,
  },
  {
    name: "blockMap of a dump with malformed blocks",
    act: () => blockMap(any({ ...okDump(), chunks: [{ address: 0, size: 64, blocks: [{ offset: "0" }] }] })),
    expect: TypeError,
  },
  { name: "blockMap maxChunks 0", act: () => blockMap(okDump(), { maxChunks: 0 }), expect: RangeError },
  { name: "blockMap rowHeight 1.5", act: () => blockMap(okDump(), { rowHeight: 1.5 }), expect: RangeError },
]);

badInputTable<MemoryProfiler>("MemoryProfiler.report()", [
  ...[
    ["path 5", 5, TypeError],
    ["path ''", "", TypeError],
    ["an http: URL", new URL("http://127.0.0.1/report.html"), TypeError],
    ["a path that is not .html", "report.txt", TypeError],
    ["a path with NUL", "a\0b.html", TypeError],
    ["a path in a missing directory", "/nonexistent-memkit-dir/deeper/report.html", "platform"],
  ].map(([name, path, expect]) => ({
    name: name as string,
    arrange: () => new MemoryProfiler({ sources: [] }),
    act: (p: MemoryProfiler) => p.report(any(path)),
    expect: expect as typeof TypeError | "platform",
    after: (p: MemoryProfiler) => p.dispose(),
  })),
  {
    name: "report after dispose",
    arrange: () => {
      const p = new MemoryProfiler({ sources: [] });
      p.dispose();
      return p;
    },
    act: (p) => p.report("/tmp/memkit-never-written.html"),
    expect: "use-after-free",
  },
]);

badInputTable<void>("serveLiveView()", [
  { name: "profiler 5", act: () => serveLiveView(any(5)), expect: TypeError },
  { name: "profiler {}", act: () => serveLiveView(any({})), expect: TypeError },
  {
    name: "port 70000",
    act: () => serveLiveView(new MemoryProfiler({ sources: [] }), { port: 70_000 }),
    expect: RangeError,
  },
  { name: "port -1", act: () => serveLiveView(new MemoryProfiler({ sources: [] }), { port: -1 }), expect: RangeError },
  {
    name: "port '8080'",
    act: () => serveLiveView(new MemoryProfiler({ sources: [] }), any({ port: "8080" })),
    expect: TypeError,
  },
  {
    name: "a short token",
    act: () => serveLiveView(new MemoryProfiler({ sources: [] }), { token: "abc" }),
    expect: TypeError,
  },
  {
    name: "a token with '/'",
    act: () => serveLiveView(new MemoryProfiler({ sources: [] }), { token: "aaaaaaaa/bbbbbbbbbbbb" }),
    expect: TypeError,
  },
  {
    name: "an unknown option (host)",
    act: () => serveLiveView(new MemoryProfiler({ sources: [] }), any({ host: "0.0.0.0" })),
    expect: TypeError,
  },
]);

const dumpOf = () => {
  using heap = new FreeListAllocator({ capacity: 1 << 16 });
  heap.alloc(100);
  return heap.dump();
};
rangeBoundsTable("profiler options", [
  ...([
    ["intervalMs", [0, -10], [3_600_001, 1e12]],
    ["history", [1, 0, -1], [1_000_001, 1e12]],
    ["gcEvery", [-1, -1e6], [1_000_001, 1e12]],
    ["largest", [-1, -1e6], [1001, 1e12]],
  ] as const).map(([key, below, above]) => ({
    name: `MemoryProfiler ${key}`,
    make: (v: number) => new MemoryProfiler({ [key]: v, sources: [] }),
    below: [...below],
    above: [...above],
  })),
  ...([
    ["width", [63, 0, -1], [10_001, 1e9]],
    ["rowHeight", [3, 0, -1], [201, 1e9]],
    ["peakFraction", [-0.1, -5], [1.1, 5]],
  ] as const).map(([key, below, above]) => ({
    name: `heatmap ${key}`,
    make: (v: number) => heatmap([snapshot()], { [key]: v }),
    below: [...below],
    above: [...above],
  })),
  ...([
    ["width", [63, 0, -1], [10_001, 1e9]],
    ["rowHeight", [3, 0, -1], [201, 1e9]],
    ["maxChunks", [0, -1], [100_001, 1e9]],
  ] as const).map(([key, below, above]) => ({
    name: `blockMap ${key}`,
    make: (v: number) => blockMap(dumpOf(), { [key]: v }),
    below: [...below],
    above: [...above],
  })),
  {
    name: "leakSuspicion window",
    make: (v) => leakSuspicion([snapshot()], { window: v }),
    below: [1, 0, -1],
    above: [10_001, 1e9],
  },
]);
