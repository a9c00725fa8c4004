// Rule 4 (chains cannot dangle) for the DebugAllocator, in a child process so
// a crash fails the case it happened in instead of the whole run: when the
// backing releases memory by itself (an arena's reset or scope end, a stack's
// rewind or reset, dispose of any backing, a debug allocator two levels
// down), every block in it is retired: its views read as length 0 (detached
// mode), the counters drop it, a later free says "use-after-free" naming the
// release, and the allocator lives on (or, when everything went, ends with
// "use-after-free" on every call). Leases on Debug blocks and allocators over
// a Debug allocator hear about its frees and its end.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fixture, runChild } from "../_helpers.ts";

interface CaseResult {
  ok: boolean;
  failures: string[];
}

let results: Map<string, CaseResult> | null = null;
let crash = "";

function resultsOf(): Map<string, CaseResult> {
  if (results !== null) return results;
  results = new Map();
  const child = runChild(fixture("debug_chains.ts"));
  let begun: string | null = null;
  for (const line of child.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const value = JSON.parse(line) as { begin?: string; id?: string } & Partial<CaseResult>;
    if (value.begin !== undefined) begun = value.begin;
    else if (value.id !== undefined) {
      results.set(value.id, { ok: value.ok === true, failures: value.failures ?? [] });
      begun = null;
    }
  }
  if (child.status !== 0 || child.signal !== null) {
    crash = `the child process ended with ${child.signal ?? `exit code ${child.status}`}` +
      `${begun === null ? "" : ` in case "${begun}"`}: ${child.stderr.trim().split("\n").slice(-5).join(" | ")}`;
  }
  return results;
}

const BACKINGS = [
  "Arena(safety: true).reset()",
  'Arena(safety: true).reset("free-all")',
  "Arena(safety: true) scope end",
  "Arena(safety: true).dispose()",
  "Arena(safety: false).reset()",
  'Arena(safety: false).reset("free-all")',
  "Arena(safety: false) scope end",
  "Arena(safety: false).dispose()",
  "FreeListAllocator.dispose()",
  "PoolAllocator.dispose()",
  "StackAllocator.rewind()",
  "StackAllocator.reset()",
  "DebugAllocator(Arena).reset() of the arena, two debug allocators down",
];
const MODES = ["detached", "views", "counters"];

for (const backing of BACKINGS) {
  for (const mode of MODES) {
    const id = `${backing} | ${mode}`;
    test(`DebugAllocator (${mode}) over ${backing}: released blocks are retired, nothing crashes`, () => {
      const result = resultsOf().get(id);
      assert.ok(result, `no result for "${id}"${crash ? `: ${crash}` : ""}`);
      assert.ok(result.ok, `${result.failures.length} check(s) failed:\n  ${result.failures.join("\n  ")}`);
    });
  }
}

test("leases on DebugAllocator blocks, and allocators over one, hear about its frees, its backing's releases and its end", () => {
  const result = resultsOf().get("leases");
  assert.ok(result, `no result for the lease case${crash ? `: ${crash}` : ""}`);
  assert.ok(result.ok, `${result.failures.length} check(s) failed:\n  ${result.failures.join("\n  ")}`);
});

test("the chain cases ran in a process that exited cleanly", () => {
  resultsOf();
  assert.equal(crash, "");
});
