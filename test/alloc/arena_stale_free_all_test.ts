// Views kept from before an Arena's reset("free-all"): its chunks went back,
// so those views were detached first (with or without safety), and free or
// resize through them is refused without touching the memory now in use.
// The cases run in a child process: a view over returned memory would crash it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fixture, runChild } from "../_helpers.ts";

test("Arena: free/resize through a view kept from before reset('free-all') is refused, safety on and off", () => {
  const child = runChild(fixture("arena_stale_free_all.ts"));
  assert.equal(child.status, 0, `the child failed (signal ${child.signal}): ${child.stderr}`);
  const rows = child.stdout.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
  assert.equal(rows.length, 8, child.stdout);
  for (const row of rows) {
    const where = JSON.stringify(row);
    assert.equal(row.length, 0, `${where}: the kept view is detached`);
    assert.equal(row.got, row.op === "free" ? "double-free" : "use-after-free", where);
    assert.equal(row.occupantIntact, true, where);
    assert.equal(row.overlap, false, where);
  }
});
