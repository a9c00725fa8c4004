/**
 * Uploads from memkit arrays (DynamicArray, SIMDArray, uniformArray) or any
 * typed array to GPU buffers, partial updates of dirty element ranges, and
 * readback into native memory through a staging buffer.
 *
 * @module
 */
import { byteLengthOf, checkSize, describe, isLiveArray, viewBytes, withArticle } from "../base/_validate.ts";
import { allocatorName } from "../base/_allocator_name.ts";
import { types } from "node:util";
import { intrinsic } from "../../ffi/boundary.ts";
import { AllocationError } from "../base/errors.ts";
import { arrayInternals, type DynamicArray } from "../arrays/dynamic_array.ts";
import { SharedDynamicArray } from "../arrays/shared_dynamic_array.ts";
import type { BufferRecord } from "./_buffer_registry.ts";
import type { GpuContext } from "./gpu_context.ts";
import { bufferRecord, createBufferChecked, GpuContext as GpuContextClass } from "./gpu_context.ts";
import { MAP_READ_MODE, Usage } from "./_webgpu.ts";

/** What can be uploaded: a memkit array (its elements `0..length`) or any typed array or DataView. */
// deno-lint-ignore no-explicit-any
export type GpuUploadSource = DynamicArray<any> | ArrayBufferView;

/**
 * A range of a source's elements (records of a DynamicArray, elements of a typed array).
 *
 * @example
 * ```ts
 * import type { GpuElementRange } from "@memkit/memkit";
 *
 * const dirty: GpuElementRange = { first: 100, count: 20 };
 * ```
 */
export interface GpuElementRange {
  /** The first element. */
  first: number;
  /** How many elements. */
  count: number;
}

/**
 * Options of {@linkcode writeGpuBuffer}.
 *
 * @example
 * ```ts
 * import type { GpuWriteOptions } from "@memkit/memkit";
 *
 * // Elements 10..19 and 40..41 changed: write only those, at their places in the buffer.
 * const dirty: GpuWriteOptions = { ranges: [{ first: 10, count: 10 }, { first: 40, count: 2 }] };
 * ```
 */
export interface GpuWriteOptions {
  /** Byte offset in the GPU buffer where element 0 of the source goes (a multiple of 4). @default 0 */
  offset?: number;
  /** Only these element ranges (dirty ranges), each written at its own place; each is widened to whole 4-byte words. */
  ranges?: GpuElementRange[];
}

/**
 * The source's bytes (its live elements), their real length and the size of
 * one element. A DynamicArray's come from its own state (a subclass's `bytes`
 * or `stride` getter changes nothing); no code of the program runs here. Use
 * `length`, never the bytes' own: it is where a freed source is found.
 *
 * @throws {TypeError} For anything else: the message names what is accepted, the value by its class, and what
 *   to pass instead (a SharedDynamicArray's elements copied out, a plain array or an ArrayBuffer wrapped in a view).
 * @throws {AllocationError} "use-after-free" for a freed DynamicArray, or a view over a detached buffer (a
 *   memkit block that was freed: a plain Uint8Array, handed back as is, is checked here too).
 */
export function sourceBytes(
  source: unknown,
  op: string,
  name = "source",
): { bytes: Uint8Array; length: number; element: number } {
  if (arrayInternals.isArray(source)) {
    const bytes = arrayInternals.bytesOf(source, "read the bytes of");
    return { bytes, length: intrinsic.typedArrayByteLength(bytes), element: arrayInternals.strideOf(source) };
  }
  if (!ArrayBuffer.isView(source)) throw notASource(source, op, name);
  const bytes = viewBytes(source as ArrayBufferView, op, name);
  const length = byteLengthOf(bytes, op, name);
  // The element size from internal slots (a subclass cannot fake it); a DataView's elements are bytes.
  let element = 1;
  if (intrinsic.typedArrayTag(source) !== undefined) {
    const count = intrinsic.typedArrayLength(source);
    if (count > 0) element = intrinsic.typedArrayByteLength(source) / count;
  }
  return { bytes, length, element };
}

// SharedDynamicArray's own `buffer` getter: it reads a private field, so it answers for a real one only (a
// Proxy of one, or an object made from its prototype, throws) and runs none of the program's code.
const sharedBuffer = Object.getOwnPropertyDescriptor(SharedDynamicArray.prototype, "buffer")!.get!;

function isSharedArray(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  try {
    sharedBuffer.call(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The TypeError for a source or target that is neither a memkit array nor a view: what is accepted, the
 * value by its class (read without running the program's code), and what to do instead where that is known.
 */
function notASource(value: unknown, op: string, name: string): TypeError {
  let what: string, hint = "";
  if (typeof value !== "object" || value === null) what = describe(value);
  else {
    const className = allocatorName(value); // a class name, "an object" or "a Proxy", as for a backing
    // A class name written in code takes an article; "an object", "a Proxy" and a quoted odd name stand as they are.
    what = className === "an object" || className === "a Proxy" || className[0] === '"'
      ? className
      : withArticle(className);
    if (className === "a Proxy") {
      // No hint: telling what it wraps would run its traps.
    } else if (isSharedArray(value)) {
      // Its elements sit in a SharedArrayBuffer behind a header that other threads write under a lock the GPU
      // copy cannot take: the copy could be torn. Copied out first, they go as any array does.
      hint = name === "target"
        ? " (its elements are shared: other threads may write while the GPU copies; read into a typed array or " +
          "DynamicArray of its type, then store them with pushMany() or set())"
        : " (its elements are shared: other threads may write while the GPU copies; copy them out first: " +
          "new Float32Array(shared.toArray()) for a field type such as f32, or a DynamicArray of the same layout " +
          "filled with pushMany(shared.toArray()))";
    } else if (isLiveArray(value)) {
      hint = " (wrap its numbers in a typed array: new Float32Array(values))";
    } else if (types.isAnyArrayBuffer(value)) {
      hint = " (wrap it in a view: new Uint8Array(buffer))";
    }
  }
  return new TypeError(
    `Cannot ${op} as '${name}' must be a DynamicArray or SIMDArray (uniformArray() makes one), a typed array or ` +
      `a DataView: current value is ${what}${hint}`,
  );
}

/**
 * Checks that the bytes {@linkcode sourceBytes} gave are all still there after
 * the program's code ran (a budget's reclaimers, inside the creation of a GPU
 * buffer): a source freed, moved (a DynamicArray that grew) or shrunk since
 * is "use-after-free", before anything is copied.
 */
export function checkSourceKept(bytes: Uint8Array, length: number, op: string, name = "source"): void {
  const now = intrinsic.typedArrayByteLength(bytes);
  if (now === length && (now > 0 || !intrinsic.isDetached(intrinsic.range(bytes)[0]))) return;
  throw new AllocationError(
    "use-after-free",
    `Cannot ${op} as '${name}' was freed, moved or shrunk while a GPU buffer was created for it ` +
      "(by the memory budget's reclaimers): nothing was copied",
  );
}

/**
 * memkit's record of `buffer` for use by `op` on `gpu` (see bufferRecord in gpu_context.ts):
 * sizes, usages and labels come from it, never from the object.
 */
export function checkBuffer(
  gpu: GpuContext,
  buffer: unknown,
  flag: number,
  flagName: string,
  op: string,
): BufferRecord {
  return bufferRecord(gpu, buffer, flag, flagName, op);
}

/**
 * Runs a WebGPU call whose arguments memkit checked: what it still throws is
 * the device going away under it (lost by the driver, not through
 * device.destroy()), reported as memkit's error.
 */
export function nativeCall<T>(gpu: GpuContext, op: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    gpu.checkAlive(op);
    throw new AllocationError("platform", `Cannot ${op} as WebGPU refused it: ${(error as Error)?.message}`, {
      cause: error,
    });
  }
}

function checkContext(gpu: unknown, op: string): GpuContext {
  if (!(gpu instanceof GpuContextClass)) {
    throw new TypeError(`Cannot ${op} as 'gpu' must be a GpuContext: current value is ${describe(gpu)}`);
  }
  return gpu;
}

function checkOffset(value: unknown, op: string, name: string, multiple: number): number {
  const offset = checkSize(value, op, name);
  if (offset % multiple !== 0) {
    throw new RangeError(`Cannot ${op} as '${name}' must be a multiple of ${multiple}: current value is ${offset}`);
  }
  return offset;
}

/**
 * Creates a GPU buffer holding a copy of `source` (mapped at creation, so no
 * queue write is needed), sized to the source rounded up to 4 bytes.
 *
 * @param usage The buffer's usage flags (GpuBufferUsage), e.g. VERTEX | COPY_DST.
 * @throws {TypeError} For a `gpu`, `source` or usage of the wrong type (a SharedDynamicArray is no source: the
 *   message says how to copy its elements out).
 * @throws {AllocationError} "use-after-free" for a freed array or a lost device; what {@linkcode GpuContext.createBuffer} throws.
 *
 * @example
 * ```ts
 * import { createGpuBufferFrom, GpuBufferUsage, readGpuBuffer, requestGpu, SIMDArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using gpu = await requestGpu();
 * using positions = new SIMDArray("f32x4");
 * positions.push([1, 2, 3, 4]);
 * const buffer = createGpuBufferFrom(gpu, positions, GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_SRC);
 * const back = new Float32Array(4);
 * await readGpuBuffer(gpu, buffer, back);
 * assert.deepEqual([...back], [1, 2, 3, 4]);
 * ```
 */
export function createGpuBufferFrom(
  gpu: GpuContext,
  source: GpuUploadSource,
  usage: number,
  label?: string,
): GPUBuffer {
  const op = "create a GPU buffer from an array";
  checkContext(gpu, op);
  // A detached source is use-after-free here, before anything is created; one out of bounds of its
  // shrunk buffer has no bytes (and copying it would be the engine's TypeError).
  const { bytes, length } = sourceBytes(source, op);
  const size = Math.max(4, Math.ceil(length / 4) * 4);
  // The budget's reclaimers (run inside the creation) may free the source: checked again before WebGPU runs.
  const buffer = createBufferChecked(
    gpu,
    { size, usage, label, mappedAtCreation: true },
    () => checkSourceKept(bytes, length, op),
  );
  try {
    nativeCall(gpu, op, () => {
      if (length > 0) intrinsic.set(new Uint8Array(buffer.getMappedRange(0, size)), bytes);
      buffer.unmap(); // the mapped view is detached here: nothing keeps it
    });
  } catch (error) {
    // All or nothing: the buffer goes again (the accounting with it).
    if (gpu.owns(buffer)) gpu.destroyBuffer(buffer);
    throw error;
  }
  return buffer;
}

/**
 * Writes `source` into `buffer` at `offset` through the queue (ordered with
 * submitted work: commands submitted before see the old bytes, later ones
 * the new), whole or only its dirty element ranges. Returns the bytes written.
 *
 * Ranges are widened to whole 4-byte words (WebGPU copies words), so
 * neighbouring bytes of the source are written again, unchanged.
 *
 * @throws {TypeError} When `buffer` lacks COPY_DST, or an argument has the wrong type (a SharedDynamicArray is no
 *   source: the message says how to copy its elements out).
 * @throws {RangeError} For an offset that is not a multiple of 4, a range outside the source,
 *   a source that does not fit the buffer at `offset`, or bytes that are not whole words at the source's end.
 * @throws {AllocationError} "use-after-free" for a freed array or a lost device.
 *
 * @example
 * ```ts
 * import { DynamicArray, GpuBufferUsage, readGpuBuffer, requestGpu, writeGpuBuffer } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using gpu = await requestGpu();
 * using values = new DynamicArray<number>("u32");
 * values.pushMany(new Uint32Array(64).fill(1));
 * const buffer = gpu.createBuffer({ size: 256, usage: GpuBufferUsage.STORAGE | GpuBufferUsage.COPY_DST | GpuBufferUsage.COPY_SRC });
 * writeGpuBuffer(gpu, buffer, values);
 * values.set(5, 99);
 * assert.equal(writeGpuBuffer(gpu, buffer, values, { ranges: [{ first: 5, count: 1 }] }), 4); // one word
 * const back = new Uint32Array(64);
 * await readGpuBuffer(gpu, buffer, back);
 * assert.equal(back[5], 99);
 * ```
 */
export function writeGpuBuffer(
  gpu: GpuContext,
  buffer: GPUBuffer,
  source: GpuUploadSource,
  options?: GpuWriteOptions,
): number {
  const op = "write a GPU buffer";
  checkContext(gpu, op);
  const record = checkBuffer(gpu, buffer, Usage.COPY_DST, "COPY_DST", op);
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError(`Cannot ${op} as 'options' must be an object: current value is ${describe(options)}`);
  }
  // The options (the program's getters, which may free or resize the source) are read whole before the
  // source is: from its bytes on, no code of the program runs.
  const offset = checkOffset(options?.offset ?? 0, op, "offset", 4);
  const ranges = readRanges(options?.ranges, op);
  const { bytes, length, element } = sourceBytes(source, op);
  const spans = byteSpans(ranges, length, element, op);
  const size = record.size;
  for (const [start, end] of spans) {
    if (offset + end > size) {
      throw new RangeError(
        `Cannot ${op} as bytes ${start}..${end} of the source at offset ${offset} do not fit buffer "${record.label}" of ${size} bytes`,
      );
    }
  }
  // User code (getters of options and ranges) ran above: the buffer is checked again right before the queue.
  checkBuffer(gpu, buffer, Usage.COPY_DST, "COPY_DST", op);
  let written = 0;
  const view = queueView(bytes, length);
  // Every check is done: from here on nothing throws before the queue has the bytes.
  for (const [start, end] of spans) {
    if (end === start) continue;
    nativeCall(gpu, op, () => gpu.device.queue.writeBuffer(buffer, offset + start, view, start, end - start));
    written += end - start;
  }
  return written;
}

/**
 * The view of `bytes` that WebGPU's queue gets: one memkit made from the
 * intrinsic range (bun-webgpu reads the view's own `buffer` property, and the
 * caller's may be a getter: before, Bun wrote another buffer's bytes), and a
 * copy for memory a SharedArrayBuffer holds (bun-webgpu refuses those; a copy
 * makes both runtimes take them alike).
 */
export function queueView(bytes: Uint8Array, length: number): Uint8Array<ArrayBuffer> {
  const [backing, byteOffset] = intrinsic.range(bytes);
  const view = intrinsic.uint8Array(backing, byteOffset, length);
  if (!intrinsic.isShared(backing)) return view as Uint8Array<ArrayBuffer>;
  const copy = intrinsic.uint8Array(new ArrayBuffer(length), 0, length);
  intrinsic.set(copy, view);
  return copy as Uint8Array<ArrayBuffer>;
}

// The element ranges as [first, count] pairs, each field read once (before the source is read).
function readRanges(ranges: unknown, op: string): [number, number][] | undefined {
  if (ranges === undefined) return undefined;
  if (!isLiveArray(ranges)) {
    throw new TypeError(
      `Cannot ${op} as 'ranges' must be an array of { first, count }: current value is ${describe(ranges)}`,
    );
  }
  const read: [number, number][] = [];
  const count = ranges.length;
  for (let i = 0; i < count; i++) {
    const range: unknown = ranges[i];
    if (typeof range !== "object" || range === null) {
      throw new TypeError(
        `Cannot ${op} as 'ranges[${i}]' must be { first, count }: current value is ${describe(range)}`,
      );
    }
    const first = checkSize((range as GpuElementRange).first, op, `ranges[${i}].first`);
    read.push([first, checkSize((range as GpuElementRange).count, op, `ranges[${i}].count`)]);
  }
  return read;
}

// The byte spans [start, end) of the element ranges, widened to whole words and checked against the source.
function byteSpans(
  ranges: [number, number][] | undefined,
  length: number,
  element: number,
  op: string,
): [number, number][] {
  const widen = (start: number, end: number, name: string): [number, number] => {
    const s = Math.floor(start / 4) * 4;
    const e = Math.min(Math.ceil(end / 4) * 4, length);
    if ((e - s) % 4 !== 0) {
      throw new RangeError(
        `Cannot ${op} as ${name} ends ${length % 4} bytes past a whole word at the source's end ` +
          `(WebGPU writes whole 4-byte words; give the source a length that is a multiple of 4 bytes)`,
      );
    }
    return [s, e];
  };
  if (ranges === undefined) return [widen(0, length, "the source")];
  const count = length / element;
  return ranges.map(([first, n], i) => {
    if (first + n > count) {
      throw new RangeError(
        `Cannot ${op} as 'ranges[${i}]' (${first}..${first + n}) must lie within the source's ${count} elements`,
      );
    }
    return widen(first * element, (first + n) * element, `ranges[${i}]`);
  });
}

/**
 * Reads `target.byteLength` bytes of `buffer` from `offset` into `target`
 * (native memory: any memkit block, typed array or DynamicArray; a DynamicArray
 * receives up to its length): the buffer is copied into a MAP_READ staging
 * buffer, mapped, and copied into the target. Resolves to the bytes read.
 *
 * The target is written only once the map succeeded, so a failed read
 * (device lost) leaves it as it was; a target freed while the read waits makes it
 * reject with "use-after-free" and nothing is written.
 *
 * @throws {TypeError} When `buffer` lacks COPY_SRC, or an argument has the wrong type (a SharedDynamicArray is no
 *   target: read into a typed array or DynamicArray, then store the values in it).
 * @throws {RangeError} For an offset that is not a multiple of 4, a target that is not whole words, or a range past the buffer.
 * @throws {AllocationError} "use-after-free" for a freed target or a lost device.
 *
 * @example
 * ```ts
 * import { createGpuBufferFrom, GpuBufferUsage, readGpuBuffer, requestGpu, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using gpu = await requestGpu();
 * const buffer = createGpuBufferFrom(gpu, new Uint32Array([1, 2, 3, 4]), GpuBufferUsage.COPY_SRC);
 * using allocator = new SystemAllocator();
 * const into = allocator.array(Uint32Array, 2); // native memory
 * await readGpuBuffer(gpu, buffer, into, { offset: 8 });
 * assert.deepEqual([...into], [3, 4]);
 * allocator.free(into);
 * ```
 */
export async function readGpuBuffer(
  gpu: GpuContext,
  buffer: GPUBuffer,
  target: GpuUploadSource,
  options?: { offset?: number },
): Promise<number> {
  const op = "read a GPU buffer";
  checkContext(gpu, op);
  checkBuffer(gpu, buffer, Usage.COPY_SRC, "COPY_SRC", op);
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError(`Cannot ${op} as 'options' must be an object: current value is ${describe(options)}`);
  }
  if (target === undefined) {
    throw new TypeError(
      `Cannot ${op} without a target: pass the typed array, memkit block or DynamicArray the bytes go into as ` +
        "the third argument (readGpuBuffer(gpu, buffer, target, { offset }))",
    );
  }
  const offset = checkOffset(options?.offset ?? 0, op, "offset", 4);
  const { bytes: into, length: size } = sourceBytes(target, op, "target");
  if (size % 4 !== 0) {
    throw new RangeError(`Cannot ${op} as the target must be whole 4-byte words: it has ${size} bytes`);
  }
  // User code (the options' getters, a DynamicArray's length) ran above: the buffer is checked again.
  const record = checkBuffer(gpu, buffer, Usage.COPY_SRC, "COPY_SRC", op);
  if (offset + size > record.size) {
    throw new RangeError(
      `Cannot ${op} as bytes ${offset}..${
        offset + size
      } lie past the end of buffer "${record.label}" (${record.size} bytes)`,
    );
  }
  if (size === 0) return 0;
  // The budget's reclaimers (run inside the creation) may destroy or map the buffer, or free the target:
  // both are checked again before WebGPU runs.
  const staging = createBufferChecked(
    gpu,
    { size, usage: Usage.MAP_READ | Usage.COPY_DST, label: "memkit readback" },
    () => {
      checkBuffer(gpu, buffer, Usage.COPY_SRC, "COPY_SRC", op);
      checkSourceKept(into, size, op, "target");
    },
  );
  try {
    // A copy WebGPU refuses still lets the staging buffer map (as zeros): the
    // validation scope tells, and the target is left alone then.
    const refused = nativeCall(gpu, op, () => {
      gpu.device.pushErrorScope("validation");
      const encoder = gpu.device.createCommandEncoder();
      encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
      gpu.device.queue.submit([encoder.finish()]);
      return gpu.device.popErrorScope();
    });
    let error: GPUError | null;
    try {
      [error] = await Promise.all([refused, staging.mapAsync(MAP_READ_MODE, 0, size)]);
    } catch (error) {
      gpu.checkAlive(op); // a lost device explains the failure better
      throw new AllocationError("platform", `Cannot ${op} as mapping the staging buffer failed`, { cause: error });
    }
    // The device may have gone while the map waited (the bytes are then not to be trusted).
    gpu.checkAlive(op);
    if (error !== null) {
      throw new AllocationError("platform", `Cannot ${op} as WebGPU refused the copy: ${error.message}`);
    }
    // The target may have been freed while the map waited: its bytes are fetched (and checked) again.
    const now = sourceBytes(target, op, "target");
    if (now.length < size) {
      throw new AllocationError(
        "use-after-free",
        `Cannot ${op} as the target shrank or was released while the read waited`,
      );
    }
    const mapped = nativeCall(gpu, op, () => new Uint8Array(staging.getMappedRange(0, size)));
    intrinsic.set(now.bytes, mapped); // the engine's own set: an own or patched `set` changes nothing
    return size;
  } finally {
    // Detaches the mapped view; the bytes were taken, so a device lost by now changes nothing.
    try {
      if (staging.mapState === "mapped") staging.unmap();
    } catch {
      // gone with its device
    }
    if (gpu.owns(staging)) gpu.destroyBuffer(staging);
  }
}
