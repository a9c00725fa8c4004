// The fast path of a record codec: a reader and a writer generated as source
// text for one element type, indexing typed arrays at constant offsets with
// constant field names (as fast as hand-written typed-array code once inlined).
import { ELEMENT_SIZE, type Field, type Kind, type ViewKind, type Views } from "./_codec_layout.ts";
import type { Appender, Encoder, Reader, Slow, Writer } from "./_record_target.ts";
import { handedCopy } from "./_codec_dataview.ts";
import { Builtin, join, stringify } from "./_builtins.ts";
import { append, type List, listOf, newList } from "./_plain_values.ts";

// The range checks of _codec_dataview.ts as source text: true when `v`
// (already known to be a number, or a bigint for 64-bit kinds) must go to the
// checked path.
const OUT_OF_RANGE: Record<Kind, (v: string) => string | null> = {
  i8: (v) => `((${v} << 24) >> 24) !== ${v}`,
  u8: (v) => `(${v} & 255) !== ${v}`,
  i16: (v) => `((${v} << 16) >> 16) !== ${v}`,
  u16: (v) => `(${v} & 65535) !== ${v}`,
  i32: (v) => `(${v} | 0) !== ${v}`,
  u32: (v) => `(${v} >>> 0) !== ${v}`,
  i64: (v) => `BigInt.asIntN(64, ${v}) !== ${v}`,
  u64: (v) => `BigInt.asUintN(64, ${v}) !== ${v}`,
  f16: () => null,
  f32: () => null,
  f64: () => null,
  bool: () => null,
};

// Scalars the writer of one type stores (a 4×4 matrix is 16): past this, a
// type's code would be large to build for little gain, and the checked path takes it.
const MAX_LANES = 256;

/**
 * What generate() makes: the writer and the batch encoder (given the checked
 * path to fall back to), the reader, the views they use.
 */
export interface Generated {
  writer: (slow: Slow) => Writer;
  appender: (slow: Slow) => Appender;
  encoder: (slow: Slow) => Encoder;
  reader: Reader;
  kinds: ArrayLike<ViewKind>;
}

// Thrown inside generate() when a type is not for generated code.
const UNSUITED = Symbol("unsuited");

/**
 * The source of a reader and a writer for one type. The writer reads every
 * field once by a constant name (a record first has its keys checked: each
 * must be a field), checks them all, and only then claims the slot and
 * stores each value at a constant offset through the typed array of its kind
 * (padding as 0). Anything but the plain shape (a typed array for a vector, a
 * number for an i64, a missing or unknown field, a value out of range) leaves
 * the `check` block for the one call of `slow`, the checked path, with the
 * fields already read, so no getter runs twice. Field names enter the code
 * only as JSON string literals. `fields` holds one entry with a null name for
 * a scalar or vector element type. A bool is stored through the u8 view (a
 * typed array stores true as 1) and read as `!== 0`.
 *
 * Nested records and arrays of non-scalars are checked the same way, depth
 * first: a nested record's keys, then its fields read once each; an array's
 * length, then its elements. When the writer hands a value to the checked
 * path, each nested record and array it has already read goes as a plain
 * copy of what was read (so no getter of a nested record runs twice either).
 *
 * Null when a field is not naturally aligned (packed layouts), the type
 * stores more than MAX_LANES scalars, has an f16 where the runtime has no
 * Float16Array, or code generation is disallowed.
 *
 * Why one bail site and one condition: the writer must stay under V8's
 * inlining limit (460 bytes of bytecode) so that push, the codec and the
 * writer compile into the caller's loop; every extra `return slow(...)`
 * costs bytecode, and an un-inlined writer made push 1.8× slower in Deno.
 *
 * The batch encoder (pushMany's staging) is the writer's checks and stores in
 * a loop over an array, element i at slot i of a staging target with room for
 * all of them, the views loaded once, where a loop calling the writer pays a
 * call, a claim and the view loads per element (same-process A/B, batches of
 * 256 12-byte records: Bun 9.7 -> 7.3 ns a record, Deno 8.1 -> 7.2).
 */
export function generate(fields: readonly Field[], stride: number, wrap: boolean): Generated | null {
  try {
    return build(fields, stride, wrap);
  } catch (error) {
    if (error === UNSUITED) return null;
    throw error;
  }
}

// The scalars one element of `field` stores, counted from the layout (never one array element at a time: an
// array may hold 2^30 of them).
function scalarsOf(field: Field): number {
  const inner = field.inner;
  if (inner === null) return field.count;
  if (inner.array) return inner.length * scalarsOf(inner.element);
  let scalars = 0;
  for (let i = 0; i < inner.fields.length; i++) scalars += scalarsOf(inner.fields[i]);
  return scalars;
}

// The source is built with memkit's own lists (List, join(), index loops; a field name enters it only through the
// captured JSON.stringify) and compiled by the Function constructor memkit loaded with: no built-in a program
// replaced afterwards (the array iterator, Array.prototype.push or join, JSON.stringify) takes part in what an
// array's writer and reader do. A global Function that is not that one is taken as code generation disallowed.
function build(fields: readonly Field[], stride: number, wrap: boolean): Generated | null {
  // A type past MAX_LANES scalars goes to the checked path before anything proportional to its size is made
  // (one local name, one check and one store per scalar).
  let scalars = 0;
  for (let i = 0; i < fields.length; i++) scalars += scalarsOf(fields[i]);
  if (scalars > MAX_LANES) return null;
  if (globalThis.Function !== Builtin.Function) return null;
  // The views the code uses, in the order of their first use (`views`), and those of them it needs made
  // (`kinds`: u8 and u32 always are). (`seen` without a prototype: assigning a flag then never runs a setter a
  // program put on Object.prototype.)
  const views = newList<keyof Views>();
  const kinds = newList<ViewKind>();
  const seen = { __proto__: null } as Partial<Record<keyof Views, boolean>>;
  const use = (kind: keyof Views) => {
    if (seen[kind]) return;
    seen[kind] = true;
    append(views, kind);
    if (kind !== "u8" && kind !== "u32") append(kinds, kind);
  };
  const covered = new Builtin.Uint8Array(stride);
  const scalar = fields.length === 1 && fields[0].name === null;
  let nested = false;
  for (let i = 0; i < fields.length; i++) if (fields[i].inner !== null) nested = true;
  const shape = newList<string>(); // checks on what the fields are, in field order (user code runs here)
  const elements = newList<string>(); // reads and checks of vector elements, after every shape check
  const body = newList<string>(); // stores, after the claim
  const locals = newList<string>();
  const flags = newList<string>(); // locals that say a nested record or array was read (false for each new value)
  const helpers = newList<string>(); // functions the writer calls: the key checks of nested records
  const indexOf = (size: number) => `at${size}`;

  // A scalar or a vector at local `v`, `offset` bytes into the element: its
  // checks (a vector's elements into `late`), its stores, and its reader expression.
  const leaf = (field: Field, v: string, offset: number, early: List<string>, late: List<string>): string => {
    const { kind: fieldKind, count } = field;
    if (fieldKind === "f16" && typeof (globalThis as { Float16Array?: unknown }).Float16Array !== "function") {
      throw UNSUITED;
    }
    const bool = fieldKind === "bool";
    const kind = bool ? "u8" : fieldKind;
    const size = ELEMENT_SIZE[kind];
    if (offset % size !== 0 || stride % size !== 0) throw UNSUITED;
    use(kind);
    // Integer index arithmetic only: element `index` starts at typed-array index `index * (stride / size)`.
    const slot = (k: number) => `${indexOf(size)} + ${offset / size + k}`;
    const big = kind === "i64" || kind === "u64";
    const check = (x: string, load: string) => {
      // Wrapping arrays store any number (or bigint) as the typed array converts it: C's conversion.
      const range = wrap ? null : OUT_OF_RANGE[fieldKind](x);
      return `typeof ${load} !== "${bool ? "boolean" : big ? "bigint" : "number"}"${
        range === null ? "" : ` || ${range}`
      }`;
    };
    const stored = newList<string>();
    // An array of `count` (also of 1: `["i32", 1]` takes [7]), or one scalar.
    if (field.lanes) {
      append(early, `!Array.isArray(${v}) || ${v}.length !== ${count}`);
      for (let k = 0; k < count; k++) {
        const local = `${v}_${k}`;
        append(locals, local);
        append(late, check(local, `(${local} = ${v}[${k}])`));
        append(body, `${kind}[${slot(k)}] = ${local};`);
      }
    } else {
      append(early, check(v, v));
      append(body, `${kind}[${slot(0)}] = ${v};`);
    }
    for (let k = 0; k < count; k++) {
      append(stored, bool ? `${kind}[${slot(k)}] !== 0` : `${kind}[${slot(k)}]`);
      for (let b = offset + k * size; b < offset + (k + 1) * size; b++) covered[b] = 1;
    }
    return field.lanes ? `[${join(stored, ", ")}]` : stored[0];
  };

  // Any field at local `v`: its checks in order into `checks`; its reader
  // expression, and what the checked path gets for it (a copy of what was read).
  const node = (field: Field, v: string, offset: number, checks: List<string>): { read: string; handed: string } => {
    const inner = field.inner;
    if (inner === null) return { read: leaf(field, v, offset, checks, checks), handed: v };
    const done = `${v}_r`; // true once every part of this record or array was read
    append(locals, done);
    append(flags, done);
    const count = inner.array ? inner.length : inner.fields.length;
    // Part i: its field, its offset in this record or array, how it is read from `v`.
    const partField = (i: number) => inner.array ? inner.element : inner.fields[i];
    const partAt = (i: number) => inner.array ? i * inner.stride : inner.fields[i].offset;
    const partLoad = (i: number) => inner.array ? `[${i}]` : `[${stringify(inner.fields[i].name)}]`;
    const names = listOf(count, (i) => `${v}_${i}`);
    for (let i = 0; i < count; i++) append(locals, names[i]);
    const reads = `(${join(listOf(count, (i) => `${names[i]} = ${v}${partLoad(i)}`), ", ")}, ${done} = true, false)`;
    if (inner.array) {
      append(checks, `!Array.isArray(${v}) || ${v}.length !== ${inner.length} || ${reads}`);
    } else {
      const keys = `${v}_keys`;
      const unknown = join(listOf(count, (i) => `key !== ${stringify(inner.fields[i].name)}`), " && ");
      append(helpers, `function ${keys}(o) { for (var key in o) if (${unknown}) return true; return false; }`);
      append(checks, `typeof ${v} !== "object" || ${v} === null || ${keys}(${v}) || ${reads}`);
    }
    const made = listOf(count, (i) => node(partField(i), names[i], offset + partAt(i), checks));
    if (inner.array) {
      return {
        read: `[${join(listOf(count, (i) => made[i].read), ", ")}]`,
        handed: `(${done} ? [${join(listOf(count, (i) => made[i].handed), ", ")}] : ${v})`,
      };
    }
    const entries = (key: "read" | "handed") =>
      join(listOf(count, (i) => `${stringify(inner.fields[i].name)}: ${made[i][key]}`), ", ");
    // The copy handed to the checked path remembers its record (handedCopy), whose prototype chain an
    // error there looks at (a field Object.prototype supplies is missing). Made on that path only.
    return { read: `{ ${entries("read")} }`, handed: `(${done} ? handedCopy(${v}, { ${entries("handed")} }) : ${v})` };
  };

  const read = newList<string>();
  const handed = newList<string>();
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    if (nested) {
      // In field order, each field's checks whole (a nested record's reads come after its keys' check).
      const made = node(field, `v${i}`, field.offset, shape);
      append(read, made.read);
      append(handed, made.handed);
    } else {
      append(read, leaf(field, `v${i}`, field.offset, shape, elements));
      append(handed, `v${i}`);
    }
  }
  // Padding (between fields, an f32x3's fourth float, the tail) is written as zeros.
  for (let b = 0; b < stride;) {
    if (covered[b]) {
      b++;
      continue;
    }
    let end = b;
    while (end < stride && !covered[end]) end++;
    for (let k = b; k < end;) {
      if (end - b > 32) {
        // A loop, not u8.fill: a prototype method the program may have replaced.
        append(body, `for (var p = at1 + ${b}; p < at1 + ${end}; p++) u8[p] = 0;`);
        use("u8");
        break;
      }
      if (k % 4 === 0 && k + 4 <= end) {
        append(body, `u32[at4 + ${k / 4}] = 0;`);
        use("u32");
        k += 4;
      } else {
        append(body, `u8[at1 + ${k++}] = 0;`);
        use("u8");
      }
    }
    b = end;
  }
  // Each typed array the code uses, loaded once, and the index of the element in each size it uses.
  const sizes = newList<number>(); // each element size of a used view, once
  const sized = { __proto__: null } as Record<number, boolean>;
  for (let i = 0; i < views.length; i++) {
    const size = ELEMENT_SIZE[views[i]];
    if (!sized[size]) {
      sized[size] = true;
      append(sizes, size);
    }
  }
  const viewLoads = listOf(views.length, (i) => `${views[i]} = views.${views[i]}`);
  const indexNames = listOf(sizes.length, (i) => indexOf(sizes[i]));
  const indexLoads = listOf(sizes.length, (i) => `${indexNames[i]} = index * ${stride / sizes[i]}`);
  const load = join(concat(viewLoads, indexLoads), ", ");
  const names = listOf(fields.length, (i) => `v${i}`);
  const fieldName = (i: number) => stringify(fields[i].name);
  // The checks of one value (user code runs here): `break check` sends it to the checked path.
  // (Array literals where a list is only read: a literal defines its elements, and reading them by index runs
  // no code.)
  const checks = concat(
    scalar ? ["v0 = value;"] : [
      `if (typeof value !== "object" || value === null) break check;`,
      `for (var key in value) if (${
        join(listOf(fields.length, (i) => `key !== ${fieldName(i)}`), " && ")
      }) break check;`,
      `${join(listOf(fields.length, (i) => `v${i} = value[${fieldName(i)}]`), ", ")};`,
      "got = true;",
    ],
    [`if (${join(concat(shape, elements), " ||\n  ")}) break check;`],
  );
  const viewNames = listOf(views.length, (i) => views[i] as string);
  const handedList = `[${join(handed, ", ")}]`;
  const encode = join(
    concat(
      [
        `var ${join(concat(names, locals, ["value", "index"], viewNames, indexNames), ", ")}, got;`,
        `var views = target.views${join(listOf(viewLoads.length, (i) => `, ${viewLoads[i]}`), "")};`,
        "for (index = 0; index < count; index++) {",
        // Where the checked path stores this value, and which element an error names.
        "target.next = index;",
        "value = values[index];",
        `got = false${join(listOf(flags.length, (i) => `, ${flags[i]} = false`), "")};`,
        "check: {",
      ],
      checks,
      [`${join(indexLoads, ", ")};`],
      body,
      ["continue;", "}", `slow(value, target, got ? ${handedList} : null);`, "}", "target.next = count;"],
    ),
    "\n",
  );
  // One element's checks, its claim (`claim`: statements that set `index` and load the views), its stores.
  const writeOne = (vars: ArrayLike<string>, claim: ArrayLike<string>) =>
    join(
      concat(
        [`var ${join(concat(names, locals, vars, viewNames, indexNames), ", ")}, got = false;`, "check: {"],
        checks,
        claim,
        body,
        ["return index;", "}", `return slow(value, target, got ? ${handedList} : null);`],
      ),
      "\n",
    );
  // The slot, as claimOf() takes it.
  const targetClaim = [
    "index = target.next;",
    "if (index < target.limit && target.bytes.length !== 0) target.next = index + 1; else index = target.claim();",
    `views = target.views, ${load};`,
  ];
  const write = writeOne(["index", "views"], targetClaim);
  // The writer for one claimer (SharedDynamicArray.push: the SharedHeader) with the array's views, which
  // stay valid across the claim. A scalar or vector claims by name and stores through the views given; a
  // record claims through the target as the writer does (JavaScriptCore ran the by-name claim 4-5 ns slower
  // for a record, a Target read or not, for reasons not found). Bun, one process per case, 1M pushes against
  // push through store(): f64 17.9 -> 15.5 ns, inside hold() 11.6 -> 9.9; {id: u32, x: f32, y: f32}
  // 27.3 -> 27.3, inside hold() 22.4 -> 20.8 (push calls one function either way; Deno within noise).
  const appendSource = writeOne(["index"], scalar ? ["index = claimer.claimOne();", `${load};`] : targetClaim);
  // Object and array literals define their properties: no setter a program put on Object.prototype (for a
  // field's name) or Array.prototype runs while a record is read. (struct() refuses "__proto__" as a name.)
  const readBody = `var ${load};\n` +
    (scalar
      ? `return ${read[0]};`
      : `return { ${join(listOf(fields.length, (i) => `${fieldName(i)}: ${read[i]}`), ", ")} };`);
  const helperText = join(helpers, "\n");
  try {
    const makeWriter = new Builtin.Function(
      "slow",
      "handedCopy",
      `${helperText}\nreturn function write(value, target) {\n${write}\n};`,
    );
    const makeAppender = new Builtin.Function(
      "slow",
      "handedCopy",
      `${helperText}\nreturn function append(value, claimer, views, target) {\n${appendSource}\n};`,
    );
    const makeEncoder = new Builtin.Function(
      "slow",
      "handedCopy",
      `${helperText}\nreturn function encode(values, count, target) {\n${encode}\n};`,
    );
    const reader = new Builtin.Function(`return function read(views, index) {\n${readBody}\n};`)() as Reader;
    return {
      writer: (slow) => makeWriter(slow, handedCopy) as Writer,
      appender: (slow) => makeAppender(slow, handedCopy) as Appender,
      encoder: (slow) => makeEncoder(slow, handedCopy) as Encoder,
      reader,
      kinds,
    };
  } catch {
    return null;
  }
}

// The lists one after the other, in a new List (read by index only).
function concat(...lists: ArrayLike<string>[]): List<string> {
  const out = newList<string>();
  for (let i = 0; i < lists.length; i++) {
    const list = lists[i];
    for (let j = 0; j < list.length; j++) append(out, list[j]);
  }
  return out;
}
