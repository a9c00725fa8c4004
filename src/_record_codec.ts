// Reading and writing one element of a DynamicArray or SharedDynamicArray:
// a scalar, a vector, or a record of a StructLayout, at a byte offset.
import { describe } from "./_validate.ts";
import { FIELD_TYPES, type FieldType, type StructLayout } from "./struct.ts";

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

function accessor(type: FieldType): Accessor {
  const count = VECTOR_COUNT[type] ?? 1;
  const base =
    (type.startsWith("i32")
      ? "i32"
      : type.startsWith("u32")
      ? "u32"
      : type.startsWith("f32")
      ? "f32"
      : type) as keyof typeof READ;
  const read = READ[base], write = WRITE[base];
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

/** Writes one float-only record at float index `base`; generated per layout (see floatWriter). */
export type FloatWriter = (floats: Float32Array, base: number, record: Record<string, FieldValue>) => void;

/**
 * How elements of one type are read and written: the stride and alignment,
 * and, for records made only of float fields, a writer that stores straight
 * into a Float32Array.
 */
export class RecordCodec {
  /** Bytes per element. */
  readonly stride: number;
  /** The element's own alignment. */
  readonly align: number;
  /** Set for records whose fields are all f32-based: stores through a Float32Array. */
  readonly floatWriter: FloatWriter | null = null;
  readonly #scalar: Accessor | null;
  readonly #fields: [string, number, Accessor][] = [];

  /**
   * @param type A StructLayout, or a field type (scalars read as numbers, vectors as arrays).
   * @param op What is being created, for error messages.
   * @throws {TypeError} For anything else.
   */
  constructor(type: StructLayout | FieldType, op: string) {
    if (typeof type === "string" && Object.hasOwn(FIELD_TYPES, type)) {
      this.#scalar = accessor(type);
      this.stride = FIELD_TYPES[type].size;
      this.align = FIELD_TYPES[type].align;
      return;
    }
    if (typeof type !== "object" || type === null || typeof type.size !== "number" || typeof type.fields !== "object") {
      throw new TypeError(
        `Cannot ${op} as 'type' must be a StructLayout or a field type: current value is ${describe(type)}`,
      );
    }
    this.#scalar = null;
    this.stride = type.size;
    this.align = type.align;
    const fields = Object.entries(type.fields);
    for (const [name, { offset, type: fieldType }] of fields) this.#fields.push([name, offset, accessor(fieldType)]);
    const floatOnly = fields.every(([, f]) => f.type.startsWith("f32") && f.offset % 4 === 0);
    if (floatOnly && type.size % 4 === 0) {
      this.floatWriter = floatWriter(type, (floats, base, record) => {
        this.#writeFloatsChecked(floats, base, record);
      });
    }
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

  // The generated writer's way out for anything but the plain shape: zeroes
  // the record and writes it field by field, with the errors of write().
  #writeFloatsChecked(floats: Float32Array, base: number, record: Record<string, FieldValue>): void {
    const view = new DataView(floats.buffer, floats.byteOffset + base * 4, this.stride);
    this.write(view, new Uint8Array(floats.buffer, floats.byteOffset + base * 4, this.stride), 0, record);
  }
}

const codecs = new WeakMap<StructLayout, RecordCodec>();
const scalarCodecs = new Map<FieldType, RecordCodec>();

/** The codec of `type`, made once per layout (its writer is generated code). */
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
 * A writer specialized to one float-only layout: each field read by a constant
 * name, each float stored at a constant offset, padding stored as 0 — as
 * fast as a hand-written Float32Array loop once inlined. Anything else (a
 * missing field, a typed array, a wrong length) goes to `slow`. Field names
 * enter the code only as JSON string literals. Where code generation is not
 * allowed, a generic loop does the same.
 */
function floatWriter(layout: StructLayout, slow: FloatWriter): FloatWriter {
  const floats = layout.size / 4;
  const covered = new Array<boolean>(floats).fill(false);
  const lines: string[] = [];
  let n = 0;
  for (const [name, field] of Object.entries(layout.fields)) {
    const at = field.offset / 4;
    const count = VECTOR_COUNT[field.type] ?? 1;
    const v = `v${n++}`;
    lines.push(`const ${v} = record[${JSON.stringify(name)}];`);
    if (count === 1) {
      lines.push(`if (typeof ${v} !== "number") return slow(floats, base, record);`);
      lines.push(`floats[base + ${at}] = ${v};`);
    } else {
      lines.push(`if (!Array.isArray(${v}) || ${v}.length !== ${count}) return slow(floats, base, record);`);
      for (let i = 0; i < count; i++) lines.push(`floats[base + ${at + i}] = ${v}[${i}];`);
    }
    for (let i = 0; i < count; i++) covered[at + i] = true;
  }
  for (let i = 0; i < floats; i++) if (!covered[i]) lines.push(`floats[base + ${i}] = 0;`);
  try {
    return new Function("slow", `return function write(floats, base, record) {\n${lines.join("\n")}\n};`)(
      slow,
    ) as FloatWriter;
  } catch {
    return slow;
  }
}
