// Without a memory status (Deno without -A cannot read /proc) the interface
// knows no total: platform.totalBytes and getMemoryStats().totalBytes are
// Infinity (before: 2^47, MAX_BLOCK_SIZE standing in for the unknown total),
// freeBytes too, and largestFreeBlock is at most the largest block memkit
// allocates. Bun has no permissions: there, the band of an unknown total.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { nativeInfo } from "../../mod.ts";
import { platformBand } from "../../src/hal/_platform_band.ts";
import { fixture } from "../_helpers.ts";

const MAX_BLOCK_SIZE = 2 ** 47;

test("an unknown total is Infinity in the relaxed band", () => {
  const band = platformBand(Infinity);
  assert.deepEqual([band.band, band.totalBytes], ["relaxed", Infinity]);
});

test("Deno without read permission: platform and stats report no known total", {
  skip: nativeInfo().runtime !== "deno" && "Bun has no permissions to withhold",
}, () => {
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  // --allow-ffi only: no --allow-read, so /proc/meminfo is out of reach.
  const child = spawnSync(process.execPath, [
    "run",
    `--config=${config}`,
    "--allow-ffi",
    fixture("hal_unknown_total.ts"),
  ], {
    env: { ...process.env, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(child.status, 0, child.stderr);
  const seen = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
  assert.match(seen.statusError, /denied reading \/proc/, "the child really could not read the status");
  assert.deepEqual(
    [seen.band, seen.platformTotal, seen.total, seen.free, seen.used, seen.systemTotal],
    ["relaxed", "Infinity", "Infinity", "Infinity", 64, "Infinity"],
  );
  assert.equal(seen.largestFreeBlock, MAX_BLOCK_SIZE, "no block larger than memkit allocates");
});
