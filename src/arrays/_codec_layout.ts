// The layout analysis of a record codec: what an element type stores where
// (each field's offset, element kind and count), and the typed arrays over a
// storage block that the generated reader and writer index.
//
// Compiled with captured built-ins only (see _builtins.ts): what a layout's frozen objects hold is read as own
// data (the array type `[element, count]` by index, the fields through the captured Object.keys), so a built-in a
// program replaced after memkit loaded (the array iterator, Object.entries, String.prototype.startsWith...) never
// decides the layout an array compiles: the offsets and sizes struct() computed are the ones used.
import { Builtin, floor, hasOwn, isArray, join, objectKeys } from "./_builtins.ts";
import { arrayOf, recordTemplate } from "./_plain_values.ts";
import { FIELD_TYPES } from "./_struct_rules.ts";
import { type FieldType, isStructLayout, type StructFieldType, type StructLayout } from "./struct.ts";

/** The element kinds a field stores: a scalar type, or a vector type's lanes. */
export type Kind = "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "u64" | "f16" | "f32" | "f64" | "bool";

// Vector types' element counts as stored (f32x3 writes 3 of its 4 floats).
const VECTOR_COUNT: Partial<Record<FieldType, number>> = {
  f32x2: 2,
  f32x3: 3,
  f32x4: 4,
  i32x4: 4,
  u32x4: 4,
  f32x4x4: 16,
};

/** Bytes per element of each kind (a vector's lanes are this far apart). */
export const KIND_SIZE: Record<Kind, number> = {
  i8: 1,
  u8: 1,
  bool: 1,
  i16: 2,
  u16: 2,
  f16: 2,
  i32: 4,
  u32: 4,
  f32: 4,
  i64: 8,
  u64: 8,
  f64: 8,
};

/** The element kind each field type stores: a vector type's lanes, or the scalar itself. */
const KIND_OF: Record<FieldType, Kind> = {
  i8: "i8",
  u8: "u8",
  i16: "i16",
  u16: "u16",
  i32: "i32",
  u32: "u32",
  i64: "i64",
  u64: "u64",
  f16: "f16",
  f32: "f32",
  f64: "f64",
  bool: "bool",
  f32x2: "f32",
  f32x3: "f32",
  f32x4: "f32",
  i32x4: "i32",
  u32x4: "u32",
  f32x4x4: "f32",
};

/**
 * One field (or the whole element of a scalar or vector type): where, and
 * how to check, store and read it. A scalar or a vector (or an array of
 * scalars packed one after the other, stored the same way: `count` lanes
 * KIND_SIZE apart) has `inner` null; any other array and a nested record
 * have `inner`, and their `kind`, `count` and `lanes` mean nothing.
 */
export interface Field {
  /** The field's name; null for the one field of a scalar or vector element type, and an array's element. */
  name: string | null;
  offset: number;
  kind: Kind;
  /** 1 for scalars, else the vector's (or packed array's) element count. */
  count: number;
  /**
   * Whether the value is an array of `count` elements (a vector, or packed scalars): true also for an array
   * field of count 1 (`["i32", 1]` takes and gives `[7]`, as any other count does), false for a scalar.
   */
  lanes: boolean;
  inner: Inner | null;
}

/** An array of non-scalars (`length` elements `stride` bytes apart), or a nested record's fields. */
export type Inner = { array: true; length: number; stride: number; element: Field } | Fields;

/**
 * A record's fields as the codec uses them: in order, the names listed for messages, and the template its
 * records are read into (see _plain_values.ts), whose own properties are the fields' names (a value's keys are
 * checked against them with the captured Object.hasOwn).
 */
export interface Fields {
  array: false;
  fields: readonly Field[];
  list: string;
  template: Readonly<Record<string, unknown>>;
}

/** What a codec stores for one element type. */
export interface Layout {
  /** Bytes per element. */
  stride: number;
  /** The element's own alignment. */
  align: number;
  /** In the layout's order; one field with a null name for a scalar or vector element type. */
  fields: readonly Field[];
  /** The record's fields as a whole (a record layout), or null. */
  record: Fields | null;
}

// The field of `type` at `offset`, taking `size` bytes (an array's elements are size / count apart).
function fieldOf(name: string | null, offset: number, type: StructFieldType, size: number): Field {
  if (typeof type === "string") {
    const count = VECTOR_COUNT[type];
    return { name, offset, kind: KIND_OF[type], count: count ?? 1, lanes: count !== undefined, inner: null };
  }
  if (isArray(type)) {
    // A frozen [element, count] that normalize() made: read by index (destructuring would ask the array iterator).
    const element = type[0] as StructFieldType, length = type[1] as number;
    const stride = size / length;
    if (typeof element === "string" && VECTOR_COUNT[element] === undefined && stride === FIELD_TYPES[element].size) {
      // Scalars one after the other: stored and read as a vector's lanes are.
      return { name, offset, kind: KIND_OF[element], count: length, lanes: true, inner: null };
    }
    const inner: Inner = { array: true, length, stride, element: fieldOf(null, 0, element, stride) };
    return { name, offset, kind: "u8", count: 1, lanes: false, inner };
  }
  return { name, offset, kind: "u8", count: 1, lanes: false, inner: fieldsOf(type as StructLayout<unknown>) };
}

// The fields of a layout from struct(): frozen, each a frozen { offset, type, size } (own data: reading them runs
// no code), named by the captured Object.keys in declaration order.
function fieldsOf(layout: StructLayout<unknown>): Fields {
  const all = layout.fields;
  const keys = objectKeys(all);
  const fields = arrayOf(keys.length, (i) => {
    const { offset, type, size } = all[keys[i]];
    return fieldOf(keys[i], offset, type, size);
  });
  return { array: false, fields, list: join(keys, ", "), template: recordTemplate(keys) };
}

/** The layout of `type` (a StructLayout<unknown> or a field type), or null when it is neither. */
export function layoutOf(type: StructLayout<unknown> | FieldType): Layout | null {
  if (typeof type === "string" && hasOwn(FIELD_TYPES, type)) {
    const { size, align } = FIELD_TYPES[type];
    return { record: null, stride: size, align, fields: [fieldOf(null, 0, type, size)] };
  }
  if (isStructLayout(type)) {
    const record = fieldsOf(type);
    return { record, stride: type.size, align: type.align, fields: record.fields };
  }
  return null;
}

// ------------------------------------------------------------ typed arrays over a block

/** Typed arrays over one storage block, as the generated code reads and writes it (absent kinds are null). */
export interface Views {
  u8: Uint8Array;
  i8: Int8Array | null;
  u16: Uint16Array | null;
  i16: Int16Array | null;
  u32: Uint32Array;
  i32: Int32Array | null;
  f16: Float16Array | null;
  f32: Float32Array | null;
  f64: Float64Array | null;
  i64: BigInt64Array | null;
  u64: BigUint64Array | null;
}

/** The views made only when a layout has a field of their kind (u8 and u32 are always made: padding uses them). */
export type ViewKind = Exclude<keyof Views, "u8" | "u32">;

const VIEW_TYPES = {
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  i32: Int32Array,
  // Absent where the runtime has no Float16Array: generate() then leaves f16 fields to the checked path.
  f16: (globalThis as { Float16Array?: Float16ArrayConstructor }).Float16Array,
  f32: Float32Array,
  f64: Float64Array,
  i64: BigInt64Array,
  u64: BigUint64Array,
} as const;

/** Bytes per element of each view. */
export const ELEMENT_SIZE: Record<keyof Views, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f16: 2,
  f32: 4,
  f64: 8,
  i64: 8,
  u64: 8,
};

/**
 * The views of `kinds` (plus u8 and u32) over `buffer` from `byteOffset`
 * (a multiple of 8): `byteLength` bytes of it, or, when undefined, up to its
 * end, tracking its length as a growable SharedArrayBuffer grows.
 */
export function makeViews(
  kinds: ArrayLike<ViewKind>,
  buffer: ArrayBufferLike,
  byteOffset: number,
  byteLength: number | undefined,
): Views {
  const source = buffer as ArrayBuffer;
  const make = <V>(type: new (b: ArrayBuffer, o: number, n?: number) => V, size: number): V =>
    byteLength === undefined ? new type(source, byteOffset) : new type(source, byteOffset, floor(byteLength / size));
  const views: Views = {
    u8: make(Builtin.Uint8Array, 1),
    i8: null,
    u16: null,
    i16: null,
    u32: make(Builtin.Uint32Array, 4),
    i32: null,
    f16: null,
    f32: null,
    f64: null,
    i64: null,
    u64: null,
  };
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i];
    // deno-lint-ignore no-explicit-any
    (views as any)[kind] = make(VIEW_TYPES[kind] as any, ELEMENT_SIZE[kind]);
  }
  return views;
}
