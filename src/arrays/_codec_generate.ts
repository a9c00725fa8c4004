// The fast path of a record codec: a reader and a writer generated as source
// text for one element type, indexing typed arrays at constant offsets with
// constant field names (as fast as hand-written typed-array code once inlined).
import { ELEMENT_SIZE, type Field, type Kind, type ViewKind, type Views } from "./_codec_layout.ts";
import type { Appender, Encoder, Reader, Slow, Writer } from "./_record_target.ts";
import { handedCopy } from "./_codec_dataview.ts";

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
  kinds: ViewKind[];
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
  for (const part of inner.fields) scalars += scalarsOf(part);
  return scalars;
}

function build(fields: readonly Field[], stride: number, wrap: boolean): Generated | null {
  // A type past MAX_LANES scalars goes to the checked path before anything proportional to its size is made
  // (one local name, one check and one store per scalar).
  let scalars = 0;
  for (const field of fields) scalars += scalarsOf(field);
  if (scalars > MAX_LANES) return null;
  const kinds = new Set<ViewKind>();
  const covered = new Uint8Array(stride);
  const scalar = fields.length === 1 && fields[0].name === null;
  const nested = fields.some((field) => field.inner !== null);
  const shape: string[] = []; // checks on what the fields are, in field order (user code runs here)
  const elements: string[] = []; // reads and checks of vector elements, after every shape check
  const body: string[] = []; // stores, after the claim
  const locals: string[] = [];
  const flags: string[] = []; // locals that say a nested record or array was read (false for each new value)
  const helpers: string[] = []; // functions the writer calls: the key checks of nested records
  const used = new Set<keyof Views>();
  const indexOf = (size: number) => `at${size}`;

  // A scalar or a vector at local `v`, `offset` bytes into the element: its
  // checks (a vector's elements into `late`), its stores, and its reader expression.
  const leaf = (field: Field, v: string, offset: number, early: string[], late: string[]): string => {
    const { kind: fieldKind, count } = field;
    if (fieldKind === "f16" && typeof (globalThis as { Float16Array?: unknown }).Float16Array !== "function") {
      throw UNSUITED;
    }
    const bool = fieldKind === "bool";
    const kind = bool ? "u8" : fieldKind;
    const size = ELEMENT_SIZE[kind];
    if (offset % size !== 0 || stride % size !== 0) throw UNSUITED;
    if (kind !== "u8" && kind !== "u32") kinds.add(kind);
    used.add(kind);
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
    const stored: string[] = [];
    // An array of `count` (also of 1: `["i32", 1]` takes [7]), or one scalar.
    if (field.lanes) {
      early.push(`!Array.isArray(${v}) || ${v}.length !== ${count}`);
      for (let k = 0; k < count; k++) {
        const local = `${v}_${k}`;
        locals.push(local);
        late.push(check(local, `(${local} = ${v}[${k}])`));
        body.push(`${kind}[${slot(k)}] = ${local};`);
      }
    } else {
      early.push(check(v, v));
      body.push(`${kind}[${slot(0)}] = ${v};`);
    }
    for (let k = 0; k < count; k++) {
      stored.push(bool ? `${kind}[${slot(k)}] !== 0` : `${kind}[${slot(k)}]`);
      covered.fill(1, offset + k * size, offset + (k + 1) * size);
    }
    return field.lanes ? `[${stored.join(", ")}]` : stored[0];
  };

  // Any field at local `v`: its checks in order into `checks`; its reader
  // expression, and what the checked path gets for it (a copy of what was read).
  const node = (field: Field, v: string, offset: number, checks: string[]): { read: string; handed: string } => {
    const inner = field.inner;
    if (inner === null) return { read: leaf(field, v, offset, checks, checks), handed: v };
    const done = `${v}_r`; // true once every part of this record or array was read
    locals.push(done);
    flags.push(done);
    const parts = inner.array
      ? Array.from({ length: inner.length }, (_, i) => ({ field: inner.element, at: i * inner.stride, load: `[${i}]` }))
      : inner.fields.map((f) => ({ field: f, at: f.offset, load: `[${JSON.stringify(f.name)}]` }));
    const names = parts.map((_, i) => `${v}_${i}`);
    for (const name of names) locals.push(name); // (no spread: an argument list as long as the type)
    const reads = `(${parts.map(({ load }, i) => `${names[i]} = ${v}${load}`).join(", ")}, ${done} = true, false)`;
    if (inner.array) {
      checks.push(`!Array.isArray(${v}) || ${v}.length !== ${inner.length} || ${reads}`);
    } else {
      const keys = `${v}_keys`;
      const unknown = inner.fields.map(({ name }) => `key !== ${JSON.stringify(name)}`).join(" && ");
      helpers.push(`function ${keys}(o) { for (var key in o) if (${unknown}) return true; return false; }`);
      checks.push(`typeof ${v} !== "object" || ${v} === null || ${keys}(${v}) || ${reads}`);
    }
    const made = parts.map(({ field: part, at }, i) => node(part, names[i], offset + at, checks));
    if (inner.array) {
      return {
        read: `[${made.map(({ read }) => read).join(", ")}]`,
        handed: `(${done} ? [${made.map(({ handed }) => handed).join(", ")}] : ${v})`,
      };
    }
    const entries = (key: "read" | "handed") =>
      inner.fields.map(({ name }, i) => `${JSON.stringify(name)}: ${made[i][key]}`).join(", ");
    // The copy handed to the checked path remembers its record (handedCopy), whose prototype chain an
    // error there looks at (a field Object.prototype supplies is missing). Made on that path only.
    return { read: `{ ${entries("read")} }`, handed: `(${done} ? handedCopy(${v}, { ${entries("handed")} }) : ${v})` };
  };

  const read: string[] = [];
  const handed: string[] = [];
  for (const [i, field] of fields.entries()) {
    if (nested) {
      // In field order, each field's checks whole (a nested record's reads come after its keys' check).
      const made = node(field, `v${i}`, field.offset, shape);
      read.push(made.read);
      handed.push(made.handed);
    } else {
      read.push(leaf(field, `v${i}`, field.offset, shape, elements));
      handed.push(`v${i}`);
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
        body.push(`for (var p = at1 + ${b}; p < at1 + ${end}; p++) u8[p] = 0;`);
        used.add("u8");
        break;
      }
      if (k % 4 === 0 && k + 4 <= end) {
        body.push(`u32[at4 + ${k / 4}] = 0;`);
        used.add("u32");
        k += 4;
      } else {
        body.push(`u8[at1 + ${k++}] = 0;`);
        used.add("u8");
      }
    }
    b = end;
  }
  // Each typed array the code uses, loaded once, and the index of the element in each size it uses.
  const sizes = [...new Set([...used].map((kind) => ELEMENT_SIZE[kind]))];
  const viewLoads = [...used].map((kind) => `${kind} = views.${kind}`);
  const indexLoads = sizes.map((size) => `${indexOf(size)} = index * ${stride / size}`);
  const load = [...viewLoads, ...indexLoads].join(", ");
  const names = fields.map((_, i) => `v${i}`);
  // The checks of one value (user code runs here): `break check` sends it to the checked path.
  const checks = [
    ...(scalar ? ["v0 = value;"] : [
      `if (typeof value !== "object" || value === null) break check;`,
      `for (var key in value) if (${
        fields.map(({ name }) => `key !== ${JSON.stringify(name)}`).join(" && ")
      }) break check;`,
      `${fields.map(({ name }, i) => `v${i} = value[${JSON.stringify(name)}]`).join(", ")};`,
      "got = true;",
    ]),
    `if (${[...shape, ...elements].join(" ||\n  ")}) break check;`,
  ];
  const encode = [
    `var ${[...names, ...locals, "value", "index", ...used, ...sizes.map(indexOf)].join(", ")}, got;`,
    `var views = target.views${viewLoads.map((load) => `, ${load}`).join("")};`,
    "for (index = 0; index < count; index++) {",
    // Where the checked path stores this value, and which element an error names.
    "target.next = index;",
    "value = values[index];",
    `got = false${flags.map((flag) => `, ${flag} = false`).join("")};`,
    "check: {",
    ...checks,
    `${indexLoads.join(", ")};`,
    ...body,
    "continue;",
    "}",
    `slow(value, target, got ? [${handed.join(", ")}] : null);`,
    "}",
    "target.next = count;",
  ].join("\n");
  // One element's checks, its claim (`claim`: statements that set `index` and load the views), its stores.
  const writeOne = (vars: string[], claim: string[]) =>
    [
      `var ${[...names, ...locals, ...vars, ...used, ...sizes.map(indexOf)].join(", ")}, got = false;`,
      "check: {",
      ...checks,
      ...claim,
      ...body,
      "return index;",
      "}",
      `return slow(value, target, got ? [${handed.join(", ")}] : null);`,
    ].join("\n");
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
  const append = writeOne(["index"], scalar ? ["index = claimer.claimOne();", `${load};`] : targetClaim);
  // Object and array literals define their properties: no setter a program put on Object.prototype (for a
  // field's name) or Array.prototype runs while a record is read. (struct() refuses "__proto__" as a name.)
  const readBody = `var ${load};\n` +
    (scalar
      ? `return ${read[0]};`
      : `return { ${fields.map(({ name }, i) => `${JSON.stringify(name)}: ${read[i]}`).join(", ")} };`);
  try {
    const makeWriter = new Function(
      "slow",
      "handedCopy",
      `${helpers.join("\n")}\nreturn function write(value, target) {\n${write}\n};`,
    );
    const makeAppender = new Function(
      "slow",
      "handedCopy",
      `${helpers.join("\n")}\nreturn function append(value, claimer, views, target) {\n${append}\n};`,
    );
    const makeEncoder = new Function(
      "slow",
      "handedCopy",
      `${helpers.join("\n")}\nreturn function encode(values, count, target) {\n${encode}\n};`,
    );
    const reader = new Function(`return function read(views, index) {\n${readBody}\n};`)() as Reader;
    return {
      writer: (slow) => makeWriter(slow, handedCopy) as Writer,
      appender: (slow) => makeAppender(slow, handedCopy) as Appender,
      encoder: (slow) => makeEncoder(slow, handedCopy) as Encoder,
      reader,
      kinds: [...kinds],
    };
  } catch {
    return null;
  }
}
