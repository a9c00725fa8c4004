// The runnable examples under examples/ (README points to them), each run as
// written in a child process of the runtime running this test.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runChild } from "./_helpers.ts";

const example = (name: string) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

test("examples/hal_dreamcast.ts: sprites from the pool, a frame buffer released each frame, in 16 MiB", () => {
  const child = runChild(example("hal_dreamcast.ts"));
  assert.equal(child.status, 0, child.stderr);
  assert.equal(
    child.stdout,
    [
      "sprites: 1024 × 24 B from the pool allocator",
      "frame buffer: 0 bytes after endFrame()",
      "budget 16 MiB, in use 24576 B, peak 286720 B",
      "after freeing the sprites: 0 B in use",
      "",
    ].join("\n"),
  );
});

test("examples/hal_web_platform.ts: 1 MiB of temporary memory with a 1 s timeout, then a timeout", () => {
  const child = runChild(example("hal_web_platform.ts"));
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split("\n");
  assert.match(lines[0], /^platform: (constrained|moderate|relaxed) \(\d+ MiB usable\)$/);
  assert.ok(lines.includes("got 1024 KiB of temporary memory once the other task's frame ended"), child.stdout);
  assert.equal(lines.at(-1), 'gave up: AllocationError("timeout")');
});

test("examples/profiler_pictures.ts: writes the heatmap and the block map into the directory given", () => {
  const dir = mkdtempSync(join(tmpdir(), "memkit-pictures-"));
  try {
    const child = runChild(example("profiler_pictures.ts"), {}, [dir]);
    assert.equal(child.status, 0, child.stderr);
    for (const name of ["profiler-heatmap.svg", "profiler-block-map.svg"]) {
      const svg = readFileSync(join(dir, name), "utf8");
      assert.match(svg, /^<svg[\s\S]*<\/svg>\s*$/, name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
