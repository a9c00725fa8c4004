// The fast path of a record codec: a reader and a writer generated as source
// text for one element type, indexing typed arrays at constant offsets with
// constant field names (as fast as hand-written typed-array code once inlined).
import { ELEMENT_SIZE, type Field, type Kind, type ViewKind, type Views } from "./_codec_layout.ts";
import type { Reader, Slow, Writer } from "./_record_target.ts";

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
  f32: () => null,
  f64: () => null,
};

/** What generate() makes: the writer (given the checked path to fall back to), the reader, the views they use. */
export interface Generated {
  writer: (slow: Slow) => Writer;
  reader: Reader;
  kinds: ViewKind[];
}

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
 * a scalar or vector element type. Null when a field is not naturally aligned
 * (packed layouts) or code generation is disallowed.
 *
 * Why one bail site and one condition: the writer must stay under V8's
 * inlining limit (460 bytes of bytecode) so that push, the codec and the
 * writer compile into the caller's loop; every extra `return slow(...)`
 * costs bytecode, and an un-inlined writer made push 1.8× slower in Deno.
 */
export function generate(fields: readonly Field[], stride: number, wrap: boolean): Generated | null {
  const kinds = new Set<ViewKind>();
  const covered = new Uint8Array(stride);
  const scalar = fields.length === 1 && fields[0].name === null;
  const shape: string[] = []; // checks on what the fields are, in field order (user code runs here)
  const elements: string[] = []; // reads and checks of vector elements, after every shape check
  const body: string[] = []; // stores, after the claim
  const read: string[] = [];
  const locals: string[] = [];
  const used = new Set<keyof Views>();
  const indexOf = (size: number) => `at${size}`;
  for (const [i, { offset, kind, count }] of fields.entries()) {
    const size = ELEMENT_SIZE[kind];
    if (offset % size !== 0 || stride % size !== 0) return null;
    if (kind !== "u8" && kind !== "u32") kinds.add(kind);
    used.add(kind);
    // Integer index arithmetic only: element `index` starts at typed-array index `index * (stride / size)`.
    const slot = (k: number) => `${indexOf(size)} + ${offset / size + k}`;
    const v = `v${i}`;
    const big = kind === "i64" || kind === "u64";
    const check = (x: string, load: string) => {
      // Wrapping arrays store any number (or bigint) as the typed array converts it: C's conversion.
      const range = wrap ? null : OUT_OF_RANGE[kind](x);
      return `typeof ${load} !== "${big ? "bigint" : "number"}"${range === null ? "" : ` || ${range}`}`;
    };
    const stored: string[] = [];
    if (count > 1) {
      shape.push(`!Array.isArray(${v}) || ${v}.length !== ${count}`);
      for (let k = 0; k < count; k++) {
        const local = `${v}_${k}`;
        locals.push(local);
        elements.push(check(local, `(${local} = ${v}[${k}])`));
        body.push(`${kind}[${slot(k)}] = ${local};`);
      }
    } else {
      shape.push(check(v, v));
      body.push(`${kind}[${slot(0)}] = ${v};`);
    }
    for (let k = 0; k < count; k++) {
      stored.push(`${kind}[${slot(k)}]`);
      covered.fill(1, offset + k * size, offset + (k + 1) * size);
    }
    read.push(count > 1 ? `[${stored.join(", ")}]` : stored[0]);
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
  const load = [
    ...[...used].map((kind) => `${kind} = views.${kind}`),
    ...sizes.map((size) => `${indexOf(size)} = index * ${stride / size}`),
  ].join(", ");
  const names = fields.map((_, i) => `v${i}`);
  const write = [
    `var ${[...names, ...locals, "index", "views", ...used, ...sizes.map(indexOf)].join(", ")}, got = false;`,
    "check: {",
    ...(scalar ? ["v0 = value;"] : [
      `if (typeof value !== "object" || value === null) break check;`,
      `for (var key in value) if (${
        fields.map(({ name }) => `key !== ${JSON.stringify(name)}`).join(" && ")
      }) break check;`,
      `${fields.map(({ name }, i) => `v${i} = value[${JSON.stringify(name)}]`).join(", ")};`,
      "got = true;",
    ]),
    `if (${[...shape, ...elements].join(" ||\n  ")}) break check;`,
    // The slot, as claimOf() takes it.
    "index = target.next;",
    "if (index < target.limit && target.bytes.length !== 0) target.next = index + 1; else index = target.claim();",
    `views = target.views, ${load};`,
    ...body,
    "return index;",
    "}",
    `return slow(value, target, got ? [${names.join(", ")}] : null);`,
  ].join("\n");
  const readBody = `var ${load};\n` +
    (scalar
      ? `return ${read[0]};`
      : `return { ${fields.map(({ name }, i) => `${JSON.stringify(name)}: ${read[i]}`).join(", ")} };`);
  try {
    const makeWriter = new Function("slow", `return function write(value, target) {\n${write}\n};`);
    const reader = new Function(`return function read(views, index) {\n${readBody}\n};`)() as Reader;
    return { writer: (slow) => makeWriter(slow) as Writer, reader, kinds: [...kinds] };
  } catch {
    return null;
  }
}
