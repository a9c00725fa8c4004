// Records with a distinct value in every scalar of every field, and the list
// of those scalars ("leaves") with how C and WGSL reach each one: what the
// round-trip tests write from JS and check on the other side, field by field.
import type { FieldType, FieldValue, StructFieldType, StructLayout } from "../../mod.ts";

/** The scalar kinds a leaf holds. */
export type LeafKind =
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
  | "bool";

/** One scalar of a record: its path, its C and WGSL access (after the record), its kind and value. */
export interface Leaf {
  path: string;
  c: string;
  wgsl: string;
  kind: LeafKind;
  value: number | bigint | boolean;
}

const LANES: Partial<Record<FieldType, [number, LeafKind]>> = {
  f32x2: [2, "f32"],
  f32x3: [3, "f32"],
  f32x4: [4, "f32"],
  i32x4: [4, "i32"],
  u32x4: [4, "u32"],
  f32x4x4: [16, "f32"],
};

/**
 * The value of leaf `k` of record `record`: small integers (exact in every
 * kind, f16 included), negative in signed kinds and with a fraction in
 * floats, so that a field read from the wrong place or as the wrong kind
 * shows.
 */
function leafValue(kind: LeafKind, record: number, k: number): number | bigint | boolean {
  const n = (record * 31 + k * 7) % 100 + 1;
  switch (kind) {
    case "bool":
      return (record + k) % 2 === 0;
    case "i8":
    case "i16":
    case "i32":
      return k % 2 === 0 ? -n : n;
    case "i64":
      return BigInt(k % 2 === 0 ? -n : n);
    case "u64":
      return BigInt(n) + 2n ** 40n;
    case "f16":
    case "f32":
    case "f64":
      return (k % 2 === 0 ? -n : n) + 0.25;
    default:
      return n;
  }
}

/** Record `record` of `layout` (a JS value for DynamicArray) and its leaves in memory order of fields. */
export function recordOf(layout: StructLayout, record: number): { value: Record<string, FieldValue>; leaves: Leaf[] } {
  const leaves: Leaf[] = [];
  const walk = (type: StructFieldType, path: string, c: string, wgsl: string): unknown => {
    if (typeof type === "string") {
      const lanes = LANES[type];
      if (lanes === undefined) {
        const kind = type as LeafKind;
        const value = leafValue(kind, record, leaves.length);
        leaves.push({ path, c, wgsl, kind, value });
        return value;
      }
      const [count, kind] = lanes;
      const out: unknown[] = [];
      for (let e = 0; e < count; e++) {
        // A WGSL matrix is indexed by column, then row (its lanes in memory order, column-major).
        const w = type === "f32x4x4" ? `${wgsl}[${e >> 2}][${e & 3}]` : `${wgsl}[${e}]`;
        const value = leafValue(kind, record, leaves.length);
        leaves.push({ path: `${path}[${e}]`, c: `${c}[${e}]`, wgsl: w, kind, value });
        out.push(value);
      }
      return out;
    }
    if (Array.isArray(type)) {
      const [element, count] = type as readonly [StructFieldType, number];
      return Array.from(
        { length: count },
        (_, i) => walk(element, `${path}[${i}]`, `${c}[${i}]`, `${wgsl}[${i}]`),
      );
    }
    const out: Record<string, unknown> = {};
    for (const [name, field] of Object.entries((type as StructLayout).fields)) {
      out[name] = walk(field.type, path === "" ? name : `${path}.${name}`, `${c}.${name}`, `${wgsl}.${name}`);
    }
    return out;
  };
  const value = walk(layout, "", "", "") as Record<string, FieldValue>;
  return { value, leaves };
}
