// Reading and writing one element of a DynamicArray or SharedDynamicArray:
// a scalar, a vector, or a record of a StructLayout.
//
// Writing is all or nothing (DESIGN §2 rule 5). A write first reads the value
// (each field once: getters, Proxies and array elements run here, and only
// here) and checks all of it, then asks its Target for the slot
// (`claim()`: where memkit looks at and changes its own state, grows the
// storage, takes a lock), then stores. User code never runs after the claim,
// so it cannot see or change a half-written element, and a value that fails
// its check changes nothing.
import { describe } from "../base/_validate.ts";
import { FIELD_TYPES, type FieldType, type StructField, type StructLayout } from "./struct.ts";

/** A field's value: a number, a bigint (i64/u64), or an array of numbers (vector types). */
export type FieldValue = number | bigint | readonly number[];

// ------------------------------------------------------------ intrinsics
// The engine's own accessors, captured once: an own property, a subclass
// getter or a Proxy cannot change what they report (DESIGN §2 rule 3).

type Getter<T> = (this: unknown) => T;
const TypedArrayPrototype: object = Object.getPrototypeOf(Uint8Array.prototype);
function getter<T>(target: object, key: PropertyKey): Getter<T> {
  return Object.getOwnPropertyDescriptor(target, key)!.get! as Getter<T>;
}
const taTag = getter<string | undefined>(TypedArrayPrototype, Symbol.toStringTag);
const taLength = getter<number>(TypedArrayPrototype, "length");
const taByteLength = getter<number>(TypedArrayPrototype, "byteLength");
const taByteOffset = getter<number>(TypedArrayPrototype, "byteOffset");
const taBuffer = getter<ArrayBufferLike>(TypedArrayPrototype, "buffer");
const dvByteLength = getter<number>(DataView.prototype, "byteLength");
const dvByteOffset = getter<number>(DataView.prototype, "byteOffset");
const dvBuffer = getter<ArrayBufferLike>(DataView.prototype, "buffer");
const isView = ArrayBuffer.isView;

/** The typed array class name of `value` ("Float32Array", ...), or undefined for anything else (a DataView, a Proxy, a fake). */
export function typedArrayKind(value: unknown): string | undefined {
  return taTag.call(value);
}

/** A real typed array's element count (0 when its buffer is detached); only call it after typedArrayKind(). */
export function typedArrayLength(view: unknown): number {
  return taLength.call(view);
}

/**
 * The bytes of any typed array or DataView, read from internal slots: a
 * fresh Uint8Array over the same memory (empty when the buffer is detached or
 * no longer covers the view), or null for anything that is not a view.
 */
export function bytesOfView(value: unknown): Uint8Array | null {
  if (!isView(value)) return null;
  if (taTag.call(value) !== undefined) {
    return new Uint8Array(taBuffer.call(value), taByteOffset.call(value), taByteLength.call(value));
  }
  try {
    return new Uint8Array(dvBuffer.call(value), dvByteOffset.call(value), dvByteLength.call(value));
  } catch {
    return new Uint8Array(0); // a DataView over a detached (or shrunk) buffer
  }
}

/**
 * The parts of a block an allocator returned, from internal slots, or a
 * reason it cannot be used: not a Uint8Array, fewer than `size` bytes
 * (detached buffers have none), or an offset in its buffer that typed arrays
 * of 8-byte elements cannot start at.
 */
export function blockParts(value: unknown, size: number): [ArrayBufferLike, number, number] | string {
  if (taTag.call(value) !== "Uint8Array") return `${describe(value)} is not a Uint8Array`;
  const length = taByteLength.call(value);
  if (length < size) {
    return length === 0 ? "its buffer is detached (that memory was released)" : `it has ${length} of ${size} bytes`;
  }
  const offset = taByteOffset.call(value);
  if (offset % 8 !== 0) return `it starts at byte ${offset} of its buffer, not a multiple of 8`;
  return [taBuffer.call(value), offset, length];
}

// ------------------------------------------------------------ element kinds

// Vector types' element counts as stored (f32x3 writes 3 of its 4 floats).
const VECTOR_COUNT: Partial<Record<FieldType, number>> = {
  f32x2: 2,
  f32x3: 3,
  f32x4: 4,
  i32x4: 4,
  u32x4: 4,
  f32x4x4: 16,
};

type Kind = "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "u64" | "f32" | "f64";

/** The element kind a field stores: a vector type's lanes, or the scalar itself. */
function kindOf(type: FieldType): Kind {
  return (type.startsWith("i32")
    ? "i32"
    : type.startsWith("u32")
    ? "u32"
    : type.startsWith("f32")
    ? "f32"
    : type) as Kind;
}

// Integer kinds' ranges; a value outside is a RangeError unless the array wraps.
const INT_RANGE: Partial<Record<Kind, [number, number]>> = {
  i8: [-128, 127],
  u8: [0, 255],
  i16: [-32768, 32767],
  u16: [0, 65535],
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u32: [0, 2 ** 32 - 1],
};
const I64_MIN = -(2n ** 63n), I64_MAX = 2n ** 63n - 1n, U64_MAX = 2n ** 64n - 1n;

// The same checks as source text for the generated writer: true when `v` (already
// known to be a number, or a bigint for 64-bit kinds) must go to the checked path.
const OUT_OF_RANGE: Record<Kind, (v: string) => string | null> = {
  i8: (v) => `((${v} << 24) >> 24) !== ${v}`,
  u8: (v) => `(${v} & 255) !== ${v}`,
  i16: (v) => `((${v} << 16) >> 16) !== ${v}`,
  u16: (v) => `(${v} & 65535) !== ${v}`,
  i32: (v) => `(${v} | 0) !== ${v}`,
  u32: (v) => `(${v} >>> 0) !== ${v}`,
  i64: (v) => `BigInt.asIntN(64, ${v}) !== ${v}`,
  u64: (v) => `BigInt.asUintN(64, ${v}) !== ${v}`,
  f32: () => null,
  f64: () => null,
};

// Errors the checks below made (encodeMany names the element in them; a getter's own errors pass unchanged).
const checkErrors = new WeakSet<Error>();
function fail<E extends Error>(error: E): E {
  checkErrors.add(error);
  return error;
}

const WRAP_HINT = "(create the array with { wrap: true } to store it wrapped, as C converts integers)";

// Checks one number for `kind` and returns what to store. Strict: integers
// must fit; with `wrap`, any number is converted as C (and a typed array)
// would: truncated toward zero, then taken modulo 2^bits (NaN and ±Infinity as 0).
function scalarValue(kind: Kind, x: unknown, wrap: boolean, what: string): number | bigint {
  if (kind === "i64" || kind === "u64") {
    let big: bigint;
    if (typeof x === "bigint") big = x;
    else if (typeof x === "number") {
      if (Number.isInteger(x)) big = BigInt(x);
      else if (wrap) big = Number.isFinite(x) ? BigInt(Math.trunc(x)) : 0n;
      else {throw fail(
          new RangeError(`Cannot store ${what} as a ${kind} must be an integer ${WRAP_HINT}: got ${describe(x)}`),
        );}
    } else {
      throw fail(new TypeError(`Cannot store ${what} as a ${kind} must be a bigint or a number: got ${describe(x)}`));
    }
    if (wrap) return kind === "i64" ? BigInt.asIntN(64, big) : BigInt.asUintN(64, big);
    const [min, max] = kind === "i64" ? [I64_MIN, I64_MAX] : [0n, U64_MAX];
    if (big < min || big > max) {
      throw fail(
        new RangeError(`Cannot store ${what} as a ${kind} must be from ${min} to ${max} ${WRAP_HINT}: got ${big}n`),
      );
    }
    return big;
  }
  if (typeof x !== "number") {
    throw fail(new TypeError(`Cannot store ${what} as a ${kind} must be a number: got ${describe(x)}`));
  }
  const range = INT_RANGE[kind];
  if (range === undefined || wrap) return x;
  if (!Number.isInteger(x) || x < range[0] || x > range[1]) {
    throw fail(
      new RangeError(
        `Cannot store ${what} as a ${kind} must be an integer from ${range[0]} to ${range[1]} ${WRAP_HINT}: got ${
          describe(x)
        }`,
      ),
    );
  }
  return x;
}

const SET = {
  i8: (v: DataView, p: number, x: number | bigint) => v.setInt8(p, x as number),
  u8: (v: DataView, p: number, x: number | bigint) => v.setUint8(p, x as number),
  i16: (v: DataView, p: number, x: number | bigint) => v.setInt16(p, x as number, true),
  u16: (v: DataView, p: number, x: number | bigint) => v.setUint16(p, x as number, true),
  i32: (v: DataView, p: number, x: number | bigint) => v.setInt32(p, x as number, true),
  u32: (v: DataView, p: number, x: number | bigint) => v.setUint32(p, x as number, true),
  i64: (v: DataView, p: number, x: number | bigint) => v.setBigInt64(p, x as bigint, true),
  u64: (v: DataView, p: number, x: number | bigint) => v.setBigUint64(p, x as bigint, true),
  f32: (v: DataView, p: number, x: number | bigint) => v.setFloat32(p, x as number, true),
  f64: (v: DataView, p: number, x: number | bigint) => v.setFloat64(p, x as number, true),
};

const GET = {
  i8: (v: DataView, p: number) => v.getInt8(p),
  u8: (v: DataView, p: number) => v.getUint8(p),
  i16: (v: DataView, p: number) => v.getInt16(p, true),
  u16: (v: DataView, p: number) => v.getUint16(p, true),
  i32: (v: DataView, p: number) => v.getInt32(p, true),
  u32: (v: DataView, p: number) => v.getUint32(p, true),
  i64: (v: DataView, p: number) => v.getBigInt64(p, true),
  u64: (v: DataView, p: number) => v.getBigUint64(p, true),
  f32: (v: DataView, p: number) => v.getFloat32(p, true),
  f64: (v: DataView, p: number) => v.getFloat64(p, true),
};

/** One field (or the whole element of a scalar or vector type): where, and how to check, store and read it. */
interface Field {
  name: string | null;
  offset: number;
  kind: Kind;
  /** 1 for scalars, else the vector's element count. */
  count: number;
}

// Checks `x` for `field` (reading a vector's length and elements once each)
// and stores it in the scratch `view` at `at`. Throws before storing anything
// of this field when any part is wrong.
function stageField(field: Field, x: unknown, wrap: boolean, view: DataView, at: number, what: string): void {
  const { kind, count } = field;
  const put = SET[kind];
  if (count === 1) {
    put(view, at, scalarValue(kind, x, wrap, what));
    return;
  }
  let length: number;
  const tag = typedArrayKind(x);
  if (tag !== undefined && tag !== "BigInt64Array" && tag !== "BigUint64Array") length = taLength.call(x);
  else if (Array.isArray(x)) length = x.length;
  else {
    throw fail(new TypeError(`Cannot store ${what} as it must be an array of ${count} numbers: got ${describe(x)}`));
  }
  if (length !== count) {
    throw fail(new RangeError(`Cannot store ${what} as it must hold ${count} numbers: got ${describe(length)}`));
  }
  const values: unknown[] = new Array(count);
  for (let i = 0; i < count; i++) values[i] = (x as ArrayLike<unknown>)[i];
  const checked = values.map((v, i) => scalarValue(kind, v, wrap, `${what}[${i}]`));
  for (let i = 0; i < count; i++) put(view, at + i * 4, checked[i]);
}

// ------------------------------------------------------------ views and targets

/** Typed arrays over one storage block, as the generated code reads and writes it (absent kinds are null). */
export interface Views {
  u8: Uint8Array;
  i8: Int8Array | null;
  u16: Uint16Array | null;
  i16: Int16Array | null;
  u32: Uint32Array;
  i32: Int32Array | null;
  f32: Float32Array | null;
  f64: Float64Array | null;
  i64: BigInt64Array | null;
  u64: BigUint64Array | null;
}

type ViewKind = Exclude<keyof Views, "u8" | "u32">;

const VIEW_TYPES = {
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  i32: Int32Array,
  f32: Float32Array,
  f64: Float64Array,
  i64: BigInt64Array,
  u64: BigUint64Array,
} as const;

const ELEMENT_SIZE: Record<keyof Views, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  f64: 8,
  i64: 8,
  u64: 8,
};

/**
 * Where a checked element goes. The writer takes slot `next` at once when
 * `next < limit` and `bytes` is not detached (the hot path of push: memkit
 * keeps `limit` at 0 whenever it must look first), else it calls `claim()`.
 * Either runs after every piece of user code the write involves and before
 * any byte is stored. `claim()` checks and changes memkit's own state (grows
 * the storage, counts the element, takes a lock) and returns the element's
 * index; `views` and `bytes` are then the current storage. Nothing after the
 * claim can fail.
 */
export interface Target {
  /** The next free slot (for push: the array's length). */
  next: number;
  /** Slots below this are free to take without claim(): 0 when claim() must decide. */
  limit: number;
  claim(): number;
  /** Typed arrays for the generated writer (non-null whenever the codec has one). */
  views: Views | null;
  /** The storage's bytes from element 0. */
  bytes: Uint8Array;
}

/** Takes the slot the way the generated writer does: `next` while under `limit`, else `claim()`. */
function claimOf(target: Target): number {
  const index = target.next;
  if (index < target.limit && target.bytes.length !== 0) {
    target.next = index + 1;
    return index;
  }
  return target.claim();
}

/** A fresh buffer filled one element after the other (pushMany's staging). */
class BufferTarget implements Target {
  next = 0;
  limit: number;
  views: Views | null;
  bytes: Uint8Array;
  constructor(bytes: Uint8Array, views: Views | null, count: number) {
    this.bytes = bytes;
    this.views = views;
    this.limit = count;
  }
  claim(): number {
    throw new RangeError("Cannot store past the end of a staging buffer"); // never: encodeMany stores `count` values
  }
}

/** Writes element of a value already read and checked: `read` holds the fields the generated code read (or null). */
type Slow = (value: unknown, target: Target, read: unknown[] | null) => number;
/** Checks and writes one element, returning its index; generated per type. */
type Writer = (value: unknown, target: Target) => number;
/** Reads element `index`; generated per type. */
type Reader = (views: Views, index: number) => unknown;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * How elements of one type are read and written: the stride and alignment,
 * a checked path through a DataView, and, where every field is naturally
 * aligned (any non-packed layout), a reader and a writer generated for the
 * type that go through typed arrays with constant offsets and constant field
 * names: as fast as hand-written typed-array code once inlined.
 *
 * What a value must be: a record is an object whose fields are exactly the
 * layout's (a missing field, or an enumerable property that is not a field,
 * is a TypeError); scalars are numbers (bigints, or integral numbers, for
 * i64/u64); vectors are arrays or typed arrays of exactly their count of
 * numbers (a wrong count is a RangeError). Integers must fit their type
 * (RangeError) unless the codec wraps, which converts them as C does.
 * Floats take any number, NaN and ±Infinity included.
 */
export class RecordCodec {
  /** Bytes per element. */
  readonly stride: number;
  /** The element's own alignment. */
  readonly align: number;
  /** Whether integers out of range are wrapped (C conversion) instead of refused. */
  readonly wrap: boolean;
  /** True for a record layout, false for a scalar or vector element. */
  readonly #record: boolean;
  readonly #fields: Field[] = [];
  readonly #names: ReadonlySet<string>;
  /** The generated writer, or null (packed layouts, big-endian hosts, code generation disallowed). */
  readonly #writer: Writer | null = null;
  readonly #reader: Reader | null = null;
  readonly #kinds: ViewKind[] = [];
  // Scratch elements of the checked path, one per nesting depth (a getter may write to another array of this type).
  readonly #scratch: { bytes: Uint8Array; view: DataView }[] = [];
  #depth = 0;

  /**
   * @param type A StructLayout, or a field type (scalars read as numbers, vectors as arrays).
   * @param op What is being created, for error messages.
   * @param wrap Whether out-of-range integers are wrapped (C conversion) instead of refused.
   * @throws {TypeError} For anything else.
   */
  constructor(type: StructLayout | FieldType, op: string, wrap = false) {
    this.wrap = wrap;
    let fields: [string | null, StructField][];
    if (typeof type === "string" && Object.hasOwn(FIELD_TYPES, type)) {
      this.#record = false;
      this.stride = FIELD_TYPES[type].size;
      this.align = FIELD_TYPES[type].align;
      fields = [[null, { offset: 0, type, size: FIELD_TYPES[type].size }]];
    } else if (
      typeof type === "object" && type !== null && typeof type.size === "number" && typeof type.fields === "object"
    ) {
      this.#record = true;
      this.stride = type.size;
      this.align = type.align;
      fields = Object.entries(type.fields);
    } else {
      throw fail(
        new TypeError(
          `Cannot ${op} as 'type' must be a StructLayout or a field type: current value is ${describe(type)}`,
        ),
      );
    }
    for (const [name, { offset, type: fieldType }] of fields) {
      this.#fields.push({ name, offset, kind: kindOf(fieldType), count: VECTOR_COUNT[fieldType] ?? 1 });
    }
    this.#names = new Set(fields.map(([name]) => name!));
    const generated = LITTLE_ENDIAN ? generate(fields, this.stride, wrap) : null;
    if (generated !== null) {
      this.#writer = generated.writer((value, target, read) => this.#slow(value, target, read));
      this.#reader = generated.reader;
      this.#kinds = generated.kinds;
    }
  }

  /** Typed arrays over `block` for the generated code, or null where it does not apply (then use read()). */
  viewsOf(block: Uint8Array): Views | null {
    return this.#views(block.buffer, block.byteOffset, block.byteLength);
  }

  /**
   * Typed arrays over `buffer` from `byteOffset` to its end; over a growable
   * SharedArrayBuffer they track its length as it grows. Null where the
   * generated code does not apply.
   */
  viewsOver(buffer: ArrayBufferLike, byteOffset: number): Views | null {
    return this.#views(buffer, byteOffset, undefined);
  }

  #views(buffer: ArrayBufferLike, byteOffset: number, byteLength: number | undefined): Views | null {
    if (this.#writer === null || byteOffset % 8 !== 0) return null;
    const source = buffer as ArrayBuffer;
    const make = <V>(type: new (b: ArrayBuffer, o: number, n?: number) => V, size: number): V =>
      byteLength === undefined
        ? new type(source, byteOffset)
        : new type(source, byteOffset, Math.floor(byteLength / size));
    const views: Views = {
      u8: make(Uint8Array, 1),
      i8: null,
      u16: null,
      i16: null,
      u32: make(Uint32Array, 4),
      i32: null,
      f32: null,
      f64: null,
      i64: null,
      u64: null,
    };
    // deno-lint-ignore no-explicit-any
    for (const kind of this.#kinds) (views as any)[kind] = make(VIEW_TYPES[kind] as any, ELEMENT_SIZE[kind]);
    return views;
  }

  /**
   * Checks `value` in full (user code runs here, each field read once), then
   * claims its slot from `target` and stores it there. Returns the index
   * `claim()` gave.
   * @throws {TypeError} For a value of the wrong shape or type, a missing or unknown field.
   * @throws {RangeError} For a vector of the wrong length, an integer out of range (unless wrapping).
   */
  store(value: unknown, target: Target): number {
    const writer = this.#writer;
    return writer !== null ? writer(value, target) : this.#slow(value, target, null);
  }

  /**
   * Checks every element of `values` (an array; its length and each element
   * read once) into a fresh buffer, as `store` would write them: nothing is
   * claimed, so the caller copies the whole buffer in one step, or nothing.
   * @throws {TypeError | RangeError} As `store`, naming the element.
   */
  encodeMany(values: readonly unknown[], op: string): { bytes: Uint8Array; count: number } {
    const count = values.length;
    if (!Number.isSafeInteger(count) || count < 0 || count * this.stride > 2 ** 32) {
      throw fail(
        new RangeError(
          `Cannot ${op} as 'values' must have from 0 to ${
            Math.floor(2 ** 32 / this.stride)
          } elements: current length is ${describe(count)}`,
        ),
      );
    }
    const bytes = new Uint8Array(count * this.stride);
    const target = new BufferTarget(bytes, this.viewsOf(bytes), count);
    let i = 0;
    try {
      for (; i < count; i++) this.store(values[i], target);
    } catch (error) {
      if (!checkErrors.has(error as Error)) throw error;
      const message = `Cannot ${op} as values[${i}] is wrong: ${(error as Error).message}`;
      throw fail(error instanceof RangeError ? new RangeError(message) : new TypeError(message));
    }
    return { bytes, count };
  }

  /** Reads element `index` through views from viewsOf(). */
  readViews(views: Views, index: number): unknown {
    return this.#reader!(views, index);
  }

  /** Reads the element at byte `at`. */
  read(view: DataView, at: number): unknown {
    if (!this.#record) return this.#readField(this.#fields[0], view, at);
    const out: Record<string, FieldValue> = {};
    for (const field of this.#fields) out[field.name!] = this.#readField(field, view, at + field.offset);
    return out;
  }

  #readField(field: Field, view: DataView, at: number): FieldValue {
    const get = GET[field.kind];
    if (field.count === 1) return get(view, at);
    return Array.from({ length: field.count }, (_, i) => get(view, at + i * 4) as number);
  }

  /**
   * The checked path: reads and checks all of `value` into a scratch element
   * (padding as zeros), then claims the slot and copies the element in.
   * `read` holds the fields the generated writer already read, in order.
   */
  #slow(value: unknown, target: Target, read: unknown[] | null): number {
    const depth = this.#depth++;
    try {
      let scratch = this.#scratch[depth];
      if (scratch === undefined) {
        const bytes = new Uint8Array(this.stride);
        scratch = this.#scratch[depth] = { bytes, view: new DataView(bytes.buffer) };
      }
      scratch.bytes.fill(0);
      this.#stage(value, read, scratch.view);
      const index = claimOf(target);
      target.bytes.set(scratch.bytes, index * this.stride);
      return index;
    } finally {
      this.#depth--;
    }
  }

  #stage(value: unknown, read: unknown[] | null, view: DataView): void {
    if (!this.#record) {
      stageField(this.#fields[0], value, this.wrap, view, 0, "the value");
      return;
    }
    const names = [...this.#names].join(", ");
    if (typeof value !== "object" || value === null) {
      throw fail(
        new TypeError(`Cannot store ${describe(value)} as a record must be an object with the fields ${names}`),
      );
    }
    if (read === null) {
      for (const key in value) {
        if (!this.#names.has(key)) {
          throw fail(
            new TypeError(
              `Cannot store the record as '${key}' is not one of its fields (${names}); a misspelled field is never stored`,
            ),
          );
        }
      }
      read = this.#fields.map((field) => (value as Record<string, unknown>)[field.name!]);
    }
    for (let i = 0; i < this.#fields.length; i++) {
      const field = this.#fields[i];
      if (read[i] === undefined) {
        throw fail(
          new TypeError(`Cannot store the record as field '${field.name}' is missing (the fields are ${names})`),
        );
      }
      stageField(field, read[i], this.wrap, view, field.offset, `field '${field.name}'`);
    }
  }
}

const codecs = new WeakMap<StructLayout, RecordCodec>();
const wrappingCodecs = new WeakMap<StructLayout, RecordCodec>();
const scalarCodecs = new Map<string, RecordCodec>();

/** The codec of `type`, made once per layout and `wrap` (its reader and writer are generated code). */
export function codecFor(type: StructLayout | FieldType, op: string, wrap = false): RecordCodec {
  if (typeof type === "string") {
    const key = wrap ? `${type} wrap` : type;
    let codec = scalarCodecs.get(key);
    if (codec === undefined) {
      codec = new RecordCodec(type, op, wrap);
      scalarCodecs.set(key, codec);
    }
    return codec;
  }
  if (typeof type !== "object" || type === null) return new RecordCodec(type, op, wrap); // throws the TypeError
  const cache = wrap ? wrappingCodecs : codecs;
  let codec = cache.get(type);
  if (codec === undefined) {
    codec = new RecordCodec(type, op, wrap);
    cache.set(type, codec);
  }
  return codec;
}

/**
 * The source of a reader and a writer for one type. The writer reads every
 * field once by a constant name (a record first has its keys checked: each
 * must be a field), checks them all, and only then claims the slot and
 * stores each value at a constant offset through the typed array of its kind
 * (padding as 0). Anything but the plain shape (a typed array for a vector, a
 * number for an i64, a missing or unknown field, a value out of range) goes
 * to `slow`, the checked path, with the fields already read, so no getter
 * runs twice. Field names enter the code only as JSON string literals.
 * `fields` holds one entry with a null name for a scalar or vector element
 * type. Null when a field is not naturally aligned (packed layouts) or code
 * generation is disallowed.
 */
function generate(
  fields: [string | null, StructField][],
  stride: number,
  wrap: boolean,
): { writer: (slow: Slow) => Writer; reader: Reader; kinds: ViewKind[] } | null {
  const kinds = new Set<ViewKind>();
  const covered = new Uint8Array(stride);
  const scalar = fields.length === 1 && fields[0][0] === null;
  const head: string[] = []; // reads and checks (user code runs here)
  const body: string[] = []; // stores, after claim()
  const read: string[] = [];
  const bail = scalar
    ? "return slow(value, target, null);"
    : `return slow(value, target, [${fields.map((_, i) => `v${i}`).join(", ")}]);`;
  if (!scalar) {
    head.push(`if (typeof value !== "object" || value === null) return slow(value, target, null);`);
    const known = fields.map(([name]) => `key !== ${JSON.stringify(name)}`).join(" && ");
    head.push(`for (const key in value) { if (${known}) return slow(value, target, null); }`);
    head.push(`const ${fields.map(([name], i) => `v${i} = value[${JSON.stringify(name)}]`).join(", ")};`);
  } else {
    head.push("const v0 = value;");
  }
  const elementChecks: string[] = [];
  for (const [i, [name, field]] of fields.entries()) {
    const kind: keyof Views = kindOf(field.type);
    const size = ELEMENT_SIZE[kind];
    if (field.offset % size !== 0 || stride % size !== 0) return null;
    if (kind !== "u8" && kind !== "u32") kinds.add(kind);
    const count = VECTOR_COUNT[field.type] ?? 1;
    // Integer index arithmetic only: element `index` starts at typed-array index `index * (stride / size)`.
    const slot = (k: number) => `i${size} + ${field.offset / size + k}`;
    const v = `v${i}`;
    const big = kind === "i64" || kind === "u64";
    const check = (x: string) => {
      // Wrapping arrays store any number (or bigint) as the typed array converts it: C's conversion.
      const range = wrap ? null : OUT_OF_RANGE[kind](x);
      return `typeof ${x} !== "${big ? "bigint" : "number"}"${range === null ? "" : ` || ${range}`}`;
    };
    const elements: string[] = [];
    if (count > 1) {
      head.push(`if (!Array.isArray(${v}) || ${v}.length !== ${count}) ${bail}`);
      const locals = Array.from({ length: count }, (_, k) => `${v}_${k}`);
      elementChecks.push(`const ${locals.map((local, k) => `${local} = ${v}[${k}]`).join(", ")};`);
      elementChecks.push(`if (${locals.map((local) => `${check(local)}`).join(" || ")}) ${bail}`);
      for (let k = 0; k < count; k++) body.push(`${kind}[${slot(k)}] = ${locals[k]};`);
    } else {
      head.push(`if (${check(v)}) ${bail}`);
      body.push(`${kind}[${slot(0)}] = ${v};`);
    }
    for (let k = 0; k < count; k++) {
      elements.push(`${kind}[${slot(k)}]`);
      covered.fill(1, field.offset + k * size, field.offset + (k + 1) * size);
    }
    const expression = count > 1 ? `[${elements.join(", ")}]` : elements[0];
    read.push(name === null ? expression : `${JSON.stringify(name)}: ${expression}`);
  }
  // Padding (between fields, an f32x3's fourth float, the tail) is written as zeros.
  for (let b = 0; b < stride;) {
    if (covered[b]) {
      b++;
      continue;
    }
    let end = b;
    while (end < stride && !covered[end]) end++;
    if (end - b > 32) body.push(`u8.fill(0, i1 + ${b}, i1 + ${end});`);
    else {
      for (let k = b; k < end;) {
        if (k % 4 === 0 && k + 4 <= end) {
          body.push(`u32[i4 + ${k / 4}] = 0;`);
          k += 4;
        } else body.push(`u8[i1 + ${k++}] = 0;`);
      }
    }
    b = end;
  }
  // Each typed array the code uses, loaded once.
  const used = ["u8", "u32", ...kinds] as (keyof Views)[];
  const locals = used.map((kind) => `const ${kind} = views.${kind};`).join(" ") + " " +
    [...new Set(used.map((kind) => ELEMENT_SIZE[kind]))].filter((size) => stride % size === 0)
      .map((size) => `const i${size} = index * ${stride / size};`).join(" ");
  const readBody = `${locals}\n` + (scalar ? `return ${read[0]};` : `return { ${read.join(", ")} };`);
  const writeBody = [
    ...head,
    ...elementChecks,
    // The slot, as claimOf() takes it.
    "let index = target.next;",
    "if (index < target.limit && target.bytes.length !== 0) target.next = index + 1; else index = target.claim();",
    "const views = target.views;",
    locals,
    ...body,
    "return index;",
  ].join("\n");
  try {
    const makeWriter = new Function("slow", `return function write(value, target) {\n${writeBody}\n};`);
    const reader = new Function(`return function read(views, index) {\n${readBody}\n};`)() as Reader;
    return { writer: (slow) => makeWriter(slow) as Writer, reader, kinds: [...kinds] };
  } catch {
    return null;
  }
}
