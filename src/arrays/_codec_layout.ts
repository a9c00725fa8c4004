// The layout analysis of a record codec: what an element type stores where
// (each field's offset, element kind and count), and the typed arrays over a
// storage block that the generated reader and writer index.
import { FIELD_TYPES, type FieldType, isStructLayout, type StructLayout } from "./struct.ts";

/** The element kinds a field stores: a scalar type, or a vector type's lanes. */
export type Kind = "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "u64" | "f32" | "f64";

// Vector types' element counts as stored (f32x3 writes 3 of its 4 floats).
const VECTOR_COUNT: Partial<Record<FieldType, number>> = {
  f32x2: 2,
  f32x3: 3,
  f32x4: 4,
  i32x4: 4,
  u32x4: 4,
  f32x4x4: 16,
};

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

/** One field (or the whole element of a scalar or vector type): where, and how to check, store and read it. */
export interface Field {
  /** The field's name; null for the one field of a scalar or vector element type. */
  name: string | null;
  offset: number;
  kind: Kind;
  /** 1 for scalars, else the vector's element count. */
  count: number;
}

/** What a codec stores for one element type. */
export interface Layout {
  /** True for a record layout, false for a scalar or vector element. */
  record: boolean;
  /** Bytes per element. */
  stride: number;
  /** The element's own alignment. */
  align: number;
  /** In the layout's order; one field with a null name for a scalar or vector element type. */
  fields: Field[];
}

/** The layout of `type` (a StructLayout or a field type), or null when it is neither. */
export function layoutOf(type: StructLayout | FieldType): Layout | null {
  let record: boolean, stride: number, align: number;
  let entries: [string | null, { offset: number; type: FieldType }][];
  if (typeof type === "string" && Object.hasOwn(FIELD_TYPES, type)) {
    record = false;
    stride = FIELD_TYPES[type].size;
    align = FIELD_TYPES[type].align;
    entries = [[null, { offset: 0, type }]];
  } else if (isStructLayout(type)) {
    record = true;
    stride = type.size;
    align = type.align;
    entries = Object.entries(type.fields);
  } else {
    return null;
  }
  const fields = entries.map(([name, { offset, type: fieldType }]): Field => ({
    name,
    offset,
    kind: kindOf(fieldType),
    count: VECTOR_COUNT[fieldType] ?? 1,
  }));
  return { record, stride, align, fields };
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
  kinds: readonly ViewKind[],
  buffer: ArrayBufferLike,
  byteOffset: number,
  byteLength: number | undefined,
): Views {
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
  for (const kind of kinds) (views as any)[kind] = make(VIEW_TYPES[kind] as any, ELEMENT_SIZE[kind]);
  return views;
}
