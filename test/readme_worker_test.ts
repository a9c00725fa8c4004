// README's SharedDynamicArray Worker example, run as written (its two files,
// with the package name pointed at this checkout) on the runtime running this
// test. The main file posts to the Worker right after creating it: a Worker
// whose module graph blocked on memkit's import used to lose that message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runChild } from "./_helpers.ts";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const MOD = new URL("../mod.ts", import.meta.url).href;

/** The README code block whose first line is `// <name>`. */
function block(name: string): string {
  const found = [...README.matchAll(/```ts[^\n]*\n([\s\S]*?)```/g)].map((m) => m[1])
    .find((code) => code.startsWith(`// ${name}\n`));
  assert.ok(found !== undefined, `README has a block starting with // ${name}`);
  return found.replaceAll('"@memkit/memkit"', JSON.stringify(MOD));
}

test("README's Worker example runs as written: the message posted at once arrives, every time", () => {
  const work = mkdtempSync(join(tmpdir(), "memkit-readme-worker-"));
  try {
    writeFileSync(join(work, "main.ts"), block("main.ts"));
    writeFileSync(join(work, "worker.ts"), block("worker.ts"));
    for (let run = 0; run < 5; run++) {
      const child = runChild(join(work, "main.ts"), {}, []);
      assert.equal(child.status, 0, child.stderr);
      // One line in Deno; Bun prints the object over several lines with trailing commas.
      const printed = child.stdout.replace(/\s+/g, " ").replace(/, \}/g, " }").trim();
      assert.equal(printed, "1000 { time: 999, value: 0.5 }", `run ${run}: ${child.stdout}${child.stderr}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
