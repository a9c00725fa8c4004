// The profiler's overhead on a running workload (issue 18: a MemoryProfiler at
// 1 s intervals, target < 2 %), measured end to end: the same frame loop (an
// arena reset per frame, pools and a free-list heap churning, DynamicArrays
// pushing, growing and freed, a MemoryBudget's tokens, the global allocator's
// malloc/cFree, a JS heap of 100k objects being updated) with and without a
// profiler at its defaults (intervalMs 1000, gcEvery 10) over those sources.
// Each run is a fresh process of its own (same JIT and collector start), arms
// alternating off/on, on/off, ...; a run counts frames and the process's CPU
// time (process.cpuUsage(): every thread, the collector's included) over a
// window after a warm-up, and the overhead of a pair is the on run's CPU time
// per frame over the off run's, less 1. The on run also times the profiler's
// own work in the same state (capture(), capture({ gc: true })), which gives the
// direct cost: (9 snapshots + 1 collected one) per 10 s.
//
// Not part of bench/mod.ts (8 pairs of 23 s runs: about 6 minutes). Deno children get --expose-gc,
// so the collection every 10th snapshot asks for really happens:
//
//   npx deno run -A bench/profiler_overhead.ts [options]
//   npx bun run bench/profiler_overhead.ts [options]
//
//   --pairs 8 --seconds 20 --warmup 3   pairs of runs, measured window and warm-up of each run
//   --against on|no-gc|gc-only          what runs against the bare workload: the profiler at its
//                                       defaults; the profiler with gcEvery 0; only gcHint() every 10 s
//   --together                          both runs of a pair at the same time (same machine load)
//   --churn                             JS entities replaced each frame instead of updated (objects
//                                       that survive young collections and die old)
//   --json                              also print every run's figures as one JSON line
//   --alternate [--pairs 4 --blocks 8 --block 10.5]
//                                       instead: one process per pair, the profiler started and
//                                       stopped in blocks (on, off, off, on, ...) of that many seconds
import { spawn } from "node:child_process";
import process from "node:process";
import { setImmediate } from "node:timers";
import { fileURLToPath } from "node:url";
import {
  Arena,
  cFree,
  DynamicArray,
  FreeListAllocator,
  gcHint,
  initAllocator,
  malloc,
  MemoryBudget,
  MemoryProfiler,
  nativeInfo,
  nativeReady,
  PoolAllocator,
  type ProfilerSource,
} from "../mod.ts";

// The arms: no profiler; the profiler at its defaults; the profiler never asking for a collection
// (gcEvery 0); no profiler, only the collection it would ask for (gcHint() every 10 s).
const ARMS = ["off", "on", "no-gc", "gc-only"] as const;
type Arm = typeof ARMS[number];

interface RunResult {
  arm: Arm;
  frames: number;
  cpuMs: number;
  wallMs: number;
  snapshots: number;
  collected: number;
  captureMs: number;
  captureGcMs: number;
  heapBytes: number;
  rssBytes: number;
  checksum: number;
}

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!(value > 0)) throw new RangeError(`--${name} needs a positive number, got ${process.argv[i + 1]}`);
  return value;
}

function armOption(name: string): Arm | null {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return null;
  const arm = process.argv[i + 1] as Arm;
  if (!ARMS.includes(arm)) throw new RangeError(`--${name} must be one of ${ARMS.join(", ")}, got ${arm}`);
  return arm;
}

// --churn: the JS entities are replaced instead of updated (objects that outlive young collections).
const churn = process.argv.includes("--churn");
const childArm = armOption("child");
if (process.argv.includes("--child-alternating")) {
  const blocks = await runAlternating(option("blocks", 8), option("block", 10.5) * 1000, option("warmup", 3) * 1000);
  console.log(`RESULT ${JSON.stringify(blocks)}`);
  process.exit(0);
} else if (childArm !== null) {
  const result = await runChild(childArm, option("seconds", 20) * 1000, option("warmup", 3) * 1000);
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(0);
} else if (process.argv.includes("--alternate")) {
  await runAlternatingParent(option("pairs", 4), option("blocks", 8), option("block", 10.5), option("warmup", 3));
} else {
  await runParent(armOption("against") ?? "on", option("pairs", 8), option("seconds", 20), option("warmup", 3));
}

/**
 * Runs frames of `step` for `ms`, yielding to the event loop after each (so the profiler's timer
 * fires, as in a frame loop); returns how many ran.
 */
async function runFrames(step: () => void, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let frames = 0;
  while (performance.now() < end) {
    step();
    frames++;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return frames;
}

// ---------------------------------------------------------------------------------------------
// The workload: one frame of a program that uses memkit in several ways at once.

interface Workload {
  sources: { [name: string]: ProfilerSource };
  /** One frame. */
  step(): void;
  /** What the frames computed (kept so nothing is optimised away). */
  checksum(): number;
}

// The workload is built by this function alone, the same way in every arm: its closures share no
// scope with anything an arm decides.
function makeWorkload(): Workload {
  const frame = new Arena({ capacity: 1 << 20 });
  const entities = new PoolAllocator({ blockSize: 256 });
  const messages = new PoolAllocator({ blockSize: 64 });
  const heap = new FreeListAllocator({ capacity: 8 << 20 });
  const trail = new DynamicArray("f32");
  const batch = new DynamicArray("f64", { capacity: 4096 });
  const budget = new MemoryBudget({ physicalBytes: 256 << 20, categories: ["textures", "audio"] });
  const sources = { frame, entities, messages, heap, trail, batch, budget, global: "global" as const };

  // A JS heap the full collections have to walk: 100k entities.
  const world: { id: number; x: number; y: number; vx: number; vy: number; tag: string }[] = [];
  for (let i = 0; i < 100_000; i++) world.push({ id: i, x: i & 1023, y: i >> 10, vx: 1, vy: 2, tag: `e${i}` });
  const alive: Uint8Array[] = [];
  const heapBlocks: Uint8Array[] = [];
  const inbox: Uint8Array[] = [];
  const chunk = new Float32Array(512);
  let seed = 12345, tick = 0, checksum = 0.5, cursor = 0;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;

  function step(): void {
    tick++;
    // Per-frame scratch from the arena, written and read.
    frame.reset("retain-capacity");
    for (let i = 0; i < 16; i++) {
      const scratch = frame.alloc(1024 + ((random() * 7) | 0) * 1024);
      scratch.fill(i);
      checksum += scratch[scratch.length - 1];
    }
    // Entities rise and fall; messages come and go.
    const target = Math.round(2000 + 1500 * Math.sin(tick / 200));
    while (alive.length < target) alive.push(entities.alloc(256));
    while (alive.length > target) entities.free(alive.pop()!);
    for (let i = 0; i < 64; i++) inbox.push(messages.alloc(64));
    while (inbox.length > 512) messages.free(inbox.shift()!);
    // A free-list heap of mixed sizes.
    for (let i = 0; i < 8; i++) heapBlocks.push(heap.alloc(128 + ((random() * 4000) | 0)));
    while (heapBlocks.length > 400) {
      heap.free(heapBlocks.splice((random() * heapBlocks.length) | 0, 1)[0]);
    }
    // Arrays: a trail that grows and is cleared, a batch refilled, a temporary array made and freed.
    for (let i = 0; i < chunk.length; i++) chunk[i] = tick + i;
    trail.pushMany(chunk);
    if (trail.length > 200_000) trail.clear();
    batch.clear();
    for (let i = 0; i < 256; i++) batch.push(i + tick);
    if (tick % 16 === 0) {
      const temporary = new DynamicArray("u32");
      temporary.pushMany(new Uint32Array(2048));
      checksum += temporary.length;
      temporary.free();
    }
    // Budget tokens taken and given back; the global allocator's C-style blocks.
    budget.request(64 << 10, tick % 2 ? "textures" : "audio")?.release();
    const addresses: number[] = [];
    for (let i = 0; i < 4; i++) addresses.push(malloc(96));
    for (const address of addresses) cFree(address, 96);
    // The JS side: move everything a little; garbage that dies within the frame (events).
    // (A cursor that wraps: an index computed as tick * 4000 + i leaves int32 range ~25 s into a run
    // and the loop then runs 2-4x slower on doubles, profiler or not.)
    cursor = (cursor + 4000) % world.length;
    for (let i = 0; i < 4000; i++) {
      const e = world[(cursor + i) % world.length];
      e.x = (e.x + e.vx) & 0xfffff;
      e.y = (e.y + e.vy) & 0xfffff;
    }
    const events: { at: number; dx: number; dy: number }[] = [];
    for (let i = 0; i < 100; i++) {
      events.push({ at: (random() * world.length) | 0, dx: (random() * 8) | 0, dy: (random() * 8) | 0 });
    }
    for (const { at, dx, dy } of events) {
      const e = world[at];
      if (churn) {
        // Objects that live ~1000 frames: survive young collections, die old.
        world[at] = {
          id: at,
          x: (e.x + dx) & 0xfffff,
          y: (e.y + dy) & 0xfffff,
          vx: e.vx,
          vy: e.vy,
          tag: `e${at}.${tick}`,
        };
      } else {
        e.vx = dx + 1;
        e.vy = dy + 1;
      }
    }
    checksum += world[tick % world.length].x;
  }
  return { sources, step, checksum: () => checksum };
}

async function runChild(arm: Arm, windowMs: number, warmupMs: number): Promise<RunResult> {
  await nativeReady();
  initAllocator({ leakCheckAtExit: "off" });
  const { sources, step, checksum } = makeWorkload();
  const profiler = arm === "on" || arm === "no-gc"
    ? new MemoryProfiler({ intervalMs: 1000, sources, gcEvery: arm === "on" ? 10 : 0 })
    : null;
  profiler?.start();
  let hinted = 0;
  const hints = arm === "gc-only" ? setInterval(() => gcHint() && hinted++, 10_000) : undefined;
  let frames = 0;
  const runFor = async (ms: number) => void (frames += await runFrames(step, ms));

  await runFor(warmupMs);
  const framesBefore = frames, snapshotsBefore = profiler?.snapshots.length ?? 0, hintedBefore = hinted;
  const cpuBefore = process.cpuUsage(), wallBefore = performance.now();
  await runFor(windowMs);
  const cpu = process.cpuUsage(cpuBefore), wallMs = performance.now() - wallBefore;
  // Counted now: the capture timing below runs more frames.
  const framesInWindow = frames - framesBefore;
  const taken = profiler?.snapshots.slice(snapshotsBefore) ?? [];
  const hintsTaken = hinted - hintedBefore;
  clearInterval(hints);

  // The profiler's own work in the same state, each call timed alone between frames (as cold as a
  // snapshot a second apart finds its code): an ordinary snapshot, and one after a collection.
  let captureMs = 0, captureGcMs = 0, heapBytes = 0, rssBytes = 0;
  if (profiler !== null) {
    profiler.stop();
    const plain: number[] = [], collected: number[] = [];
    for (let i = 0; i < 13; i++) {
      await runFor(100);
      const gc = i % 4 === 3;
      (gc ? collected : plain).push(cpuTime(() => profiler.capture({ gc })));
    }
    captureMs = median(plain);
    captureGcMs = median(collected);
    const last = profiler.snapshots.at(-1)!;
    heapBytes = last.jsHeapBytes;
    rssBytes = last.rssBytes;
    profiler.dispose();
  }
  return {
    arm,
    frames: framesInWindow,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
    snapshots: taken.length,
    collected: arm === "gc-only" ? hintsTaken : taken.filter((s) => s.afterGC).length,
    captureMs,
    captureGcMs,
    heapBytes,
    rssBytes,
    checksum: checksum(),
  };
}

interface Block {
  on: boolean;
  frames: number;
  cpuMs: number;
  snapshots: number;
  collected: number;
}

// One process, the profiler (defaults) started and stopped in blocks: on, off, off, on, on, off, ...
// The blocks share the process's JIT and heap, so its speed from run to run drops out; what a
// profiler leaves behind (kept snapshots, compiled code) stays in the off blocks too.
async function runAlternating(count: number, blockMs: number, warmupMs: number): Promise<Block[]> {
  await nativeReady();
  initAllocator({ leakCheckAtExit: "off" });
  const { sources, step } = makeWorkload();
  const profiler = new MemoryProfiler({ intervalMs: 1000, sources });
  let frames = 0;
  const runFor = async (ms: number) => void (frames += await runFrames(step, ms));
  profiler.start();
  await runFor(warmupMs);
  const blocks: Block[] = [];
  for (let i = 0; i < count; i++) {
    const on = i % 4 === 0 || i % 4 === 3;
    profiler.stop();
    if (on) profiler.start(); // its first snapshot a second from now
    const framesBefore = frames, kept = profiler.snapshots.length, cpuBefore = process.cpuUsage();
    await runFor(blockMs);
    const cpu = process.cpuUsage(cpuBefore);
    const taken = profiler.snapshots.slice(kept);
    blocks.push({
      on,
      frames: frames - framesBefore,
      cpuMs: (cpu.user + cpu.system) / 1000,
      snapshots: taken.length,
      collected: taken.filter((s) => s.afterGC).length,
    });
  }
  profiler.dispose();
  return blocks;
}

/** CPU milliseconds one call of `fn` takes. */
function cpuTime(fn: () => unknown): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ---------------------------------------------------------------------------------------------
// The parent: fresh processes, arms alternating, the figures.

async function runParent(against: Arm, pairs: number, seconds: number, warmup: number): Promise<void> {
  const together = process.argv.includes("--together");
  await nativeReady();
  const runtime = nativeInfo().runtime;
  const file = fileURLToPath(import.meta.url);
  const config = fileURLToPath(new URL("../deno.json", import.meta.url));
  const flags = churn ? ["--churn"] : [];
  const base = runtime === "deno" ? ["run", "-A", `--config=${config}`, "--v8-flags=--expose-gc", file] : [file];
  const what = {
    off: "nothing",
    on: "MemoryProfiler({ intervalMs: 1000 }) over the 8 sources (gcEvery 10 by default)",
    "no-gc": "MemoryProfiler({ intervalMs: 1000, gcEvery: 0 }) over the 8 sources",
    "gc-only": "gcHint() every 10 s, no profiler",
  }[against];
  console.log(
    `${runtime}: ${what} against none${churn ? " (--churn)" : ""}, ${pairs} pairs of fresh processes` +
      `${together ? " (both arms at once)" : ""}, ${warmup} s warm-up + ${seconds} s measured each`,
  );
  const overheads: number[] = [], wallOverheads: number[] = [], direct: number[] = [];
  const runs: RunResult[] = [];
  for (let p = 0; p < pairs; p++) {
    // off first, then the other first: a drift in the machine's load falls on both arms alike.
    const order: Arm[] = p % 2 === 0 ? ["off", against] : [against, "off"];
    const results = new Map<string, RunResult>();
    const run = (arm: Arm) =>
      runArm([...base, "--child", arm, "--seconds", String(seconds), "--warmup", String(warmup), ...flags], arm)
        .then((result) => results.set(arm, result));
    if (together) await Promise.all(order.map(run));
    else for (const arm of order) await run(arm);
    const on = results.get(against)!, off = results.get("off")!;
    runs.push(...order.map((arm) => results.get(arm)!));
    const overhead = (on.cpuMs / on.frames) / (off.cpuMs / off.frames) - 1;
    const wallOverhead = (on.wallMs / on.frames) / (off.wallMs / off.frames) - 1;
    overheads.push(overhead);
    wallOverheads.push(wallOverhead);
    let line = `pair ${p + 1} (${order.join(",")}): off ${us(off.cpuMs / off.frames)} CPU/frame (${off.frames} ` +
      `frames), ${against} ${us(on.cpuMs / on.frames)} (${on.frames} frames`;
    if (against === "on" || against === "no-gc") line += `, ${on.snapshots} snapshots`;
    if (against !== "no-gc") line += `, ${on.collected} collections asked for`;
    line += `) -> CPU ${pct(overhead)}, wall ${pct(wallOverhead)}`;
    if (against === "on" || against === "no-gc") {
      // One snapshot in ten is taken after a collection with the defaults; per second of the window.
      const perSecond = against === "on" ? (9 * on.captureMs + on.captureGcMs) / 10 : on.captureMs;
      direct.push(perSecond / 1000);
      line += `; capture() ${on.captureMs.toFixed(3)} ms, capture({ gc: true }) ${on.captureGcMs.toFixed(2)} ms ` +
        `(JS heap ${mb(on.heapBytes)}, RSS ${mb(on.rssBytes)}) -> direct ${pct(perSecond / 1000)}`;
    }
    console.log(line);
  }
  console.log(`\nCPU time per frame, ${against}/off - 1: ${spread(overheads)}`);
  console.log(`wall time per frame, ${against}/off - 1: ${spread(wallOverheads)}`);
  if (direct.length) {
    const how = against === "on" ? "9 capture() + 1 capture({ gc: true }) per 10 s" : "1 capture() per second";
    console.log(`direct cost (${how}): ${spread(direct)}`);
  }
  if (process.argv.includes("--json")) console.log(`JSON ${JSON.stringify({ runtime, runs, overheads, direct })}`);
}

async function runAlternatingParent(processes: number, count: number, block: number, warmup: number): Promise<void> {
  await nativeReady();
  const runtime = nativeInfo().runtime;
  const file = fileURLToPath(import.meta.url);
  const config = fileURLToPath(new URL("../deno.json", import.meta.url));
  const base = runtime === "deno" ? ["run", "-A", `--config=${config}`, "--v8-flags=--expose-gc", file] : [file];
  const args = ["--child-alternating", "--blocks", String(count), "--block", String(block), "--warmup", String(warmup)];
  console.log(
    `${runtime}: MemoryProfiler({ intervalMs: 1000 }) started and stopped in ${block} s blocks (on, off, off, on, ...), ` +
      `${count} blocks in each of ${processes} fresh processes${churn ? " (--churn)" : ""}, ${warmup} s warm-up`,
  );
  const perProcess: number[] = [], perPair: number[] = [];
  const all: Block[][] = [];
  for (let p = 0; p < processes; p++) {
    const blocks = await runArm<Block[]>([...base, ...args, ...(churn ? ["--churn"] : [])], "alternating");
    all.push(blocks);
    const perFrame = (on: boolean) => {
      const chosen = blocks.filter((b) => b.on === on);
      return chosen.reduce((t, b) => t + b.cpuMs, 0) / chosen.reduce((t, b) => t + b.frames, 0);
    };
    perProcess.push(perFrame(true) / perFrame(false) - 1);
    for (let i = 0; i + 1 < blocks.length; i += 2) {
      const [on, off] = blocks[i].on ? [blocks[i], blocks[i + 1]] : [blocks[i + 1], blocks[i]];
      perPair.push((on.cpuMs / on.frames) / (off.cpuMs / off.frames) - 1);
    }
    const onBlocks = blocks.filter((b) => b.on);
    console.log(
      `process ${p + 1}: CPU/frame on ${us(perFrame(true))}, off ${us(perFrame(false))} -> ${
        pct(perProcess.at(-1)!)
      }; ` +
        `block pairs ${
          blocks.length >= 2 ? perPair.slice(-Math.floor(blocks.length / 2)).map(pct).join(", ") : "-"
        }; ` +
        `${onBlocks.reduce((t, b) => t + b.snapshots, 0)} snapshots, ` +
        `${onBlocks.reduce((t, b) => t + b.collected, 0)} after a collection, in the on blocks`,
    );
  }
  console.log(`\nCPU time per frame, on blocks/off blocks - 1, per process: ${spread(perProcess, "processes")}`);
  console.log(`per adjacent pair of blocks: ${spread(perPair, "block pairs")}`);
  if (process.argv.includes("--json")) {
    console.log(`JSON ${JSON.stringify({ runtime, blocks: all, perProcess, perPair })}`);
  }
}

/** Runs one arm in a fresh process and reads its result line. */
function runArm<T = RunResult>(args: string[], arm: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (status) => {
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
      if (status !== 0 || line === undefined) reject(new Error(`the ${arm} run failed (status ${status}): ${stderr}`));
      else resolve(JSON.parse(line.slice(7)) as T);
    });
  });
}

function us(ms: number): string {
  return `${(ms * 1000).toFixed(1)} us`;
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

function pct(x: number): string {
  return `${x >= 0 ? "+" : ""}${(x * 100).toFixed(2)} %`;
}

/** Median, quartiles and extremes of a sample. */
function spread(values: number[], what = "pairs"): string {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => {
    const i = (s.length - 1) * q, lo = Math.floor(i), hi = Math.ceil(i);
    return s[lo] + (s[hi] - s[lo]) * (i - lo);
  };
  return `median ${pct(at(0.5))}, quartiles ${pct(at(0.25))} .. ${pct(at(0.75))}, ` +
    `range ${pct(s[0])} .. ${pct(s[s.length - 1])} (${s.length} ${what})`;
}
