/**
 * Record types: offsets, sizes and alignment computed as a C compiler or a
 * WGSL shader compiler would, and the matching C and WGSL declarations.
 *
 * @module
 */
import { describe, parseOptions, powerOfTwo, z } from "../base/_validate.ts";
import { cDeclaration, wgslDeclaration } from "./_struct_declarations.ts";
import { normalize, place } from "./_struct_rules.ts";
import { append, arrayOf, newList, recordOf } from "./_plain_values.ts";
import {
  Builtin,
  freeze,
  isArray,
  isSafeInteger,
  matches,
  max,
  objectEntries,
  weakGet,
  weakHas,
  weakSet,
} from "./_builtins.ts";
import type { FieldValue } from "./_record_codec.ts";

/**
 * A field type. Vector types follow the SIMD/Metal rule in C layouts: `f32x3`
 * and `f32x4` take 16 bytes aligned 16 (an `f32x3` has 4 bytes of padding),
 * `f32x2` 8 aligned 8, `f32x4x4` (a 4×4 matrix) 64 aligned 16; in WGSL
 * layouts an `f32x3` is a `vec3<f32>`: 12 bytes aligned 16. `f16` is a half
 * float (C's `_Float16`), `bool` a byte holding 0 or 1 (C's `_Bool`; WGSL
 * cannot hold it in a buffer).
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
  | "f16"
  | "f32"
  | "f64"
  | "bool"
  | "f32x2"
  | "f32x3"
  | "f32x4"
  | "i32x4"
  | "u32x4"
  | "f32x4x4";

/**
 * What a field of a {@linkcode struct} holds: a {@linkcode FieldType}, a
 * nested record (a layout from `struct()`), or a fixed-size array
 * `[element, count]` of any of these.
 *
 * @example
 * ```ts
 * import { struct, type StructFieldType } from "@memkit/memkit";
 *
 * const Light = struct({ color: "f32x3", intensity: "f32" }, { layout: "wgsl-uniform" });
 * const lights: StructFieldType = [Light, 4];
 * const Scene = struct({ lights, count: "u32" }, { layout: "wgsl-uniform" });
 * console.log(Scene.fields.count.offset); // 64
 * ```
 */
export type StructFieldType = FieldType | StructLayout<unknown> | readonly [element: StructFieldType, count: number];

/**
 * The value a field of type `F` reads as: `number` for numeric scalars and
 * `f16`, `bigint` for `i64`/`u64`, `boolean` for `bool`, a tuple of numbers
 * of the type's length for a vector or matrix type (`[number, number]` for
 * an `f32x2`, 16 numbers for an `f32x4x4`), the record of a nested layout,
 * and an array of the element's values for an `[element, count]` array.
 *
 * With `"write"`, what a write (`push`, `set`) takes for it: `i64`/`u64`
 * take integer numbers as well as bigints, a vector exactly its count of
 * numbers, and vectors and arrays may be read-only (`as const`). `F` may
 * also be a value type itself, as a read gives it (an array's element type):
 * it stays as it is for `"read"`, and `"write"` maps it the same way (a
 * `bigint` anywhere in it takes an integer number too), so
 * `FieldValueOf<RecordOf<F>, "write">` is what a record of fields `F` takes.
 *
 * @example
 * ```ts
 * import type { FieldValueOf } from "@memkit/memkit";
 *
 * const id: FieldValueOf<"u64"> = 7n;
 * const given: FieldValueOf<"u64", "write"> = 7; // an integer number is taken, and read back as 7n
 * const position: FieldValueOf<"f32x3"> = [0, 1, 0];
 * const ticks: FieldValueOf<readonly ["u16", 2]> = [1, 2];
 * console.log(id, given, position, ticks);
 * ```
 */
export type FieldValueOf<F, Access extends "read" | "write" = "read"> = Access extends "write" ? (
    // Field types first, then value types (a bigint anywhere takes an integer number too, arrays may be
    // read-only, a tuple keeps its length). Never FieldValueOf<FieldValueOf<F>, "write">: for an `any` F that
    // recursion has no end. (An array's elements are mapped as `E[]`, a reference the checker resolves lazily:
    // FieldValue holds arrays of itself.)
    F extends "i64" | "u64" ? number | bigint
      : F extends "f32x2" | "f32x3" | "f32x4" | "i32x4" | "u32x4" | "f32x4x4" ? Readonly<FieldValueOf<F>>
      : F extends FieldType ? FieldValueOf<F>
      : F extends StructLayout<infer R> ? FieldValueOf<R, "write">
      : F extends readonly [infer E extends StructFieldType, number] ? readonly FieldValueOf<E, "write">[]
      : F extends bigint ? number | bigint
      : F extends readonly [unknown, ...unknown[]] ? { readonly [K in keyof F]: FieldValueOf<F[K], "write"> }
      : F extends readonly (infer E)[] ? readonly FieldValueOf<E, "write">[]
      : F extends object ? { [K in keyof F]: FieldValueOf<F[K], "write"> }
      : F
  )
  : F extends "i64" | "u64" ? bigint
  : F extends "bool" ? boolean
  : F extends "f32x2" ? [number, number]
  : F extends "f32x3" ? [number, number, number]
  : F extends "f32x4" | "i32x4" | "u32x4" ? [number, number, number, number]
  : F extends "f32x4x4"
    ? [...FieldValueOf<"f32x4">, ...FieldValueOf<"f32x4">, ...FieldValueOf<"f32x4">, ...FieldValueOf<"f32x4">]
  : F extends FieldType ? number
  : F extends StructLayout<infer R> ? R
  : F extends readonly [infer E extends StructFieldType, number] ? FieldValueOf<E>[]
  // A value type (an element type as a read gives it): as it is.
  : F;

/**
 * The record type of a layout's fields, as `struct()` infers it: each
 * field's {@linkcode FieldValueOf}. `new DynamicArray(layout)` returns
 * these records without a type argument, and takes them (or what
 * `FieldValueOf<RecordOf<F>, "write">` allows: numbers for `i64`/`u64`
 * fields, read-only vectors).
 *
 * @example
 * ```ts
 * import { DynamicArray, type RecordOf, struct } from "@memkit/memkit";
 *
 * const Particle = struct({ position: "f32x3", mass: "f32" });
 * const p: RecordOf<{ position: "f32x3"; mass: "f32" }> = { position: [0, 0, 0], mass: 1 };
 * using particles = new DynamicArray(Particle);
 * particles.push(p);
 * console.log(particles.get(0).mass); // 1, typed as a number
 * ```
 */
export type RecordOf<F> = { -readonly [K in keyof F]: FieldValueOf<F[K]> };

/**
 * Which rules lay out a {@linkcode struct}: `"c"` (a C compiler's, the
 * default), `"wgsl-storage"` (WGSL's, for storage buffers) or
 * `"wgsl-uniform"` (WGSL's plus the uniform address space's: array elements
 * 16 bytes apart, nested structs aligned to 16 with their size rounded up to
 * 16 before the next field).
 *
 * @example
 * ```ts
 * import { type LayoutRules, struct } from "@memkit/memkit";
 *
 * const rules: LayoutRules = "wgsl-storage";
 * console.log(struct({ v: "f32x3", f: "f32" }, { layout: rules }).size); // 16
 * ```
 */
export type LayoutRules = "c" | "wgsl-uniform" | "wgsl-storage";

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
  /** The field's type: a field type, a nested layout, or a frozen `[element, count]` array type. */
  readonly type: StructFieldType;
  /** Bytes the field occupies (including an `f32x3`'s padding in C layouts). */
  readonly size: number;
  /** The alignment the field was placed at (1 in packed layouts). */
  readonly align: number;
}

/**
 * A record type: its size (a multiple of its alignment, like C's `sizeof`
 * and WGSL's `SizeOf`), alignment and fields in declaration order.
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
export interface StructLayout<R = Record<string, FieldValue>> {
  /** Bytes per record, padding included. */
  readonly size: number;
  /** Alignment of the record. */
  readonly align: number;
  /** Fields by name, in declaration order. */
  readonly fields: Readonly<Record<string, StructField>>;
  /** Whether fields are packed without padding (C layouts only). */
  readonly packed: boolean;
  /** The rules the layout follows. */
  readonly layout: LayoutRules;
  /**
   * The record type, for the type checker only (never set: always
   * `undefined`). A layout of one record type is not assignable to an
   * unrelated one, so `new DynamicArray<Other>(layout)` is a compile error;
   * a wider or narrower record type (a `Record<string, number>` for a layout
   * built from fields typed `Record<string, StructFieldType>`) is accepted.
   */
  record?(record: R): void;
  /**
   * A C `typedef struct` with the same layout (C11, `<stdint.h>`; nested
   * records as inline structs, `f16` as `_Float16`).
   */
  cDeclaration(name: string): string;
  /**
   * WGSL struct declarations with the same layout, for a shader to read the
   * records: nested records as structs named `<name>_<field>`, `enable f16;`
   * first when a field holds an f16 (the device needs the "shader-f16"
   * feature; WGSL wants the directive at the top of the module, and allows it
   * twice). Fields WGSL would place elsewhere get `@align` / `@size`, so a C
   * layout's declaration matches its C offsets (for storage buffers).
   * @throws {TypeError} For a field WGSL cannot hold in a buffer (bool, 8-, 16- and 64-bit types), naming it.
   */
  wgslDeclaration(name: string): string;
}

/**
 * Options of {@linkcode struct}.
 *
 * @example
 * ```ts
 * import { struct, type StructOptions } from "@memkit/memkit";
 *
 * const options: StructOptions = { layout: "wgsl-uniform", align: 256 };
 * console.log(struct({ time: "f32" }, options).size); // 256
 * ```
 */
export interface StructOptions {
  /** Fields without padding, as C's `__attribute__((packed))` (only for layout "c"). @default {false} */
  packed?: boolean;
  /** A power of two up to 4096 to raise the record's alignment to (and its size to a multiple of). */
  align?: number;
  /** The rules: "c", "wgsl-storage" or "wgsl-uniform". @default {"c"} */
  layout?: LayoutRules;
}

const IDENTIFIER_REGEXP = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_REGEXP = /^(__|_[A-Z])/;

const OptionsSchema = z.object({
  packed: z.boolean().optional(),
  align: powerOfTwo(4096).optional(),
  // A string first: a number here is the wrong type (TypeError), not a value out of range.
  layout: z.string().pipe(z.enum(["c", "wgsl-uniform", "wgsl-storage"])).optional(),
}).strict();

// Every layout struct() made: arrays accept these and nothing else, so a
// forged or edited layout (a negative size, a field past the end) never
// decides where memkit reads and writes.
// Each with its nesting depth (see MAX_NESTING).
// (Its methods, and every built-in struct() uses, are the ones memkit loaded with: see _builtins.ts.)
const LAYOUTS = new Builtin.WeakMap<object, number>();

function registered(layout: StructLayout, depth: number): StructLayout {
  const frozen = freeze(layout);
  weakSet(LAYOUTS, frozen, depth);
  return frozen;
}

/** Whether `value` is a layout made by {@linkcode struct} (frozen, never forged). */
export function isStructLayout(value: unknown): value is StructLayout {
  return typeof value === "object" && value !== null && weakHas(LAYOUTS, value);
}

// Most levels of records and arrays a layout nests (itself included). Reading, writing and declaring a record
// walk its levels by recursion, so a layout nested thousands of levels deep (one struct() call each) would
// overflow the stack where it is used; no C or WGSL struct needs that many.
const MAX_NESTING = 64;

// The levels `type` (a normalized field type) nests: 0 for a scalar or vector.
function nestingOf(type: StructFieldType): number {
  if (typeof type === "string") return 0;
  if (isArray(type)) return 1 + nestingOf(type[0]);
  return weakGet(LAYOUTS, type) ?? 0;
}

/**
 * Defines a record type: each field at the next offset aligned to its type
 * (no padding when `packed`), the record aligned to its most aligned field
 * (or `align`), its size rounded up to that alignment. `layout` picks the
 * rules: C's (the default), or WGSL's for a GPU buffer, where a `vec3<f32>`
 * (`f32x3`) is 12 bytes aligned 16, so `{ v: "f32x3", f: "f32" }` is 16 bytes
 * (32 in C); `"wgsl-uniform"` adds the uniform address space's rules (array
 * elements 16 bytes apart, nested records aligned to 16 and followed by 16
 * bytes at least). A field type is a {@linkcode FieldType}, a layout from
 * `struct()` (a nested record, made with the same rules; a storage layout may
 * nest a uniform one) or a fixed-size array `[type, count]`.
 *
 * @param fields Field names (C identifiers) and types, in order.
 * @param options `packed`, `align` to raise the record's alignment, `layout` for the rules.
 * @returns The layout.
 * @throws {TypeError} For no fields, a name that is not a C identifier, an unknown type, a type the rules
 *   cannot hold (WGSL has no bool, 8-, 16- or 64-bit integers, f64 in buffers; a uniform array whose elements
 *   are not 16 bytes apart), a field nesting records and arrays more than 64 levels deep (this record
 *   included; arrays of arrays at most 16), naming the field, or `packed` with a WGSL layout.
 * @throws {RangeError} For an `align` that is not a power of two up to 4096, an array count that is not a
 *   positive integer, a record larger than 2^30 bytes.
 *
 * @example
 * ```ts
 * import { struct } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const Particle = struct({ position: "f32x3", velocity: "f32x3", mass: "f32", id: "u32" });
 * assert.equal(Particle.fields.mass.offset, 32);
 * assert.equal(Particle.size, 48);
 *
 * // The same fields as a GPU storage buffer's WGSL struct: mass packs into position's last 4 bytes.
 * const GpuParticle = struct({ pos: "f32x3", mass: "f32", vel: "f32x3", id: "u32" }, { layout: "wgsl-storage" });
 * assert.equal(GpuParticle.size, 32);
 * console.log(GpuParticle.wgslDeclaration("Particle"));
 * // struct Particle {
 * //   pos: vec3<f32>,
 * //   mass: f32,
 * //   vel: vec3<f32>,
 * //   id: u32,
 * // }
 * ```
 */
export function struct<const F extends Record<string, StructFieldType>>(
  fields: F,
  options?: StructOptions,
): StructLayout<RecordOf<F>> {
  if (typeof fields !== "object" || fields === null || isArray(fields)) {
    throw new TypeError(`Cannot define a struct as 'fields' must be an object: current value is ${describe(fields)}`);
  }
  if (options === undefined) options = {};
  const parsed = parseOptions(OptionsSchema, options, "define a struct");
  const rules: LayoutRules = parsed.layout ?? "c";
  const packed = parsed.packed ?? false;
  const minAlign = parsed.align ?? 1;
  // What the schema let through, checked again here (plainly: the schema's own code calls built-ins a program
  // may have replaced), as these decide every offset.
  if (
    (rules !== "c" && rules !== "wgsl-storage" && rules !== "wgsl-uniform") || typeof packed !== "boolean" ||
    !(isSafeInteger(minAlign) && minAlign >= 1 && minAlign <= 4096 && (minAlign & (minAlign - 1)) === 0)
  ) {
    throw new TypeError("Cannot define a struct as its options did not check out (a built-in was replaced)");
  }
  if (packed && rules !== "c") {
    throw new TypeError(
      `Cannot define a struct as 'packed' is only for layout "c": WGSL aligns every field (current layout is "${rules}")`,
    );
  }
  // (memkit's own lists, filled and read with index loops: see _builtins.ts.)
  const names = newList<string>();
  const types = newList<StructFieldType>();
  let depth = 1;
  const given = objectEntries(fields);
  for (let i = 0; i < given.length; i++) {
    const name = given[i][0], type = given[i][1];
    if (!matches(IDENTIFIER_REGEXP, name)) {
      throw new TypeError(
        `Cannot define a struct as field names must be C identifiers: current value is ${describe(name)}`,
      );
    }
    // C reserves these for the implementation, and in JavaScript "__proto__"
    // would set an object's prototype instead of a field.
    if (matches(RESERVED_REGEXP, name)) {
      throw new TypeError(
        `Cannot define a struct as field names must not start with "__" or "_" and a capital letter (C reserves them): current value is ${
          describe(name)
        }`,
      );
    }
    // Checked before it is used as a key (a key is converted to a string: user code).
    const normalized = normalize(type, name, isStructLayout);
    const nesting = 1 + nestingOf(normalized);
    if (nesting > MAX_NESTING) {
      throw new TypeError(
        `Cannot define a struct as field '${name}' nests records and arrays more than ${MAX_NESTING} deep: flatten ` +
          "the layout (a record's fields may be laid out in its parent)",
      );
    }
    depth = max(depth, nesting);
    append(names, name);
    append(types, normalized);
  }
  if (names.length === 0) throw new TypeError("Cannot define a struct as 'fields' must name at least one field");
  const { placements, size, align } = place(names, types, rules, packed, minAlign);
  // Defined, not assigned: `layout[name] = …` would run a setter a program put on Object.prototype for that name
  // (which could leave the field out, or put something else in its place).
  const layout = recordOf(
    names,
    arrayOf(names.length, (i): StructField => {
      const { offset, size, align } = placements[i];
      return freeze({ offset, type: types[i], size, align });
    }),
  );
  const self: StructLayout = registered({
    size,
    align,
    fields: freeze(layout),
    packed,
    layout: rules,
    cDeclaration: (name: string): string => cDeclaration(self, name),
    wgslDeclaration: (name: string): string => wgslDeclaration(self, name),
  }, depth);
  return self as StructLayout<RecordOf<F>>;
}
