/**
 * Many small GPU buffers inside a few large GPUBuffers: each block is a
 * GPUBuffer of one usage whose offsets a {@linkcode VirtualAllocator} places.
 *
 * @module
 */
import { checkAlignment, checkSize, describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { followLoss } from "./_follow_loss.ts";
import { checkUsageCombination } from "./_gpu_usage.ts";
import { createBufferChecked, GpuContext, maxBufferSizeOf } from "./gpu_context.ts";
import { type VirtualAllocation, VirtualAllocator, type VirtualStrategy } from "./virtual_allocator.ts";
import { Usage } from "./_webgpu.ts";

/**
 * A suballocated buffer: `size` bytes at `offset` of `buffer` (bind it with
 * that offset and size, or write there with writeGpuBuffer's `offset`).
 *
 * @example
 * ```ts
 * import type { GpuSlice } from "@memkit/memkit";
 *
 * const binding = (slice: GpuSlice) => ({ buffer: slice.buffer, offset: slice.offset, size: slice.size });
 * ```
 */
export interface GpuSlice {
  /** The large buffer the slice lies in. */
  readonly buffer: GPUBuffer;
  /** Where it starts in `buffer` (a multiple of the alignment asked for). */
  readonly offset: number;
  /** The bytes asked for. */
  readonly size: number;
}

/**
 * Options of {@linkcode GpuSuballocator}.
 *
 * @example
 * ```ts
 * import { GpuBufferUsage, type GpuSuballocatorOptions } from "@memkit/memkit";
 *
 * const options: GpuSuballocatorOptions = { usage: GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST, blockBytes: 8 << 20 };
 * ```
 */
export interface GpuSuballocatorOptions {
  /** The usage of every block (and so of every slice): flags WebGPU allows together. */
  usage: number;
  /**
   * Bytes of each block (a multiple of 256, at most the device's maxBufferSize). A slice larger than this gets
   * a block of its own. @default 4 MiB
   */
  blockBytes?: number;
  /** The default alignment of slices: 256 for UNIFORM or STORAGE usage (WebGPU's offset rule for bindings), else 16. */
  alignment?: number;
  /** How offsets are placed in a block. @default "tlsf" */
  strategy?: VirtualStrategy;
  /** Names the blocks in stats and the leak report. */
  label?: string;
}

/**
 * What a {@linkcode GpuSuballocator} holds.
 *
 * @example
 * ```ts
 * import type { GpuSuballocatorStats } from "@memkit/memkit";
 *
 * const saved = (s: GpuSuballocatorStats) => s.slices - s.blocks; // GPUBuffers not created
 * ```
 */
export interface GpuSuballocatorStats {
  /** GPUBuffers created for blocks and still live. */
  blocks: number;
  /** Their bytes. */
  blockBytes: number;
  /** Live slices. */
  slices: number;
  /** Bytes the live slices asked for. */
  sliceBytes: number;
}

interface Block {
  readonly buffer: GPUBuffer;
  readonly range: VirtualAllocator;
}

const optionsSchema = z.strictObject({
  usage: z.number().int("must be an integer").min(1, "must be at least 1").max(0x3ff, "must be at most 0x3ff"),
  blockBytes: z.number().int("must be an integer").min(256, "must be at least 256").max(2 ** 40, "must be at most 2^40")
    .refine((v) => v % 256 === 0, "must be a multiple of 256").optional(),
  alignment: z.number().int("must be an integer").min(1, "must be at least 1").max(65536, "must be at most 65536")
    .refine((v) => (v & (v - 1)) === 0, "must be a power of two").optional(),
  strategy: z.enum(["tlsf", "linear"]).optional(),
  label: z.string().optional(),
});

// Which suballocator made each slice (kept after it is freed), so a free tells a slice freed twice from
// another suballocator's.
const slicesMadeBy = new WeakMap<object, GpuSuballocator>();

// A lost device took every block: the suballocator holds none (a function of the module, so that the context's
// listener does not hold the suballocator: see followLoss).
let dropAll: (sub: GpuSuballocator) => void;

/**
 * Places many small buffers inside a few large GPUBuffers of one usage, with
 * memkit's TLSF placement over offsets ({@linkcode VirtualAllocator}): one
 * `createBuffer` per block instead of one per buffer, and freed slices reused
 * at once. Blocks are created on demand; {@linkcode trim} destroys empty ones.
 *
 * @example
 * ```ts
 * import { GpuBufferUsage, GpuSuballocator, requestGpu, writeGpuBuffer } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using gpu = await requestGpu();
 * using meshes = new GpuSuballocator(gpu, { usage: GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST, blockBytes: 1 << 20 });
 * const slices = Array.from({ length: 100 }, () => meshes.allocate(3000));
 * assert.equal(gpu.memoryStats().buffers, 1); // 100 meshes, one GPUBuffer
 * writeGpuBuffer(gpu, slices[7].buffer, new Float32Array(750).fill(1), { offset: slices[7].offset });
 * for (const slice of slices) meshes.free(slice);
 * ```
 */
export class GpuSuballocator implements Disposable {
  readonly #gpu: GpuContext;
  readonly #usage: number;
  readonly #blockBytes: number;
  readonly #alignment: number;
  readonly #strategy: VirtualStrategy;
  readonly #label: string;
  readonly #blocks: Block[] = [];
  readonly #slices = new Map<GpuSlice, { block: Block; placed: VirtualAllocation }>();
  #sliceBytes = 0;
  #disposed = false;
  readonly #dropped = new WeakSet<GpuSlice>(); // slices of blocks destroyed by hand
  readonly #maxSize: number;
  readonly #unfollow: () => void;

  /**
   * Suballocates buffers of one usage on `gpu` (no block created until the first allocate).
   *
   * @throws {TypeError} For a `gpu` that is not a GpuContext, options of the wrong type, or usage flags WebGPU
   *   forbids together (MAP_READ only with COPY_DST, MAP_WRITE only with COPY_SRC).
   * @throws {RangeError} For a block size that is not a multiple of 256 or above the device's maxBufferSize, or
   *   an alignment that is not a power of two.
   */
  constructor(gpu: GpuContext, options: GpuSuballocatorOptions) {
    if (!(gpu instanceof GpuContext)) {
      throw new TypeError(
        `Cannot create GpuSuballocator as 'gpu' must be a GpuContext: current value is ${describe(gpu)}`,
      );
    }
    const op = "create GpuSuballocator";
    const parsed = parseOptions(optionsSchema, options, op);
    // What no block could ever be is refused here, not at the first allocate.
    checkUsageCombination(parsed.usage, op);
    const max = maxBufferSizeOf(gpu);
    if (parsed.blockBytes !== undefined && parsed.blockBytes > max) {
      throw new RangeError(
        `Cannot ${op} as 'blockBytes' must be at most the device's maxBufferSize ${max}: ` +
          `current value is ${parsed.blockBytes}`,
      );
    }
    this.#gpu = gpu;
    this.#maxSize = max;
    this.#usage = parsed.usage;
    this.#blockBytes = parsed.blockBytes ?? 4 << 20;
    this.#alignment = parsed.alignment ?? (parsed.usage & (Usage.UNIFORM | Usage.STORAGE) ? 256 : 16);
    this.#strategy = parsed.strategy ?? "tlsf";
    this.#label = parsed.label ?? "memkit suballocator";
    this.#unfollow = followLoss(gpu, this, dropAll);
  }

  static {
    dropAll = (sub) => {
      sub.#blocks.length = 0;
      sub.#slices.clear();
      sub.#sliceBytes = 0;
    };
  }

  /**
   * A slice of `size` bytes (a multiple of 4: WebGPU copies words) at an offset
   * that is a multiple of `alignment` (default: the suballocator's).
   *
   * A slice larger than the block size gets a block of its own (up to the device's maxBufferSize, whose
   * slice then starts at offset 0).
   *
   * @throws {TypeError} For a size or alignment that is not a number.
   * @throws {RangeError} For a size that is not a positive multiple of 4 or is above the device's maxBufferSize
   *   (in whole 16-byte granules, as offsets are placed), or a bad alignment.
   * @throws {AllocationError} "use-after-free" after dispose() or once the device is lost; what GpuContext.createBuffer throws.
   */
  allocate(size: number, alignment?: number): GpuSlice {
    const op = "allocate from GpuSuballocator";
    checkSize(size, op, "size", 2 ** 40, 4);
    if (size % 4 !== 0) {
      throw new RangeError(`Cannot ${op} as 'size' must be a multiple of 4: current value is ${size}`);
    }
    // Offsets are placed in 16-byte granules: a slice takes its size rounded up to 16 within its block.
    const most = Math.floor(this.#maxSize / 16) * 16;
    if (size > most) {
      throw new RangeError(
        `Cannot ${op} as 'size' must be at most ${most} (the device's maxBufferSize ${this.#maxSize}` +
          `${most === this.#maxSize ? "" : ", in whole 16-byte granules"}): current value is ${size}`,
      );
    }
    const align = checkAlignment(alignment, op, 65536, this.#alignment);
    this.#checkAlive(op);
    this.#dropDestroyed();
    for (const block of this.#blocks) {
      if (block.range.capacity < size) continue;
      const placed = block.range.allocate(size, align);
      if (placed !== null) return this.#record(block, placed, size);
    }
    // A fresh block always fits the slice: TLSF searches size + alignment for an aligned block. A slice so
    // large that this would pass maxBufferSize gets a block of its own size, placed linearly: its slice at
    // offset 0, which every alignment allows.
    let bytes = Math.max(this.#blockBytes, Math.ceil((size + align) / 256) * 256);
    let strategy = this.#strategy;
    if (bytes > this.#maxSize) {
      bytes = Math.min(Math.ceil(size / 256) * 256, most);
      strategy = "linear";
    }
    // The budget's reclaimers (run inside the creation) may dispose the suballocator: nothing is created then.
    const buffer = createBufferChecked(this.#gpu, { size: bytes, usage: this.#usage, label: this.#label }, () => {
      if (this.#disposed) {
        throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed while its block was created`);
      }
    });
    const block: Block = { buffer, range: new VirtualAllocator({ capacity: bytes, strategy }) };
    this.#blocks.push(block);
    return this.#record(block, block.range.allocate(size, align)!, size);
  }

  /**
   * Frees a slice (its bytes may be handed out again at once: free it only
   * when no submitted GPU work still reads it). After the device was lost,
   * freeing one of its slices is a no-op (they went with the device).
   *
   * @throws {TypeError} For a slice that is not an object.
   * @throws {AllocationError} "double-free" for a slice freed already; "mismatched-allocator" for another
   *   suballocator's; "invalid-free" for anything else; "use-after-free" after dispose(), or for a slice whose
   *   block was destroyed (gpu.destroyBuffer or WebGPU's destroy() of `slice.buffer`: the block is dropped).
   */
  free(slice: GpuSlice): void {
    const op = "free from GpuSuballocator";
    if (typeof slice !== "object" || slice === null) {
      throw new TypeError(
        `Cannot ${op} as 'slice' must be a GpuSlice that allocate() returned: current value is ${describe(slice)}`,
      );
    }
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed`);
    this.#dropDestroyed();
    const entry = this.#slices.get(slice);
    if (entry === undefined) {
      const maker = slicesMadeBy.get(slice);
      if (maker === this && this.#gpu.lost) return; // the device took every slice with it
      if (maker === this) {
        const dropped = this.#dropped.has(slice);
        throw new AllocationError(
          dropped ? "use-after-free" : "double-free",
          `Cannot ${op} as ${dropped ? "its block was destroyed (the slice went with it)" : "it was freed already"}`,
        );
      }
      // Anything else is refused as before the loss: it never was a slice of this suballocator.
      throw new AllocationError(
        maker === undefined ? "invalid-free" : "mismatched-allocator",
        `Cannot ${op} as ${describe(slice)} ${
          maker === undefined ? "is not a slice a GpuSuballocator made" : "was made by another GpuSuballocator"
        }`,
      );
    }
    this.#slices.delete(slice);
    entry.block.range.free(entry.placed);
    this.#sliceBytes -= slice.size;
  }

  /** Destroys blocks that hold no slice; returns the bytes destroyed (a block destroyed by hand is not counted). */
  trim(): number {
    this.#dropDestroyed();
    let bytes = 0;
    for (let i = this.#blocks.length - 1; i >= 0; i--) {
      const block = this.#blocks[i];
      if (block.range.stats().allocations !== 0) continue;
      this.#blocks.splice(i, 1);
      bytes += block.range.capacity;
      if (this.#gpu.owns(block.buffer)) this.#gpu.destroyBuffer(block.buffer);
    }
    return bytes;
  }

  /** What it holds (a block destroyed by hand no longer: it and its slices are gone). */
  stats(): GpuSuballocatorStats {
    this.#dropDestroyed();
    return {
      blocks: this.#blocks.length,
      blockBytes: this.#blocks.reduce((sum, b) => sum + b.range.capacity, 0),
      slices: this.#slices.size,
      sliceBytes: this.#sliceBytes,
    };
  }

  /** Destroys every block (and so every slice). Twice is a no-op. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#unfollow();
    for (const block of this.#blocks) if (this.#gpu.owns(block.buffer)) this.#gpu.destroyBuffer(block.buffer);
    this.#blocks.length = 0;
    this.#slices.clear();
    this.#sliceBytes = 0;
  }

  /** Same as {@linkcode dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #record(block: Block, placed: VirtualAllocation, size: number): GpuSlice {
    const slice: GpuSlice = Object.freeze({ buffer: block.buffer, offset: placed.offset, size });
    this.#slices.set(slice, { block, placed });
    slicesMadeBy.set(slice, this);
    this.#sliceBytes += size;
    return slice;
  }

  // Blocks whose buffer was destroyed by hand (gpu.destroyBuffer, or WebGPU's own destroy()) leave, with
  // their slices: those are remembered, so freeing one says what happened.
  #dropDestroyed(): void {
    if (this.#blocks.every((block) => this.#gpu.owns(block.buffer)) || this.#gpu.lost) return;
    for (let i = this.#blocks.length - 1; i >= 0; i--) {
      if (!this.#gpu.owns(this.#blocks[i].buffer)) this.#blocks.splice(i, 1);
    }
    for (const [slice, { block }] of this.#slices) {
      if (this.#blocks.includes(block)) continue;
      this.#slices.delete(slice);
      this.#dropped.add(slice);
      this.#sliceBytes -= slice.size;
    }
  }

  #checkAlive(op: string): void {
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} as it was disposed`);
    this.#gpu.checkAlive(op);
  }
}
