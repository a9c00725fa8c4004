// A program outside this checkout importing memkit by path, as README tells
// each runtime to: Deno with the one import-map line memkit's bare dependency
// needs (in the program's own deno.json), Bun with nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { nativeInfo } from "../mod.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;
const CONSUMER = `import { DynamicArray, nativeInfo, struct } from ${JSON.stringify(MOD)};
using points = new DynamicArray<{ x: number; y: number }>(struct({ x: "f32", y: "f32" }));
points.push({ x: 1, y: 2 });
console.log(JSON.stringify({ runtime: nativeInfo().runtime, point: points.get(0) }));
`;

test("a program outside the checkout imports memkit by path (Deno: with the zod line in its deno.json)", () => {
  const work = mkdtempSync(join(tmpdir(), "memkit-path-consumer-"));
  try {
    writeFileSync(join(work, "main.ts"), CONSUMER);
    const runtime = nativeInfo().runtime;
    if (runtime === "deno") {
      // The one line: memkit's own deno.json maps "zod"; a program importing memkit by path maps it itself.
      writeFileSync(join(work, "deno.json"), JSON.stringify({ imports: { zod: "npm:zod@^4.6.7" } }));
    }
    const args = runtime === "deno" ? ["run", "-A", "main.ts"] : ["run", "main.ts"];
    const result = spawnSync(process.execPath, args, {
      cwd: work,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
      timeout: 120_000,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim().split("\n").at(-1)!), { runtime, point: { x: 1, y: 2 } });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("Bun type-checks a program importing memkit by path (bun run --check), with no Deno types", {
  skip: nativeInfo().runtime === "bun" ? false : "Bun's type check (Deno type-checks memkit in every deno test)",
}, () => {
  // Before: 16 errors "Cannot find name 'Deno'" from memkit's Deno adapter (ffi/_deno_api.ts declares what it calls).
  const work = mkdtempSync(join(tmpdir(), "memkit-bun-check-"));
  try {
    const modules = new URL("../node_modules", import.meta.url).pathname;
    writeFileSync(join(work, "main.ts"), CONSUMER);
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          lib: ["ESNext", "DOM"],
          target: "ESNext",
          module: "Preserve",
          moduleResolution: "bundler",
          allowImportingTsExtensions: true,
          noEmit: true,
          strict: true,
          skipLibCheck: true,
          types: ["bun-types"],
          typeRoots: [modules],
        },
      }),
    );
    const result = spawnSync(process.execPath, ["run", "--check", "main.ts"], {
      cwd: work,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
      timeout: 120_000,
    });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.doesNotMatch(`${result.stdout}${result.stderr}`, /error TS/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
