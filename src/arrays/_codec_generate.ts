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
 * number for an i64, a missing or unknown field, a value out of range) goes
 * to `slow`, the checked path, with the fields already read, so no getter
 * runs twice. Field names enter the code only as JSON string literals.
 * `fields` holds one entry with a null name for a scalar or vector element
 * type. Null when a field is not naturally aligned (packed layouts) or code
 * generation is disallowed.
 */
export function generate(fields: readonly Field[], stride: number, wrap: boolean): Generated | null {
  const kinds = new Set<ViewKind>();
  const covered = new Uint8Array(stride);
  const scalar = fields.length === 1 && fields[0].name === null;
  const head: string[] = []; // reads and checks (user code runs here)
  const body: string[] = []; // stores, after claim()
  const read: string[] = [];
  const bail = scalar
    ? "return slow(value, target, null);"
    : `return slow(value, target, [${fields.map((_, i) => `v${i}`).join(", ")}]);`;
  if (!scalar) {
    head.push(`if (typeof value !== "object" || value === null) return slow(value, target, null);`);
    const known = fields.map(({ name }) => `key !== ${JSON.stringify(name)}`).join(" && ");
    head.push(`for (const key in value) { if (${known}) return slow(value, target, null); }`);
    head.push(`const ${fields.map(({ name }, i) => `v${i} = value[${JSON.stringify(name)}]`).join(", ")};`);
  } else {
    head.push("const v0 = value;");
  }
  const elementChecks: string[] = [];
  for (const [i, { name, offset, kind, count }] of fields.entries()) {
    const size = ELEMENT_SIZE[kind];
    if (offset % size !== 0 || stride % size !== 0) return null;
    if (kind !== "u8" && kind !== "u32") kinds.add(kind);
    // Integer index arithmetic only: element `index` starts at typed-array index `index * (stride / size)`.
    const slot = (k: number) => `i${size} + ${offset / size + k}`;
    const v = `v${i}`;
    const big = kind === "i64" || kind === "u64";
    const check = (x: string) => {
      // Wrapping arrays store any number (or bigint) as the typed array converts it: C's conversion.
      const range = wrap ? null : OUT_OF_RANGE[kind](x);
      return `typeof ${x} !== "${big ? "bigint" : "number"}"${range === null ? "" : ` || ${range}`}`;
    };
    const elements: string[] = [];
    if (count > 1) {
      head.push(`if (!Array.isArray(${v}) || ${v}.length !== ${count}) ${bail}`);
      const locals = Array.from({ length: count }, (_, k) => `${v}_${k}`);
      elementChecks.push(`const ${locals.map((local, k) => `${local} = ${v}[${k}]`).join(", ")};`);
      elementChecks.push(`if (${locals.map((local) => `${check(local)}`).join(" || ")}) ${bail}`);
      for (let k = 0; k < count; k++) body.push(`${kind}[${slot(k)}] = ${locals[k]};`);
    } else {
      head.push(`if (${check(v)}) ${bail}`);
      body.push(`${kind}[${slot(0)}] = ${v};`);
    }
    for (let k = 0; k < count; k++) {
      elements.push(`${kind}[${slot(k)}]`);
      covered.fill(1, offset + k * size, offset + (k + 1) * size);
    }
    const expression = count > 1 ? `[${elements.join(", ")}]` : elements[0];
    read.push(name === null ? expression : `${JSON.stringify(name)}: ${expression}`);
  }
  // Padding (between fields, an f32x3's fourth float, the tail) is written as zeros.
  for (let b = 0; b < stride;) {
    if (covered[b]) {
      b++;
      continue;
    }
    let end = b;
    while (end < stride && !covered[end]) end++;
    if (end - b > 32) body.push(`u8.fill(0, i1 + ${b}, i1 + ${end});`);
    else {
      for (let k = b; k < end;) {
        if (k % 4 === 0 && k + 4 <= end) {
          body.push(`u32[i4 + ${k / 4}] = 0;`);
          k += 4;
        } else body.push(`u8[i1 + ${k++}] = 0;`);
      }
    }
    b = end;
  }
  // Each typed array the code uses, loaded once.
  const used = ["u8", "u32", ...kinds] as (keyof Views)[];
  const locals = used.map((kind) => `const ${kind} = views.${kind};`).join(" ") + " " +
    [...new Set(used.map((kind) => ELEMENT_SIZE[kind]))].filter((size) => stride % size === 0)
      .map((size) => `const i${size} = index * ${stride / size};`).join(" ");
  const readBody = `${locals}\n` + (scalar ? `return ${read[0]};` : `return { ${read.join(", ")} };`);
  const writeBody = [
    ...head,
    ...elementChecks,
    // The slot, as claimOf() takes it.
    "let index = target.next;",
    "if (index < target.limit && target.bytes.length !== 0) target.next = index + 1; else index = target.claim();",
    "const views = target.views;",
    locals,
    ...body,
    "return index;",
  ].join("\n");
  try {
    const makeWriter = new Function("slow", `return function write(value, target) {\n${writeBody}\n};`);
    const reader = new Function(`return function read(views, index) {\n${readBody}\n};`)() as Reader;
    return { writer: (slow) => makeWriter(slow) as Writer, reader, kinds: [...kinds] };
  } catch {
    return null;
  }
}
