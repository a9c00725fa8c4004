// The interface's view of memory pressure: its monitor (its own, started with
// the platform band's thresholds, or the caller's, started if it was not
// running), the pressure callbacks registered on it, and the platform band
// read from the memory the process may use.
//
// A monitor passed in and not running is started (a monitor that never
// samples would leave the level at its first reading: no callback, no
// deferral), and stopped when the last interface that started it is
// disposed; one the caller had started is left running. The holders are per
// monitor, so two interfaces sharing one do not stop it under each other, and
// held weakly: an interface collected without dispose() holds it no longer
// (the last live holder's dispose stops it, or, when none is left, the
// collection of the last one does).
//
// What the interface knows of a monitor's reading comes from monitorStatus(): the reading as the monitor checked
// it (frozen), never the reader's own object nor a subclass's `status` getter, so the band, the stack's size, the
// stats and the callbacks' info are built from whole, finite byte counts only.
import { describe } from "../base/_validate.ts";
import { type MemoryStatus, readMemoryStatus } from "../pressure/memory_status.ts";
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import { monitorStatus, PressureMonitor } from "../pressure/pressure_monitor.ts";
import { platformBand } from "./_platform_band.ts";
import type { MemoryPressureCallback, MemoryPressureInfo, PlatformMemory } from "./memory_types.ts";
import { byteCount, describeValue } from "./_words.ts";

/** The memory a status says the process may use: its cgroup limit, else physical memory. */
export function usableBytes(status: MemoryStatus): number {
  return status.limitBytes ?? status.totalBytes;
}

/** Per monitor, the links of the interfaces that hold a start of it (it stops when the last goes). */
const starters = new WeakMap<PressureMonitor, Set<WeakRef<PressureLink>>>();

/**
 * An interface that started a monitor was collected without dispose(): it holds the monitor no longer. The
 * monitor is held weakly here too (its listeners may reach the interface: a strong hold would keep both).
 */
const collected = new FinalizationRegistry<{ monitor: WeakRef<PressureMonitor>; ref: WeakRef<PressureLink> }>(
  ({ monitor, ref }) => {
    const held = monitor.deref();
    if (held !== undefined) letGo(held, ref);
  },
);

/** Takes `ref`'s start of `monitor` back (and every collected holder's); the last one stops it. */
function letGo(monitor: PressureMonitor, ref: WeakRef<PressureLink>): void {
  const holders = starters.get(monitor);
  if (holders === undefined) return;
  holders.delete(ref);
  for (const other of holders) if (other.deref() === undefined) holders.delete(other);
  if (holders.size > 0) return;
  starters.delete(monitor);
  monitor.stop();
}

export class PressureLink {
  /** The monitor, or null with `pressure: false` (or when the system gives no memory status). */
  readonly monitor: PressureMonitor | null;
  readonly platform: PlatformMemory;
  /** Whether dispose() stops the monitor: the interface's own, or one it started (the last holder stops it). */
  readonly #owned: boolean;
  /** This link's entry among the monitor's starters, when it holds a start of it. */
  readonly #start: WeakRef<PressureLink> | null = null;
  readonly #registered = new Map<number, number>(); // our id → the monitor's
  #nextId = 1;

  constructor(option: PressureMonitor | false | undefined) {
    if (option !== false && option !== undefined) { // checked by the options' schema: a PressureMonitor
      this.monitor = option;
      this.#owned = false;
      this.platform = platformBand(usableBytes(monitorStatus(option)));
      let holders = starters.get(option);
      for (const other of holders ?? []) if (other.deref() === undefined) holders!.delete(other);
      if (!option.running || (holders !== undefined && holders.size > 0)) {
        option.start(); // nothing when running
        if (holders === undefined) starters.set(option, holders = new Set());
        const ref = new WeakRef<PressureLink>(this);
        holders.add(ref);
        collected.register(this, { monitor: new WeakRef(option), ref }, ref);
        this.#start = ref;
      }
      return;
    }
    let status: MemoryStatus | null = null;
    try {
      status = readMemoryStatus();
    } catch {
      // No memory status here (no permission to read /proc, an unknown system): no band, no pressure.
    }
    // No status (Deno without -A cannot read /proc): no known total, Infinity rather than a made-up figure.
    this.platform = platformBand(status === null ? Infinity : usableBytes(status));
    this.#owned = true;
    if (option === false || status === null) {
      this.monitor = null;
      return;
    }
    this.monitor = new PressureMonitor({ thresholds: this.platform.thresholds, read: readMemoryStatus });
    this.monitor.start(); // its timer never keeps the process alive
  }

  /** The level now (None without a monitor). */
  get level(): PressureLevelValue {
    return this.monitor?.level ?? PressureLevel.None;
  }

  /**
   * Calls `callback` each time the level rises to `level` or above, and once
   * soon after registering when it is there already. Without a monitor it is
   * kept but never called.
   */
  register(
    level: PressureLevelValue,
    callback: MemoryPressureCallback,
    interfaceBytes: () => number,
    op: string,
  ): number {
    if (typeof level !== "number") {
      throw new TypeError(
        `Cannot ${op} as 'level' must be a PressureLevel number: current value is ${describeValue(level)}`,
      );
    }
    if (!Number.isInteger(level) || level < PressureLevel.Low || level > PressureLevel.Critical) {
      throw new RangeError(
        `Cannot ${op} as 'level' must be a PressureLevel from Low (1) to Critical (4): current value is ${
          describe(level)
        }`,
      );
    }
    if (typeof callback !== "function") {
      throw new TypeError(`Cannot ${op} as 'callback' must be a function: current value is ${describeValue(callback)}`);
    }
    const id = this.#nextId++;
    const monitor = this.monitor;
    if (monitor === null) {
      this.#registered.set(id, -1);
      return id;
    }
    const call = (reached: PressureLevelValue, status: MemoryStatus) => {
      // Registered still: a callback earlier in the same dispatch may have unregistered this one.
      if (!this.#registered.has(id)) return;
      // A callback is a notification (as an Arena's observer is): one that throws must not keep the others
      // from running, nor end the process from a microtask; its error goes to the console.
      try {
        callback(reached, pressureInfo(status, interfaceBytes()));
      } catch (error) {
        console.error(
          `memkit: a pressure callback threw (registered with registerPressureCallback at level ${level}); ` +
            "the other callbacks still run:",
          error,
        );
      }
    };
    this.#registered.set(id, monitor.on(level, call));
    if (monitor.level >= level) {
      // Already there: the callback hears it now rather than at the next rise.
      queueMicrotask(() => call(monitor.level, monitorStatus(monitor)));
    }
    return id;
  }

  /** Stops the calls of a callback; unknown ids are ignored. */
  unregister(id: number): void {
    const monitorId = this.#registered.get(id);
    if (monitorId === undefined) return;
    this.#registered.delete(id);
    if (monitorId >= 0) this.monitor?.off(monitorId);
  }

  /**
   * Why pressure held an allocateAsync request back when its timeout came: `throughout` when it held back
   * every try. The level is the monitor's, which falls one step per `hysteresis` lower readings: it can
   * still be High while the last reading shows plenty available, and the message says so rather than
   * claiming the reading is High.
   */
  heldBackReason(throughout: boolean): string {
    const status = this.monitor === null ? undefined : monitorStatus(this.monitor);
    const level = Object.keys(PressureLevel)[this.level];
    const reading = status === undefined
      ? ""
      : `; the monitor's last reading had ${status.availableBytes} of ${byteCount(usableBytes(status))} available, ` +
        "and its level falls one step per `hysteresis` lower readings";
    return `${
      throughout
        ? "the memory pressure level stayed at High or above for the whole wait"
        : "the memory pressure level was back at High or above when the wait ended"
    } (${level} at its end${reading}), and allocateAsync defers a request that may wait while the level is ` +
      "High or Critical; free memory, pass a longer timeoutMs, or call allocate(), which pressure does not defer";
  }

  /**
   * Unregisters every callback and stops the monitor if it is the interface's own, or if this interface
   * started it and no other interface that started it is live.
   */
  dispose(): void {
    for (const id of [...this.#registered.keys()]) this.unregister(id);
    if (this.#owned) this.monitor?.stop();
    else if (this.#start !== null && this.monitor !== null) {
      collected.unregister(this.#start);
      letGo(this.monitor, this.#start);
    }
  }
}

/** What a callback is told. */
export function pressureInfo(status: MemoryStatus, interfaceBytes: number): MemoryPressureInfo {
  const total = usableBytes(status);
  const available = status.availableBytes;
  const ratio = total > 0 ? 1 - available / total : 1;
  return {
    availableBytes: available,
    totalBytes: total,
    pressureRatio: Math.min(1, Math.max(0, ratio)),
    interfaceBytes,
    status,
  };
}
