/**
 * The memory profiler: snapshots of what a set of sources holds, on a timer
 * or on demand, as an async iterable, with leak suspicion on top.
 *
 * @module
 */
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { requestGC, unrefTimer } from "../../ffi/native.ts";
import { describe, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { readMemoryStatus } from "../pressure/memory_status.ts";
import { PressureLevel, pressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import { type Probe, probesOf, type ProfilerSource } from "./_sources.ts";
import { Nesting } from "./_nesting.ts";
import { type LeakSuspicion, leakSuspicion, type LeakSuspicionOptions } from "./leak_suspicion.ts";
import { type MemorySnapshot, takeSnapshot } from "./snapshot.ts";
import { reportHtml } from "./report.ts";

/**
 * Whether `value` is a MemoryProfiler of this module ("live" or "disposed"), or null for anything else (an
 * object shaped like one, a Proxy of one): for the live view. Set by the class's static block.
 */
export let profilerState: (value: unknown) => "live" | "disposed" | null;

/**
 * Options of {@linkcode MemoryProfiler}.
 *
 * @example
 * ```ts
 * import { type MemoryProfilerOptions, SystemAllocator } from "@memkit/memkit";
 *
 * const options: MemoryProfilerOptions = { intervalMs: 1000, sources: { system: new SystemAllocator() } };
 * console.log(options.intervalMs);
 * ```
 */
export interface MemoryProfilerOptions {
  /**
   * Time between timed snapshots, in milliseconds (1 to an hour).
   * @default {1000}
   */
  intervalMs?: number;
  /**
   * What to watch, by name (`{ arena, frames }`) or as a list (named `<kind>-<index>`, e.g.
   * `allocator-0`, `frame-pool-1`): allocators, arrays, `"global"`, a MemoryInterface, a FramePool, a
   * PurgeableBuffer, a ResourceHeap, a mapping (`mapPages`, `mapFile`), a MemoryBudget (see
   * {@linkcode ProfilerSource} for what each counts; a ResourceCache is none: watch the MemoryBudget it
   * draws from). Each source once: the same one twice would be counted twice. By default only the global
   * allocator's counters, as `{ global: "global" }`.
   */
  sources?: Record<string, ProfilerSource> | ProfilerSource[];
  /**
   * Snapshots kept for `snapshots`, leak suspicion and pictures (the oldest go first).
   * @default {600}
   */
  history?: number;
  /**
   * Ask for a garbage collection (see `gcHint()`) before every `gcEvery`-th timed snapshot, the first
   * included, so leak suspicion can look at memory that survives one; 0 never asks. A full collection
   * costs milliseconds in a large heap (about 20 ms measured in a benchmark process): every 10th
   * snapshot keeps that under 0.3 % of the time at 1 s intervals.
   * @default {10}
   */
  gcEvery?: number;
  /**
   * Owners listed in `largestAllocations`.
   * @default {5}
   */
  largest?: number;
  /** Where the pressure level comes from: a monitor's `level`, or read from the system at each snapshot. */
  pressure?: { readonly level: PressureLevelValue };
}

const OptionsSchema = z.object({
  intervalMs: z.number().int("must be an integer").min(1, "must be at least 1").max(
    3_600_000,
    "must be at most 3600000 (an hour)",
  ).optional(),
  sources: z.unknown().optional(),
  history: z.number().int("must be an integer").min(2, "must be at least 2").max(1_000_000, "must be at most 1e6")
    .optional(),
  gcEvery: z.number().int("must be an integer").min(0, "must be at least 0").max(1_000_000, "must be at most 1e6")
    .optional(),
  largest: z.number().int("must be an integer").min(0, "must be at least 0").max(1000, "must be at most 1000")
    .optional(),
  pressure: typeCheck<{ readonly level: PressureLevelValue }>(
    (v) => typeof v === "object" && v !== null && typeof (v as { level?: unknown }).level === "number",
    "must be an object with a numeric 'level' (a PressureMonitor)",
  ).optional(),
}).strict();

/**
 * Watches allocators, arrays, the global allocator, a MemoryInterface, the
 * budget family's memory holders (FramePool, PurgeableBuffer, ResourceHeap),
 * page and file mappings, and budgets (see {@linkcode ProfilerSource} for what
 * each counts), and records a {@linkcode MemorySnapshot} every `intervalMs` once
 * started (or when `for await` begins), and on `capture()`. Snapshots are
 * kept (the last `history`) for {@linkcode MemoryProfiler.leakSuspicion},
 * heatmaps and reports.
 *
 * The timer never keeps the process alive, so a profiler left running
 * never holds a program open. A `for await` loop at a module's top level
 * still gets its snapshots (the module waits for it), but one anywhere else
 * waits only while something else keeps the process alive: in a background
 * function the program ends anyway, and in Deno's test runner the test
 * fails with "Promise resolution is still pending but the event loop has
 * already resolved" (use `capture()` there, or keep a timer of your own
 * running, as below). A disposed allocator reads as 0 bytes (a source whose
 * statistics then refuse to be read is also listed in the snapshot's
 * `released`).
 *
 * In Deno, a collection before a snapshot (`capture({ gc: true })`,
 * `gcEvery`) needs `--v8-flags=--expose-gc`; without it the snapshot is
 * taken anyway, with `afterGC: false`.
 *
 * @example
 * ```ts
 * import { Arena, DynamicArray, MemoryProfiler } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using arena = new Arena({ capacity: 1 << 20 });
 * using points = new DynamicArray("f32");
 * using profiler = new MemoryProfiler({ intervalMs: 20, sources: { arena, points } });
 * const keepAlive = setInterval(() => {}, 1000); // the profiler's timer keeps nothing alive (see above)
 * let seen = 0;
 * for await (const snapshot of profiler) { // starts the timer
 *   points.pushMany(new Float32Array(1000));
 *   arena.alloc(1024);
 *   console.log(snapshot.totalAllocated, snapshot.largestAllocations[0]?.name);
 *   if (++seen === 3) break; // stops the timer the loop started
 * }
 * assert.equal(profiler.running, false);
 * clearInterval(keepAlive);
 * ```
 */
export class MemoryProfiler implements Disposable, AsyncIterable<MemorySnapshot> {
  readonly #interval: number;
  readonly #probes: Probe[];
  readonly #nesting: Nesting;
  readonly #history: number;
  readonly #gcEvery: number;
  #ticks = 0;
  readonly #largest: number;
  readonly #monitor: { readonly level: PressureLevelValue } | null;
  readonly #snapshots: MemorySnapshot[] = [];
  // Each `for await` loop's inbox: a snapshot, or null to end the loop, with `{ error }` when a source's
  // failure ended it (whatever was thrown, null and undefined included) and no second argument for dispose().
  readonly #sinks = new Set<(snapshot: MemorySnapshot | null, failure?: { error: unknown }) => void>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running = false;
  // Whether the timer runs because a `for await` loop started it (not start()): the last loop to end stops it.
  #startedByLoop = false;
  #disposed = false;
  #statusReadable = true;
  #error: unknown = null;

  /**
   * Creates a profiler (the timer starts with `start()` or `for await`).
   *
   * @param options Interval, sources, history, collection before snapshots, pressure.
   * @throws {TypeError} For mistyped options, a source of no known kind (the message names its class and
   *   what to watch instead), or the same source twice.
   * @throws {RangeError} For an interval, history or `largest` out of range (an interval ≤ 0 or NaN).
   */
  constructor(options?: MemoryProfilerOptions) {
    const op = "create MemoryProfiler";
    const parsed = parseOptions(OptionsSchema, options, op);
    this.#probes = probesOf(parsed.sources ?? { global: "global" }, op);
    this.#nesting = new Nesting(this.#probes);
    this.#interval = parsed.intervalMs ?? 1000;
    this.#history = parsed.history ?? 600;
    this.#gcEvery = parsed.gcEvery ?? 10;
    this.#largest = parsed.largest ?? 5;
    this.#monitor = parsed.pressure ?? null;
  }

  /** The names of the sources, in order. */
  get sourceNames(): string[] {
    return this.#probes.map((p) => p.name);
  }

  /** The interval between timed snapshots, in milliseconds. */
  get intervalMs(): number {
    return this.#interval;
  }

  /** Whether the timer runs. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * What stopped the timer: the error a source's statistics threw at a timed snapshot (whatever it threw:
   * a source that throws null or undefined leaves that here, with `running` false), or null.
   */
  get error(): unknown {
    return this.#error;
  }

  /** The kept snapshots, oldest first (a copy). */
  get snapshots(): MemorySnapshot[] {
    return this.#snapshots.slice();
  }

  /**
   * Takes a snapshot now and records it (it also reaches every `for await` loop).
   *
   * @param options `gc: true` asks for a full garbage collection first (default false). Bun always
   *   allows it; Deno only with `--v8-flags=--expose-gc`, else the snapshot's `afterGC` is false.
   * @returns The snapshot.
   * @throws {AllocationError} "use-after-free" after `dispose()` (also when a source's statistics disposed it
   *   while read: nothing is recorded); what a source's statistics throw otherwise.
   * @throws {TypeError} For mistyped options; a source whose reading method is gone or answers a non-object; a
   *   `pressure` object whose `level` is no longer a number.
   * @throws {RangeError} A `pressure` object whose `level` is not an integer from 0 to 4.
   *
   * @example
   * ```ts
   * import { MemoryProfiler, PoolAllocator } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using pool = new PoolAllocator({ blockSize: 64 });
   * using profiler = new MemoryProfiler({ sources: [pool] });
   * const block = pool.alloc(64);
   * assert.equal(profiler.capture().categoryBreakdown["allocator-0"], 64);
   * pool.free(block);
   * ```
   */
  capture(options?: { gc?: boolean }): MemorySnapshot {
    const op = "capture a snapshot";
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      throw new TypeError(`Cannot ${op} as 'options' must be an object: current value is ${describe(options)}`);
    }
    const gc = options?.gc ?? false;
    if (typeof gc !== "boolean") {
      throw new TypeError(`Cannot ${op} as 'gc' must be a boolean: current value is ${describe(gc)}`);
    }
    this.#alive(op);
    return this.#record(gc);
  }

  /**
   * Leak suspicion over the kept snapshots: see {@linkcode leakSuspicion}.
   * @throws {RangeError} For a window out of range.
   *
   * @example
   * ```ts
   * import { MemoryProfiler } from "@memkit/memkit";
   *
   * using profiler = new MemoryProfiler();
   * for (let i = 0; i < 5; i++) profiler.capture({ gc: true });
   * console.log(profiler.leakSuspicion().suspected);
   * ```
   */
  leakSuspicion(options?: LeakSuspicionOptions): LeakSuspicion {
    return leakSuspicion(this.#snapshots, options);
  }

  /**
   * Writes one self-contained HTML file (inline SVG and CSS, no script,
   * nothing fetched): the latest figures, suggestions (an array using under
   * 25 % of its capacity: `compact()`; an allocator whose fragmentation is
   * above 0.5: `defragment()` where it has one; an allocator holding 1 MiB or
   * more and using under a quarter of it: release what it keeps; owners that
   * grew at every step: allocations never freed), a timeline of native bytes
   * (on its own scale) and of RSS and JS heap, the heatmap, the leak suspects
   * and a block map of every allocator source (a disposed one noted).
   *
   * @param path Where to write it: a path or a `file:` URL ending in `.html` (or `.htm`) in a directory that exists.
   * @returns The absolute path written: whole or not at all (a new file beside it is renamed over it, so a
   *   failed write leaves what was there as it was; a symbolic link there is replaced, not written through).
   * @throws {TypeError} When `path` is not a string or a file URL of a local path, or does not end in `.html`.
   * @throws {AllocationError} "platform" when the directory does not exist or the file cannot be written;
   *   "use-after-free" after `dispose()` (also when a source's `dump()` or `stats()` disposed it meanwhile).
   *
   * @example
   * ```ts
   * import { DynamicArray, MemoryProfiler } from "@memkit/memkit";
   * import { mkdtempSync, readFileSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray("f64", { capacity: 10_000 });
   * values.push(1); // 1 of 10,000 used
   * using profiler = new MemoryProfiler({ sources: { values } });
   * profiler.capture();
   * const file = profiler.report(`${mkdtempSync(`${tmpdir()}/memkit-`)}/report.html`);
   * assert.match(readFileSync(file, "utf8"), /compact\(\)/);
   * ```
   */
  report(path: string | URL): string {
    const op = "write the profiler report";
    let target: string;
    if (typeof path === "string" && path.length > 0) target = resolve(path);
    else target = filePathOf(path, op);
    // Only .html files: a mistyped argument never overwrites some other file.
    if (!/\.html?$/i.test(target) || target.includes("\0")) {
      throw new TypeError(
        `Cannot ${op} as 'path' must name an .html file: current value is ${describe(target)}`,
      );
    }
    this.#alive(op);
    const directory = dirname(target);
    if (!existsSync(directory) || !statSync(directory).isDirectory()) {
      throw new AllocationError(
        "platform",
        `Cannot ${op} to ${describe(target)} as its directory ${describe(directory)} does not exist`,
        { call: "open", errno: 2 },
      );
    }
    const html = reportHtml({ snapshots: this.#snapshots, probes: this.#probes, leaks: this.leakSuspicion() });
    // A source's dump() or stats() (its own code) may have disposed this profiler meanwhile.
    this.#alive(op);
    // Written whole or not at all: into a new file beside it, renamed over it. Writing in place, a full
    // disk or a quota left a truncated report where the previous one was.
    const temporary = join(directory, `.memkit-report-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
    try {
      writeFileSync(temporary, html, { flag: "wx" });
      renameSync(temporary, target);
    } catch (error) {
      try {
        rmSync(temporary, { force: true });
      } catch {
        // Nothing more can be done about a file this process could not write either.
      }
      throw new AllocationError("platform", `Cannot ${op} to ${describe(target)}: ${(error as Error)?.message}`, {
        cause: error,
        call: "open",
      });
    }
    return target;
  }

  /**
   * Starts the timer (it does not keep the process alive) and clears `error`. Again while running does nothing.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  start(): void {
    this.#alive("start the profiler");
    this.#startedByLoop = false; // the caller's timer now: ending a loop leaves it running
    if (this.#running) return;
    this.#running = true;
    this.#error = null;
    this.#schedule();
  }

  /** Stops the timer; snapshots are kept. */
  stop(): void {
    this.#running = false;
    this.#startedByLoop = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /**
   * Stops the timer and ends every `for await` loop. Afterwards `stop()`, `snapshots`, `leakSuspicion()`
   * and the getters still work (on the kept snapshots); `capture()`, `start()`, `report()` and a new
   * `for await` throw AllocationError("use-after-free").
   */
  dispose(): void {
    this.stop();
    this.#disposed = true;
    for (const sink of [...this.#sinks]) sink(null);
  }

  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Yields each snapshot recorded from now on (timed or captured), starting
   * the timer when it is not running. Snapshots wait in order for a loop
   * that is busy; one more than `history` snapshots behind loses the oldest
   * (so an iterator that is never read again holds `history` at most).
   *
   * Leaving the loop (`break`, `return`, a throw in its body) stops the
   * timer when a loop started it and no other loop still runs, so a loop
   * leaves the profiler as it found it; a timer started with `start()`
   * (before the loop, or during it) keeps running. `dispose()` ends the
   * loop at its next step (snapshots still waiting for it are not yielded;
   * they stay in `snapshots`), and a source's error at a timed snapshot ends
   * it with that error, after the snapshots taken before it,
   * whatever was thrown (once ended, a loop stays ended, even if the timer
   * is started again).
   */
  async *[Symbol.asyncIterator](): AsyncIterator<MemorySnapshot> {
    this.#alive("iterate the profiler");
    // A queue as an array and the index of its head: shift() copies the array, push() and a moving head do not.
    let queue: MemorySnapshot[] = [];
    let head = 0;
    let ended = false;
    let failure = null as { error: unknown } | null; // (set by the sink: not narrowed to null)
    let wake: (() => void) | null = null;
    const history = this.#history;
    const sink = (snapshot: MemorySnapshot | null, failed?: { error: unknown }) => {
      if (ended) return;
      if (snapshot === null) {
        // The end is this loop's: it keeps the error that caused it and takes no more snapshots. A dispose()
        // ends it at its next step: the snapshots still waiting are dropped (they stay in `snapshots`); a
        // source's error comes after the snapshots taken before it.
        ended = true;
        failure = failed ?? null;
        if (failed === undefined) {
          queue = [];
          head = 0;
        }
        this.#sinks.delete(sink);
      } else {
        queue.push(snapshot);
        if (queue.length - head > history) head++;
        if (head > 1024 && head * 2 > queue.length) {
          queue = queue.slice(head);
          head = 0;
        }
      }
      wake?.();
      wake = null;
    };
    this.#sinks.add(sink);
    if (!this.#running) {
      this.start();
      this.#startedByLoop = true;
    }
    try {
      while (true) {
        while (head < queue.length) {
          const snapshot = queue[head++];
          yield snapshot;
        }
        queue = [];
        head = 0;
        if (ended) {
          if (failure !== null) throw failure.error;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.#sinks.delete(sink);
      // The timer a loop started stops with the last loop (a live view's loop runs over start()'s timer).
      if (this.#startedByLoop && this.#sinks.size === 0) this.stop();
    }
  }

  #alive(op: string): void {
    if (this.#disposed) {
      throw new AllocationError("use-after-free", `Cannot ${op} as this MemoryProfiler was disposed`);
    }
  }

  #record(gc: boolean): MemorySnapshot {
    const afterGC = gc && requestGC();
    const snapshot = takeSnapshot(this.#probes, this.#nesting, this.#largest, afterGC, () => this.#pressure());
    // Sources are read through their own code, which may have disposed this profiler: then nothing is recorded.
    this.#alive("capture a snapshot");
    this.#snapshots.push(snapshot);
    if (this.#snapshots.length > this.#history) this.#snapshots.splice(0, this.#snapshots.length - this.#history);
    for (const sink of this.#sinks) sink(snapshot);
    return snapshot;
  }

  #pressure(): PressureLevelValue | null {
    if (this.#monitor !== null) {
      // The caller's object: its level was a number when the profiler was made, but a getter may answer
      // anything now, and the level is written into every snapshot and the report.
      const level: unknown = this.#monitor.level;
      if (typeof level !== "number") {
        throw new TypeError(
          `Cannot take a snapshot as the 'pressure' option's level must be a PressureLevel value: current value is ${
            describe(level)
          }`,
        );
      }
      if (!Number.isInteger(level) || level < PressureLevel.None || level > PressureLevel.Critical) {
        throw new RangeError(
          `Cannot take a snapshot as the 'pressure' option's level must be an integer from ${PressureLevel.None} ` +
            `to ${PressureLevel.Critical}: current value is ${describe(level)}`,
        );
      }
      return level as PressureLevelValue;
    }
    if (!this.#statusReadable) return null;
    try {
      return pressureLevel(readMemoryStatus());
    } catch {
      this.#statusReadable = false; // Deno without -A, or no /proc: not worth retrying every tick
      return null;
    }
  }

  #schedule(): void {
    if (!this.#running) return;
    const timer = setTimeout(() => {
      if (this.#timer !== timer) return;
      // While the sources are read (their own code), #timer is null: a stop() and start() from there
      // schedule the next tick themselves, and this tick must not schedule a second one.
      this.#timer = null;
      try {
        this.#record(this.#gcEvery > 0 && this.#ticks++ % this.#gcEvery === 0);
      } catch (error) {
        // Disposed from a source's reading: dispose() has stopped the timer and ended the loops.
        if (this.#disposed) return;
        // A source failing for another reason than being gone stops the timer; the error ends every
        // `for await` loop (thrown there) and stays readable in `error`, instead of crashing the process.
        this.stop();
        this.#error = error;
        for (const sink of [...this.#sinks]) sink(null, { error });
        return;
      }
      if (this.#timer === null) this.#schedule();
    }, this.#interval);
    this.#timer = timer;
    unrefTimer(timer);
  }

  static {
    profilerState = (value) =>
      typeof value === "object" && value !== null && #disposed in value
        ? (value as MemoryProfiler).#disposed ? "disposed" : "live"
        : null;
  }
}

// The path a `file:` URL names, checked through URL's own internals: a Proxy of a URL, a subclass whose
// `protocol` getter lies, a host or an encoded "/" get memkit's TypeError, not the engine's or node's.
function filePathOf(path: unknown, op: string): string {
  let href: string | null = null;
  if (typeof path === "object" && path !== null) {
    try {
      href = URL.prototype.toString.call(path);
    } catch {
      // Not a URL (a Proxy of one fails the same brand check).
    }
  }
  const url = href === null ? null : new URL(href);
  if (url === null || url.protocol !== "file:") {
    throw new TypeError(
      `Cannot ${op} as 'path' must be a non-empty string or a file: URL: current value is ${
        url === null ? describe(path) : describe(href)
      }`,
    );
  }
  try {
    return fileURLToPath(url);
  } catch (error) {
    throw new TypeError(
      `Cannot ${op} as 'path' must be a file: URL of a local path: current value is ${describe(href)} (${
        (error as Error)?.message
      })`,
      { cause: error },
    );
  }
}
