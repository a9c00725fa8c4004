// The profiler family attacked as a hostile or careless caller would (an adversarial pass): sources that
// lie or re-enter, owners named after Object.prototype's properties, snapshots and dumps of garbage or of
// absurd size, iterators that are abandoned or outlive an error, the report written where it cannot be,
// and the live view's request handler. Each test failed before its fix; those that could crash or hang
// run in a child process.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Resvg } from "@resvg/resvg-wasm";
import { resvgReady } from "./_resvg.ts";
import {
  AllocationError,
  blockMap,
  heatmap,
  leakSuspicion,
  MemoryProfiler,
  type MemorySnapshot,
  nativeInfo,
  PoolAllocator,
  serveLiveView,
  SystemAllocator,
} from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// An object shaped like an allocator (a masquerade: typed as one), whose statistics say whatever `stats` returns.
const liar = (stats: () => unknown) => any({ kind: "system", stats });

const snapshot = (fields: Partial<MemorySnapshot>): MemorySnapshot => ({
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
  ...fields,
});

const dumpOf = (fields: Record<string, unknown>) => ({
  format: "memkit.allocator-dump",
  version: 1,
  kind: "pool",
  stats: { capacityBytes: 64, allocatedBytes: 0, fragmentation: 0, liveAllocations: 0 },
  chunks: [],
  ...fields,
});

// Whether `error` is memkit's own error of `kind` (its messages start "Cannot <do something>"), not the engine's.
const memkits = (kind: typeof TypeError | typeof RangeError) => (error: unknown) =>
  error instanceof kind && !(error instanceof AllocationError) && /^Cannot /.test((error as Error).message);

// Parses `svg` as resvg does (an XML parser): throws on a document that is not well-formed.
async function parseSvg(svg: string): Promise<void> {
  await resvgReady();
  new Resvg(svg, { font: { loadSystemFonts: false } }).free();
}

// ------------------------------------------------------------------ sources that lie

test("a source's lying statistics give finite totals: negative, NaN, Infinity and 1e308 bytes", () => {
  using profiler = new MemoryProfiler({
    sources: {
      negative: liar(() => ({ allocatedBytes: -5000, capacityBytes: -1, fragmentation: -3 })),
      nan: liar(() => ({ allocatedBytes: NaN, capacityBytes: NaN, fragmentation: NaN })),
      huge: liar(() => ({ allocatedBytes: 1e308, capacityBytes: 1e308, fragmentation: 1e308 })),
      infinite: liar(() => ({ allocatedBytes: Infinity, capacityBytes: Infinity, fragmentation: 0.5 })),
      shared: any({ pushMany() {}, capacity: 1e200, stride: 1e200 }),
      array: { metrics: () => ({ memoryUsage: -1 }) },
    },
  });
  const s = profiler.capture();
  for (const [owner, bytes] of Object.entries(s.categoryBreakdown)) {
    assert.ok(Number.isFinite(bytes) && bytes >= 0 && bytes <= Number.MAX_SAFE_INTEGER, `${owner}: ${bytes}`);
  }
  assert.equal(s.categoryBreakdown.negative, 0);
  assert.equal(s.categoryBreakdown.array, 0);
  assert.ok(Number.isFinite(s.totalAllocated), `total ${s.totalAllocated}`);
  assert.ok(s.fragmentation >= 0 && s.fragmentation <= 1, `fragmentation ${s.fragmentation}`);
  // Such a snapshot can be drawn, and survives JSON (Infinity would come back as null).
  assert.deepEqual(JSON.parse(JSON.stringify(s)).totalAllocated, s.totalAllocated);
  heatmap([s]);
});

test("a source whose reading method is gone or answers null: memkit's TypeError naming it, nothing recorded", () => {
  const shapes: [string, Record<string, unknown>, () => void][] = [];
  const allocator: Record<string, unknown> = liar(() => ({ allocatedBytes: 1 }));
  shapes.push(["allocator", allocator, () => (allocator.stats = 5)]);
  const array: Record<string, unknown> = { metrics: () => ({ memoryUsage: 1 }) };
  shapes.push(["array", array, () => (array.metrics = () => null)]);
  const hal: Record<string, unknown> = { getMemoryStats: () => ({ usedBytes: 1, fragmentation: 0 }) };
  shapes.push(["hal", hal, () => (hal.getMemoryStats = () => undefined)]);
  const budget: Record<string, unknown> = {
    stats: () => ({ categories: {} }),
    request: () => null,
    accepts: () => true,
  };
  shapes.push(["budget", budget, () => (budget.stats = () => "full")]);
  for (const [name, source, spoil] of shapes) {
    using profiler = new MemoryProfiler({ sources: { [name]: any(source) } });
    profiler.capture();
    spoil();
    assert.throws(() => profiler.capture(), (error) => {
      assert.ok(memkits(TypeError)(error), `${name}: ${error}`);
      assert.match((error as Error).message, new RegExp(`'${name}'`));
      return true;
    });
    assert.equal(profiler.snapshots.length, 1, name);
  }
});

// ------------------------------------------------------------------ owners named after Object.prototype

test("owners named constructor, toString, hasOwnProperty and __proto__ are owners like any other", () => {
  const names = ["constructor", "toString", "hasOwnProperty", "__proto__"];
  const pools = names.map(() => new PoolAllocator({ blockSize: 256 }));
  const sources: Record<string, PoolAllocator> = {};
  names.forEach((name, i) => Object.defineProperty(sources, name, { value: pools[i], enumerable: true }));
  try {
    using profiler = new MemoryProfiler({ sources });
    const kept: Uint8Array[] = [];
    for (let step = 0; step < 6; step++) {
      names.forEach((_, i) => kept.push(pools[i].alloc(64 * (i + 1))));
      profiler.capture({ gc: true });
    }
    const last = profiler.snapshots.at(-1)!;
    assert.deepEqual(Object.keys(last.categoryBreakdown).sort(), [...names].sort());
    names.forEach((name, i) => assert.equal(last.categoryBreakdown[name], 6 * 64 * (i + 1), name));
    assert.equal(last.totalAllocated, 6 * 64 * (1 + 2 + 3 + 4));
    const verdict = leakSuspicion(profiler.snapshots);
    assert.deepEqual(verdict.owners.map((o) => o.name).sort(), [...names].sort());
    assert.ok(verdict.owners.every((o) => o.monotonic && o.growthBytes === o.toBytes - o.fromBytes));
  } finally {
    for (const pool of pools) pool.dispose();
  }
});

test("a snapshot without an owner named after Object.prototype's property reads it as 0 bytes", () => {
  const snapshots = [
    snapshot({ timestamp: 0, totalAllocated: 5, categoryBreakdown: { toString: 5 } }),
    snapshot({ timestamp: 1000, totalAllocated: 0, categoryBreakdown: {} }),
  ];
  const svg = heatmap(snapshots);
  assert.doesNotMatch(svg, /native code/);
  assert.match(svg, /<title>toString: 0 B<\/title>/);
  // Grew from nothing in the first to 7 in the last: the owner absent at first starts at 0 bytes.
  const verdict = leakSuspicion([
    snapshot({ categoryBreakdown: {} }),
    snapshot({ categoryBreakdown: { constructor: 7 } }),
  ], { window: 2 });
  assert.deepEqual(verdict.owners.map((o) => [o.name, o.fromBytes, o.toBytes]), [["constructor", 0, 7]]);
});

// ------------------------------------------------------------------ the pressure level

test("a pressure monitor whose level turns into a string or out of range: TypeError / RangeError, not the report", () => {
  const directory = mkdtempSync(`${tmpdir()}/memkit-hostile-`);
  let level: unknown = 1;
  using profiler = new MemoryProfiler({
    sources: [],
    pressure: {
      get level() {
        return any(level);
      },
    },
  });
  assert.equal(profiler.capture().pressureLevel, 1);
  level = "<script>alert(1)</script>";
  assert.throws(() => profiler.capture(), memkits(TypeError));
  level = 9;
  assert.throws(() => profiler.capture(), memkits(RangeError));
  level = 2.5;
  assert.throws(() => profiler.capture(), memkits(RangeError));
  assert.equal(profiler.snapshots.length, 1); // nothing recorded by the failed captures
  const html = readFileSync(profiler.report(`${directory}/report.html`), "utf8");
  assert.doesNotMatch(html, /<script/);
});

// ------------------------------------------------------------------ garbage and hostile input to the pictures

test("heatmap and leakSuspicion refuse sizes that are negative, NaN or infinite with RangeError", () => {
  const bad: [string, Partial<MemorySnapshot>][] = [
    ["Infinity bytes", { categoryBreakdown: { a: Infinity } }],
    ["NaN bytes", { categoryBreakdown: { a: NaN } }],
    ["negative bytes", { categoryBreakdown: { a: -1 } }],
    ["a NaN total", { totalAllocated: NaN }],
    ["an infinite total", { totalAllocated: Infinity }],
    ["a negative total", { totalAllocated: -50 }],
  ];
  for (const [name, fields] of bad) {
    const snapshots = [snapshot({ totalAllocated: 5 }), snapshot(fields)];
    assert.throws(() => heatmap(snapshots), memkits(RangeError), `heatmap, ${name}`);
    assert.throws(() => leakSuspicion(snapshots), memkits(RangeError), `leakSuspicion, ${name}`);
  }
  assert.throws(() => heatmap([snapshot({ timestamp: NaN })]), memkits(RangeError), "a NaN timestamp");
  assert.throws(() => heatmap([snapshot({ categoryBreakdown: any({ a: "5" }) })]), memkits(TypeError));
});

test("heatmap and leakSuspicion read each field of a snapshot once: a getter cannot answer differently", () => {
  const reads: number[] = [];
  // Numbers to the first read of each field, something else to any later one.
  const shifty = (at: number) => {
    const count = { total: 0, owners: 0 };
    reads.push(0);
    const index = reads.length - 1;
    return any({
      timestamp: at,
      afterGC: true,
      get totalAllocated() {
        reads[index]++;
        return count.total++ === 0 ? 100 * at : "<b>";
      },
      get categoryBreakdown() {
        return count.owners++ === 0 ? { owner: 100 * at } : null;
      },
    });
  };
  const svg = heatmap([shifty(1), shifty(2)]);
  assert.deepEqual(reads, [1, 1]);
  assert.doesNotMatch(svg, /NaN/);
  reads.length = 0;
  const verdict = leakSuspicion([shifty(1), shifty(2), shifty(3)], { window: 3 });
  assert.deepEqual(reads, [1, 1, 1]);
  assert.deepEqual(verdict.owners.map((o) => [o.name, o.growthBytes]), [["owner", 200]]);
});

test("owner names with markup, ']]>', quotes and control characters make a well-formed SVG that says nothing", async () => {
  const name = `<script>alert(1)</script>]]>"'&\u0000\u0001\u0008\u001f\ufffe\ud800 end`;
  const svg = heatmap([snapshot({ totalAllocated: 5, categoryBreakdown: { [name]: 5 } })]);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(svg, /<script|\u0000|\u0001|\u0008|\u001f|\ufffe/);
  await parseSvg(svg);
  const map = blockMap(any(dumpOf({
    kind: "<script>",
    chunks: [{ address: 0, size: 64, blocks: [{ offset: 0, size: 64, free: false, owner: name }] }],
  })));
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(map, /<script|\u0000|\u0001/);
  await parseSvg(map);
});

test("a heatmap of 200,000 snapshots and one of 100,000 owners draw, at a size a picture can be", () => {
  const many = Array.from({ length: 200_000 }, (_, i) => snapshot({ timestamp: i, totalAllocated: i % 977 }));
  const wide = heatmap(many);
  assert.ok(wide.length < 2_000_000, `${wide.length} characters`);
  assert.match(wide, /200000 snapshots|200,000 snapshots/);
  assert.match(wide, />200 s</); // the time axis still spans the first to the last snapshot
  const owners: Record<string, number> = {};
  for (let i = 0; i < 100_000; i++) owners[`owner-${i}`] = i + 1;
  const tall = heatmap([snapshot({ totalAllocated: 1, categoryBreakdown: owners })]);
  assert.ok(tall.length < 2_000_000, `${tall.length} characters`);
  assert.match(tall, /owner-99999/); // the largest are drawn
  assert.match(tall, /99951 more owners/); // the rest in one row
});

test("blockMap refuses dumps with NaN, negative or overflowing sizes with RangeError, and reads each field once", () => {
  const chunk = (fields: Record<string, unknown>) =>
    dumpOf({ chunks: [{ address: 4096, size: 64, blocks: [], ...fields }] });
  const bad = [
    chunk({ size: NaN }),
    chunk({ address: -1 }),
    chunk({ address: 1.5 }),
    chunk({ size: Infinity }),
    chunk({ blocks: [{ offset: NaN, size: 1, free: true }] }),
    chunk({ blocks: [{ offset: 0, size: -5, free: false }] }),
    chunk({ blocks: [{ offset: 32, size: 64, free: false }] }), // past the chunk's end
    dumpOf({ stats: { capacityBytes: NaN, allocatedBytes: 0, fragmentation: 0, liveAllocations: 0 } }),
    dumpOf({ stats: { capacityBytes: 1, allocatedBytes: 0, fragmentation: 2, liveAllocations: 0 } }),
    dumpOf({ stats: { capacityBytes: 1, allocatedBytes: 0, fragmentation: 0, liveAllocations: -1 } }),
  ];
  for (const dump of bad) assert.throws(() => blockMap(any(dump)), memkits(RangeError), JSON.stringify(dump));
  let reads = 0;
  const shifty = {
    ...dumpOf({}),
    get chunks() {
      return reads++ === 0 ? [] : 5;
    },
  };
  assert.match(blockMap(any(shifty)), /no chunks/);
  assert.equal(reads, 1);
});

test("a block map of a million blocks draws as at most a few rectangles a pixel, and says what it merged", () => {
  const blocks = Array.from({ length: 1_000_000 }, (_, i) => ({ offset: i * 16, size: 16, free: i % 3 === 0 }));
  const svg = blockMap(any(dumpOf({ chunks: [{ address: 4096, size: 16_000_000, blocks }] })));
  assert.ok(svg.length < 1_000_000, `${svg.length} characters`);
  assert.match(svg, /blocks: \d+ used \([^)]*\), \d+ free/);
  // A real allocator's dump of many blocks, too.
  using pool = new PoolAllocator({ blockSize: 16, blocksPerChunk: 100_000 });
  const kept = Array.from({ length: 50_000 }, () => pool.alloc(16));
  const map = blockMap(pool.dump());
  assert.ok(map.length < 1_000_000, `${map.length} characters`);
  for (const block of kept) pool.free(block);
});

test("a report of 200,000 snapshots is written", () => {
  const directory = mkdtempSync(`${tmpdir()}/memkit-hostile-`);
  using system = new SystemAllocator();
  // The pressure level from an object, not read from /proc each time: 200,000 captures in seconds.
  using profiler = new MemoryProfiler({ sources: { system }, history: 200_000, gcEvery: 0, pressure: { level: 0 } });
  for (let i = 0; i < 200_000; i++) profiler.capture();
  const file = profiler.report(`${directory}/big.html`);
  assert.ok(readFileSync(file).length > 0);
});

// ------------------------------------------------------------------ re-entrant sources

test("a source that stops and starts the profiler from a timed snapshot leaves one timer, which stop() ends", async () => {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    let profiler: MemoryProfiler | null = null;
    let restart = false;
    const source = liar(() => {
      if (restart) {
        restart = false;
        profiler!.stop();
        profiler!.start();
      }
      return { allocatedBytes: 1 };
    });
    profiler = new MemoryProfiler({ intervalMs: 10, sources: { source }, gcEvery: 0 });
    profiler.start();
    await sleep(40);
    restart = true;
    while (restart) await sleep(5);
    await sleep(40);
    profiler.stop();
    const count = profiler.snapshots.length;
    await sleep(100);
    assert.equal(profiler.snapshots.length, count, "a timer still ran after stop()");
    profiler.dispose();
  } finally {
    clearInterval(keepAlive);
  }
});

test("a source that disposes the profiler while it is read: capture() throws use-after-free and records nothing", () => {
  let profiler: MemoryProfiler | null = null;
  const source = liar(() => {
    profiler!.dispose();
    return { allocatedBytes: 1 };
  });
  profiler = new MemoryProfiler({ sources: { source } });
  assert.throws(
    () => profiler!.capture(),
    (error) => error instanceof AllocationError && error.category === "use-after-free",
  );
  assert.equal(profiler.snapshots.length, 0);
});

test("a source that disposes the profiler from a timed snapshot ends for await quietly, nothing recorded after", async () => {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    let profiler: MemoryProfiler | null = null;
    let dispose = false;
    const source = liar(() => {
      if (dispose) profiler!.dispose();
      return { allocatedBytes: 1 };
    });
    profiler = new MemoryProfiler({ intervalMs: 5, sources: { source }, gcEvery: 0 });
    let seen = 0;
    for await (const _ of profiler) if (++seen === 3) dispose = true;
    assert.equal(profiler.snapshots.length, 3);
    assert.equal(profiler.error, null);
  } finally {
    clearInterval(keepAlive);
  }
});

test("a source's dump() that disposes the profiler during report(): use-after-free, no file", () => {
  const directory = mkdtempSync(`${tmpdir()}/memkit-hostile-`);
  let profiler: MemoryProfiler | null = null;
  const system = new SystemAllocator();
  const source = any({
    kind: "system",
    stats: () => system.stats(),
    dump: () => {
      profiler!.dispose();
      return system.dump();
    },
  });
  profiler = new MemoryProfiler({ sources: { source } });
  profiler.capture();
  assert.throws(
    () => profiler!.report(`${directory}/report.html`),
    (error) => error instanceof AllocationError && error.category === "use-after-free",
  );
  assert.deepEqual(readdirSync(directory), []);
  system.dispose();
});

// ------------------------------------------------------------------ for await

test("a loop that a source's error ended throws it, even when the timer was started again before it looked", async () => {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    let fail = false;
    const source = liar(() => {
      if (fail) {
        fail = false;
        throw new Error("the source broke");
      }
      return { allocatedBytes: 1 };
    });
    using profiler = new MemoryProfiler({ intervalMs: 5, sources: { source }, gcEvery: 0 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    const loop = (async () => {
      for await (const _ of profiler) {
        if (first) {
          first = false;
          await gate; // busy in its body while the timer fails and is started again
        }
      }
      return "ended without the error";
    })().catch((error: Error) => error.message);
    while (profiler.snapshots.length === 0) await sleep(2);
    fail = true;
    while (profiler.error === null) await sleep(2);
    profiler.start(); // another user starts it again: the loop above still ended with the error
    const after = profiler.snapshots.length;
    while (profiler.snapshots.length < after + 3) await sleep(2);
    release();
    const outcome = await Promise.race([loop, sleep(1000).then(() => "still running")]);
    assert.equal(outcome, "the source broke");
  } finally {
    clearInterval(keepAlive);
  }
});

test("an iterator nobody reads holds at most `history` snapshots", async () => {
  using profiler = new MemoryProfiler({ intervalMs: 3_600_000, sources: [], history: 10, gcEvery: 0 });
  const iterator = profiler[Symbol.asyncIterator]();
  const first = iterator.next();
  profiler.capture();
  await first;
  const taken: number[] = [];
  for (let i = 0; i < 50; i++) taken.push(profiler.capture().timestamp);
  // What it holds comes out in microtasks; once they are out, next() waits (a timer's turn comes first).
  let held = 0;
  let step = iterator.next();
  while (await Promise.race([step, new Promise((resolve) => setTimeout(() => resolve("waiting"), 0))]) !== "waiting") {
    held++;
    step = iterator.next();
  }
  assert.equal(held, 10);
  profiler.dispose(); // ends the waiting iterator
  assert.equal((await step).done, true);
});

// ------------------------------------------------------------------ report()

test("report() with a URL that is a Proxy, lies about its protocol, or names a host: memkit's TypeError", () => {
  const directory = mkdtempSync(`${tmpdir()}/memkit-hostile-`);
  using profiler = new MemoryProfiler({ sources: [] });
  profiler.capture();
  class Lying extends URL {
    override get protocol(): string {
      return "file:";
    }
  }
  const paths = [
    new Proxy(new URL(`file://${directory}/proxy.html`), {}),
    new Lying(`http://example.com${directory}/lying.html`),
    new URL(`file://example.com${directory}/host.html`),
    new URL(`file://${directory}/a%2Fb.html`),
  ];
  paths.forEach((path, i) => assert.throws(() => profiler.report(path), memkits(TypeError), `path ${i}`));
  assert.deepEqual(readdirSync(directory), []);
});

test("a report that cannot be written leaves the report before it as it was (child process under ulimit -f)", () => {
  const directory = mkdtempSync(`${tmpdir()}/memkit-hostile-`);
  writeFileSync(`${directory}/report.html`, "x".repeat(100));
  const runtime = nativeInfo().runtime;
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  const script = fixture("profiler_report_efbig.ts");
  const args = runtime === "deno" ? ["run", "-A", `--config=${config}`, script] : ["run", script];
  // 16 KiB files at most (a report is several times that); SIGXFSZ ignored, so a write past the limit
  // fails with EFBIG instead of ending the process.
  const child = spawnSync(
    "bash",
    ["-c", `trap '' XFSZ; ulimit -f 16; exec "$0" "$@"`, process.execPath, ...args, directory, "report.html"],
    { encoding: "utf8", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } },
  );
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split("\n");
  assert.deepEqual(lines, ["threw platform", "file report.html 100"], child.stdout);
  assert.equal(readFileSync(`${directory}/report.html`, "utf8"), "x".repeat(100));
});

// ------------------------------------------------------------------ the live view

test("the live view answers request targets that URL parsing refuses with 400 and keeps serving (child)", () => {
  const child = runChild(fixture("profiler_live_hostile.ts"), {}, ["targets"]);
  assert.equal(child.signal, null, child.stderr);
  assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`);
  const lines = child.stdout.trim().split("\n");
  for (const line of lines.filter((l) => l.startsWith("target "))) assert.match(line, / HTTP\/1\.1 400 /, line);
  assert.ok(lines.includes("page 200"), child.stdout);
  assert.equal(lines.at(-1), "survived");
});

test("the live view lets go of a client that stops reading instead of buffering for it without bound (child)", () => {
  const child = runChild(fixture("profiler_live_hostile.ts"), {}, ["stalled"]);
  assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`);
  assert.match(child.stdout, /stalled client dropped/);
});

test("serveLiveView refuses a look-alike profiler (TypeError) and a disposed one (use-after-free) at the call", () => {
  const lookAlike = {
    capture() {},
    start() {},
    async *[Symbol.asyncIterator]() {},
    get snapshots(): never {
      throw new Error("not a profiler");
    },
  };
  assert.throws(() => serveLiveView(any(lookAlike)), memkits(TypeError));
  const real = new MemoryProfiler({ sources: [] });
  assert.throws(() => serveLiveView(any(new Proxy(real, {}))), memkits(TypeError));
  real.dispose();
  assert.throws(
    () => serveLiveView(real),
    (error) => error instanceof AllocationError && error.category === "use-after-free",
  );
});

// ------------------------------------------------------------------ deno task profile

test("deno task profile refuses --seconds it cannot wait for (a timer that long would fire at once)", () => {
  const script = fileURLToPath(new URL("../../examples/profiler_live.ts", import.meta.url));
  const child = runChild(script, {}, ["--seconds", "3000000"]);
  assert.equal(child.status, 2, `${child.stdout}\n${child.stderr}`);
  assert.match(child.stderr, /--seconds/);
});
