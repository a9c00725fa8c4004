import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type FieldType, struct, type StructLayout, uniformArray } from "../../mod.ts";
import { withRecordTraps } from "./_record_traps.ts";

test("struct() lays out fields as C does (table)", () => {
  const rows: [
    Record<string, FieldType>,
    { packed?: boolean; align?: number },
    number,
    number,
    Record<string, number>,
  ][] = [
    [{ position: "f32x3", color: "f32x4" }, {}, 32, 16, { position: 0, color: 16 }], // the Vertex
    [{ a: "u8", b: "f64" }, {}, 16, 8, { a: 0, b: 8 }],
    [{ a: "u8", b: "f64" }, { packed: true }, 9, 1, { a: 0, b: 1 }],
    [{ a: "u8", b: "u16", c: "u8" }, {}, 6, 2, { a: 0, b: 2, c: 4 }],
    [{ uv: "f32x2", n: "f32" }, {}, 16, 8, { uv: 0, n: 8 }],
    [{ m: "f32x4x4", id: "u32" }, {}, 80, 16, { m: 0, id: 64 }],
    [{ x: "f32" }, { align: 256 }, 256, 256, { x: 0 }], // a uniform buffer's stride
    [{ a: "i8", b: "i64", c: "i32x4" }, {}, 32, 16, { a: 0, b: 8, c: 16 }],
  ];
  for (const [fields, options, size, align, offsets] of rows) {
    const layout = struct(fields, options);
    assert.equal(layout.size, size, JSON.stringify(fields));
    assert.equal(layout.align, align, JSON.stringify(fields));
    for (const [name, offset] of Object.entries(offsets)) assert.equal(layout.fields[name].offset, offset, name);
  }
  assert.deepEqual(Object.keys(struct({ z: "u8", a: "u8" }).fields), ["z", "a"], "declaration order");
  assert.equal(struct({ p: "f32x3" }).fields.p.size, 16);
});

test("struct() rejects bad input", () => {
  assert.throws(() => struct({}), TypeError);
  assert.throws(() => struct(null as unknown as Record<string, FieldType>), TypeError);
  assert.throws(() => struct({ "1x": "u8" }), TypeError);
  assert.throws(() => struct({ x: "f8" as FieldType }), TypeError);
  assert.throws(() => struct({ x: "u8" }, { align: 3 }), RangeError);
  assert.throws(() => struct({ x: "u8" }).cDeclaration("not valid"), TypeError);
});

// Writes `count` records with a distinct value in every element of every field.
function valueOf(record: number, field: number, element: number): number {
  return (record * 31 + field * 7 + element) % 100 + 1;
}

function cCheck(layout: StructLayout, name: string, count: number): string {
  const checks: string[] = [];
  Object.entries(layout.fields).forEach(([field, { type }], f) => {
    const n = { f32x2: 2, f32x3: 3, f32x4: 4, i32x4: 4, u32x4: 4, f32x4x4: 16 }[type as string] ?? 1;
    for (let e = 0; e < n; e++) {
      const access = n > 1 ? `r[i].${field}[${e}]` : `r[i].${field}`;
      checks.push(
        `  for (int i = 0; i < ${count}; i++) if ((double)${access} != (double)((i * 31 + ${f} * 7 + ${e}) % 100 + 1)) { printf("bad ${field}[${e}] at %d\\n", i); return 1; }`,
      );
    }
    checks.push(
      `  if (offsetof(${name}, ${field}) != ${
        layout.fields[field].offset
      }) { printf("offset ${field}\\n"); return 1; }`,
    );
  });
  return `#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
${layout.cDeclaration(name)}
int main(int argc, char **argv) {
  static ${name} r[${count}];
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(r, sizeof(${name}), ${count}, f) != ${count}) { printf("read failed\\n"); return 1; }
  if (_Alignof(${name}) != ${layout.align}) { printf("align\\n"); return 1; }
${checks.join("\n")}
  printf("ok\\n");
  return 0;
}
`;
}

function writeRecords(layout: StructLayout, count: number): Uint8Array {
  const bytes = new Uint8Array(layout.size * count);
  const view = new DataView(bytes.buffer);
  Object.values(layout.fields).forEach(({ offset, type }, f) => {
    for (let i = 0; i < count; i++) {
      const at = i * layout.size + offset;
      const vectors: Record<string, [number, number]> = {
        f32x2: [2, 4],
        f32x3: [3, 4],
        f32x4: [4, 4],
        i32x4: [4, 4],
        u32x4: [4, 4],
        f32x4x4: [16, 4],
      };
      const [n, step] = vectors[type as string] ?? [1, 0];
      for (let e = 0; e < n; e++) {
        const v = valueOf(i, f, e);
        const p = at + e * step;
        switch (type) {
          case "i8":
            view.setInt8(p, v);
            break;
          case "u8":
            view.setUint8(p, v);
            break;
          case "i16":
            view.setInt16(p, v, true);
            break;
          case "u16":
            view.setUint16(p, v, true);
            break;
          case "i32":
          case "i32x4":
            view.setInt32(p, v, true);
            break;
          case "u32":
          case "u32x4":
            view.setUint32(p, v, true);
            break;
          case "i64":
            view.setBigInt64(p, BigInt(v), true);
            break;
          case "u64":
            view.setBigUint64(p, BigInt(v), true);
            break;
          case "f64":
            view.setFloat64(p, v, true);
            break;
          default:
            view.setFloat32(p, v, true);
        }
      }
    }
  });
  return bytes;
}

test("cDeclaration() compiles with cc, and C reads records written from JS field by field", () => {
  const dir = mkdtempSync(join(tmpdir(), "memkit-struct-"));
  try {
    const layouts: [string, StructLayout][] = [
      ["Vertex", struct({ position: "f32x3", color: "f32x4" })],
      [
        "Mixed",
        struct({
          a: "u8",
          b: "i16",
          c: "i32",
          d: "i64",
          e: "u64",
          f: "f32",
          g: "f64",
          h: "f32x2",
          i: "i32x4",
          j: "u32x4",
          m: "f32x4x4",
          k: "i8",
          l: "u16",
          n: "u32",
        }),
      ],
      ["Packed", struct({ a: "u8", b: "f64", c: "u16" }, { packed: true })],
      ["Uniform", struct({ time: "f32", tint: "f32x4" }, { align: 256 })],
    ];
    for (const [name, layout] of layouts) {
      const count = 7;
      writeFileSync(join(dir, `${name}.bin`), writeRecords(layout, count));
      writeFileSync(join(dir, `${name}.c`), cCheck(layout, name, count));
      execFileSync("cc", ["-std=c11", "-Wall", "-Werror", "-o", join(dir, name), join(dir, `${name}.c`)], {
        stdio: "pipe",
      });
      const out = execFileSync(join(dir, name), [join(dir, `${name}.bin`)], { encoding: "utf8" });
      assert.equal(out.trim(), "ok", `${name}: ${out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("struct() and uniformArray() define their fields: a setter on Object.prototype for a field's name runs not", () => {
  // Before: `layout[name] = …` ran such a setter, which could leave the field out of `fields` or replace it.
  // (Without Array.prototype's index setters: struct()'s own working lists still push.)
  const made = withRecordTraps(() => struct({ a: "u8", b: "u32", p: struct({ x: "f32", y: "u16" }) }), undefined, {
    indexes: false,
  });
  assert.deepEqual(made.trapped, []);
  const layout = made.result!;
  assert.deepEqual(Object.keys(layout.fields), ["a", "b", "p"]);
  assert.equal(Object.getPrototypeOf(layout.fields), Object.prototype);
  assert.equal(layout.fields.b.offset, 4);
  const uniforms = withRecordTraps(() => uniformArray(layout), undefined, { indexes: false });
  assert.deepEqual(uniforms.trapped, []);
  assert.equal(uniforms.result!.stride, 256);
  uniforms.result!.free();
});

test("a layout with 200,000 fields: its declarations are made (no argument list as long as the fields)", () => {
  // Before: cDeclaration() and wgslDeclaration() spread every field's alignment into Math.max (a stack
  // overflow in Deno).
  const fields: Record<string, FieldType> = {};
  for (let i = 0; i < 200_000; i++) fields[`f${i}`] = "u32";
  const layout = struct(fields);
  assert.equal(layout.size, 800_000);
  assert.match(layout.cDeclaration("Wide"), /uint32_t f199999;\n} Wide;/);
  const wgsl = struct(fields, { layout: "wgsl-storage" }).wgslDeclaration("Wide");
  assert.match(wgsl, /f199999: u32,\n}/);
});
