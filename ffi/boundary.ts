/**
 * The checked side of the native boundary (the safety model: lengths cannot be faked): every length,
 * offset and count that reaches a kernel is checked here, in one place,
 * against the real byte length of the typed arrays it is about.
 *
 * "Real" means read through the engine's own getters, captured when this
 * module loads (`%TypedArray%.prototype.byteLength`, `ArrayBuffer.prototype
 * .detached`, ...). An own `length` property, a subclass getter, or an own
 * `byteLength`/`byteOffset`/`buffer` property changes nothing; a Proxy is not
 * a typed array to these getters, so it is a TypeError. The intrinsic
 * `byteLength` of a view over a detached buffer, or of a fixed-length view
 * that a shrunk resizable buffer no longer covers, is 0.
 *
 * Errors follow the error contract: a wrong type is a TypeError, a count the arrays do
 * not cover a RangeError, and a count over a detached buffer (freed memory)
 * `AllocationError("use-after-free")`; the engine's "detached ArrayBuffer"
 * TypeError never reaches the caller. Checks run before the implementation
 * (libmemkit or the TypeScript fallback), so both see only valid calls.
 *
 * Cost: one intrinsic getter call per array argument and a few integer tests
 * per count; no allocation. Element types are not checked: memory safety
 * depends on bytes only, and a caller passing another element type than the
 * kernel names gets other numbers, never another memory access.
 *
 * @module
 */
// The error class is the contract both layers share (the error contract); errors.ts
// imports nothing, so this adds no cycle.
import { AllocationError } from "../src/base/errors.ts";
import type { KernelImpl, Kernels } from "./types.ts";

type Getter<T> = (this: unknown) => T;

// The safety model assumes these are the engine's own functions: code that
// runs before memkit loads can replace them (as it could replace anything a
// library captures), and that is outside what memkit can defend. A plain
// replacement (a JavaScript function, or a bound one) is caught here, and
// memkit refuses to load rather than trust it.
const functionSource = Function.prototype.toString;

function checkNative(fn: unknown, name: string, what: string): void {
  if (
    typeof fn !== "function" || fn.name !== name || !/\{\s*\[native code\]\s*\}\s*$/.test(functionSource.call(fn))
  ) {
    throw new Error(
      `memkit cannot load: ${what} was replaced before memkit loaded, so memkit could not trust it to read ` +
        "lengths or release views; import memkit before code that patches built-in prototypes",
    );
  }
}

function getter<T>(target: object, key: PropertyKey): Getter<T> {
  const get = Object.getOwnPropertyDescriptor(target, key)?.get;
  if (typeof get !== "function") throw new Error(`memkit: this runtime has no ${String(key)} getter`);
  const name = typeof key === "symbol" ? `get [${key.description}]` : `get ${key}`;
  checkNative(get, name, `the ${String(key)} getter`);
  return get as Getter<T>;
}

const TypedArrayPrototype: object = Object.getPrototypeOf(Uint8Array.prototype);
const taByteLength = getter<number>(TypedArrayPrototype, "byteLength");
const taByteOffset = getter<number>(TypedArrayPrototype, "byteOffset");
const taLength = getter<number>(TypedArrayPrototype, "length");
const taBuffer = getter<ArrayBufferLike>(TypedArrayPrototype, "buffer");
const taTag = getter<string | undefined>(TypedArrayPrototype, Symbol.toStringTag);
const dvByteLength = getter<number>(DataView.prototype, "byteLength");
const dvByteOffset = getter<number>(DataView.prototype, "byteOffset");
const dvBuffer = getter<ArrayBufferLike>(DataView.prototype, "buffer");
const abByteLength = getter<number>(ArrayBuffer.prototype, "byteLength");
const abDetached = getter<boolean>(ArrayBuffer.prototype, "detached");
const abResizable = getter<boolean>(ArrayBuffer.prototype, "resizable");
const sabByteLength = getter<number>(SharedArrayBuffer.prototype, "byteLength");
const getPrototypeOf = Object.getPrototypeOf;
const isView = ArrayBuffer.isView;
const Uint8ArrayConstructor = Uint8Array;
const Uint8ArrayPrototype = Uint8Array.prototype;
const fill = (TypedArrayPrototype as Uint8Array).fill as (
  this: unknown,
  value: number,
  start?: number,
  end?: number,
) => unknown;
const set = (TypedArrayPrototype as Uint8Array).set as (
  this: unknown,
  source: ArrayLike<number>,
  offset?: number,
) => void;
const transfer = ArrayBuffer.prototype.transfer as (this: unknown, length?: number) => ArrayBuffer;
const copyWithin = (TypedArrayPrototype as Uint8Array).copyWithin as (
  this: unknown,
  target: number,
  start: number,
  end: number,
) => unknown;
checkNative(fill, "fill", "TypedArray.prototype.fill");
checkNative(set, "set", "TypedArray.prototype.set");
checkNative(copyWithin, "copyWithin", "TypedArray.prototype.copyWithin");
checkNative(transfer, "transfer", "ArrayBuffer.prototype.transfer");

/**
 * `%TypedArray%.prototype.byteLength`'s getter itself, for hot paths that call
 * it directly (`typedArrayByteLength.call(view)`): in Bun, a wrapper function
 * around it costs as much again. Throws TypeError for a non-typed-array.
 */
export const typedArrayByteLength: (this: unknown) => number = taByteLength;

// A DataView's offset or length: 0 when detached or out of bounds (its getters throw then).
function dataViewPart(get: Getter<number>, view: unknown): number {
  if (!isView(view)) return get.call(view); // not a view at all: the getter's TypeError
  try {
    return get.call(view);
  } catch {
    return 0;
  }
}

/** Whether `buffer` is an ArrayBuffer that has been detached (a SharedArrayBuffer never is). */
function isDetached(buffer: ArrayBufferLike): boolean {
  try {
    return abDetached.call(buffer);
  } catch {
    return false; // a SharedArrayBuffer
  }
}

/**
 * The engine's own view accessors, captured at load: what `src/` uses where a
 * length must not be faked (`simd`, `addressOf`). Every function here reads
 * internal slots, never a property a user can define.
 */
export const intrinsic = {
  /** A typed array's real byte length (0 when detached or out of bounds); throws TypeError for anything else. */
  typedArrayByteLength(view: unknown): number {
    return taByteLength.call(view);
  },
  /** Any typed array's or DataView's real byte length (0 when detached or out of bounds); TypeError for others. */
  byteLength(view: unknown): number {
    try {
      return taByteLength.call(view);
    } catch (error) {
      if (!isView(view)) throw error;
    }
    try {
      return dvByteLength.call(view);
    } catch {
      return 0; // detached, or out of bounds of a shrunk resizable buffer
    }
  },
  /** A typed array's real element count (0 when detached or out of bounds). */
  typedArrayLength(view: unknown): number {
    return taLength.call(view);
  },
  /**
   * The byte range of any typed array or DataView from internal slots:
   * `[buffer, byteOffset, byteLength]`, with 0 offset and length for a view
   * its buffer no longer covers. Throws TypeError for a non-view.
   */
  range(view: ArrayBufferView): [ArrayBufferLike, number, number] {
    try {
      const length = taByteLength.call(view);
      return [taBuffer.call(view), taByteOffset.call(view), length]; // byteOffset reads 0 when out of bounds
    } catch (error) {
      if (!isView(view)) throw error;
    }
    const buffer = dvBuffer.call(view);
    try {
      return [buffer, dvByteOffset.call(view), dvByteLength.call(view)];
    } catch {
      return [buffer, 0, 0]; // detached, or out of bounds of a shrunk resizable buffer
    }
  },
  /**
   * The buffer of any typed array or DataView, from its internal slot (an own
   * `buffer` property or a subclass getter is never read). The allocators use
   * it to find the block a view belongs to.
   */
  bufferOf(view: ArrayBufferView): ArrayBufferLike {
    // The typed-array getter throws for a DataView (rare here): only then is the DataView's asked.
    try {
      return taBuffer.call(view);
    } catch {
      return dvBuffer.call(view);
    }
  },
  /** The byte offset of any typed array or DataView, from its internal slot (0 when detached). */
  offsetOf(view: ArrayBufferView): number {
    try {
      return taByteOffset.call(view);
    } catch {
      return dataViewPart(dvByteOffset, view);
    }
  },
  /** The byte length of any typed array or DataView, from its internal slot (0 when detached). */
  lengthOf(view: ArrayBufferView): number {
    try {
      return taByteLength.call(view);
    } catch {
      return dataViewPart(dvByteLength, view);
    }
  },
  /** The name of a typed array's type ("Uint8Array"), or undefined for anything else (no user code runs). */
  typedArrayTag(value: unknown): string | undefined {
    return taTag.call(value);
  },
  /** A buffer's real byte length (ArrayBuffer or SharedArrayBuffer; 0 when detached). */
  bufferByteLength(buffer: ArrayBufferLike): number {
    try {
      return abByteLength.call(buffer);
    } catch {
      return sabByteLength.call(buffer);
    }
  },
  isDetached,
  /** Whether `buffer` is a SharedArrayBuffer (its internal slots tell: no `Symbol.hasInstance` runs). */
  isShared(buffer: ArrayBufferLike): boolean {
    try {
      abByteLength.call(buffer);
      return false;
    } catch {
      return true;
    }
  },
  /**
   * Whether `buffer` is a resizable ArrayBuffer: shrinking it gives its pages back to the engine, so native
   * code holding its address would reach released memory. (A growable SharedArrayBuffer never shrinks.)
   */
  isResizable(buffer: ArrayBufferLike): boolean {
    try {
      return abResizable.call(buffer);
    } catch {
      return false; // a SharedArrayBuffer
    }
  },
  /**
   * Whether `view` is exactly a Uint8Array (not a subclass), so its bytes can
   * be indexed directly. Only a prototype swapped with `Object.setPrototypeOf`
   * fools it, and that changes which elements JavaScript reads, never how many
   * bytes a kernel touches: those always come from the intrinsic byteLength.
   */
  isPlainUint8Array(view: unknown): view is Uint8Array {
    return getPrototypeOf(view) === Uint8ArrayPrototype;
  },
  /** A plain Uint8Array over `[byteOffset, byteOffset + byteLength)` of `buffer` (no user code runs). */
  uint8Array(buffer: ArrayBufferLike, byteOffset: number, byteLength: number): Uint8Array {
    return new Uint8ArrayConstructor(buffer, byteOffset, byteLength);
  },
  /** `%TypedArray%.prototype.fill`, immune to subclasses. */
  fill(view: Uint8Array, byte: number, start?: number, end?: number): void {
    fill.call(view, byte, start, end);
  },
  /** `%TypedArray%.prototype.set` (memmove for overlapping typed arrays), immune to subclasses. */
  set(target: Uint8Array, source: Uint8Array, offset = 0): void {
    set.call(target, source, offset);
  },
  /** `%TypedArray%.prototype.copyWithin`, immune to subclasses and to a prototype patched after load. */
  copyWithin(view: Uint8Array, target: number, start: number, end: number): void {
    copyWithin.call(view, target, start, end);
  },
  /**
   * A copy of `length` bytes of `view` from `start` in a fresh Uint8Array
   * (where `slice` would ask the view's constructor, which code can patch).
   */
  copyOf(view: Uint8Array, start = 0, length: number = intrinsic.lengthOf(view) - start): Uint8Array {
    const copy = new Uint8ArrayConstructor(length);
    set.call(copy, new Uint8ArrayConstructor(intrinsic.bufferOf(view), intrinsic.offsetOf(view) + start, length));
    return copy;
  },
  /**
   * Detaches `buffer` through the engine's own `ArrayBuffer.prototype.transfer(0)`
   * (a `transfer` property put on the buffer is never called); the memory it covered is left alone.
   */
  detach(buffer: ArrayBufferLike): void {
    transfer.call(buffer, 0);
  },
} as const;

function describe(value: unknown): string {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) {
    return typeof value === "string" ? JSON.stringify(value) : typeof value === "bigint" ? `${value}n` : String(value);
  }
  if (isView(value)) {
    const [, , bytes] = intrinsic.range(value);
    return `${Object.prototype.toString.call(value).slice(8, -1)}(${bytes} bytes)`;
  }
  return Object.prototype.toString.call(value);
}

/** The real byte length of a kernel's array argument; TypeError for a non-typed-array (a Proxy included). */
function bytesOf(view: unknown, op: string, name: string): number {
  try {
    return taByteLength.call(view);
  } catch {
    throw new TypeError(
      `Cannot run the ${op} kernel as '${name}' must be a typed array: current value is ${describe(view)}`,
    );
  }
}

/** Throws AllocationError("use-after-free") when `view` (a typed array) is over a detached buffer. */
function checkAttached(view: unknown, op: string, name: string): void {
  if (isDetached(taBuffer.call(view))) {
    throw new AllocationError(
      "use-after-free",
      `Cannot run the ${op} kernel as '${name}' is a view over a detached ArrayBuffer: its memory was released`,
    );
  }
}

// Why `bytes` is fewer than `need`: freed memory, or a count the array does not cover.
function tooShort(view: unknown, bytes: number, need: number, op: string, name: string, what: string): never {
  if (bytes === 0) checkAttached(view, op, name);
  throw new RangeError(
    `Cannot run the ${op} kernel as '${name}' must hold ${what} = ${need} bytes: it holds ${bytes} (${describe(view)})`,
  );
}

/** A count: a non-negative safe integer. */
function count(value: unknown, op: string, name: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot run the ${op} kernel as '${name}' must be a number: current value is ${describe(value)}`,
    );
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot run the ${op} kernel as '${name}' must be a non-negative integer: current value is ${describe(value)}`,
    );
  }
  return value;
}

function scalar(value: unknown, op: string, name: string): void {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot run the ${op} kernel as '${name}' must be a number: current value is ${describe(value)}`,
    );
  }
}

/** `view` holds at least `floats` float32 values. */
function floats(view: unknown, n: number, op: string, name: string, what: string): void {
  const bytes = bytesOf(view, op, name);
  if (n * 4 > bytes) tooShort(view, bytes, n * 4, op, name, what);
}

// dims components every stride floats: 1 <= dims <= stride. The SIMD paths for
// stride 4 load all four floats of each vector, the last one's padding
// included, so a strided array must hold count × stride floats, not
// (count - 1) × stride + dims.
function strided(c: unknown, stride: unknown, dims: unknown, op: string): number {
  const n = count(c, op, "count");
  const s = count(stride, op, "stride");
  const d = count(dims, op, "dims");
  if (d < 1 || d > s) {
    throw new RangeError(
      `Cannot run the ${op} kernel as 'dims' must be from 1 to 'stride' (${s}): current value is ${d}`,
    );
  }
  return n * s;
}

/**
 * Wraps a kernel implementation so every call is checked first. The result
 * is what `native.kernels` holds, for libmemkit and for the TypeScript
 * fallback alike. `compareAll` runs inputs shorter than `jsBelowBytes` as a
 * JavaScript loop, where one FFI call would cost more than the work.
 */
export function checkedKernels(impl: KernelImpl, jsBelowBytes = 0): Kernels {
  return {
    compareAll(a, b) {
      // Two intrinsic getter calls in all: `simd.compare` and `simd.equals`
      // read no length of their own.
      const x = bytesOf(a, "compare", "a");
      const y = bytesOf(b, "compare", "b");
      if (x === 0) checkAttached(a, "compare", "a");
      if (y === 0) checkAttached(b, "compare", "b");
      const n = x < y ? x : y;
      let at = -1;
      if (n >= jsBelowBytes) {
        if (n > 0) at = impl.compare(a, b, n);
      } else {
        for (let i = 0; i < n; i++) {
          if (a[i] !== b[i]) {
            at = i;
            break;
          }
        }
      }
      return at >= 0 || x === y ? at : n;
    },
    copy(dst, src) {
      const n = bytesOf(src, "copy", "src");
      const room = bytesOf(dst, "copy", "dst");
      if (n > room) tooShort(dst, room, n, "copy", "dst", "the bytes of 'src'");
      if (n === 0) {
        checkAttached(src, "copy", "src");
        return checkAttached(dst, "copy", "dst");
      }
      impl.copy(dst, src, n);
    },
    fill(dst, byte) {
      const n = bytesOf(dst, "fill", "dst");
      scalar(byte, "fill", "byte");
      if (!Number.isInteger(byte) || byte < 0 || byte > 255) {
        throw new RangeError(
          `Cannot run the fill kernel as 'byte' must be an integer from 0 to 255: current value is ${describe(byte)}`,
        );
      }
      if (n === 0) return checkAttached(dst, "fill", "dst");
      impl.fill(dst, byte, n);
    },
    compare(a, b, bytes) {
      const n = count(bytes, "compare", "bytes");
      const x = bytesOf(a, "compare", "a");
      const y = bytesOf(b, "compare", "b");
      if (n > x) tooShort(a, x, n, "compare", "a", "'bytes'");
      if (n > y) tooShort(b, y, n, "compare", "b", "'bytes'");
      return n === 0 ? -1 : impl.compare(a, b, n);
    },
    f32Scale(x, n, k) {
      count(n, "f32Scale", "n");
      scalar(k, "f32Scale", "k");
      floats(x, n, "f32Scale", "x", "n floats");
      if (n) impl.f32Scale(x, n, k);
    },
    f32Add(y, x, n) {
      count(n, "f32Add", "n");
      floats(y, n, "f32Add", "y", "n floats");
      floats(x, n, "f32Add", "x", "n floats");
      if (n) impl.f32Add(y, x, n);
    },
    f32Sub(y, x, n) {
      count(n, "f32Sub", "n");
      floats(y, n, "f32Sub", "y", "n floats");
      floats(x, n, "f32Sub", "x", "n floats");
      if (n) impl.f32Sub(y, x, n);
    },
    f32Axpy(y, a, x, n) {
      count(n, "f32Axpy", "n");
      scalar(a, "f32Axpy", "a");
      floats(y, n, "f32Axpy", "y", "n floats");
      floats(x, n, "f32Axpy", "x", "n floats");
      if (n) impl.f32Axpy(y, a, x, n);
    },
    f32Dot(a, b, n) {
      count(n, "f32Dot", "n");
      floats(a, n, "f32Dot", "a", "n floats");
      floats(b, n, "f32Dot", "b", "n floats");
      return n ? impl.f32Dot(a, b, n) : 0;
    },
    f32Sum(x, n) {
      count(n, "f32Sum", "n");
      floats(x, n, "f32Sum", "x", "n floats");
      return n ? impl.f32Sum(x, n) : 0;
    },
    f32Magnitudes(v, c, stride, dims, out) {
      const need = strided(c, stride, dims, "f32Magnitudes");
      floats(v, need, "f32Magnitudes", "v", "count × stride floats");
      floats(out, c, "f32Magnitudes", "out", "count floats");
      if (c) impl.f32Magnitudes(v, c, stride, dims, out);
    },
    f32Dots(a, b, c, stride, dims, out) {
      const need = strided(c, stride, dims, "f32Dots");
      floats(a, need, "f32Dots", "a", "count × stride floats");
      floats(b, need, "f32Dots", "b", "count × stride floats");
      floats(out, c, "f32Dots", "out", "count floats");
      if (c) impl.f32Dots(a, b, c, stride, dims, out);
    },
    f32Normalize(v, c, stride, dims) {
      const need = strided(c, stride, dims, "f32Normalize");
      floats(v, need, "f32Normalize", "v", "count × stride floats");
      if (c) impl.f32Normalize(v, c, stride, dims);
    },
  };
}
