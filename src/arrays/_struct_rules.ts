// The layout rules behind struct(): how big and how aligned each field type
// is under C's rules and under WGSL's (the two address spaces a GPU buffer can
// be bound to), and where each field of a record goes. The declarations
// (_struct_declarations.ts) print what is computed here.
//
// Computed with the built-ins captured when memkit loaded (see _builtins.ts): index loops, no array destructuring,
// the captured Math and Number functions. A built-in a program replaced later (Math.ceil, the array iterator,
// Number.isSafeInteger...) never changes the offsets and sizes struct() records, which arrays then trust.
import { describe, withArticle } from "../base/_validate.ts";
import { ceil, freeze, hasOwn, isArray, isSafeInteger, join, max, objectKeys } from "./_builtins.ts";
import { arrayOf } from "./_plain_values.ts";
import type { FieldType, LayoutRules, StructFieldType, StructLayout } from "./struct.ts";

/** Size and alignment of each field type under C's rules, its C type and element count (a vector's lanes). */
export const FIELD_TYPES: Readonly<Record<FieldType, { size: number; align: number; c: string; count: number }>> = {
  i8: { size: 1, align: 1, c: "int8_t", count: 1 },
  u8: { size: 1, align: 1, c: "uint8_t", count: 1 },
  i16: { size: 2, align: 2, c: "int16_t", count: 1 },
  u16: { size: 2, align: 2, c: "uint16_t", count: 1 },
  i32: { size: 4, align: 4, c: "int32_t", count: 1 },
  u32: { size: 4, align: 4, c: "uint32_t", count: 1 },
  i64: { size: 8, align: 8, c: "int64_t", count: 1 },
  u64: { size: 8, align: 8, c: "uint64_t", count: 1 },
  f16: { size: 2, align: 2, c: "_Float16", count: 1 },
  f32: { size: 4, align: 4, c: "float", count: 1 },
  f64: { size: 8, align: 8, c: "double", count: 1 },
  bool: { size: 1, align: 1, c: "_Bool", count: 1 },
  f32x2: { size: 8, align: 8, c: "float", count: 2 },
  f32x3: { size: 16, align: 16, c: "float", count: 4 },
  f32x4: { size: 16, align: 16, c: "float", count: 4 },
  i32x4: { size: 16, align: 16, c: "int32_t", count: 4 },
  u32x4: { size: 16, align: 16, c: "uint32_t", count: 4 },
  f32x4x4: { size: 64, align: 16, c: "float", count: 16 },
};

/**
 * The WGSL types of the field types WGSL can hold in a buffer (its
 * "host-shareable" types), with WGSL's AlignOf and SizeOf: a `vec3<f32>` is
 * 12 bytes aligned 16, so a following 4-byte field packs into its last 4
 * bytes. `count` is the C floats an element of an array takes (a vec3 in an
 * array is padded to 4).
 */
export const WGSL_TYPES: Readonly<
  Partial<Record<FieldType, { size: number; align: number; wgsl: string; c: string; count: number }>>
> = {
  i32: { size: 4, align: 4, wgsl: "i32", c: "int32_t", count: 1 },
  u32: { size: 4, align: 4, wgsl: "u32", c: "uint32_t", count: 1 },
  f16: { size: 2, align: 2, wgsl: "f16", c: "_Float16", count: 1 },
  f32: { size: 4, align: 4, wgsl: "f32", c: "float", count: 1 },
  f32x2: { size: 8, align: 8, wgsl: "vec2<f32>", c: "float", count: 2 },
  f32x3: { size: 12, align: 16, wgsl: "vec3<f32>", c: "float", count: 3 },
  f32x4: { size: 16, align: 16, wgsl: "vec4<f32>", c: "float", count: 4 },
  i32x4: { size: 16, align: 16, wgsl: "vec4<i32>", c: "int32_t", count: 4 },
  u32x4: { size: 16, align: 16, wgsl: "vec4<u32>", c: "uint32_t", count: 4 },
  f32x4x4: { size: 64, align: 16, wgsl: "mat4x4<f32>", c: "float", count: 16 },
};

// Why WGSL cannot hold a field type (the types absent from WGSL_TYPES).
const NOT_IN_WGSL: Partial<Record<FieldType, string>> = {
  bool: "WGSL allows bool only in private and function variables, not in a uniform or storage buffer " +
    "(bool is not host-shareable): store it as a u32 (0 or 1)",
  i8: "WGSL has no 8-bit integers: use an i32, or pack four into a u32",
  u8: "WGSL has no 8-bit integers: use a u32, or pack four into one",
  i16: "WGSL has no 16-bit integers: use an i32, or pack two into a u32",
  u16: "WGSL has no 16-bit integers: use a u32, or pack two into one",
  i64: "WGSL has no 64-bit integers: use two u32 fields",
  u64: "WGSL has no 64-bit integers: use two u32 fields",
  f64: "WGSL has no f64: use an f32",
};

/** The largest record struct() lays out (a fixed-size array field can ask for more). */
export const MAX_STRUCT_SIZE = 2 ** 30;

/** Nesting depth of array types within one field (an array of arrays of …). */
const MAX_DEPTH = 16;

/** Size and alignment of a field type under one set of rules. */
export interface Measure {
  size: number;
  align: number;
}

/** What struct() needs to know of the layouts it nests (any StructLayout<unknown> from struct()). */
type Nested = Pick<StructLayout<unknown>, "size" | "align" | "layout">;

/** Whether `type` is a fixed-size array field type (`[element, count]`, as normalize() returns it). */
export function isArrayType(type: StructFieldType): type is readonly [StructFieldType, number] {
  return isArray(type);
}

/**
 * Checks a field's type and returns it in the form a layout keeps: the same
 * string or layout, or a fresh frozen `[element, count]` (each part read
 * once, so a getter or a later change to the caller's array changes nothing).
 * @throws {TypeError} For an unknown type, a layout not made by struct(), an array that is not `[type, count]`.
 * @throws {RangeError} For an array count that is not a positive integer.
 */
export function normalize(
  type: unknown,
  field: string,
  isLayout: (value: unknown) => value is StructLayout<unknown>,
  depth = 0,
): StructFieldType {
  if (typeof type === "string" && hasOwn(FIELD_TYPES, type)) return type as FieldType;
  if (isLayout(type)) return type;
  if (isArray(type)) {
    if (depth >= MAX_DEPTH) {
      throw new TypeError(`Cannot define a struct as field '${field}' nests arrays more than ${MAX_DEPTH} deep`);
    }
    const length = type.length;
    if (length !== 2) {
      throw new TypeError(
        `Cannot define a struct as field '${field}' must be an array type [element type, count]: ` +
          `current value has ${describe(length)} entries`,
      );
    }
    const element = type[0], count = type[1];
    if (typeof count !== "number") {
      throw new TypeError(
        `Cannot define a struct as the count of array field '${field}' must be a number: current value is ${
          describe(count)
        }`,
      );
    }
    if (!isSafeInteger(count) || count < 1) {
      throw new RangeError(
        `Cannot define a struct as the count of array field '${field}' must be a positive integer: current value is ${
          describe(count)
        }`,
      );
    }
    return freeze([normalize(element, `${field}[]`, isLayout, depth + 1), count] as const);
  }
  throw new TypeError(
    `Cannot define a struct as field '${field}' must have one of ${join(objectKeys(FIELD_TYPES), ", ")}, ` +
      `a layout from struct(), or an array type [element type, count]: current value is ${describe(type)}`,
  );
}

/**
 * Size and alignment of `type` under `rules`, before the uniform address
 * space rounds a member's alignment (see place()). C: the C sizes; an array
 * of N elements takes N times the element's size. WGSL: WGSL's AlignOf and
 * SizeOf; an array's stride is the element's size rounded up to its
 * alignment, and in the uniform address space must be a multiple of 16.
 * @throws {TypeError} For a type the rules cannot hold, naming `field`.
 * @throws {RangeError} For a type larger than MAX_STRUCT_SIZE.
 */
export function measure(type: StructFieldType, rules: LayoutRules, field: string, op = "define a struct"): Measure {
  if (typeof type === "string") {
    if (rules === "c") return FIELD_TYPES[type];
    const info = WGSL_TYPES[type];
    if (info === undefined) {
      throw new TypeError(
        `Cannot ${op} as field '${field}' is ${withArticle(type)}, which ${
          op === "define a struct" ? `layout "${rules}"` : "WGSL"
        } cannot hold: ${NOT_IN_WGSL[type]}`,
      );
    }
    return info;
  }
  if (isArrayType(type)) {
    const element = type[0], count = type[1]; // (by index: destructuring would ask the array iterator)
    const inner = measure(element, rules, `${field}[]`, op);
    const stride = arrayStride(inner, rules);
    if (rules === "wgsl-uniform" && stride % 16 !== 0) {
      throw new TypeError(
        `Cannot define a struct as array field '${field}' has elements ${stride} bytes apart, and layout ` +
          `"wgsl-uniform" needs a multiple of 16 (WGSL's uniform address space): use 4-lane vector elements ` +
          `(f32x4, i32x4, u32x4), a struct whose size is a multiple of 16, or layout "wgsl-storage"`,
      );
    }
    if (count * stride > MAX_STRUCT_SIZE) {
      throw new RangeError(
        `Cannot define a struct as array field '${field}' would take ${count} × ${stride} bytes: at most ${MAX_STRUCT_SIZE}`,
      );
    }
    return { size: count * stride, align: inner.align };
  }
  checkNested(type, rules, field);
  return { size: type.size, align: type.align };
}

/** Bytes from one element of an array to the next. */
export function arrayStride(element: Measure, rules: LayoutRules): number {
  return rules === "c" ? element.size : ceil(element.size / element.align) * element.align;
}

// A layout may nest another made with the same rules; a storage buffer's
// struct may also nest one made for uniform buffers (whose layout, declared
// with explicit @align and @size, is the same in any address space).
function checkNested(child: Nested, rules: LayoutRules, field: string): void {
  const fits = child.layout === rules || (rules === "wgsl-storage" && child.layout === "wgsl-uniform");
  if (!fits) {
    throw new TypeError(
      `Cannot define a struct as field '${field}' is a struct with layout "${child.layout}", which a struct with ` +
        `layout "${rules}" cannot nest: make it with layout "${rules}"`,
    );
  }
}

/** Where one field goes: its offset, its alignment, its size and the bytes before the next field may start. */
export interface Placement {
  offset: number;
  align: number;
  size: number;
  /** size, or more in the uniform address space after a nested struct (the next member starts 16-aligned). */
  slot: number;
}

/**
 * Alignment and slot of a field of `type` (measured `m`) under `rules`:
 * its own alignment (1 when packed); in WGSL's uniform address space, a
 * struct or array member is aligned to at least 16 and a struct member keeps
 * its size rounded up to 16 clear before the next member.
 */
export function memberRules(type: StructFieldType, m: Measure, rules: LayoutRules, packed: boolean): {
  align: number;
  slot: number;
} {
  if (packed) return { align: 1, slot: m.size };
  if (rules === "wgsl-uniform" && typeof type !== "string") {
    return { align: max(16, m.align), slot: isArrayType(type) ? m.size : ceil(m.size / 16) * 16 };
  }
  return { align: m.align, slot: m.size };
}

/**
 * Places fields in order: each at the end of the previous one's slot,
 * rounded up to its alignment; the record aligned to its most aligned field
 * (or `align` when larger), its size rounded up to that alignment.
 * @throws {TypeError | RangeError} As measure(), naming the field.
 */
export function place(
  names: ArrayLike<string>,
  types: ArrayLike<StructFieldType>,
  rules: LayoutRules,
  packed: boolean,
  minAlign: number,
): { placements: readonly Placement[]; size: number; align: number } {
  let end = 0;
  let align = 1;
  const placements = arrayOf(names.length, (i): Placement => {
    const name = names[i], type = types[i];
    const m = measure(type, rules, name);
    const member = memberRules(type, m, rules, packed);
    const offset = ceil(end / member.align) * member.align;
    end = offset + member.slot;
    align = max(align, member.align);
    if (end > MAX_STRUCT_SIZE) {
      throw new RangeError(
        `Cannot define a struct as field '${name}' ends at byte ${end}: a record takes at most ${MAX_STRUCT_SIZE}`,
      );
    }
    return { offset, align: member.align, size: m.size, slot: member.slot };
  });
  align = max(align, minAlign);
  return { placements, size: ceil(end / align) * align, align };
}
