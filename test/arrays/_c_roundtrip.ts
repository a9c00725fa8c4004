// The C round trip of a layout: records pushed into a DynamicArray from JS,
// its bytes written to a file, and a C program compiled from cDeclaration()
// reading them back and checking every scalar of every field, each field's
// offset, the record's size and alignment.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamicArray, type FieldValue, type StructLayout } from "../../mod.ts";
import { type Leaf, recordOf } from "./_layout_leaves.ts";

function cLiteral(leaf: Leaf): string {
  switch (leaf.kind) {
    case "bool":
      return leaf.value ? "1" : "0";
    case "i64":
      return `${leaf.value}LL`;
    case "u64":
      return `${leaf.value}ULL`;
    case "f16":
    case "f32":
    case "f64":
      return `${leaf.value}`;
    default:
      return `${leaf.value}`;
  }
}

function cProgram(layout: StructLayout, name: string, count: number): string {
  const checks: string[] = [];
  for (let i = 0; i < count; i++) {
    for (const leaf of recordOf(layout, i).leaves) {
      const access = `r[${i}]${leaf.c}`;
      const cast = leaf.kind === "f16" || leaf.kind === "f32" || leaf.kind === "f64" ? "(double)" : "";
      checks.push(
        `  if (${cast}${access} != ${
          cLiteral(leaf)
        }) { printf("record ${i} ${leaf.path}: %f\\n", (double)${access}); return 1; }`,
      );
    }
  }
  for (const [field, { offset }] of Object.entries(layout.fields)) {
    checks.push(`  if (offsetof(${name}, ${field}) != ${offset}) { printf("offset of ${field}\\n"); return 1; }`);
  }
  return `#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
${layout.cDeclaration(name)}
int main(int argc, char **argv) {
  static ${name} r[${count}];
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(r, sizeof(${name}), ${count}, f) != ${count}) { printf("read failed\\n"); return 1; }
  if (_Alignof(${name}) != ${layout.align}) { printf("align %zu\\n", _Alignof(${name})); return 1; }
${checks.join("\n")}
  printf("ok\\n");
  return 0;
}
`;
}

/** Runs the round trip for each `[name, layout]`; returns what each C program printed ("ok" when all matched). */
export function cRoundTrip(layouts: [string, StructLayout][], count = 3): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "memkit-struct-"));
  const out: Record<string, string> = {};
  try {
    for (const [name, layout] of layouts) {
      using records = new DynamicArray<Record<string, FieldValue>>(layout);
      records.pushMany(Array.from({ length: count }, (_, i) => recordOf(layout, i).value));
      writeFileSync(join(dir, `${name}.bin`), records.bytes);
      writeFileSync(join(dir, `${name}.c`), cProgram(layout, name, count));
      try {
        execFileSync("cc", ["-std=c11", "-Wall", "-Werror", "-o", join(dir, name), join(dir, `${name}.c`)], {
          stdio: "pipe",
        });
      } catch (error) {
        out[name] = `does not compile: ${(error as { stderr?: Uint8Array }).stderr}\n${layout.cDeclaration(name)}`;
        continue;
      }
      try {
        out[name] = execFileSync(join(dir, name), [join(dir, `${name}.bin`)], { encoding: "utf8" }).trim();
      } catch (error) {
        out[name] = `${(error as { stdout?: string }).stdout}`.trim() + `\n${layout.cDeclaration(name)}`;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
