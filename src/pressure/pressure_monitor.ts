/**
 * Watches memory pressure and tells listeners when the level changes.
 *
 * @module
 */
import { requestGC, unrefTimer } from "../../ffi/native.ts";
import { describe, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { trimAll } from "../base/_trimmers.ts";
import { type MemoryStatus, readMemoryStatus } from "./memory_status.ts";
import { PsiTrigger } from "./psi_trigger.ts";
import { type CheckedStatus, checkStatus, type EventCounts } from "./_checked_status.ts";
import {
  levelOf,
  PressureLevel,
  type PressureLevelValue,
  type PressureThresholds,
  resolveThresholds,
} from "./pressure_level.ts";

/**
 * Options of {@linkcode PressureMonitor}.
 *
 * @example
 * ```ts
 * import { PressureMonitor, type PressureMonitorOptions } from "@memkit/memkit";
 *
 * const options: PressureMonitorOptions = { intervalMs: 500, hysteresis: 2 };
 * using monitor = new PressureMonitor(options);
 * ```
 */
export interface PressureMonitorOptions {
  /** Sampling interval at None and Low; half of it from Medium up. @default {2000} */
  intervalMs?: number;
  /** Where the levels begin. */
  thresholds?: PressureThresholds;
  /** Where readings come from (tests inject one). @default {readMemoryStatus} */
  read?: () => MemoryStatus;
  /** Consecutive lower readings needed before the level goes down (rising is immediate). @default {3} */
  hysteresis?: number;
  /** Ask the runtime for a garbage collection on reaching Critical. @default {false} */
  gcOnCritical?: boolean;
  /**
   * Also wake on a Linux PSI trigger (`some 150 ms` per 2 s on
   * /proc/pressure/memory): a stall is seen at once instead of at the next
   * tick. The wait runs on another thread (Deno's non-blocking FFI poll, a
   * Worker in Bun) and keeps the process alive until `stop()`. Where the kernel refuses
   * the trigger, `psiTriggerError` says why and the monitor just polls.
   * @default {false}
   */
  psiTrigger?: boolean;
}

const OptionsSchema = z.object({
  intervalMs: z.number().int("must be an integer").min(10, "must be at least 10").max(
    3_600_000,
    "must be at most 3600000 (an hour)",
  )
    .optional(),
  thresholds: z.unknown().optional(),
  read: typeCheck<() => MemoryStatus>((v) => typeof v === "function", "must be a function").optional(),
  hysteresis: z.number().int("must be an integer").min(1, "must be at least 1").max(100, "must be at most 100")
    .optional(),
  gcOnCritical: z.boolean().optional(),
  psiTrigger: z.boolean().optional(),
}).strict();

/**
 * A callback of {@linkcode PressureMonitor.on}.
 *
 * @example
 * ```ts
 * import type { PressureListener } from "@memkit/memkit";
 *
 * const log: PressureListener = (level, status) => console.log(level, status.availableBytes);
 * ```
 */
export type PressureListener = (level: PressureLevelValue, status: MemoryStatus) => void;

let followChanges: (monitor: PressureMonitor, sink: (level: PressureLevelValue) => void) => () => void;
let isMonitor: (value: unknown) => boolean;
let checkedStatusOf: (monitor: PressureMonitor) => CheckedStatus;

/**
 * Whether `value` is a PressureMonitor made by its constructor (a brand check: a Proxy of one, or an object
 * made from its prototype, is not). memkit's options check monitors with it; not exported from mod.ts.
 */
export function isPressureMonitor(value: unknown): value is PressureMonitor {
  return isMonitor(value);
}

/**
 * The latest reading of `monitor` as it checked it (frozen), read from the monitor itself: a subclass's `status`
 * getter is not asked. memkit's own readers (the HAL's platform band and stats) use it; not exported from mod.ts.
 */
export function monitorStatus(monitor: PressureMonitor): CheckedStatus {
  return checkedStatusOf(monitor);
}

/**
 * Calls `sink` with every level change of `monitor`, falls included, synchronously and in the order the
 * changes happen, until the returned function is called (which lets go of `sink` at once). Followers
 * inside memkit (a budget, respondToPressure) use it; not exported from mod.ts.
 */
export function followMonitorChanges(
  monitor: PressureMonitor,
  sink: (level: PressureLevelValue) => void,
): () => void {
  return followChanges(monitor, sink);
}

/**
 * Samples the memory status on a timer (every `intervalMs` at None and Low,
 * twice as often from Medium up) and reports level changes: rising at once,
 * falling only after `hysteresis` lower readings in a row. On cgroup v2, a
 * new `high` event raises the level to at least High and a new `max`, `oom`
 * or `oom_kill` event to Critical. A listener for a level hears every rise
 * to that level or above (see {@linkcode PressureMonitor.on}).
 *
 * The timer never keeps the process alive (nor does `for await` over the
 * monitor), which is right inside a server whose sockets do. A program that
 * only watches must wait on something that keeps it alive, such as a timer.
 *
 * @example
 * ```ts
 * import { PressureLevel, PressureMonitor } from "@memkit/memkit";
 *
 * using monitor = new PressureMonitor({ intervalMs: 100 });
 * monitor.on(PressureLevel.High, (level, status) => {
 *   console.log(`memory pressure ${level}: ${status.availableBytes} bytes available`);
 * });
 * monitor.start();
 * await new Promise((resolve) => setTimeout(resolve, 300)); // keeps the program alive while it watches
 * console.log(monitor.level, monitor.status.source);
 * ```
 */
export class PressureMonitor implements Disposable, AsyncIterable<PressureLevelValue> {
  readonly #interval: number;
  readonly #thresholds: Required<PressureThresholds>;
  readonly #read: () => MemoryStatus;
  readonly #hysteresis: number;
  readonly #gcOnCritical: boolean;
  // `above`: the listener was told of the level's current stay at or above its level (or it was there already
  // when the listener was added), so it waits for a fall below its level and a new rise.
  readonly #listeners = new Map<number, { level: PressureLevelValue; callback: PressureListener; above: boolean }>();
  readonly #sinks = new Set<(level: PressureLevelValue) => void>();
  #nextId = 1;
  #level: PressureLevelValue = PressureLevel.None;
  // The latest reading as checked: checkStatus's frozen copy, never the reader's own object (whose fields a
  // getter or a later assignment could change after the check).
  #status: CheckedStatus | null = null;
  // The cgroup event counts of the latest reading, read once when it was taken.
  #events: EventCounts | null = null;
  #lowerReadings = 0;
  #readError: unknown = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running = false;
  // The current run: start() and stop() each begin a new one. A timer tick and a PSI wake-up belong to the run
  // that set them up and do nothing once it is over, so a listener (or the reader) that calls stop(), or
  // stop(); start(), during a tick leaves no second timer next to start()'s and no reading after stop().
  // Invariant: while running, exactly one timer of the current run is pending or running; none when stopped.
  #run = 0;
  readonly #wantTrigger: boolean;
  #trigger: PsiTrigger | null = null;
  #triggerError: string | null = null;

  /**
   * Creates a monitor and takes a first reading (the timer starts with `start()`).
   *
   * @param options Interval, thresholds, reader, hysteresis, GC on Critical.
   * @throws {TypeError} For mistyped options, or a first reading that is not a MemoryStatus (as `refresh()`).
   * @throws {RangeError} For out-of-range numbers, in the options or the first reading (as `refresh()`).
   */
  constructor(options?: PressureMonitorOptions) {
    if (options === undefined) options = {};
    const parsed = parseOptions(OptionsSchema, options, "create PressureMonitor");
    this.#interval = parsed.intervalMs ?? 2000;
    this.#thresholds = resolveThresholds(parsed.thresholds as PressureThresholds | undefined, "create PressureMonitor");
    this.#read = parsed.read ?? readMemoryStatus;
    this.#hysteresis = parsed.hysteresis ?? 3;
    this.#gcOnCritical = parsed.gcOnCritical ?? false;
    this.#wantTrigger = parsed.psiTrigger ?? false;
    // The reader is called without the monitor as `this`: a half-built monitor must never escape (it would pass
    // the brand check other classes make, with no status).
    const read = this.#read;
    const status = read();
    const checked = checkStatus(status, "create PressureMonitor from the reading its 'read' returned");
    this.#status = checked;
    this.#level = levelOf(checked, this.#thresholds);
    this.#events = checked.events;
  }

  /** The current level. */
  get level(): PressureLevelValue {
    return this.#level;
  }

  /**
   * The latest reading, as the monitor checked it: a frozen copy of what `read` returned (never that object
   * itself, so a reader that changes its object later, or a getter that answers differently, changes nothing
   * here). Listeners are given the same object. A missing `limitBytes`, `psi` or `events` reads as null.
   */
  get status(): MemoryStatus {
    return this.#status!;
  }

  /**
   * Calls `callback(newLevel, status)` each time the level rises from below
   * `level` to `level` or above: a listener for High hears a jump from Low
   * straight to Critical. It is called once per such rise: not again while
   * the level stays at or above `level` (High → Critical → High is silent), and
   * again after the level has fallen below `level` and risen once more.
   * Falling never calls it (`for await (const level of monitor)` sees every
   * change). A listener added while the level is already at or above `level`
   * is not called for that; read {@linkcode PressureMonitor.level} once.
   * Listeners run in the order they were added; one that throws does not stop
   * the others (its error is rethrown in a microtask). A callback may take a
   * reading itself (`refresh()`): a rise that reading undid is not announced
   * to the listeners after it, and the async iterator hears both changes in
   * the order they happened.
   *
   * @param level The level to watch, PressureLevel.Low (1) to PressureLevel.Critical (4). None (0) is refused:
   *   the level never rises to None.
   * @param callback Called with the new level (which may be above `level`) and the reading that raised it.
   * @returns An id for {@linkcode PressureMonitor.off}.
   * @throws {RangeError} For a level that is not one of PressureLevel's from Low to Critical.
   * @throws {TypeError} For a level that is not a number, or a callback that is not a function.
   *
   * @example
   * ```ts
   * import { PressureLevel, PressureMonitor, type MemoryStatus } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const reading = (availableBytes: number): MemoryStatus => ({
   *   totalBytes: 100, availableBytes, limitBytes: null, usedBytes: 100 - availableBytes, rssBytes: 0,
   *   psi: null, source: "linux-meminfo", events: null,
   * });
   * let next = reading(90); // 90 % available: None
   * const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
   * const feed = (availableBytes: number) => {
   *   next = reading(availableBytes);
   *   return monitor.refresh();
   * };
   * const heard: number[] = [];
   * monitor.on(PressureLevel.High, (level) => heard.push(level));
   * feed(40); // Low: below High, silent
   * feed(1); // Critical: crossed High, heard
   * feed(8); // falls to High: stayed at or above High, silent
   * feed(40); // Medium (one level per `hysteresis` readings), silent
   * feed(40); // Low, silent
   * feed(8); // High again: crossed High, heard
   * assert.deepEqual(heard, [PressureLevel.Critical, PressureLevel.High]);
   * ```
   */
  on(level: PressureLevelValue, callback: PressureListener): number {
    if (typeof level !== "number") {
      throw new TypeError(
        `Cannot listen as 'level' must be a PressureLevel number: current value is ${describe(level)}`,
      );
    }
    if (!Number.isInteger(level) || level < PressureLevel.Low || level > PressureLevel.Critical) {
      throw new RangeError(
        `Cannot listen as 'level' must be a PressureLevel from Low (1) to Critical (4), as a listener hears the ` +
          `level rise to its level or above: current value is ${describe(level)}`,
      );
    }
    if (typeof callback !== "function") {
      throw new TypeError(`Cannot listen as 'callback' must be a function: current value is ${describe(callback)}`);
    }
    const id = this.#nextId++;
    this.#listeners.set(id, { level, callback, above: this.#level >= level });
    return id;
  }

  /** Stops the calls of a listener; unknown ids are ignored. */
  off(id: number): void {
    this.#listeners.delete(id);
  }

  /**
   * Why the timer's last reading (or the PSI trigger's, with `psiTrigger`) was refused (what `refresh()` threw: a
   * `read` option that threw or returned something that is not a MemoryStatus), or null once such a reading is
   * accepted. A refused reading on the timer changes nothing and never ends the program; the timer goes on.
   */
  get readError(): unknown {
    return this.#readError;
  }

  /** Why the PSI trigger could not be used (the kernel's errno), or null. */
  get psiTriggerError(): string | null {
    return this.#triggerError;
  }

  /**
   * Starts sampling on a timer that does not keep the process alive (and the
   * PSI wait, which does, when asked for). Calling it again while started does nothing.
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const run = ++this.#run;
    this.#schedule(run);
    if (this.#wantTrigger) this.#watchTrigger(run);
  }

  /**
   * Whether the monitor samples on its timer: from `start()` until `stop()`
   * (a `MemoryInterface` given one that is not running starts it).
   *
   * @example
   * ```ts
   * import { type MemoryStatus, PressureMonitor } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const status: MemoryStatus = {
   *   totalBytes: 100, availableBytes: 80, limitBytes: null, usedBytes: 20, rssBytes: 0,
   *   psi: null, source: "linux-meminfo", events: null,
   * };
   * const monitor = new PressureMonitor({ read: () => status });
   * assert.equal(monitor.running, false);
   * monitor.start();
   * assert.equal(monitor.running, true);
   * monitor.stop();
   * ```
   */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Stops sampling and closes the PSI trigger. Called from a listener, the reader or the reading's own code (a
   * getter, a Proxy trap) during a timed reading or a PSI wake-up, it ends that reading's run too: no timer is
   * left, and a reading the reader was still taking is not kept, announced or reported in `readError`.
   */
  stop(): void {
    this.#running = false;
    this.#run++;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#trigger?.close();
    this.#trigger = null;
  }

  #watchTrigger(run: number): void {
    let trigger: PsiTrigger;
    try {
      trigger = PsiTrigger.open();
    } catch (error) {
      this.#triggerError = error instanceof Error ? error.message : String(error);
      return;
    }
    this.#trigger = trigger;
    // stop() closes the trigger (its pending wait ends false) and ends the run; a wake-up that was already on
    // its way when the run ended (stop(); start() in between) is dropped, as is the loop's failure.
    (async () => {
      while (run === this.#run) {
        const fired = await trigger.wait(this.#interval);
        if (fired && run === this.#run) this.#sample(run);
      }
    })().catch((error) => {
      if (run === this.#run) this.#triggerError = error instanceof Error ? error.message : String(error);
    });
  }

  /** Stops sampling, for `using`. */
  [Symbol.dispose](): void {
    this.stop();
  }

  /** "PressureMonitor", so a message naming this object (`Object.prototype.toString`) says what it is. */
  get [Symbol.toStringTag](): string {
    return "PressureMonitor";
  }

  /**
   * Takes a reading now and updates the level (the timer takes its readings the same way). Every field of the
   * reading is read once and checked, cgroup `events` and PSI averages included, without coercion (an object
   * where a number belongs is refused, its `valueOf` never runs).
   * @returns The level after the reading.
   * @throws {TypeError} For a reading (from the `read` option) that is not a MemoryStatus: not an object, or a
   *   field missing or of the wrong type (`limitBytes`, `psi` and `events` may be null).
   * @throws {RangeError} For a reading whose numbers are not finite numbers from 0, or whose byte counts or event
   *   counts are not whole numbers.
   *   A refused reading, or one whose fields throw when read, changes nothing: `status` and `level` stay.
   */
  refresh(): PressureLevelValue {
    return this.#refresh(null)!;
  }

  // A reading for refresh() (run null) or for a tick of `run`, which drops it (null) when the reading's user code
  // ended that run: a reading the new run did not ask for is not kept or announced.
  #refresh(run: number | null): PressureLevelValue | null {
    const read = this.#read;
    const status = read();
    // The reading is judged, every field, before the monitor keeps it: one that checkStatus refuses, or one whose
    // getters throw, leaves the status, the level and the count of lower readings as they were. The checked copy
    // is what is compared and kept (the event counts for the next reading too): no getter or valueOf of the
    // reading runs after the check.
    const checked = checkStatus(status, "refresh PressureMonitor from the reading its 'read' returned");
    // Only now has all of the reading's user code run (the reader, then its getters and Proxy traps inside
    // checkStatus): any of them may have called stop() or stop(); start(), so the run is checked here, after them.
    if (run !== null && run !== this.#run) return null;
    let level = levelOf(checked, this.#thresholds);
    const events = checked.events, previous = this.#events;
    if (previous && events) {
      if (events.max > previous.max || events.oom > previous.oom || events.oomKill > previous.oomKill) {
        level = PressureLevel.Critical;
      } else if (events.high > previous.high && level < PressureLevel.High) level = PressureLevel.High;
    }
    this.#status = checked;
    this.#events = events;
    if (level > this.#level) {
      this.#lowerReadings = 0;
      this.#change(level);
    } else if (level < this.#level) {
      // Lower only after enough lower readings in a row, one level at a time.
      if (++this.#lowerReadings >= this.#hysteresis) {
        this.#lowerReadings = 0;
        this.#change(Math.max(level, this.#level - 1) as PressureLevelValue);
      }
    } else {
      this.#lowerReadings = 0;
    }
    return this.#level;
  }

  /** Yields the level each time it changes (queued, none lost), until the loop is left. */
  async *[Symbol.asyncIterator](): AsyncIterator<PressureLevelValue> {
    const queue: PressureLevelValue[] = [];
    let wake: (() => void) | null = null;
    const sink = (level: PressureLevelValue) => {
      queue.push(level);
      wake?.();
      wake = null;
    };
    this.#sinks.add(sink);
    try {
      while (true) {
        while (queue.length) yield queue.shift()!;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.#sinks.delete(sink);
    }
  }

  #change(level: PressureLevelValue): void {
    const previous = this.#level;
    this.#level = level;
    if (level === PressureLevel.Critical && this.#gcOnCritical) requestGC();
    // Freed memory memkit keeps for reuse (SystemAllocator's retained extents) goes back on a rise to High.
    if (previous < PressureLevel.High && level >= PressureLevel.High) trimAll();
    // Followers first: a listener below may change the level again (refresh() from its callback), and that
    // change must reach them after this one, so they end at the level the monitor ends at.
    for (const sink of [...this.#sinks]) sink(level);
    for (const entry of this.#listeners.values()) if (entry.level > level) entry.above = false;
    // A snapshot, so listeners added during the dispatch wait for the next change; and each entry is looked up
    // again, so one that an earlier callback removed with off() is not called. A listener hears the rise if the
    // level is still at or above its level when its turn comes and it was not told yet: a rise that an earlier
    // callback undid is not announced, one it repeated is announced once.
    for (const [id, entry] of [...this.#listeners]) {
      if (this.#listeners.get(id) !== entry || entry.above || this.#level < entry.level) continue;
      entry.above = true;
      try {
        entry.callback(this.#level, this.#status!);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  static {
    followChanges = (monitor, sink) => {
      if (!isPressureMonitor(monitor)) {
        throw new TypeError(`Cannot follow ${describe(monitor)} as it is not a PressureMonitor`);
      }
      const sinks = monitor.#sinks;
      sinks.add(sink);
      return () => void sinks.delete(sink);
    };
    isMonitor = (value) => typeof value === "object" && value !== null && #sinks in value;
    checkedStatusOf = (monitor) => monitor.#status!;
  }

  // Sets the next tick of `run`, the current one.
  #schedule(run: number): void {
    const delay = this.#level >= PressureLevel.Medium ? this.#interval / 2 : this.#interval;
    const timer = setTimeout(() => {
      // stop() clears the timer of the run it ends; this check also covers a clearTimeout that came too late.
      if (run !== this.#run) return;
      this.#timer = null;
      this.#sample(run);
      // A listener or the reader may have stopped or restarted the monitor: the new run has its own timer.
      if (run === this.#run) this.#schedule(run);
    }, delay);
    this.#timer = timer;
    unrefTimer(timer);
  }

  // A reading for `run` (a tick or a PSI wake-up). A refused one is kept in readError: there is no caller to
  // throw to, and an uncaught error here would end the program (Deno) for a bad reading. A reading whose own code
  // ended the run (a getter that called stop(), then threw) is dropped, its refusal too.
  #sample(run: number): void {
    try {
      if (this.#refresh(run) !== null) this.#readError = null;
    } catch (error) {
      if (run === this.#run) this.#readError = error;
    }
  }
}
