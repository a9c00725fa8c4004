// Reading and writing one element of a DynamicArray or SharedDynamicArray:
// a scalar, a vector, or a record of a StructLayout, at a byte offset.
import { describe } from "../base/_validate.ts";
import { FIELD_TYPES, type FieldType, type StructField, type StructLayout } from "./struct.ts";

/** A field's value: a number, a bigint (i64/u64), or an array of numbers (vector types). */
export type FieldValue = number | bigint | readonly number[];

type Accessor = {
  read(view: DataView, at: number): FieldValue;
  write(view: DataView, at: number, value: FieldValue): void;
};

// Vector types' element counts as stored (f32x3 writes 3 of its 4 floats).
const VECTOR_COUNT: Partial<Record<FieldType, number>> = {
  f32x2: 2,
  f32x3: 3,
  f32x4: 4,
  i32x4: 4,
  u32x4: 4,
  f32x4x4: 16,
};

const READ = {
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

const WRITE = {
  i8: (v: DataView, p: number, x: number | bigint) => v.setInt8(p, Number(x)),
  u8: (v: DataView, p: number, x: number | bigint) => v.setUint8(p, Number(x)),
  i16: (v: DataView, p: number, x: number | bigint) => v.setInt16(p, Number(x), true),
  u16: (v: DataView, p: number, x: number | bigint) => v.setUint16(p, Number(x), true),
  i32: (v: DataView, p: number, x: number | bigint) => v.setInt32(p, Number(x), true),
  u32: (v: DataView, p: number, x: number | bigint) => v.setUint32(p, Number(x), true),
  i64: (v: DataView, p: number, x: number | bigint) => v.setBigInt64(p, BigInt(x), true),
  u64: (v: DataView, p: number, x: number | bigint) => v.setBigUint64(p, BigInt(x), true),
  f32: (v: DataView, p: number, x: number | bigint) => v.setFloat32(p, Number(x), true),
  f64: (v: DataView, p: number, x: number | bigint) => v.setFloat64(p, Number(x), true),
};

type Kind = keyof typeof READ;

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

function accessor(type: FieldType): Accessor {
  const count = VECTOR_COUNT[type] ?? 1;
  const read = READ[kindOf(type)], write = WRITE[kindOf(type)];
  if (count === 1) {
    return {
      read: (v, p) => read(v, p),
      write: (v, p, x) => {
        if (typeof x !== "number" && typeof x !== "bigint") {
          throw new TypeError(`expected a number: got ${describe(x)}`);
        }
        write(v, p, x);
      },
    };
  }
  return {
    read: (v, p) => Array.from({ length: count }, (_, i) => read(v, p + i * 4) as number),
    write: (v, p, x) => {
      if (!Array.isArray(x) && !ArrayBuffer.isView(x)) {
        throw new TypeError(`expected ${count} numbers: got ${describe(x)}`);
      }
      const values = x as ArrayLike<number>;
      if (values.length !== count) throw new RangeError(`expected ${count} numbers: got ${values.length}`);
      for (let i = 0; i < count; i++) write(v, p + i * 4, values[i]);
    },
  };
}

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

/** Writes element `index` of the views' block; generated per type. */
type Writer = (views: Views, index: number, value: unknown) => void;
/** Reads element `index`; generated per type. */
type Reader = (views: Views, index: number) => unknown;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * How elements of one type are read and written: the stride and alignment,
 * a generic path through a DataView, and, where every field is naturally
 * aligned (any non-packed layout), a reader and a writer generated for the
 * type that go through typed arrays with constant offsets and constant field
 * names: as fast as hand-written typed-array code once inlined.
 */
export class RecordCodec {
  /** Bytes per element. */
  readonly stride: number;
  /** The element's own alignment. */
  readonly align: number;
  readonly #scalar: Accessor | null;
  readonly #fields: [string, number, Accessor][] = [];
  /** The generated writer, or null (packed layouts, big-endian hosts, code generation disallowed). */
  readonly #writer: Writer | null = null;
  readonly #reader: Reader | null = null;
  readonly #kinds: ViewKind[] = [];

  /**
   * @param type A StructLayout, or a field type (scalars read as numbers, vectors as arrays).
   * @param op What is being created, for error messages.
   * @throws {TypeError} For anything else.
   */
  constructor(type: StructLayout | FieldType, op: string) {
    let fields: [string | null, StructField][];
    if (typeof type === "string" && Object.hasOwn(FIELD_TYPES, type)) {
      this.#scalar = accessor(type);
      this.stride = FIELD_TYPES[type].size;
      this.align = FIELD_TYPES[type].align;
      fields = [[null, { offset: 0, type, size: FIELD_TYPES[type].size }]];
    } else if (
      typeof type === "object" && type !== null && typeof type.size === "number" && typeof type.fields === "object"
    ) {
      this.#scalar = null;
      this.stride = type.size;
      this.align = type.align;
      for (const [name, { offset, type: fieldType }] of Object.entries(type.fields)) {
        this.#fields.push([name, offset, accessor(fieldType)]);
      }
      fields = Object.entries(type.fields);
    } else {
      throw new TypeError(
        `Cannot ${op} as 'type' must be a StructLayout or a field type: current value is ${describe(type)}`,
      );
    }
    const generated = LITTLE_ENDIAN ? generate(fields, this.stride) : null;
    if (generated !== null) {
      const slow = (views: Views, index: number, value: unknown) => {
        const u8 = views.u8;
        this.write(new DataView(u8.buffer, u8.byteOffset, u8.byteLength), u8, index * this.stride, value);
      };
      this.#writer = generated.writer(slow);
      this.#reader = generated.reader;
      this.#kinds = generated.kinds;
    }
  }

  /** Typed arrays over `block` for the generated code, or null where it does not apply (then use read/write). */
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

  /** Writes `value` as element `index` through views from viewsOf(), with the checks and errors of write(). */
  writeViews(views: Views, index: number, value: unknown): void {
    this.#writer!(views, index, value);
  }

  /** Reads element `index` through views from viewsOf(). */
  readViews(views: Views, index: number): unknown {
    return this.#reader!(views, index);
  }

  /** Reads the element at byte `at`. */
  read(view: DataView, at: number): unknown {
    if (this.#scalar) return this.#scalar.read(view, at);
    const out: Record<string, FieldValue> = {};
    for (const [name, offset, field] of this.#fields) out[name] = field.read(view, at + offset);
    return out;
  }

  /**
   * Writes `value` at byte `at`, padding as zeros.
   * @throws {TypeError} For a value of the wrong shape. @throws {RangeError} For a vector of the wrong length.
   */
  write(view: DataView, bytes: Uint8Array, at: number, value: unknown): void {
    if (this.#scalar) {
      if (this.stride > 8) bytes.fill(0, at, at + this.stride); // an f32x3's padding stays 0
      this.#scalar.write(view, at, value as FieldValue);
      return;
    }
    if (typeof value !== "object" || value === null) {
      throw new TypeError(`Cannot store ${describe(value)}: expected an object with the record's fields`);
    }
    // Zero first, so padding (and an f32x3's fourth float) is always 0.
    bytes.fill(0, at, at + this.stride);
    const record = value as Record<string, FieldValue>;
    for (const [name, offset, field] of this.#fields) {
      const v = record[name];
      if (v === undefined) continue;
      try {
        field.write(view, at + offset, v);
      } catch (error) {
        if (error instanceof RangeError) throw new RangeError(`Field '${name}': ${error.message}`);
        throw new TypeError(`Field '${name}': ${(error as Error).message}`);
      }
    }
  }
}

const codecs = new WeakMap<StructLayout, RecordCodec>();
const scalarCodecs = new Map<FieldType, RecordCodec>();

/** The codec of `type`, made once per layout (its reader and writer are generated code). */
export function codecFor(type: StructLayout | FieldType, op: string): RecordCodec {
  const cached = typeof type === "string"
    ? scalarCodecs.get(type)
    : typeof type === "object" && type !== null
    ? codecs.get(type)
    : undefined;
  if (cached !== undefined) return cached;
  const codec = new RecordCodec(type, op);
  if (typeof type === "string") scalarCodecs.set(type, codec);
  else codecs.set(type, codec);
  return codec;
}

/**
 * The source of a reader and a writer for one type: each field read by a
 * constant name and stored at a constant offset through the typed array of
 * its kind, padding stored as 0. The writer hands anything but the plain
 * shape (a missing field, a typed array, a wrong length, a number for an
 * i64) to `slow`, the generic path with its errors. Field names enter the
 * code only as JSON string literals. `fields` holds one entry with a null
 * name for a scalar or vector element type. Null when a field is not
 * naturally aligned (packed layouts) or code generation is disallowed.
 */
function generate(
  fields: [string | null, StructField][],
  stride: number,
): { writer: (slow: Writer) => Writer; reader: Reader; kinds: ViewKind[] } | null {
  const kinds = new Set<ViewKind>();
  const covered = new Uint8Array(stride);
  const write: string[] = [];
  const read: string[] = [];
  const scalar = fields.length === 1 && fields[0][0] === null;
  if (!scalar) write.push(`if (typeof value !== "object" || value === null) return slow(views, index, value);`);
  for (const [i, [name, field]] of fields.entries()) {
    const kind: keyof Views = kindOf(field.type);
    const size = ELEMENT_SIZE[kind];
    if (field.offset % size !== 0 || stride % size !== 0) {
      return null;
    }
    if (kind !== "u8" && kind !== "u32") {
      kinds.add(kind);
    }
    const count = VECTOR_COUNT[field.type] ?? 1;
    // Integer index arithmetic only: element `index` starts at typed-array index `index * (stride / size)`.
    const slot = (k: number) => `i${size} + ${field.offset / size + k}`;
    const v = `v${i}`;
    write.push(`const ${v} = ${name === null ? "value" : `value[${JSON.stringify(name)}]`};`);
    const guard = count > 1
      ? `!Array.isArray(${v}) || ${v}.length !== ${count}`
      : `typeof ${v} !== "${kind === "i64" || kind === "u64" ? "bigint" : "number"}"`;
    write.push(`if (${guard}) return slow(views, index, value);`);
    const elements: string[] = [];
    for (let k = 0; k < count; k++) {
      write.push(`${kind}[${slot(k)}] = ${count > 1 ? `${v}[${k}]` : v};`);
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
    if (end - b > 32) write.push(`u8.fill(0, i1 + ${b}, i1 + ${end});`);
    else {
      for (let k = b; k < end;) {
        if (k % 4 === 0 && k + 4 <= end) {
          write.push(`u32[i4 + ${k / 4}] = 0;`);
          k += 4;
        } else write.push(`u8[i1 + ${k++}] = 0;`);
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
  try {
    const makeWriter = new Function(
      "slow",
      `return function write(views, index, value) {\n${locals}\n${write.join("\n")}\n};`,
    );
    const reader = new Function(`return function read(views, index) {\n${readBody}\n};`)() as Reader;
    return { writer: (slow) => makeWriter(slow) as Writer, reader, kinds: [...kinds] };
  } catch {
    return null;
  }
}
