/**
 * A renderer's region allocator: vertex, uniform, audio and texture data,
 * each in a region of its own alignment, with a memory report.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { checkView, describe, MAX_BLOCK_SIZE, parseOptions, typeCheck, z } from "../base/_validate.ts";
import type { Allocator, TypedArray } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import type { ScalarType } from "../arrays/dynamic_array_types.ts";
import { isStructLayout, type StructLayout } from "../arrays/struct.ts";
import { AlignedRegion } from "./_aligned_region.ts";
import { checkAlignment, checkSize, describeValue } from "./_words.ts";
import { releasingFor } from "../alloc/_lease.ts";

/**
 * A region of a {@linkcode RegionAllocator}.
 *
 * @example
 * ```ts
 * import { RegionAllocator, type RegionName } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using regions = new RegionAllocator();
 * const name: RegionName = "uniform";
 * const block = regions.region(name).alloc(64);
 * assert.equal(regions.getMemoryReport().regions.uniform.liveAllocations, 1);
 * regions.deallocate(block);
 * ```
 */
export type RegionName = "vertex" | "uniform" | "audio" | "texture";

/**
 * Options of {@linkcode RegionAllocator}.
 *
 * @example
 * ```ts
 * import { RegionAllocator, type RegionAllocatorOptions, SystemAllocator } from "@memkit/memkit";
 *
 * const options: RegionAllocatorOptions = { backing: new SystemAllocator(), capacity: 1 << 16 };
 * using regions = new RegionAllocator(options);
 * ```
 */
export interface RegionAllocatorOptions {
  /** Where each region's chunks come from. @default {a shared SystemAllocator} */
  backing?: Allocator;
  /**
   * Bytes of each region's first chunk (regions grow); a region whose first block needs more takes a first
   * chunk that holds it. @default {1048576}
   */
  capacity?: number;
}

/**
 * The figures of one region in a {@linkcode MemoryReport}.
 *
 * @example
 * ```ts
 * import { RegionAllocator, type RegionReport } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using regions = new RegionAllocator();
 * const texture: RegionReport = regions.getMemoryReport().regions.texture;
 * assert.equal(texture.alignment, 64);
 * ```
 */
export interface RegionReport {
  /** Every block starts at a multiple of this. */
  alignment: number;
  /** Bytes in live blocks. */
  allocatedBytes: number;
  /** Bytes the region holds. */
  capacityBytes: number;
  /** Highest `allocatedBytes` seen. */
  peakBytes: number;
  /** Live blocks. */
  liveAllocations: number;
  /** 0..1, how scattered the region's free space is. */
  fragmentation: number;
  /** The largest block the region can give without growing. */
  largestFreeBlock: number;
}

/**
 * What {@linkcode RegionAllocator.getMemoryReport} returns.
 *
 * @example
 * ```ts
 * import { RegionAllocator, type MemoryReport } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using regions = new RegionAllocator();
 * const samples = regions.allocateAudioData(1024);
 * const report: MemoryReport = regions.getMemoryReport();
 * assert.equal(report.totalAllocated, 4096);
 * regions.deallocate(samples);
 * ```
 */
export interface MemoryReport {
  /** Bytes in live blocks over all regions. */
  totalAllocated: number;
  /** Bytes the regions hold. */
  totalCapacity: number;
  /** 0..1, capacity-weighted over the regions. */
  fragmentation: number;
  /** Each region's figures. */
  regions: Record<RegionName, RegionReport>;
}

const ALIGNMENTS: Readonly<Record<RegionName, number>> = { vertex: 16, uniform: 256, audio: 4, texture: 64 };
const NAMES = Object.keys(ALIGNMENTS) as RegionName[];
/** Uniform buffer offsets must be multiples of this (WebGPU's minUniformBufferOffsetAlignment; Metal's constant buffers). */
const UNIFORM_SLOT = 256;

const SCALARS: Readonly<Record<ScalarType, new (buffer: ArrayBuffer, offset: number, length: number) => TypedArray>> = {
  i8: Int8Array,
  u8: Uint8Array<ArrayBuffer>,
  i16: Int16Array,
  u16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
  i64: BigInt64Array,
  u64: BigUint64Array,
  f32: Float32Array,
  f64: Float64Array,
};

// What a region's refusal says of a view, most telling first (see deallocate).
const RANK: readonly string[] = ["double-free", "use-after-free", "corruption", "mismatched-allocator", "invalid-free"];

const OptionsSchema = z.object({
  backing: typeCheck<Allocator>(
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
  capacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
}).strict();

/**
 * Four regions for a renderer and an audio engine, each a TLSF heap (any
 * size, any order) whose blocks start at its alignment: **vertex** 16 bytes
 * (SIMD), **uniform** 256 (one uniform-buffer slot per record), **audio** 4
 * (f32 samples), **texture** 64 (a cache line). The `allocate*` methods size
 * blocks from `struct()` layouts; `deallocate` takes a block back by the
 * view the allocating call returned (from any region), and
 * `getMemoryReport()` gives the totals and each region's figures. Errors
 * from a region's heap (its backing refusing memory, or releasing it under
 * the regions) name the call made ("Cannot allocate vertex data (…): …"),
 * keep their category, and carry the heap's own error as `cause`. A refused
 * call changes nothing: a block no region can hold is refused before any
 * memory is taken, and a region takes its first chunk only with room for
 * the block that asks for it.
 *
 * @example
 * ```ts
 * import { addressOf, RegionAllocator, struct } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const Vertex = struct({ position: "f32x3", color: "f32x4" }); // 32 bytes
 * const Uniforms = struct({ model: "f32x4x4", tint: "f32x4" }); // 80 bytes, one 256-byte slot each
 * using regions = new RegionAllocator();
 * const vertices = regions.allocateVertexData(1000, Vertex);
 * const uniforms = regions.allocateUniformData(10, Uniforms);
 * const samples = regions.allocateAudioData(4096);
 * assert.equal(vertices.length, 32_000);
 * assert.equal(uniforms.length, 10 * 256);
 * assert.equal(addressOf(uniforms) % 256, 0);
 * const report = regions.getMemoryReport();
 * assert.equal(report.totalAllocated, 32_000 + 2560 + 4 * 4096);
 * for (const data of [vertices, uniforms, samples]) regions.deallocate(data);
 * ```
 */
export class RegionAllocator implements Disposable {
  readonly #regions: Record<RegionName, AlignedRegion>;
  #ended = false;

  /**
   * Creates the regions; each takes its first chunk on first use.
   * @param options The backing of every region, and their first chunk's size.
   * @throws {TypeError} For options of the wrong type or unknown keys.
   * @throws {RangeError} For a capacity out of range.
   */
  constructor(options?: RegionAllocatorOptions) {
    const parsed = parseOptions(OptionsSchema, options, "create RegionAllocator");
    const regions = {} as Record<RegionName, AlignedRegion>;
    for (const name of NAMES) {
      regions[name] = new AlignedRegion(name, ALIGNMENTS[name], parsed.capacity ?? 1 << 20, parsed.backing);
    }
    this.#regions = regions;
  }

  /**
   * The allocator of one region: its blocks start at the region's alignment (16, 256, 4, 64) or more. It
   * is part of this RegionAllocator and goes with it: its `dispose()` (and `[Symbol.dispose]`, so `using`
   * on it) throws "unsupported" (dispose the RegionAllocator), and after the RegionAllocator's dispose every
   * call on it throws "use-after-free". Its `free` takes any view from a block's first byte, as every
   * allocator's does; {@linkcode RegionAllocator.deallocate} takes only the view a block was handed out as.
   * @throws {TypeError} For anything but "vertex", "uniform", "audio" or "texture".
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  region(name: RegionName): Allocator & Disposable & { dispose(): void } {
    if (typeof name !== "string" || !Object.hasOwn(ALIGNMENTS, name)) {
      throw new TypeError(
        `Cannot get a region as 'name' must be one of ${NAMES.join(", ")}: current value is ${describeValue(name)}`,
      );
    }
    return this.#live(`get the ${name} region`)[name];
  }

  /**
   * Room for `count` records of `layout` in the vertex region: `count * layout.size` bytes, aligned to 16
   * (or the layout's alignment when larger).
   * @throws {TypeError} When `layout` is not from `struct()`; {RangeError} for a bad count, or a block no
   *   region's heap can hold (its chunk, with alignment and header, above 2^47 bytes).
   * @throws {AllocationError} "out-of-memory" when the region cannot grow; "unsupported" for a block whose
   *   chunk is more than one ArrayBuffer holds in this runtime (`nativeInfo().maxViewBytes`, 4 GiB in Bun);
   *   "use-after-free" after `dispose()`, or once the regions' backing released their memory (the message
   *   names that release). A refused call takes no memory.
   */
  allocateVertexData(count: number, layout: StructLayout<unknown>): Uint8Array<ArrayBuffer> {
    const op = "allocate vertex data";
    checkLayout(layout, op);
    const bytes = checkSize(count, op, "count", Math.floor(MAX_BLOCK_SIZE / layout.size)) * layout.size;
    return AlignedRegion.allocate(this.#live(op).vertex, op, bytes, Math.max(16, layout.align));
  }

  /**
   * Room for `count` records of `layout` in the uniform region, one 256-byte slot each (a larger record
   * takes the next multiple of 256): record `i` starts at byte `i * slot`, bindable by offset.
   * @throws As for {@linkcode RegionAllocator.allocateVertexData}.
   */
  allocateUniformData(count: number, layout: StructLayout<unknown>): Uint8Array<ArrayBuffer> {
    const op = "allocate uniform data";
    checkLayout(layout, op);
    const slot = Math.ceil(layout.size / UNIFORM_SLOT) * UNIFORM_SLOT;
    const bytes = checkSize(count, op, "count", Math.floor(MAX_BLOCK_SIZE / slot)) * slot;
    return AlignedRegion.allocate(this.#live(op).uniform, op, bytes, UNIFORM_SLOT);
  }

  /**
   * `count` f32 samples in the audio region.
   * @throws {TypeError}/{RangeError} For a bad count; {AllocationError} "out-of-memory" when the region cannot
   *   grow; otherwise as for {@linkcode RegionAllocator.allocateVertexData}.
   */
  allocateAudioData(count: number): Float32Array<ArrayBuffer> {
    const op = "allocate audio data";
    checkSize(count, op, "count", Math.floor(MAX_BLOCK_SIZE / 4));
    const region = this.#live(op).audio;
    const bytes = AlignedRegion.allocate(region, op, count * 4, 4);
    const samples = new Float32Array(bytes.buffer, bytes.byteOffset, count);
    AlignedRegion.handOut(region, samples);
    return samples;
  }

  /**
   * `count` elements in the texture region at `alignment` (a power of two up to the page size; never less
   * than the region's 64): a typed array for a scalar type ("f32" → Float32Array, ...), bytes for a layout.
   * @throws {TypeError} For a type that is neither a scalar type nor a layout; {RangeError} for a bad count
   *   or alignment; otherwise as for {@linkcode RegionAllocator.allocateVertexData}.
   */
  allocateAlignedBuffer(count: number, alignment: number, type: StructLayout<unknown> | ScalarType): TypedArray {
    const op = "allocate an aligned buffer";
    const a = checkAlignment(alignment, op, native.pageSize, 16, "alignment");
    if (typeof type === "string" && Object.hasOwn(SCALARS, type)) {
      const ctor = SCALARS[type as ScalarType];
      const perElement = (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
      checkSize(count, op, "count", Math.floor(MAX_BLOCK_SIZE / perElement));
      const region = this.#live(op).texture;
      const bytes = AlignedRegion.allocate(region, op, count * perElement, Math.max(a, perElement));
      const array = new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, count);
      AlignedRegion.handOut(region, array);
      return array;
    }
    if (!isStructLayout(type)) {
      throw new TypeError(
        `Cannot ${op} as 'type' must be a scalar type (${Object.keys(SCALARS).join(", ")}) or a layout from ` +
          `struct(): current value is ${describeValue(type)}`,
      );
    }
    const bytes = checkSize(count, op, "count", Math.floor(MAX_BLOCK_SIZE / type.size)) * type.size;
    return AlignedRegion.allocate(this.#live(op).texture, op, bytes, Math.max(a, type.align));
  }

  /**
   * Gives back a block from any region: the view an `allocate*` method (or
   * a region's `alloc`, `array` or `resize`) returned for it. Another view
   * over the block's first byte (a subarray, a typed array made over it) is
   * refused ("double-free"), as `MemoryInterface.deallocate` refuses one: it
   * cannot be told from a view kept from a block given back before, whose
   * place this block took, and that must never free it. A refused call
   * changes nothing.
   * @throws {TypeError} For a non-view.
   * @throws {AllocationError} "double-free" (already given back, another view over a live block's first
   *   byte, or a view whose memory the regions' backing released: it reads as length 0), "invalid-free" (not
   *   this allocator's, or a view starting inside a block), "use-after-free" after `dispose()`.
   */
  deallocate(data: ArrayBufferView): void {
    checkView(data, "deallocate");
    const regions = this.#live("deallocate");
    for (const name of NAMES) {
      if (regions[name].owns(data)) {
        AlignedRegion.deallocate(regions[name], data);
        return;
      }
    }
    // No region holds it live. Each region judges it; the most telling answer wins: a region whose block it
    // was ("double-free"), whose heap ended ("use-after-free") or whose buffer went away ("corruption"), then
    // another allocator's block ("mismatched-allocator"), else it was never this allocator's.
    let best: AllocationError | null = null;
    for (const name of NAMES) {
      try {
        AlignedRegion.deallocate(regions[name], data); // an empty view: nothing to give back
        return;
      } catch (error) {
        if (!(error instanceof AllocationError)) throw error;
        if (best === null || RANK.indexOf(error.category) < RANK.indexOf(best.category)) best = error;
      }
    }
    if (best !== null && best.category !== "invalid-free") throw best;
    throw new AllocationError(
      "invalid-free",
      `Cannot deallocate ${describe(data)}: it was not allocated by this RegionAllocator`,
    );
  }

  /** Totals and each region's figures (zeros after `dispose()`, as an allocator's `stats()` answers then). */
  getMemoryReport(): MemoryReport {
    const regions = {} as Record<RegionName, RegionReport>;
    let allocated = 0, capacity = 0, weighted = 0;
    for (const name of NAMES) {
      const s = this.#regions[name].stats();
      regions[name] = {
        alignment: ALIGNMENTS[name],
        allocatedBytes: s.allocatedBytes,
        capacityBytes: s.capacityBytes,
        peakBytes: s.peakBytes,
        liveAllocations: s.liveAllocations,
        fragmentation: s.fragmentation,
        largestFreeBlock: s.largestFreeBlock,
      };
      allocated += s.allocatedBytes;
      capacity += s.capacityBytes;
      weighted += s.fragmentation * s.capacityBytes;
    }
    return {
      totalAllocated: allocated,
      totalCapacity: capacity,
      fragmentation: capacity > 0 ? weighted / capacity : 0,
      regions,
    };
  }

  /**
   * Returns every region's memory; every view reads as length 0 and later calls (but `getMemoryReport`)
   * throw "use-after-free", also those on the regions' allocators. A second call does nothing.
   */
  dispose(): void {
    this.#ended = true;
    // Holders of the regions' memory hear what the program did, not the dispose() of a region's heap inside
    // (which the program cannot call: a region's allocator refuses it).
    releasingFor("RegionAllocator.dispose() released it", () => {
      for (const name of NAMES) AlignedRegion.end(this.#regions[name]);
    });
  }

  /** Same as {@linkcode RegionAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #live(op: string): Record<RegionName, AlignedRegion> {
    if (this.#ended) throw new AllocationError("use-after-free", `Cannot ${op}: the RegionAllocator was disposed`);
    return this.#regions;
  }
}

function checkLayout(layout: unknown, op: string): asserts layout is StructLayout<unknown> {
  if (!isStructLayout(layout)) {
    throw new TypeError(
      `Cannot ${op} as 'layout' must be a layout from struct(): current value is ${describeValue(layout)}`,
    );
  }
}
