// bench/profiler_overhead.ts measures what it says: one short pair of fresh
// processes, arms in order, the on run's profiler taking timed snapshots in
// the measured window (one of them after a collection that really happened,
// so Deno's children got --expose-gc), the off run taking none, and the
// profiler's own cost timed. No timing is checked, only what was measured.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runChild } from "../_helpers.ts";

test("the profiler-overhead benchmark runs both arms in fresh processes and profiles only the on arm", () => {
  const script = fileURLToPath(new URL("../../bench/profiler_overhead.ts", import.meta.url));
  // Warm-up 0.2 s, window 2.5 s: the timer's first snapshot (t = 1 s, a collected one) and the next fall inside.
  const child = runChild(script, {}, ["--pairs", "1", "--seconds", "2.5", "--warmup", "0.2", "--json"]);
  assert.equal(child.status, 0, child.stderr);
  const line = child.stdout.split("\n").find((l) => l.startsWith("JSON "));
  assert.ok(line, child.stdout);
  const { runs, overheads, direct } = JSON.parse(line.slice(5));
  assert.deepEqual(runs.map((r: { arm: string }) => r.arm), ["off", "on"]);
  const [off, on] = runs;
  for (const run of runs) {
    assert.ok(run.frames > 0 && run.cpuMs > 0 && run.wallMs >= 2500, JSON.stringify(run));
  }
  assert.equal(off.snapshots, 0);
  // About 2 (a timer a loaded machine delays may leave 1), never more than the window holds.
  assert.ok(on.snapshots >= 1 && on.snapshots <= 3, `${on.snapshots} snapshots in 2.5 s at 1 s intervals`);
  assert.equal(on.collected, 1, "the first timed snapshot (gcEvery 10) follows a collection");
  assert.ok(Number.isFinite(on.captureMs) && Number.isFinite(on.captureGcMs), JSON.stringify(on));
  assert.ok(on.heapBytes > 0 && on.rssBytes > on.heapBytes, JSON.stringify(on));
  assert.equal(overheads.length, 1);
  assert.ok(Number.isFinite(overheads[0]) && Number.isFinite(direct[0]));
});
