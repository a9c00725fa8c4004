/**
 * GPU buffers reused instead of created per frame (as a renderer's memory
 * pool reuses Metal buffers): idle buffers kept by usage and size
 * class, trimmed under memory pressure.
 *
 * @module
 */
import { checkSize, describe, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { PressureLevel } from "../pressure/pressure_level.ts";
import { isPressureMonitor, type PressureMonitor } from "../pressure/pressure_monitor.ts";
import { registeredBuffer } from "./_buffer_registry.ts";
import { followLoss } from "./_follow_loss.ts";
import { checkUsageCombination } from "./_gpu_usage.ts";
import { createBufferChecked, GpuContext, maxBufferSizeOf } from "./gpu_context.ts";

/**
 * Options of {@linkcode GpuBufferPool}.
 *
 * @example
 * ```ts
 * import { type GpuBufferPoolOptions, PressureMonitor } from "@memkit/memkit";
 *
 * const options: GpuBufferPoolOptions = { maxIdleBytes: 32 << 20, pressure: new PressureMonitor() };
 * ```
 */
export interface GpuBufferPoolOptions {
  /** Idle bytes kept for reuse; releasing more destroys the longest idle buffers. @default 64 MiB */
  maxIdleBytes?: number;
  /** Trims on this monitor's rises: half the idle bytes at Medium or High, all of them at Critical. */
  pressure?: PressureMonitor;
  /** Names the pool's buffers in stats and the leak report. */
  label?: string;
}

/**
 * What a {@linkcode GpuBufferPool} did and holds.
 *
 * @example
 * ```ts
 * import type { GpuBufferPoolStats } from "@memkit/memkit";
 *
 * const hitRatio = (s: GpuBufferPoolStats) => s.hits / Math.max(1, s.hits + s.misses);
 * ```
 */
export interface GpuBufferPoolStats {
  /** Acquires served by an idle buffer. */
  hits: number;
  /** Acquires that created a buffer. */
  misses: number;
  /** Buffers acquired and not released. */
  inUse: number;
  /** Their bytes (size classes). */
  inUseBytes: number;
  /** Idle buffers kept for reuse. */
  idle: number;
  /** Their bytes. */
  idleBytes: number;
  /** Bytes destroyed by trims, the idle limit and pressure. */
  trimmedBytes: number;
}

const MIN_CLASS = 256;

/** The size class of a request: a power of two from 256 bytes. */
export function sizeClass(size: number): number {
  return size <= MIN_CLASS ? MIN_CLASS : 2 ** Math.ceil(Math.log2(size));
}

// A lost device destroyed every buffer: none is idle, none in use any more (a function of the module, so that
// the context's listener does not hold the pool: see followLoss).
let dropAll: (pool: GpuBufferPool) => void;

const optionsSchema = z.strictObject({
  maxIdleBytes: z.number().int("must be an integer").min(0, "must be at least 0").optional(),
  // A brand check: a Proxy of a monitor passes instanceof, then fails on its private fields.
  pressure: typeCheck<PressureMonitor>(
    isPressureMonitor,
    "must be a PressureMonitor made by new PressureMonitor (not a Proxy of one)",
  ).optional(),
  label: z.string().optional(),
});

/**
 * Reuses GPU buffers by usage and size class (powers of two from 256 bytes):
 * `acquire(size, usage)` hands out an idle buffer of that usage and class, or
 * creates one; `release(buffer)` keeps it for the next acquire, up to
 * `maxIdleBytes`. Under memory pressure (a PressureMonitor) and on
 * {@linkcode trim} idle buffers are destroyed; buffers in use never are.
 * A buffer acquired again may still be read by GPU work submitted before:
 * write it with the queue (writeGpuBuffer, the staging ring), which orders
 * the write after that work.
 *
 * @example
 * ```ts
 * import { GpuBufferPool, GpuBufferUsage, requestGpu } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using gpu = await requestGpu();
 * using pool = new GpuBufferPool(gpu);
 * const usage = GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST;
 * for (let frame = 0; frame < 3; frame++) {
 *   const vertices = pool.acquire(1_200_000, usage); // a 2 MiB class buffer
 *   pool.release(vertices); // after the frame's submit
 * }
 * assert.equal(pool.stats().misses, 1); // created once, reused twice
 * assert.equal(gpu.memoryStats().buffers, 1);
 * ```
 */
export class GpuBufferPool implements Disposable {
  readonly #gpu: GpuContext;
  readonly #maxIdle: number;
  readonly #label: string;
  // Idle buffers by "usage:class", oldest first; the order of idling across keys for the idle limit.
  readonly #idle = new Map<string, GPUBuffer[]>();
  readonly #idleOrder = new Set<GPUBuffer>();
  readonly #inUse = new Map<GPUBuffer, string>();
  readonly #keyOf = new Map<GPUBuffer, string>();
  // Every buffer the pool created (kept after it is released, dropped or lost with the device), so a
  // release tells a buffer given back twice from one it never handed out.
  readonly #made = new WeakSet<GPUBuffer>();
  readonly #dropped = new WeakSet<GPUBuffer>(); // destroyed while in use, found by a release
  readonly #listeners: number[] = [];
  readonly #maxSize: number;
  readonly #unfollow: () => void;
  readonly #monitor: PressureMonitor | null;
  #hits = 0;
  #misses = 0;
  #inUseBytes = 0;
  #idleBytes = 0;
  #trimmed = 0;
  #disposed = false;

  /**
   * A pool of `gpu`'s buffers.
   *
   * @throws {TypeError} For a `gpu` that is not a GpuContext, or options of the wrong type.
   */
  constructor(gpu: GpuContext, options?: GpuBufferPoolOptions) {
    if (!(gpu instanceof GpuContext)) {
      throw new TypeError(
        `Cannot create GpuBufferPool as 'gpu' must be a GpuContext: current value is ${describe(gpu)}`,
      );
    }
    const parsed = parseOptions(optionsSchema, options, "create GpuBufferPool");
    this.#gpu = gpu;
    this.#maxSize = maxBufferSizeOf(gpu);
    this.#maxIdle = parsed.maxIdleBytes ?? 64 << 20;
    this.#label = parsed.label ?? "memkit pool";
    this.#monitor = parsed.pressure ?? null;
    if (this.#monitor !== null) {
      // One at a time, so a monitor (a subclass) refusing the second leaves no first behind.
      try {
        this.#listeners.push(this.#monitor.on(PressureLevel.Medium, (level) => {
          if (level < PressureLevel.Critical) this.trim(Math.floor(this.#idleBytes / 2));
        }));
        this.#listeners.push(this.#monitor.on(PressureLevel.Critical, () => this.trim(0)));
      } catch (error) {
        for (const id of this.#listeners) this.#monitor.off(id);
        throw error;
      }
    }
    this.#unfollow = followLoss(gpu, this, dropAll);
  }

  static {
    dropAll = (pool) => {
      pool.#idle.clear();
      pool.#idleOrder.clear();
      pool.#inUse.clear();
      pool.#keyOf.clear();
      pool.#idleBytes = pool.#inUseBytes = 0;
    };
  }

  /**
   * A buffer of at least `size` bytes (its size class, or the device's maxBufferSize when the class would
   * pass it) with exactly `usage`.
   *
   * @throws {TypeError} For a size or usage that is not a number, or usage flags WebGPU forbids together.
   * @throws {RangeError} For a size below 1 or above the device's maxBufferSize, or a usage out of range.
   * @throws {AllocationError} "use-after-free" after dispose() or once the device is lost; what GpuContext.createBuffer throws.
   */
  acquire(size: number, usage: number): GPUBuffer {
    const op = "acquire from GpuBufferPool";
    checkSize(size, op, "size", 2 ** 40, 1);
    if (size > this.#maxSize) {
      throw new RangeError(
        `Cannot ${op} as 'size' must be at most the device's maxBufferSize ${this.#maxSize}: current value is ${size}`,
      );
    }
    checkSize(usage, op, "usage", 0x3ff, 1);
    this.#checkAlive(op);
    // Every size up to maxBufferSize can be served: the classes stop there.
    const bytes = Math.min(sizeClass(size), this.#maxSize);
    const key = `${usage}:${bytes}`;
    const list = this.#idle.get(key);
    let buffer = list?.pop();
    // An idle buffer destroyed behind the pool's back (gpu.destroyBuffer) is dropped, never handed out.
    while (buffer !== undefined && !this.#gpu.owns(buffer)) {
      this.#idleOrder.delete(buffer);
      this.#keyOf.delete(buffer);
      this.#idleBytes -= bytes;
      buffer = list!.pop();
    }
    if (buffer !== undefined) {
      this.#idleOrder.delete(buffer);
      this.#idleBytes -= bytes;
      this.#hits++;
    } else {
      checkUsageCombination(usage, op);
      // The budget's reclaimers (run inside the creation) may dispose the pool: nothing is created then.
      buffer = createBufferChecked(this.#gpu, { size: bytes, usage, label: this.#label }, () => {
        if (this.#disposed) {
          throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed while its buffer was created`);
        }
      });
      this.#keyOf.set(buffer, key);
      this.#made.add(buffer);
      this.#misses++;
    }
    this.#inUse.set(buffer, key);
    this.#inUseBytes += bytes;
    return buffer;
  }

  /**
   * Gives a buffer back for reuse (destroying the longest idle buffers past `maxIdleBytes`).
   * After the device was lost, releasing a buffer the pool handed out is a no-op (it went with the device).
   *
   * @throws {TypeError} For anything that is not a GPUBuffer created through a GpuContext.
   * @throws {AllocationError} "double-free" for a buffer released twice (or released after the pool dropped it);
   *   "invalid-free" for one this pool did not hand out; "use-after-free" after dispose(), or for a buffer
   *   destroyed with gpu.destroyBuffer (the pool forgets it: it is gone).
   */
  release(buffer: GPUBuffer): void {
    const op = "release to GpuBufferPool";
    if (this.#disposed) {
      registeredBuffer(buffer, op, "buffer"); // a wrong type is a TypeError first
      throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed`);
    }
    const key = this.#inUse.get(buffer);
    if (key !== undefined && !this.#gpu.lost && !this.#gpu.owns(buffer)) {
      this.#inUse.delete(buffer);
      this.#keyOf.delete(buffer);
      this.#inUseBytes -= Number(key.slice(key.indexOf(":") + 1));
      this.#dropped.add(buffer);
      throw new AllocationError(
        "use-after-free",
        `Cannot ${op} as this buffer was destroyed while in use (gpu.destroyBuffer): the pool dropped it`,
      );
    }
    if (key === undefined) {
      this.#refuse(buffer, op); // throws, but for a buffer that went with its device
      return;
    }
    const bytes = Number(key.slice(key.indexOf(":") + 1));
    this.#inUse.delete(buffer);
    this.#inUseBytes -= bytes;
    let list = this.#idle.get(key);
    if (list === undefined) this.#idle.set(key, list = []);
    list.push(buffer);
    this.#idleOrder.add(buffer);
    this.#idleBytes += bytes;
    if (this.#idleBytes > this.#maxIdle) this.trim(this.#maxIdle);
  }

  /**
   * Destroys idle buffers, longest idle first, until at most `keepBytes` idle
   * bytes are left (default 0); returns the bytes destroyed.
   *
   * @throws {RangeError} For a negative or fractional `keepBytes`.
   */
  trim(keepBytes = 0): number {
    checkSize(keepBytes, "trim GpuBufferPool", "keepBytes", Number.MAX_SAFE_INTEGER);
    let destroyed = 0;
    for (const buffer of this.#idleOrder) {
      if (this.#idleBytes <= keepBytes) break;
      const key = this.#keyOf.get(buffer)!;
      const list = this.#idle.get(key)!;
      list.splice(list.indexOf(buffer), 1);
      this.#idleOrder.delete(buffer);
      this.#keyOf.delete(buffer);
      const bytes = Number(key.slice(key.indexOf(":") + 1));
      this.#idleBytes -= bytes;
      destroyed += bytes;
      if (this.#gpu.owns(buffer)) this.#gpu.destroyBuffer(buffer);
    }
    this.#trimmed += destroyed;
    return destroyed;
  }

  /** What it did and holds. */
  stats(): GpuBufferPoolStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      inUse: this.#inUse.size,
      inUseBytes: this.#inUseBytes,
      idle: this.#idleOrder.size,
      idleBytes: this.#idleBytes,
      trimmedBytes: this.#trimmed,
    };
  }

  /** Destroys every buffer, idle or in use, and stops following the monitor. Twice is a no-op. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#unfollow();
    for (const id of this.#listeners) this.#monitor!.off(id);
    for (const buffer of [...this.#idleOrder, ...this.#inUse.keys()]) {
      if (this.#gpu.owns(buffer)) this.#gpu.destroyBuffer(buffer);
    }
    this.#idle.clear();
    this.#idleOrder.clear();
    this.#inUse.clear();
    this.#keyOf.clear();
    this.#idleBytes = this.#inUseBytes = 0;
  }

  /** Same as {@linkcode dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #checkAlive(op: string): void {
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed`);
    this.#gpu.checkAlive(op);
  }

  // release() of something not in use (the rare path, off the hot one): what it is, said as the error it
  // deserves. Returns only for a buffer this pool handed out whose device is gone (it went with the device).
  #refuse(buffer: unknown, op: string): void {
    registeredBuffer(buffer, op, "buffer"); // TypeError for anything but a GPUBuffer made through a GpuContext
    const made = this.#made.has(buffer as GPUBuffer);
    if (made && this.#gpu.lost) return;
    if (!made) {
      throw new AllocationError("invalid-free", `Cannot ${op} as ${describe(buffer)} is not a buffer it handed out`);
    }
    const why = this.#idleOrder.has(buffer as GPUBuffer)
      ? "this buffer was released already (it is idle in the pool)"
      : this.#dropped.has(buffer as GPUBuffer)
      ? "this buffer was dropped already: it was destroyed while in use, as the release that found it said"
      : "this buffer was released already (and destroyed since: trim(), the idle limit or gpu.destroyBuffer)";
    throw new AllocationError("double-free", `Cannot ${op} as ${why}`);
  }
}
