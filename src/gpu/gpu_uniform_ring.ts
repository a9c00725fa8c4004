/**
 * Uniforms of many draws in one buffer, bound by 256-byte dynamic offsets.
 *
 * @module
 */
import { describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { GpuContext, maxBufferSizeOf } from "./gpu_context.ts";
import { type GpuUploadSource, nativeCall, queueView, sourceBytes } from "./gpu_transfer.ts";
import { Usage } from "./_webgpu.ts";

/** WebGPU's default minUniformBufferOffsetAlignment (and a renderer's uniform slot). */
export const UNIFORM_SLOT = 256;

/**
 * Options of {@linkcode GpuUniformRing}.
 *
 * @example
 * ```ts
 * import type { GpuUniformRingOptions } from "@memkit/memkit";
 *
 * const options: GpuUniformRingOptions = { capacity: 10_000 * 256 }; // 10k draws a frame
 * ```
 */
export interface GpuUniformRingOptions {
  /** Bytes of the ring's buffer (a multiple of 256, at most the device's maxBufferSize): the uniforms of one frame. @default 1 MiB */
  capacity?: number;
  /** Names the buffer in stats and the leak report. */
  label?: string;
}

const optionsSchema = z.strictObject({
  capacity: z.number().int("must be an integer").min(256, "must be at least 256").max(2 ** 32, "must be at most 2^32")
    .refine((v) => v % 256 === 0, "must be a multiple of 256").optional(),
  label: z.string().optional(),
});

/**
 * One UNIFORM buffer holding the uniforms of a frame's draws, each at a
 * multiple of 256 bytes (WebGPU's `minUniformBufferOffsetAlignment`): push a
 * `uniformArray` (records already in 256-byte slots) with one queue write,
 * then bind each draw's record with a dynamic offset (`setBindGroup(i, group,
 * [ring.offsetOf(base, k)])`) instead of a buffer per draw. `reset()` starts
 * the next frame at offset 0: the queue orders its writes after the work
 * submitted before, so a frame's uniforms must be pushed before its submit.
 *
 * @example
 * ```ts
 * import { GpuUniformRing, requestGpu, struct, uniformArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using gpu = await requestGpu();
 * using ring = new GpuUniformRing(gpu, { capacity: 64 * 256 });
 * const Draw = struct({ tint: "f32x4", scale: "f32" }, { layout: "wgsl-uniform" });
 * using draws = uniformArray<{ tint: number[]; scale: number }>(Draw);
 * for (let i = 0; i < 10; i++) draws.push({ tint: [1, 0, 0, 1], scale: i });
 * const base = ring.push(draws);
 * assert.equal(ring.offsetOf(base, 3) - ring.offsetOf(base, 2), 256); // the dynamic offsets of draws 2 and 3
 * ring.reset(); // next frame
 * ```
 */
export class GpuUniformRing implements Disposable {
  /** The ring's UNIFORM | COPY_DST buffer: bind it with `hasDynamicOffset: true`. */
  readonly buffer: GPUBuffer;
  /** Its size in bytes. */
  readonly capacity: number;
  readonly #gpu: GpuContext;
  #head = 0;
  readonly #pushed = new Map<number, { stride: number; count: number }>();
  #pushes = 0;
  #disposed = false;

  /**
   * Creates the ring's buffer on `gpu`.
   *
   * @throws {TypeError} For a `gpu` that is not a GpuContext, or options of the wrong type.
   * @throws {RangeError} For a capacity that is not a multiple of 256, or above the device's maxBufferSize.
   * @throws {AllocationError} What GpuContext.createBuffer throws.
   */
  constructor(gpu: GpuContext, options?: GpuUniformRingOptions) {
    if (!(gpu instanceof GpuContext)) {
      throw new TypeError(
        `Cannot create GpuUniformRing as 'gpu' must be a GpuContext: current value is ${describe(gpu)}`,
      );
    }
    const parsed = parseOptions(optionsSchema, options, "create GpuUniformRing");
    const max = maxBufferSizeOf(gpu);
    if (parsed.capacity !== undefined && parsed.capacity > max) {
      throw new RangeError(
        `Cannot create GpuUniformRing as 'capacity' must be at most the device's maxBufferSize ${max}: ` +
          `current value is ${parsed.capacity}`,
      );
    }
    this.#gpu = gpu;
    this.capacity = parsed.capacity ?? 1 << 20;
    this.buffer = gpu.createBuffer({
      size: this.capacity,
      usage: Usage.UNIFORM | Usage.COPY_DST,
      label: parsed.label ?? "memkit uniform ring",
    });
  }

  /** Bytes pushed since the last {@linkcode reset}. */
  get used(): number {
    return this.#head;
  }

  /**
   * Writes the uniforms (a `uniformArray`, or bytes whose records are 256-byte
   * slots) at the ring's head with one queue write; returns the offset of
   * the first record. Record `k` is at `offsetOf(base, k)`.
   *
   * @throws {TypeError} For a source of the wrong type (a SharedDynamicArray is none: the message says how to
   *   copy its elements out).
   * @throws {RangeError} For a DynamicArray whose stride is not a multiple of 256 (use uniformArray), or bytes that are not whole words.
   * @throws {AllocationError} "limit-exceeded" when the frame's uniforms outgrow the capacity (nothing is written);
   *   "use-after-free" for a freed array, after dispose() or once the device is lost.
   */
  push(uniforms: GpuUploadSource): number {
    const op = "push to GpuUniformRing";
    const { bytes, length, element } = sourceBytes(uniforms, op, "uniforms");
    const stride = element % UNIFORM_SLOT === 0 ? element : UNIFORM_SLOT;
    if (!ArrayBuffer.isView(uniforms) && element % UNIFORM_SLOT !== 0) {
      throw new RangeError(
        `Cannot ${op} as the array's stride must be a multiple of 256 (make it with uniformArray): current value is ${element}`,
      );
    }
    if (length % 4 !== 0) {
      throw new RangeError(`Cannot ${op} as the uniforms must be whole 4-byte words: they have ${length} bytes`);
    }
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed`);
    this.#gpu.checkAlive(op);
    if (!this.#gpu.owns(this.buffer)) {
      throw new AllocationError(
        "use-after-free",
        `Cannot ${op} as the ring's buffer was destroyed (gpu.destroyBuffer or its own destroy())`,
      );
    }
    const base = this.#head;
    const end = base + Math.ceil(length / UNIFORM_SLOT) * UNIFORM_SLOT;
    if (end > this.capacity) {
      throw new AllocationError(
        "limit-exceeded",
        `Cannot ${op} as ${length} bytes at offset ${base} outgrow the ring's ${this.capacity} bytes ` +
          `(reset() each frame, or give a larger capacity)`,
      );
    }
    if (length > 0) {
      // WebGPU gets a view memkit made (see queueView); what it still refuses is memkit's
      // AllocationError("platform"), before the head moves.
      const view = queueView(bytes, length);
      nativeCall(this.#gpu, op, () => this.#gpu.device.queue.writeBuffer(this.buffer, base, view, 0, length));
    }
    this.#head = end;
    this.#pushed.set(base, { stride, count: Math.ceil(length / stride) });
    this.#pushes++;
    return base;
  }

  /**
   * The dynamic offset of record `index` of the push that started at `base`.
   *
   * @throws {RangeError} For a `base` no push of this frame returned, or an index that is not one of its records.
   */
  offsetOf(base: number, index: number): number {
    const pushed = this.#pushed.get(base);
    if (pushed === undefined) {
      throw new RangeError(
        `Cannot find a uniform offset as 'base' must be an offset push() returned this frame: current value is ${
          describe(base)
        }`,
      );
    }
    if (!Number.isInteger(index) || index < 0 || index >= pushed.count) {
      throw new RangeError(
        `Cannot find a uniform offset as 'index' must be an integer from 0 to ${pushed.count - 1} ` +
          `(the push's records): current value is ${describe(index)}`,
      );
    }
    return base + index * pushed.stride;
  }

  /** Starts the next frame at offset 0. */
  reset(): void {
    this.#head = 0;
    this.#pushed.clear();
  }

  /** Destroys the buffer. Twice is a no-op. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#gpu.owns(this.buffer)) this.#gpu.destroyBuffer(this.buffer);
  }

  /** Same as {@linkcode dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
