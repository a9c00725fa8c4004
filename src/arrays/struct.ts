/**
 * C-layout record types: offsets, sizes and alignment computed as a C
 * compiler would, and the matching C declaration.
 *
 * @module
 */
import { describe, parseOptions, powerOfTwo, z } from "../base/_validate.ts";

/**
 * A field type. Vector types follow the SIMD/Metal rule: `f32x3` and `f32x4`
 * take 16 bytes aligned 16 (an `f32x3` has 4 bytes of padding), `f32x2` 8
 * aligned 8, `f32x4x4` (a 4×4 matrix) 64 aligned 16.
 *
 * @example
 * ```ts
 * import { type FieldType, struct } from "@memkit/memkit";
 *
 * const position: FieldType = "f32x3";
 * struct({ position });
 * ```
 */
export type FieldType =
  | "i8"
  | "u8"
  | "i16"
  | "u16"
  | "i32"
  | "u32"
  | "i64"
  | "u64"
  | "f32"
  | "f64"
  | "f32x2"
  | "f32x3"
  | "f32x4"
  | "i32x4"
  | "u32x4"
  | "f32x4x4";

/**
 * One field of a {@linkcode StructLayout}.
 *
 * @example
 * ```ts
 * import { struct, type StructField } from "@memkit/memkit";
 *
 * const field: StructField = struct({ a: "u8", b: "f64" }).fields.b;
 * console.log(field.offset); // 8
 * ```
 */
export interface StructField {
  /** Byte offset from the record's start. */
  readonly offset: number;
  /** The field's type. */
  readonly type: FieldType;
  /** Bytes the field occupies (including an `f32x3`'s padding). */
  readonly size: number;
}

/**
 * A record type: its size (a multiple of its alignment, like C's `sizeof`),
 * alignment and fields in declaration order.
 *
 * @example
 * ```ts
 * import { struct, type StructLayout } from "@memkit/memkit";
 *
 * const Vertex: StructLayout = struct({ position: "f32x3", color: "f32x4" });
 * console.log(Vertex.size, Vertex.align); // 32 16
 * console.log(Vertex.cDeclaration("Vertex"));
 * ```
 */
export interface StructLayout {
  /** Bytes per record, padding included. */
  readonly size: number;
  /** Alignment of the record. */
  readonly align: number;
  /** Fields by name, in declaration order. */
  readonly fields: Readonly<Record<string, StructField>>;
  /** Whether fields are packed without padding. */
  readonly packed: boolean;
  /** A C `typedef struct` with the same layout (C11, `<stdint.h>`). */
  cDeclaration(name: string): string;
}

/** Size and alignment of each field type. */
export const FIELD_TYPES: Readonly<Record<FieldType, { size: number; align: number; c: string; count: number }>> = {
  i8: { size: 1, align: 1, c: "int8_t", count: 1 },
  u8: { size: 1, align: 1, c: "uint8_t", count: 1 },
  i16: { size: 2, align: 2, c: "int16_t", count: 1 },
  u16: { size: 2, align: 2, c: "uint16_t", count: 1 },
  i32: { size: 4, align: 4, c: "int32_t", count: 1 },
  u32: { size: 4, align: 4, c: "uint32_t", count: 1 },
  i64: { size: 8, align: 8, c: "int64_t", count: 1 },
  u64: { size: 8, align: 8, c: "uint64_t", count: 1 },
  f32: { size: 4, align: 4, c: "float", count: 1 },
  f64: { size: 8, align: 8, c: "double", count: 1 },
  f32x2: { size: 8, align: 8, c: "float", count: 2 },
  f32x3: { size: 16, align: 16, c: "float", count: 4 },
  f32x4: { size: 16, align: 16, c: "float", count: 4 },
  i32x4: { size: 16, align: 16, c: "int32_t", count: 4 },
  u32x4: { size: 16, align: 16, c: "uint32_t", count: 4 },
  f32x4x4: { size: 64, align: 16, c: "float", count: 16 },
};

const IDENTIFIER_REGEXP = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_REGEXP = /^(__|_[A-Z])/;

const OptionsSchema = z.object({
  packed: z.boolean().optional(),
  align: powerOfTwo(4096).optional(),
}).strict();

// Every layout struct() made: arrays accept these and nothing else, so a
// forged or edited layout (a negative size, a field past the end) never
// decides where memkit reads and writes.
const LAYOUTS = new WeakSet<object>();

function registered(layout: StructLayout): StructLayout {
  const frozen = Object.freeze(layout);
  LAYOUTS.add(frozen);
  return frozen;
}

/** Whether `value` is a layout made by {@linkcode struct} (frozen, never forged). */
export function isStructLayout(value: unknown): value is StructLayout {
  return typeof value === "object" && value !== null && LAYOUTS.has(value);
}

/**
 * Defines a record type with C layout: each field at the next offset
 * aligned to its type (no padding when `packed`), the record aligned to its
 * largest field (or `align`), its size rounded up to that alignment.
 *
 * @param fields Field names (C identifiers) and types, in order.
 * @param options `packed`, and `align` to raise the record's alignment.
 * @returns The layout.
 * @throws {TypeError} For no fields, a name that is not a C identifier, or an unknown type.
 * @throws {RangeError} For an `align` that is not a power of two up to 4096.
 *
 * @example
 * ```ts
 * import { struct } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const Particle = struct({ position: "f32x3", velocity: "f32x3", mass: "f32", id: "u32" });
 * assert.equal(Particle.fields.mass.offset, 32);
 * assert.equal(Particle.size, 48);
 * ```
 */
export function struct(
  fields: Record<string, FieldType>,
  options?: { packed?: boolean; align?: number },
): StructLayout {
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    throw new TypeError(`Cannot define a struct as 'fields' must be an object: current value is ${describe(fields)}`);
  }
  if (options === undefined) options = {};
  const parsed = parseOptions(OptionsSchema, options, "define a struct");
  const entries = Object.entries(fields);
  if (entries.length === 0) throw new TypeError("Cannot define a struct as 'fields' must name at least one field");
  const packed = parsed.packed ?? false;
  const layout: Record<string, StructField> = {};
  let offset = 0;
  let align = 1;
  for (const [name, type] of entries) {
    if (!IDENTIFIER_REGEXP.test(name)) {
      throw new TypeError(
        `Cannot define a struct as field names must be C identifiers: current value is ${describe(name)}`,
      );
    }
    // C reserves these for the implementation, and in JavaScript "__proto__"
    // would set an object's prototype instead of a field.
    if (RESERVED_REGEXP.test(name)) {
      throw new TypeError(
        `Cannot define a struct as field names must not start with "__" or "_" and a capital letter (C reserves them): current value is ${
          describe(name)
        }`,
      );
    }
    // The type is checked before it is used as a key (a key is converted to a string: user code).
    const info = typeof type === "string" && Object.hasOwn(FIELD_TYPES, type)
      ? FIELD_TYPES[type as FieldType]
      : undefined;
    if (info === undefined) {
      throw new TypeError(
        `Cannot define a struct as field '${name}' must have one of ${Object.keys(FIELD_TYPES).join(", ")}: ` +
          `current value is ${describe(type)}`,
      );
    }
    const fieldAlign = packed ? 1 : info.align;
    offset = Math.ceil(offset / fieldAlign) * fieldAlign;
    layout[name] = Object.freeze({ offset, type, size: info.size });
    offset += info.size;
    align = Math.max(align, fieldAlign);
  }
  align = Math.max(align, parsed.align ?? 1);
  const size = Math.ceil(offset / align) * align;
  const frozen = Object.freeze(layout);
  return registered({
    size,
    align,
    fields: frozen,
    packed,
    cDeclaration(name: string): string {
      if (typeof name !== "string" || !IDENTIFIER_REGEXP.test(name)) {
        throw new TypeError(
          `Cannot declare a struct as 'name' must be a C identifier: current value is ${describe(name)}`,
        );
      }
      const lines = [`typedef struct ${packed ? "__attribute__((packed)) " : ""}{`];
      for (const [field, { type }] of Object.entries(frozen)) {
        const info = FIELD_TYPES[type];
        const aligned = !packed && info.count > 1 ? `_Alignas(${info.align}) ` : "";
        const array = info.count > 1 ? `[${info.count}]` : "";
        const note = type === "f32x3" ? " /* f32x3: x, y, z and padding */" : "";
        lines.push(`  ${aligned}${info.c} ${field}${array};${note}`);
      }
      const tail = parsed.align !== undefined ? ` __attribute__((aligned(${align})))` : "";
      lines.push(`}${tail} ${name};`);
      lines.push(`_Static_assert(sizeof(${name}) == ${size}, "memkit layout of ${name}");`);
      return lines.join("\n");
    },
  });
}
