// bench/_ratios.ts: a comparison registered with `freshProcess` runs side by
// side in a process of its own (bench/_fresh_group.ts), and its means come back
// to the process that prints the tables and the scorecard. No timing is checked,
// only where each comparison ran and which means came back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, runChild } from "./_helpers.ts";

interface Outcome {
  status: number | null;
  stderr: string;
  pid: number;
  means: Map<string, number>;
  /** The pids each comparison ran in. */
  ranIn: Map<string, Set<number>>;
}

function runGroups(filter: string, env: Record<string, string> = {}): Outcome {
  const dir = mkdtempSync(join(tmpdir(), "memkit-fresh-bench-"));
  try {
    const log = join(dir, "log");
    const child = runChild(fixture("fresh_bench_run.ts"), { FRESH_BENCH_LOG: log, ...env }, [filter]);
    const ranIn = new Map<string, Set<number>>();
    let text = "";
    try {
      text = readFileSync(log, "utf8");
    } catch { /* nothing ran */ }
    for (const line of text.trim().split("\n").filter((l) => l !== "")) {
      const [title, pid] = line.split("\t");
      ranIn.set(title, (ranIn.get(title) ?? new Set()).add(Number(pid)));
    }
    const last = child.stdout.trim().split("\n").at(-1) ?? "";
    const parsed = child.status === 0 ? JSON.parse(last) : { pid: 0, means: [] };
    return { status: child.status, stderr: child.stderr, pid: parsed.pid, means: new Map(parsed.means), ranIn };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("each fresh comparison runs in a process of its own, the others where they are registered; all means come back", () => {
  const out = runGroups("^(fresh A|fresh B|in process) :: ");
  assert.equal(out.status, 0, out.stderr);
  for (
    const name of [
      "fresh A :: a1",
      "fresh A :: a2",
      "fresh B :: b1",
      "fresh B :: b2",
      "in process :: c1",
      "in process :: c2",
    ]
  ) {
    const mean = out.means.get(name);
    assert.ok(mean !== undefined && Number.isFinite(mean) && mean > 0, `${name}: ${mean}`);
  }
  assert.equal(out.means.size, 6);
  const [a] = [...out.ranIn.get("fresh A")!], [b] = [...out.ranIn.get("fresh B")!];
  assert.deepEqual([...out.ranIn.get("in process")!], [out.pid]);
  // Both cases of a comparison in one process (side by side), each comparison in its own, neither in the runner.
  assert.equal(out.ranIn.get("fresh A")!.size, 1);
  assert.equal(out.ranIn.get("fresh B")!.size, 1);
  assert.notEqual(a, out.pid);
  assert.notEqual(b, out.pid);
  assert.notEqual(a, b);
  // The failing comparison was not selected, so it never ran anywhere.
  assert.equal(out.ranIn.has("fresh failing"), false);
});

test("the filter picks fresh comparisons by case name: an unselected one starts no process", () => {
  const out = runGroups("^fresh B :: b2$");
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual([...out.means.keys()], ["fresh B :: b2"]);
  assert.deepEqual([...out.ranIn.keys()], ["fresh B"]);
  assert.notEqual([...out.ranIn.get("fresh B")!][0], out.pid);
});

test("a fresh process that measures nothing fails the run, naming its comparison and why", () => {
  const out = runGroups("^fresh failing :: ", { FRESH_BENCH_FAIL: "1" });
  assert.notEqual(out.status, 0);
  assert.match(out.stderr, /The fresh process for "fresh failing" failed/);
  assert.match(out.stderr, /No case of "fresh failing"/);
});
