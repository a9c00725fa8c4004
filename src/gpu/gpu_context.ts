/**
 * A WebGPU device with memkit's GPU memory accounting: every buffer created
 * through it is counted by usage, listed with its creation site when traced,
 * charged to a MemoryBudget's "gpu" category when one is given, and reported
 * at exit when never destroyed.
 *
 * @module
 */
import { enterGpuCensus, leaveGpuCensus } from "../base/_gpu_census.ts";
import { describe, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { BudgetToken } from "../budget/budget_token.ts";
import { isMemoryBudget, type MemoryBudget } from "../budget/memory_budget.ts";
import {
  bufferLabel,
  type BufferRecord,
  checkUsable,
  destroyedOutside,
  registerBuffer,
  registeredBuffer,
} from "./_buffer_registry.ts";
import { destroyNatively } from "./_native_destroy.ts";
import { followDevice, loseContextsOf, seenDestroyed, unfollowDevice } from "./_device_contexts.ts";
import { giveBackToken, holdToken, isGrantedToken, releaseToken } from "./_granted_tokens.ts";
import {
  CATEGORIES,
  checkUsageCombination,
  type GpuUsageCategory,
  type GpuUsageStats,
  usageCategory,
  usageNames,
} from "./_gpu_usage.ts";
import {
  adapterDescription,
  BUN_PACKAGE,
  destroyedNatively,
  type DeviceIntrinsics,
  gpuEntry,
  gpuRuntime,
  isGpuBuffer,
  isGpuDevice,
  isRealAdapter,
  nativeMethodsOf,
  noAdapterError,
  Usage,
} from "./_webgpu.ts";

export type { GpuUsageCategory, GpuUsageStats } from "./_gpu_usage.ts";

import type { GpuBufferDescriptor, GpuBufferInfo, GpuContextOptions, GpuMemoryStats } from "./gpu_context_types.ts";
export type { GpuBufferDescriptor, GpuBufferInfo, GpuContextOptions, GpuMemoryStats } from "./gpu_context_types.ts";

/**
 * WebGPU's buffer usage flags: the values of the specification's
 * GPUBufferUsage, available on both runtimes before any device exists.
 *
 * @example
 * ```ts
 * import { GpuBufferUsage } from "@memkit/memkit";
 *
 * const usage = GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST; // 0x28
 * ```
 */
export const GpuBufferUsage: {
  readonly MAP_READ: number;
  readonly MAP_WRITE: number;
  readonly COPY_SRC: number;
  readonly COPY_DST: number;
  readonly INDEX: number;
  readonly VERTEX: number;
  readonly UNIFORM: number;
  readonly STORAGE: number;
  readonly INDIRECT: number;
  readonly QUERY_RESOLVE: number;
} = Object.freeze({ ...Usage });

const contextOptions = z.strictObject({
  label: z.string().optional(),
  // A brand check: a Proxy of a budget passes instanceof, then fails on its private fields.
  budget: typeCheck<MemoryBudget>(
    isMemoryBudget,
    "must be a MemoryBudget made by new MemoryBudget (not a Proxy of one)",
  ).optional(),
  budgetPriority: z.number().int("must be an integer").min(0, "must be at least 0").max(100, "must be at most 100")
    .optional(),
  powerPreference: z.enum(["low-power", "high-performance"]).optional(),
  requiredFeatures: z.array(z.string()).optional(),
});

const descriptorSchema = z.strictObject({
  size: z.number().int("must be an integer").min(0, "must be at least 0"),
  usage: z.number().int("must be an integer").min(1, "must be at least 1").max(0x3ff, "must be at most 0x3ff"),
  label: z.string().optional(),
  mappedAtCreation: z.boolean().optional(),
});

// A budget must accept the category "gpu" (a budget with declared categories may not). Asked with accepts(),
// which takes nothing: a request for 0 bytes ran the budget's (or a subclass's) request() and passed on what
// went wrong with its answer as if the category were refused.
function checkBudget(options: GpuContextOptions, op: string): void {
  if (options.budget === undefined) return;
  if (options.budget.accepts("gpu") !== true) {
    throw new TypeError(
      `Cannot ${op} as 'budget' must accept the category "gpu": add "gpu" to its categories (or declare none)`,
    );
  }
}

/**
 * Asks the runtime for a WebGPU adapter and device (Deno's own WebGPU; in Bun
 * the npm package `bun-webgpu`) and returns them in a {@linkcode GpuContext}
 * that accounts for the GPU memory created through it. Dawn's null backend
 * (what Bun finds with no driver) is refused, since nothing it computes is real.
 *
 * @throws {AllocationError} "unsupported" when there is no WebGPU, no package, or no adapter; the message says what to install.
 * @throws {TypeError} For options of the wrong type, or a required feature the adapter lacks.
 *
 * @example
 * ```ts
 * import { GpuBufferUsage, requestGpu } from "@memkit/memkit";
 *
 * using gpu = await requestGpu({ label: "example" });
 * const buffer = gpu.createBuffer({ size: 1024, usage: GpuBufferUsage.STORAGE });
 * console.log(gpu.memoryStats().byUsage.storage.bytes); // 1024
 * gpu.destroyBuffer(buffer);
 * ```
 */
export async function requestGpu(options?: GpuContextOptions): Promise<GpuContext> {
  const parsed = parseOptions(contextOptions, options, "request a GPU device");
  checkBudget(parsed, "request a GPU device");
  const gpu = await gpuEntry();
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter(
      parsed.powerPreference === undefined ? undefined : { powerPreference: parsed.powerPreference },
    );
  } catch (error) {
    throw noAdapterError(`requestAdapter() failed (${error instanceof Error ? error.message : String(error)})`);
  }
  if (adapter === null) throw noAdapterError("no WebGPU adapter was found");
  if (!isRealAdapter(adapter)) throw noAdapterError("only Dawn's null backend was found (no Vulkan driver)");
  const features = parsed.requiredFeatures ?? [];
  for (const feature of features) {
    if (!adapter.features.has(feature as GPUFeatureName)) {
      throw new TypeError(
        `Cannot request a GPU device as feature ${describe(feature)} is not offered by the adapter ` +
          `(${adapterDescription(adapter)}): it offers ${[...adapter.features].join(", ")}`,
      );
    }
  }
  const device = await adapter.requestDevice({
    requiredFeatures: features as GPUFeatureName[],
    label: parsed.label,
  } as GPUDeviceDescriptor);
  return new (GpuContext as unknown as Maker)(device, adapter, parsed, true, MAKE);
}

// Only requestGpu and fromDevice make contexts (the constructor is reachable as an export, and takes
// options already parsed and a device already checked).
const MAKE = Symbol("GpuContext");
type Maker = new (...args: [GPUDevice, GPUAdapter | null, GpuContextOptions, boolean, symbol]) => GpuContext;

/**
 * @internal {@linkcode GpuContext.createBuffer} for memkit's own callers (createGpuBufferFrom, readGpuBuffer,
 * pools, rings, suballocators). `recheck` runs after the budget's request, which may run the program's code
 * (its reclaimers, a subclass's request()), and before WebGPU is called: it checks again what that code may
 * have freed (the caller's source or target, the caller itself), and what it throws is thrown with nothing
 * created or charged.
 */
export let createBufferChecked: (
  gpu: GpuContext,
  descriptor: GpuBufferDescriptor,
  recheck: () => void,
) => GPUBuffer;

/** @internal The device's maxBufferSize, as read once when the context was made. */
export let maxBufferSizeOf: (gpu: GpuContext) => number;

/**
 * memkit's record of `buffer` for use by `op` on `gpu` (see gpu_transfer.ts checkBuffer). A function of
 * this module, not a method: its flag and names are memkit's own, never a caller's.
 */
export let bufferRecord: (
  gpu: GpuContext,
  buffer: unknown,
  flag: number,
  flagName: string,
  op: string,
  name?: string,
) => BufferRecord;

/**
 * A WebGPU device and the accounting of the GPU memory created through it:
 * bytes and buffers by usage, a peak, live buffers with their creation sites
 * (when allocation sites are traced), a MemoryBudget's "gpu" category, and
 * the leak report at exit, which lists buffers never destroyed. When the
 * device is lost, its buffers stop counting (they are gone with it) and the
 * context refuses new buffers with "use-after-free".
 *
 * Get one from {@linkcode requestGpu}, or wrap a device you already have
 * with {@linkcode GpuContext.fromDevice}.
 *
 * @example
 * ```ts
 * import { GpuBufferUsage, requestGpu } from "@memkit/memkit";
 *
 * const gpu = await requestGpu();
 * const vertices = gpu.createBuffer({ size: 65536, usage: GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST });
 * console.log(gpu.memoryStats().bytes); // 65536
 * gpu.destroyBuffer(vertices);
 * gpu.dispose(); // destroys what is left, then the device
 * ```
 */
export class GpuContext implements Disposable {
  /** The device. Buffers made with `device.createBuffer` directly are not accounted: use {@linkcode createBuffer}. */
  readonly device: GPUDevice;
  /** The adapter, when the context requested the device itself. */
  readonly adapter: GPUAdapter | null;
  /** The runtime WebGPU comes from. */
  readonly runtime: "deno" | "bun" = gpuRuntime;
  /** The adapter's description ("llvmpipe ..." on lavapipe), or "unknown". */
  readonly description: string;
  readonly #label: string;
  readonly #owned: boolean;
  readonly #budget: MemoryBudget | null;
  readonly #priority: number;
  readonly #records = new Map<GPUBuffer, BufferRecord>();
  readonly #byUsage = new Map<GpuUsageCategory, GpuUsageStats>(CATEGORIES.map((c) => [c, { bytes: 0, buffers: 0 }]));
  readonly #lostListeners = new Set<(reason: string) => void>();
  #bytes = 0;
  #peak = 0;
  #created = 0;
  #destroyed = 0;
  #lostBuffers = 0;
  #gone: string | null = null;
  readonly #onDestroy = (reason: string): void => this.#lose(reason);
  // Read once: a destroyed device's limits are not to be asked for (bun-webgpu warns on each read).
  readonly #maxBufferSize: number;
  // The device class's own createBuffer and limits (see nativeMethodsOf).
  readonly #native: DeviceIntrinsics;

  /** @internal Use {@linkcode requestGpu} or {@linkcode GpuContext.fromDevice}. */
  private constructor(device: GPUDevice, adapter: GPUAdapter | null, options: GpuContextOptions, owned: boolean) {
    if (arguments[4] !== MAKE) {
      throw new TypeError("Illegal constructor: GPU contexts come from requestGpu() or GpuContext.fromDevice()");
    }
    this.device = device;
    this.adapter = adapter;
    this.description = adapterDescription(adapter);
    this.#label = options.label ?? (device.label || "GPU device");
    this.#owned = owned;
    this.#budget = options.budget ?? null;
    this.#priority = options.budgetPriority ?? 50;
    // Through the class's own getter (the device is real: checked by fromDevice, or just requested).
    this.#native = nativeMethodsOf(device);
    this.#maxBufferSize = this.#native.limits.call(device).maxBufferSize;
    device.lost.then((info) => this.#lose(`the GPU device was lost (${info.reason}: ${info.message})`));
    followDevice(device, this.#onDestroy);
  }

  /**
   * Accounts for the buffers of a device you already have (created through
   * the returned context from now on). Disposing the context destroys its
   * buffers but not the device.
   *
   * @throws {TypeError} When `device` is not a real GPUDevice of this runtime's WebGPU (Deno's own; in Bun,
   *   bun-webgpu's): a look-alike object, a Proxy or an object made from the prototype is refused; or for
   *   options of the wrong type.
   * @throws {AllocationError} "use-after-free" for a device destroyed already (device.destroy(), or the
   *   dispose() of the context that requested it).
   *
   * @example
   * ```ts
   * import { GpuBufferUsage, GpuContext, requestGpu } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const owner = await requestGpu(); // or a device from navigator.gpu
   * using gpu = GpuContext.fromDevice(owner.device, { label: "mine" });
   * gpu.createBuffer({ size: 256, usage: GpuBufferUsage.UNIFORM });
   * assert.equal(gpu.memoryStats().bytes, 256);
   * assert.equal(owner.memoryStats().bytes, 0); // each context accounts for its own buffers
   * ```
   */
  static fromDevice(device: GPUDevice, options?: GpuContextOptions): GpuContext {
    // A brand check, not duck typing: in Bun a look-alike's "buffers" reached bun-webgpu's native side (a segfault).
    if (!isGpuDevice(device)) {
      const which = gpuRuntime === "deno" ? "Deno's WebGPU" : `${BUN_PACKAGE} (the copy memkit loads)`;
      throw new TypeError(
        `Cannot wrap a GPU device as 'device' must be a GPUDevice of ${which}, as requestDevice() gives it ` +
          `(not a look-alike object or a Proxy of one): current value is ${describe(device)}`,
      );
    }
    const parsed = parseOptions(contextOptions, options, "wrap a GPU device");
    checkBudget(parsed, "wrap a GPU device");
    if (seenDestroyed(device) || destroyedNatively(device)) {
      throw new AllocationError(
        "use-after-free",
        "Cannot wrap a GPU device as it was destroyed (device.destroy(), or the dispose() of the GpuContext " +
          "that requested it): request a new device",
      );
    }
    return new (GpuContext as unknown as Maker)(device, null, parsed, false, MAKE);
  }

  /** Whether the device was lost or the context disposed (no new buffers then). */
  get lost(): boolean {
    return this.#gone !== null;
  }

  /**
   * Creates a buffer and accounts for it (destroy it with {@linkcode destroyBuffer}).
   *
   * @throws {TypeError} For a descriptor of the wrong type, usage flags WebGPU forbids together
   *   (MAP_READ only with COPY_DST, MAP_WRITE only with COPY_SRC), or a budget (a MemoryBudget subclass)
   *   whose request() answers anything but null or a BudgetToken it granted (nothing is created then).
   * @throws {RangeError} For a size above the device's maxBufferSize, or not a multiple of 4 when mappedAtCreation.
   * @throws {AllocationError} "use-after-free" once the device is lost or the context disposed;
   *   "limit-exceeded" when the budget refuses the bytes.
   *
   * @example
   * ```ts
   * import { GpuBufferUsage, requestGpu } from "@memkit/memkit";
   *
   * using gpu = await requestGpu();
   * const uniforms = gpu.createBuffer({ size: 256, usage: GpuBufferUsage.UNIFORM | GpuBufferUsage.COPY_DST, label: "camera" });
   * console.log(gpu.liveBuffers()[0].label); // "camera"
   * ```
   */
  createBuffer(descriptor: GpuBufferDescriptor): GPUBuffer {
    return this.#create(descriptor, null);
  }

  #create(descriptor: GpuBufferDescriptor, recheck: (() => void) | null): GPUBuffer {
    const d = parseOptions(descriptorSchema, descriptor, "create a GPU buffer");
    const op = "create a GPU buffer";
    checkUsageCombination(d.usage, op);
    const max = this.#maxBufferSize;
    if (d.size > max) {
      throw new RangeError(
        `Cannot ${op} as 'size' must be at most the device's maxBufferSize ${max}: current value is ${d.size}`,
      );
    }
    if (d.mappedAtCreation === true && d.size % 4 !== 0) {
      throw new RangeError(
        `Cannot ${op} as 'size' must be a multiple of 4 when mappedAtCreation: current value is ${d.size}`,
      );
    }
    this.#checkAlive(op);
    const label = d.label ?? "";
    let token: BudgetToken | null = null;
    if (this.#budget !== null) {
      const answer: unknown = this.#budget.request(d.size, "gpu", this.#priority);
      if (answer === null) {
        throw new AllocationError(
          "limit-exceeded",
          `Cannot ${op} as the memory budget refused ${d.size} bytes in category "gpu" ` +
            `(${label === "" ? "unlabelled" : `"${label}"`}, ${usageNames(d.usage)})`,
        );
      }
      // A subclass's request() may answer anything: only a token the budget granted is kept, so that
      // destroying the buffer gives back what was charged (and nothing else runs then).
      if (!isGrantedToken(answer)) {
        throw new TypeError(
          `Cannot ${op} as the budget's request() must answer null or a BudgetToken it granted (not released, ` +
            `not answered before): it answered ${describe(answer)}`,
        );
      }
      token = answer;
      // The budget ran its reclaimers (the program's code): one may have disposed this context, destroyed
      // its device, or freed what the caller is about to copy. Nothing is created then, and the bytes go back.
      try {
        this.#checkAlive(op);
        recheck?.();
      } catch (error) {
        releaseToken(token);
        throw error;
      }
    }
    let buffer: GPUBuffer;
    try {
      // The class's own createBuffer, never an own property the program set on the device.
      buffer = this.#native.createBuffer.call(this.device, {
        size: d.size,
        usage: d.usage,
        label,
        mappedAtCreation: d.mappedAtCreation,
      });
    } catch (error) {
      if (token !== null) releaseToken(token);
      throw error;
    }
    // Only a real GPUBuffer is ever registered (the registry is what lets a buffer reach WebGPU).
    if (!isGpuBuffer(buffer)) {
      if (token !== null) releaseToken(token);
      throw new AllocationError(
        "platform",
        `Cannot ${op} as the device's createBuffer() returned ${describe(buffer)}, which is not a GPUBuffer`,
      );
    }
    const category = usageCategory(d.usage);
    const census = enterGpuCensus(this.#label, label, d.size, usageNames(d.usage));
    const record: BufferRecord = { size: d.size, usage: d.usage, category, label, census, token, state: "live" };
    if (token !== null) holdToken(token);
    this.#records.set(buffer, record);
    registerBuffer(buffer, this, record);
    const usage = this.#byUsage.get(category)!;
    usage.bytes += d.size;
    usage.buffers++;
    this.#bytes += d.size;
    if (this.#bytes > this.#peak) this.#peak = this.#bytes;
    this.#created++;
    return buffer;
  }

  /**
   * Destroys a buffer created by {@linkcode createBuffer} and stops counting
   * it. After the device was lost this only forgets it (it is gone already).
   *
   * @throws {TypeError} When `buffer` is not one of this context's live buffers (never created here, or destroyed twice).
   *
   * @example
   * ```ts
   * import { GpuBufferUsage, requestGpu } from "@memkit/memkit";
   *
   * using gpu = await requestGpu();
   * const b = gpu.createBuffer({ size: 64, usage: GpuBufferUsage.STORAGE });
   * gpu.destroyBuffer(b);
   * console.log(gpu.memoryStats().buffers); // 0
   * ```
   */
  destroyBuffer(buffer: GPUBuffer): void {
    const record = this.#records.get(buffer);
    if (record === undefined) {
      if (this.#gone !== null && typeof buffer === "object" && buffer !== null) return; // forgotten when the device went
      throw new TypeError(
        `Cannot destroy a GPU buffer as 'buffer' must be a live buffer created by this context: current value is ${
          describe(buffer)
        }${typeof buffer === "object" && buffer !== null ? " (destroyed already, or created elsewhere)" : ""}`,
      );
    }
    this.#forget(buffer, record);
    this.#destroyed++;
    destroyNatively(buffer);
  }

  /** Whether `buffer` is a live buffer of this context. */
  owns(buffer: GPUBuffer): boolean {
    return this.#records.has(buffer);
  }

  /** The accounted bytes of a live buffer of this context, or -1. */
  sizeOf(buffer: GPUBuffer): number {
    return this.#records.get(buffer)?.size ?? -1;
  }

  /**
   * The GPU memory this context accounts for.
   *
   * @example
   * ```ts
   * import { requestGpu } from "@memkit/memkit";
   *
   * using gpu = await requestGpu();
   * console.log(gpu.memoryStats()); // { bytes: 0, buffers: 0, peakBytes: 0, byUsage: { ... }, ... }
   * ```
   */
  memoryStats(): GpuMemoryStats {
    const byUsage = {} as Record<GpuUsageCategory, GpuUsageStats>;
    for (const [category, { bytes, buffers }] of this.#byUsage) byUsage[category] = { bytes, buffers };
    return {
      bytes: this.#bytes,
      buffers: this.#records.size,
      peakBytes: this.#peak,
      byUsage,
      created: this.#created,
      destroyed: this.#destroyed,
      lostBuffers: this.#lostBuffers,
      lost: this.#gone !== null,
    };
  }

  /** Live buffers, oldest first, with their creation sites when traced. */
  liveBuffers(): GpuBufferInfo[] {
    return [...this.#records.values()].map((r) => ({
      label: r.label,
      size: r.size,
      usage: r.census.usage,
      category: r.category,
      site: r.census.site,
    }));
  }

  /**
   * Calls `listener` once when the device is lost or the context disposed
   * (pools drop their buffers then); returns a function that unsubscribes.
   */
  onLost(listener: (reason: string) => void): () => void {
    if (typeof listener !== "function") {
      throw new TypeError(
        `Cannot listen for device loss as 'listener' must be a function: current value is ${describe(listener)}`,
      );
    }
    if (this.#gone !== null) {
      queueMicrotask(() => listener(this.#gone!));
      return () => {};
    }
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  /** @internal Throws "use-after-free" when the device is gone. */
  checkAlive(op: string): void {
    this.#checkAlive(op);
  }

  static {
    // WebGPU's own destroy() was called on a live buffer of this context: it is gone, as after destroyBuffer.
    destroyedOutside.forget = (gpu, buffer) => {
      const record = gpu.#records.get(buffer);
      if (record === undefined) return;
      gpu.#forget(buffer, record);
      gpu.#destroyed++;
    };
    createBufferChecked = (gpu, descriptor, recheck) => gpu.#create(descriptor, recheck);
    maxBufferSizeOf = (gpu) => gpu.#maxBufferSize;
    // memkit's record of `buffer`, checked for use by `op` on this context's device: a buffer some
    // GpuContext created (else TypeError), on this device ("mismatched-allocator"), then usable (live, with
    // the usage `flag`, unmapped: see checkUsable).
    bufferRecord = (gpu, buffer, flag, flagName, op, name = "buffer") => {
      const { context, record } = registeredBuffer(buffer, op, name);
      if (context !== gpu && context.device !== gpu.device) {
        const label = bufferLabel(record);
        throw new AllocationError(
          "mismatched-allocator",
          `Cannot ${op} as buffer ${label} belongs to another GPU device (GpuContext "${context.#label}")`,
        );
      }
      gpu.#checkAlive(op);
      checkUsable(buffer as GPUBuffer, record, flag, flagName, op, name);
      return record;
    };
  }

  /**
   * Destroys every live buffer, then the device when {@linkcode requestGpu}
   * created it. Twice is a no-op.
   */
  dispose(): void {
    if (this.#gone !== null && this.#records.size === 0) return;
    for (const [buffer, record] of [...this.#records]) {
      this.#forget(buffer, record);
      this.#destroyed++;
      destroyNatively(buffer);
    }
    this.#lose(`the GpuContext "${this.#label}" was disposed`);
    unfollowDevice(this.device, this.#onDestroy);
    if (this.#owned) {
      loseContextsOf(this.device); // the other contexts on it (fromDevice), and fromDevice refuses it from now on
      destroyNatively(this.device);
    }
  }

  /** Same as {@linkcode dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #checkAlive(op: string): void {
    if (this.#gone !== null) throw new AllocationError("use-after-free", `Cannot ${op} as ${this.#gone}`);
  }

  // Everything of memkit's own first; the budget's bytes go back last, through BudgetToken's own release
  // (the token was checked when the buffer was made, and that release cannot throw).
  #forget(buffer: GPUBuffer, record: BufferRecord): void {
    this.#records.delete(buffer);
    record.state = "destroyed";
    const usage = this.#byUsage.get(record.category)!;
    usage.bytes -= record.size;
    usage.buffers--;
    this.#bytes -= record.size;
    leaveGpuCensus(record.census);
    if (record.token !== null) giveBackToken(record.token);
  }

  // The device is gone: its buffers went with it, so they stop counting.
  #lose(reason: string): void {
    if (this.#gone !== null) return;
    this.#gone = reason;
    for (const [buffer, record] of [...this.#records]) {
      this.#forget(buffer, record);
      record.state = "lost";
      this.#lostBuffers++;
    }
    const listeners = [...this.#lostListeners];
    this.#lostListeners.clear();
    for (const listener of listeners) {
      try {
        listener(reason);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
