// The C and WGSL declarations of a struct() layout: source text that a C
// compiler and a WGSL shader compiler lay out exactly as memkit does. Where
// a language's own rules would place a field elsewhere, the text says so
// explicitly (C's _Alignas and padding members; WGSL's @align and @size).
//
// Built with the built-ins captured when memkit loaded (see _builtins.ts): a built-in a program replaced later
// (the array iterator, Array.prototype.push or join, String.prototype.endsWith or replace, a Set's methods) never
// changes what a declaration says, so a C or WGSL program laid out by it reads the offsets memkit writes.
import { describe } from "../base/_validate.ts";
import {
  Builtin,
  hasOwn,
  join,
  mapGetOf,
  mapSetOf,
  matches,
  max,
  objectKeys,
  setAddOf,
  setHasOf,
} from "./_builtins.ts";
import { append, arrayOf, type List, newList } from "./_plain_values.ts";
import {
  arrayStride,
  FIELD_TYPES,
  isArrayType,
  measure,
  memberRules,
  type Placement,
  WGSL_TYPES,
} from "./_struct_rules.ts";
import type { FieldType, LayoutRules, StructFieldType, StructLayout } from "./struct.ts";

const IDENTIFIER_REGEXP = /^[A-Za-z_][A-Za-z0-9_]*$/;

// WGSL's keywords: a struct or member named like one does not compile.
const WGSL_KEYWORDS = new Set([
  "alias",
  "break",
  "case",
  "const",
  "const_assert",
  "continue",
  "continuing",
  "default",
  "diagnostic",
  "discard",
  "else",
  "enable",
  "false",
  "fn",
  "for",
  "if",
  "let",
  "loop",
  "override",
  "requires",
  "return",
  "struct",
  "switch",
  "true",
  "var",
  "while",
]);

// WGSL's reserved words (WGSL specification, "Reserved Words"): not keywords
// today, but no identifier may take them, so a field named `type` or `target`
// does not compile.
const WGSL_RESERVED = new Set(
  ("NULL Self abstract active alignas alignof as asm asm_fragment async attribute auto await become " +
    "binding_array cast catch class co_await co_return co_yield coherent column_major common compile " +
    "compile_fragment concept const_cast consteval constexpr constinit crate debugger decltype delete demote " +
    "demote_to_helper do dynamic_cast enum explicit export extends extern external fallthrough filter final " +
    "finally friend from fxgroup get goto groupshared highp impl implements import inline instanceof interface " +
    "layout lowp macro macro_rules match mediump meta mod module move mut mutable namespace new nil noexcept " +
    "noinline nointerpolation non_coherent noncoherent noperspective null nullptr of operator package packoffset " +
    "partition pass patch pixelfragment precise precision premerge priv protected pub public readonly ref " +
    "regardless register reinterpret_cast require resource restrict self set shared sizeof smooth snorm static " +
    "static_assert static_cast std subroutine super target template this thread_local throw trait try type " +
    "typedef typeid typename typeof union unless unorm unsafe unsized use using varying virtual volatile wgsl " +
    "where with writeonly yield").split(" "),
);

// Predeclared type names: a struct named `f32` or `vec4f` is refused by shader compilers (fields may take them).
const WGSL_TYPE_NAMES = new Set([
  "bool",
  "f16",
  "f32",
  "i32",
  "u32",
  "array",
  "atomic",
  "ptr",
  "sampler",
  "sampler_comparison",
  ...["vec2", "vec3", "vec4"].flatMap((v) => [v, `${v}i`, `${v}u`, `${v}f`, `${v}h`]),
  ...[2, 3, 4].flatMap((c) => [2, 3, 4].flatMap((r) => [`mat${c}x${r}`, `mat${c}x${r}f`, `mat${c}x${r}h`])),
  ...("1d 2d 2d_array 3d cube cube_array multisampled_2d external storage_1d storage_2d storage_2d_array " +
    "storage_3d depth_2d depth_2d_array depth_cube depth_cube_array depth_multisampled_2d").split(" ")
    .map((t) => `texture_${t}`),
]);

/** A field of a layout as the declarations need it. */
interface Member extends Placement {
  name: string;
  type: StructFieldType;
}

/** The members of `layout` in order, with the slot each keeps under its rules. */
export function membersOf(layout: StructLayout<unknown>): Member[] {
  const names = objectKeys(layout.fields);
  return arrayOf(names.length, (i) => {
    const name = names[i], field = layout.fields[name];
    const m = measure(field.type, layout.layout, name);
    const slot = memberRules(field.type, m, layout.layout, layout.packed).slot;
    return { name, type: field.type, offset: field.offset, align: field.align, size: field.size, slot };
  });
}

// ------------------------------------------------------------------ C

// C's keywords (C11, and those C23 adds): a declaration naming a field or the struct after one does not compile.
const C_KEYWORDS = new Set(
  ("auto break case char const continue default do double else enum extern float for goto if inline int long " +
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while " +
    "_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local " +
    "alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual " +
    "_BitInt _Decimal128 _Decimal32 _Decimal64").split(" "),
);

function cName(name: string, what: string): string {
  if (setHasOf(C_KEYWORDS, name)) {
    throw new TypeError(
      `Cannot declare a struct in C as ${what} is a C keyword: current value is ${describe(name)} (rename it)`,
    );
  }
  return name;
}

// C's own alignment of each C type a field type's elements are declared as.
const C_ALIGN: Readonly<Record<string, number>> = {
  double: 8,
  int64_t: 8,
  uint64_t: 8,
  float: 4,
  int32_t: 4,
  uint32_t: 4,
  _Float16: 2,
  int16_t: 2,
  uint16_t: 2,
};

/** C's own alignment of a field type's base element (a scalar, or a nested struct's). */
function cNaturalAlign(type: StructFieldType, rules: LayoutRules): number {
  if (isArrayType(type)) return cNaturalAlign(type[0], rules);
  if (typeof type === "string") {
    const c = rules === "c" ? FIELD_TYPES[type].c : WGSL_TYPES[type]!.c;
    return hasOwn(C_ALIGN, c) ? C_ALIGN[c] : 1;
  }
  return type.align;
}

// `[n]` for each of `dims`, in order.
function dimensions(dims: ArrayLike<number>): string {
  let out = "";
  for (let i = 0; i < dims.length; i++) out += `[${dims[i]}]`;
  return out;
}

// `dims` and then `last`, in a new List.
function withDimension(dims: ArrayLike<number>, last: number): List<number> {
  const out = newList<number>();
  for (let i = 0; i < dims.length; i++) append(out, dims[i]);
  append(out, last);
  return out;
}

/**
 * The C text of a member `name` of `type`: the base type (an inline struct
 * for a nested layout) and the array dimensions, where a vector is an array
 * of its lanes. In an array, a WGSL vec3 takes 4 floats (its stride is 16).
 */
function cMember(
  type: StructFieldType,
  name: string,
  rules: LayoutRules,
  indent: string,
  dims: ArrayLike<number>,
): string {
  if (isArrayType(type)) return cMember(type[0], name, rules, indent, withDimension(dims, type[1]));
  if (typeof type === "string") {
    const info = rules === "c" ? FIELD_TYPES[type] : WGSL_TYPES[type]!;
    const lanes = rules !== "c" && type === "f32x3" && dims.length > 0 ? 4 : info.count;
    return `${info.c} ${name}${dimensions(lanes > 1 ? withDimension(dims, lanes) : dims)}`;
  }
  const body = cBody(type, type.layout, `${indent}  `);
  const attrs = cAttributes(type.packed, declaredMinAlign(type));
  return `struct ${attrs}{\n${body}${indent}} ${name}${dimensions(dims)}`;
}

function cAttributes(packed: boolean, minAlign: number | undefined): string {
  return (packed ? "__attribute__((packed)) " : "") +
    (minAlign !== undefined ? `__attribute__((aligned(${minAlign}))) ` : "");
}

// The `align` option a layout was made with, as far as the declaration needs
// it: an alignment above every field's.
function declaredMinAlign(layout: StructLayout<unknown>): number | undefined {
  let widest = 1; // (a loop, not Math.max(...): a layout may have more fields than a call has room for arguments)
  const names = objectKeys(layout.fields);
  for (let i = 0; i < names.length; i++) widest = max(widest, layout.fields[names[i]].align);
  return layout.align > widest ? layout.align : undefined;
}

function cBody(layout: StructLayout<unknown>, rules: LayoutRules, indent: string): string {
  const members = membersOf(layout);
  const taken = new Builtin.Set<string>();
  for (let i = 0; i < members.length; i++) setAddOf(taken, members[i].name);
  let pads = 0;
  const lines = newList<string>();
  for (let i = 0; i < members.length; i++) {
    const member = members[i];
    const natural = cNaturalAlign(member.type, rules);
    const aligned = !layout.packed && member.align > natural ? `_Alignas(${member.align}) ` : "";
    const note = member.type === "f32x3"
      ? rules === "c" ? " /* f32x3: x, y, z and padding */" : " /* f32x3: x, y, z (WGSL vec3<f32>) */"
      : "";
    const name = cName(member.name, `field '${member.name}'`);
    append(lines, `${indent}${aligned}${cMember(member.type, name, rules, indent, newList())};${note}`);
    if (member.slot > member.size) {
      let pad: string;
      do pad = `pad${pads++}`; while (setHasOf(taken, pad));
      append(
        lines,
        `${indent}uint8_t ${pad}[${member.slot - member.size}]; /* WGSL uniform: after a struct, 16-aligned */`,
      );
    }
  }
  return join(lines, "\n") + "\n";
}

/** A C11 `typedef struct` laid out as `layout`, with a static assertion of its size. */
export function cDeclaration(layout: StructLayout<unknown>, name: unknown): string {
  if (typeof name !== "string" || !matches(IDENTIFIER_REGEXP, name)) {
    throw new TypeError(`Cannot declare a struct as 'name' must be a C identifier: current value is ${describe(name)}`);
  }
  cName(name, "'name'");
  const minAlign = declaredMinAlign(layout);
  const packed = layout.packed ? "__attribute__((packed)) " : "";
  const tail = minAlign !== undefined ? ` __attribute__((aligned(${minAlign})))` : "";
  // (cBody's lines end with a newline each, the last one included.)
  return `typedef struct ${packed}{\n${cBody(layout, layout.layout, "  ")}}${tail} ${name};\n` +
    `_Static_assert(sizeof(${name}) == ${layout.size}, "memkit layout of ${name}");`;
}

// ------------------------------------------------------------------ WGSL

/** WGSL's own AlignOf and SizeOf of a field type (a nested layout's as its declaration makes them). */
function wgslNatural(type: StructFieldType, field: string): { size: number; align: number } {
  if (typeof type === "string") return measure(type, "wgsl-storage", field, "declare a struct in WGSL");
  if (isArrayType(type)) {
    const element = wgslNatural(type[0], `${field}[]`);
    return { size: type[1] * arrayStride(element, "wgsl-storage"), align: element.align };
  }
  return { size: type.size, align: type.align };
}

function wgslName(name: unknown, what: string, isStruct = false): string {
  if (
    typeof name !== "string" || !matches(IDENTIFIER_REGEXP, name) || name === "_" ||
    (name[0] === "_" && name[1] === "_")
  ) {
    throw new TypeError(
      `Cannot declare a struct in WGSL as ${what} must be a WGSL identifier (letters, digits and "_", not "_" ` +
        `alone or starting with "__"): current value is ${describe(name)}`,
    );
  }
  if (setHasOf(WGSL_KEYWORDS, name) || setHasOf(WGSL_RESERVED, name)) {
    throw new TypeError(
      `Cannot declare a struct in WGSL as ${what} is a WGSL ${
        setHasOf(WGSL_KEYWORDS, name) ? "keyword" : "reserved word"
      }: current value is ${describe(name)} (rename the field)`,
    );
  }
  if (isStruct && setHasOf(WGSL_TYPE_NAMES, name)) {
    throw new TypeError(
      `Cannot declare a struct in WGSL as ${what} is a predeclared WGSL type: current value is ${describe(name)}`,
    );
  }
  return name;
}

function holdsStruct(type: StructFieldType): boolean {
  return typeof type !== "string" && (!isArrayType(type) || holdsStruct(type[0]));
}

/**
 * WGSL declarations of `layout` named `name`: first `enable f16;` when any
 * field holds an f16, then a struct per nested layout (named after the
 * first field that holds it: `Name_field`), then the struct itself. A field
 * that WGSL would place elsewhere than `layout` says gets `@align` (a larger
 * alignment) or `@size` (a larger slot); a C layout declared so matches its
 * C offsets (valid in storage buffers: only "wgsl-uniform" layouts are
 * checked against the uniform address space's extra rules).
 * @throws {TypeError} For a bad name, a packed layout, or a field WGSL cannot hold (naming it).
 */
export function wgslDeclaration(layout: StructLayout<unknown>, name: unknown): string {
  wgslName(name, "'name'", true);
  const names = new Builtin.Map<StructLayout<unknown>, string>();
  const taken = new Builtin.Set<string>();
  setAddOf(taken, name as string);
  const blocks = newList<string>();
  let f16 = false;
  const declare = (struct: StructLayout<unknown>, structName: string, path: string): void => {
    if (struct.packed) {
      throw new TypeError(
        `Cannot declare a struct in WGSL as ${path === "" ? "it" : `field '${path}'`} is packed (WGSL aligns every ` +
          `field): make it without 'packed'`,
      );
    }
    const lines = newList<string>();
    const members = membersOf(struct);
    const minAlign = declaredMinAlign(struct);
    for (let i = 0; i < members.length; i++) {
      const member = members[i];
      const where = path === "" ? member.name : `${path}.${member.name}`;
      wgslName(member.name, `field '${where}'`);
      const natural = wgslNatural(member.type, where);
      const text = typeText(member.type, where);
      const align = i === 0 && minAlign !== undefined ? max(member.align, minAlign) : member.align;
      // A member holding a struct always says its alignment: naga (Deno's WebGPU) takes a struct's alignment
      // from its members' types and ignores their @align, so a nested layout made with `align` would sit
      // elsewhere there than the specification (and Tint, and memkit) put it.
      const attrs = (align !== natural.align || holdsStruct(member.type) ? `@align(${align}) ` : "") +
        (member.slot !== natural.size ? `@size(${member.slot}) ` : "");
      append(lines, `  ${attrs}${member.name}: ${text},`);
    }
    append(blocks, `struct ${structName} {\n${join(lines, "\n")}\n}`);
  };
  const typeText = (type: StructFieldType, where: string): string => {
    if (typeof type === "string") {
      if (type === "f16") f16 = true;
      const info = WGSL_TYPES[type as FieldType];
      if (info === undefined) measure(type, "wgsl-storage", where, "declare a struct in WGSL"); // throws, naming why
      return info!.wgsl;
    }
    if (isArrayType(type)) return `array<${typeText(type[0], `${where}[]`)}, ${type[1]}>`;
    let nested = mapGetOf(names, type);
    if (nested === undefined) {
      const base = `${name}_${structPath(where)}`;
      nested = base;
      // A derived name may spell a reserved word (struct "static", field "assert"): numbered then.
      for (
        let k = 2;
        setHasOf(taken, nested) || setHasOf(WGSL_RESERVED, nested) || setHasOf(WGSL_KEYWORDS, nested);
        k++
      ) {
        nested = `${base}${k}`;
      }
      setAddOf(taken, nested);
      mapSetOf(names, type, nested);
      declare(type, nested, where);
    }
    return nested;
  };
  declare(layout, name as string, "");
  // Nested structs were pushed before the struct that holds them; WGSL does not mind the order, readers do.
  return (f16 ? "enable f16;\n\n" : "") + join(blocks, "\n\n");
}

// A field's path as part of a struct name: "lights[].color" is "lights_color" (each "[]" left out, each "." an "_").
function structPath(where: string): string {
  let out = "";
  for (let i = 0; i < where.length; i++) {
    const c = where[i];
    if (c === "[" && where[i + 1] === "]") i++;
    else out += c === "." ? "_" : c;
  }
  return out;
}
