/**
 * Per-frame uploads through mapped staging buffers that never wait for the GPU.
 *
 * @module
 */
import { intrinsic } from "../../ffi/boundary.ts";
import { checkSize, describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { BufferRecord } from "./_buffer_registry.ts";
import { followLoss } from "./_follow_loss.ts";
import { createBufferChecked, GpuContext, maxBufferSizeOf } from "./gpu_context.ts";
import { checkBuffer, checkSourceKept, type GpuUploadSource, nativeCall, sourceBytes } from "./gpu_transfer.ts";
import { MAP_WRITE_MODE, Usage } from "./_webgpu.ts";

/**
 * Options of {@linkcode GpuStagingRing}.
 *
 * @example
 * ```ts
 * import type { GpuStagingRingOptions } from "@memkit/memkit";
 *
 * const options: GpuStagingRingOptions = { chunkBytes: 4 << 20 };
 * ```
 */
export interface GpuStagingRingOptions {
  /**
   * Bytes of each staging buffer (a multiple of 256, at most the device's maxBufferSize); a larger upload gets a
   * chunk of its own size. @default 1 MiB
   */
  chunkBytes?: number;
}

/**
 * What a {@linkcode GpuStagingRing} did and holds.
 *
 * @example
 * ```ts
 * import type { GpuStagingRingStats } from "@memkit/memkit";
 *
 * const neverStalled = (s: GpuStagingRingStats) => s.created; // chunks created instead of waiting
 * ```
 */
export interface GpuStagingRingStats {
  /** Staging buffers held (mapped and ready, being filled, or in flight). */
  chunks: number;
  /** Their bytes. */
  chunkBytes: number;
  /** Chunks created (when none was ready: the ring grows instead of waiting). */
  created: number;
  /** Chunks submitted and not yet mapped again. */
  inFlight: number;
  /** Bytes uploaded through the ring. */
  uploadedBytes: number;
  /** Frames flushed. */
  flushes: number;
}

interface Chunk {
  readonly buffer: GPUBuffer;
  readonly size: number;
  /** The mapped range while the chunk is mapped (filled by uploads); null in flight. */
  mapped: Uint8Array | null;
  cursor: number;
}

// A copy recorded by upload(), encoded at flush() (so a target destroyed in between is left out, not the frame).
interface Copy {
  readonly chunk: Chunk;
  readonly at: number;
  readonly target: GPUBuffer;
  readonly record: BufferRecord;
  readonly offset: number;
  readonly length: number;
}

// The device was lost: every chunk went with it (a function of the module, so that the context's listener
// does not hold the ring: see followLoss).
let forgetAll: (ring: GpuStagingRing) => void;

const optionsSchema = z.strictObject({
  chunkBytes: z.number().int("must be an integer").min(256, "must be at least 256").max(2 ** 32, "must be at most 2^32")
    .refine((v) => v % 256 === 0, "must be a multiple of 256").optional(),
});

/**
 * A ring of MAP_WRITE staging buffers for per-frame uploads: `upload` copies
 * the source into a mapped chunk and records a GPU copy into the target;
 * `flush` submits the copies and maps the used chunks again in the
 * background. A chunk still in flight is never waited for: when no mapped
 * chunk has room, a new one is created, so after a few frames the ring holds
 * as many chunks as the GPU keeps in flight and creates no more.
 *
 * Submit the work that reads the targets after `flush()`: the copies run first.
 *
 * @example
 * ```ts
 * import { GpuBufferUsage, GpuStagingRing, readGpuBuffer, requestGpu, SIMDArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using gpu = await requestGpu();
 * using ring = new GpuStagingRing(gpu);
 * using positions = new SIMDArray("f32x4");
 * positions.push([1, 2, 3, 4]);
 * const vertices = gpu.createBuffer({ size: 16, usage: GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST | GpuBufferUsage.COPY_SRC });
 * for (let frame = 0; frame < 3; frame++) {
 *   positions.scale(2);
 *   ring.upload(vertices, 0, positions);
 *   ring.flush();
 *   await gpu.device.queue.onSubmittedWorkDone(); // a frame's pace; the ring itself never waits
 * }
 * const back = new Float32Array(4);
 * await readGpuBuffer(gpu, vertices, back);
 * assert.deepEqual([...back], [8, 16, 24, 32]);
 * ```
 */
export class GpuStagingRing implements Disposable {
  readonly #gpu: GpuContext;
  readonly #chunkBytes: number;
  readonly #ready: Chunk[] = [];
  readonly #all = new Set<Chunk>();
  #used: Chunk[] = [];
  #copies: Copy[] = [];
  #created = 0;
  #inFlight = 0;
  #uploaded = 0;
  #flushes = 0;
  #disposed = false;
  readonly #unfollow: () => void;

  /**
   * A ring of staging buffers on `gpu` (none created until the first upload).
   *
   * @throws {TypeError} For a `gpu` that is not a GpuContext, or options of the wrong type.
   * @throws {RangeError} For a chunkBytes that is not a multiple of 256, or above the device's maxBufferSize.
   */
  constructor(gpu: GpuContext, options?: GpuStagingRingOptions) {
    if (!(gpu instanceof GpuContext)) {
      throw new TypeError(
        `Cannot create GpuStagingRing as 'gpu' must be a GpuContext: current value is ${describe(gpu)}`,
      );
    }
    const parsed = parseOptions(optionsSchema, options, "create GpuStagingRing");
    const max = maxBufferSizeOf(gpu);
    if (parsed.chunkBytes !== undefined && parsed.chunkBytes > max) {
      throw new RangeError(
        `Cannot create GpuStagingRing as 'chunkBytes' must be at most the device's maxBufferSize ${max}: ` +
          `current value is ${parsed.chunkBytes}`,
      );
    }
    this.#gpu = gpu;
    this.#chunkBytes = parsed.chunkBytes ?? 1 << 20;
    this.#unfollow = followLoss(gpu, this, forgetAll);
  }

  /**
   * Copies `source` (whole) into a staging chunk now and records its copy to
   * `target` at `offset`, which runs at the next {@linkcode flush}. The source
   * may change right after: its bytes were taken.
   *
   * @throws {TypeError} When `target` lacks COPY_DST, or an argument has the wrong type (a SharedDynamicArray is
   *   no source: the message says how to copy its elements out).
   * @throws {RangeError} For an offset or a source length that is not a multiple of 4, or a source that does not fit the target.
   * @throws {AllocationError} "use-after-free" for a freed array, after dispose() or once the device is lost.
   */
  upload(target: GPUBuffer, offset: number, source: GpuUploadSource): void {
    const op = "upload through GpuStagingRing";
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed`);
    checkBuffer(this.#gpu, target, Usage.COPY_DST, "COPY_DST", op);
    checkSize(offset, op, "offset");
    if (offset % 4 !== 0) {
      throw new RangeError(`Cannot ${op} as 'offset' must be a multiple of 4: current value is ${offset}`);
    }
    const { bytes, length } = sourceBytes(source, op);
    if (length % 4 !== 0) {
      throw new RangeError(`Cannot ${op} as the source must be whole 4-byte words: it has ${length} bytes`);
    }
    // Checked again after the source's own code ran (a DynamicArray's getters).
    const record = checkBuffer(this.#gpu, target, Usage.COPY_DST, "COPY_DST", op);
    if (offset + length > record.size) {
      throw new RangeError(
        `Cannot ${op} as ${length} bytes at offset ${offset} do not fit a buffer of ${record.size} bytes`,
      );
    }
    this.#checkAlive(op);
    if (length === 0) return;
    const chunk = this.#chunkFor(length, op, target, bytes);
    const at = chunk.cursor;
    intrinsic.set(chunk.mapped!, bytes, at); // the engine's own set, whatever is patched
    chunk.cursor = at + length;
    this.#copies.push({ chunk, at, target, record, offset, length });
    this.#uploaded += length;
  }

  /**
   * Submits the copies recorded since the last flush and maps their chunks
   * again in the background (each returns to the ring when its map resolves).
   * Without uploads, nothing is submitted. A target destroyed since its upload
   * is left out (its bytes have nowhere to go); the other copies run.
   *
   * @throws {TypeError} When a target was mapped since its upload (nothing is submitted: unmap it and flush again).
   * @throws {AllocationError} "use-after-free" after dispose() or once the device is lost.
   */
  flush(): void {
    const op = "flush GpuStagingRing";
    this.#checkAlive(op);
    const copies = this.#copies.filter((c) => c.record.state === "live");
    // A mapped target would make WebGPU refuse the whole submit: refused here, before anything changes.
    for (const c of copies) checkBuffer(this.#gpu, c.target, Usage.COPY_DST, "COPY_DST", op);
    this.#flushes++;
    if (this.#used.length === 0) return;
    const used = this.#used;
    this.#used = [];
    this.#copies = [];
    nativeCall(this.#gpu, op, () => {
      for (const chunk of used) {
        chunk.mapped = null; // unmap detaches the mapped range: drop it first
        chunk.buffer.unmap();
      }
      const encoder = this.#gpu.device.createCommandEncoder({ label: "memkit staging ring" });
      for (const c of copies) encoder.copyBufferToBuffer(c.chunk.buffer, c.at, c.target, c.offset, c.length);
      this.#gpu.device.queue.submit([encoder.finish()]);
    });
    for (const chunk of used) {
      this.#inFlight++;
      chunk.buffer.mapAsync(MAP_WRITE_MODE).then(
        () => {
          this.#inFlight--;
          if (!this.#all.has(chunk)) return; // disposed or lost meanwhile
          chunk.mapped = new Uint8Array(chunk.buffer.getMappedRange());
          chunk.cursor = 0;
          this.#ready.push(chunk);
        },
        () => {
          // The device was lost or the ring disposed: the chunk is gone.
          this.#inFlight--;
          this.#all.delete(chunk);
        },
      );
    }
  }

  /** What it did and holds. */
  stats(): GpuStagingRingStats {
    let bytes = 0;
    for (const chunk of this.#all) bytes += chunk.size;
    return {
      chunks: this.#all.size,
      chunkBytes: bytes,
      created: this.#created,
      inFlight: this.#inFlight,
      uploadedBytes: this.#uploaded,
      flushes: this.#flushes,
    };
  }

  /** Destroys every chunk (uploads not flushed are dropped). Twice is a no-op. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#unfollow();
    const chunks = [...this.#all];
    this.#forgetAll();
    for (const chunk of chunks) if (this.#gpu.owns(chunk.buffer)) this.#gpu.destroyBuffer(chunk.buffer);
  }

  /** Same as {@linkcode dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // A mapped chunk with room for the `length` bytes of `bytes`, to be copied to `target`: the one being
  // filled, a ready one, or a new one.
  #chunkFor(length: number, op: string, target: GPUBuffer, bytes: Uint8Array): Chunk {
    const current = this.#used.at(-1);
    if (current !== undefined && current.size - current.cursor >= length) return current;
    for (let i = this.#ready.length - 1; i >= 0; i--) {
      const chunk = this.#ready[i];
      if (chunk.size < length) continue;
      this.#ready.splice(i, 1);
      this.#used.push(chunk);
      return chunk;
    }
    // `length` (whole words) fits the target, so the device's maxBufferSize: rounded up to 256, it must not
    // pass the largest multiple of 4 (mappedAtCreation) within it.
    const most = Math.floor(maxBufferSizeOf(this.#gpu) / 4) * 4;
    const size = Math.max(this.#chunkBytes, Math.min(Math.ceil(length / 256) * 256, most));
    const descriptor = {
      size,
      usage: Usage.MAP_WRITE | Usage.COPY_SRC,
      mappedAtCreation: true,
      label: "memkit staging ring",
    };
    // The creation may run the budget's reclaimers (the program's code): they may dispose the ring, destroy
    // or map the target, or free the source; all are checked again before WebGPU runs.
    const buffer = createBufferChecked(this.#gpu, descriptor, () => {
      if (this.#disposed) {
        throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed while its chunk was created`);
      }
      checkBuffer(this.#gpu, target, Usage.COPY_DST, "COPY_DST", op);
      checkSourceKept(bytes, length, op);
    });
    let mapped: Uint8Array;
    try {
      mapped = nativeCall(this.#gpu, op, () => new Uint8Array(buffer.getMappedRange()));
    } catch (error) {
      if (this.#gpu.owns(buffer)) this.#gpu.destroyBuffer(buffer);
      throw error;
    }
    const chunk: Chunk = { buffer, size, mapped, cursor: 0 };
    this.#all.add(chunk);
    this.#used.push(chunk);
    this.#created++;
    return chunk;
  }

  #forgetAll(): void {
    for (const chunk of this.#all) chunk.mapped = null;
    this.#all.clear();
    this.#ready.length = 0;
    this.#used = [];
    this.#copies = [];
  }

  static {
    forgetAll = (ring) => ring.#forgetAll();
  }

  #checkAlive(op: string): void {
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed`);
    this.#gpu.checkAlive(op);
  }
}
