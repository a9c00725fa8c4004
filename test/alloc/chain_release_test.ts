// The chain rule of the safety model over every parent × child chain: when the parent
// releases the memory a child allocator carved its blocks from (reset,
// reset("free-all"), the end of a scope, rewind, dispose, deinit), every view
// the child handed out reads as length 0 and every child method throws
// AllocationError("use-after-free"); and a child never carves a bad block its
// backing returned. Today some of these crash the process, so the cases run
// in child processes (one per parent, plus one for the lying backings); a
// process that dies fails the case it died in, and the rest run again in a
// fresh process.
import assert from "node:assert/strict";
import { fixture, runChild } from "../_helpers.ts";
import { CHILDREN, conformanceTest, PARENTS, type Release, willRun } from "./_conformance.ts";

const RELEASE_LABEL: Record<Release, string> = {
  "reset-free-all": 'parent.reset("free-all")',
  "reset-retain": "parent.reset() (retain-capacity)",
  "scope-end": "the end of a parent scope open when the child was made",
  "rewind": "parent.rewind(a marker taken before the child)",
  "stack-reset": "parent.reset()",
  "deinit": "parent.deinit()",
  "dispose": "parent.dispose()",
};

type Lie = "short" | "misaligned" | "detached" | "not-a-view" | "array-buffer" | "twice" | "resizable";
const LIE_LABEL: Record<Lie, string> = {
  "short": "a view shorter than asked",
  "misaligned": "a misaligned view",
  "detached": "a view of a detached buffer",
  "not-a-view": "a plain object, not a view",
  "array-buffer": "an ArrayBuffer, not a view",
  "twice": "the same memory twice",
  "resizable": "a view of a resizable ArrayBuffer",
};
/** Children that ask their backing more than once (the "twice" lie needs two requests). */
const ASKS_AGAIN = new Set(["Arena", "PoolAllocator", "FreeListAllocator", "DebugAllocator"]);

interface CaseResult {
  id: string;
  ok: boolean;
  failures: string[];
}

/** Runs `ids` in child processes; a crash fails the case it happened in, and the rest run on. */
function runCases(ids: string[]): Map<string, CaseResult> {
  const results = new Map<string, CaseResult>();
  let remaining = ids.slice();
  while (remaining.length > 0) {
    const child = runChild(fixture("chain_release_child.ts"), {}, remaining);
    let begun: string | null = null;
    const ran: string[] = [];
    for (const line of child.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      let value: { begin?: string } & Partial<CaseResult>;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof value.begin === "string") begun = value.begin;
      else if (typeof value.id === "string") {
        results.set(value.id, { id: value.id, ok: value.ok === true, failures: value.failures ?? [] });
        ran.push(value.id);
        begun = null;
      }
    }
    const clean = child.status === 0 && child.signal === null;
    const how = child.signal !== null ? `signal ${child.signal}` : `exit code ${child.status}`;
    const stderr = child.stderr.trim().split("\n").slice(-6).join(" | ");
    remaining = remaining.filter((id) => !results.has(id));
    if (remaining.length === 0) {
      if (!clean) {
        // Every case printed its result, then the process failed.
        for (const id of ran) {
          const r = results.get(id)!;
          r.ok = false;
          r.failures.push(`the process ended with ${how} after the cases ran: ${stderr}`);
        }
      }
      break;
    }
    const culprit = begun ?? remaining[0];
    results.set(culprit, {
      id: culprit,
      ok: false,
      failures: [`the process died (${how}) in this case${stderr ? `: ${stderr}` : ""}`],
    });
    remaining = remaining.filter((id) => id !== culprit);
  }
  return results;
}

/** One batch of cases, run once, when its first test runs. */
function batch(ids: string[]): (id: string) => CaseResult {
  let results: Map<string, CaseResult> | null = null;
  return (id) => {
    results ??= runCases(ids);
    const result = results.get(id);
    assert.ok(result, `no result for ${id}`);
    return result;
  };
}

function expectOk(result: CaseResult): void {
  if (!result.ok) assert.fail(`${result.failures.length} check(s) failed:\n  ${result.failures.join("\n  ")}`);
}

/** Checks of the debug allocator the fixture stacks on a (non-debug) child: rule 4 at depth 3. */
const GRANDCHILD = "DebugAllocator(child)";

/** The part of a case's result about the child itself, or about the debug allocator over it. */
function part(result: CaseResult, grandchild: boolean): CaseResult {
  const mine = (f: string) =>
    f.startsWith(GRANDCHILD) === grandchild ||
    /^(the release|the parent|setting up|the process|the case|no result)/.test(f);
  const failures = result.failures.filter(mine);
  return { id: result.id, ok: failures.length === 0, failures };
}

// Parent releases: one child process per parent. Each case is two tests: the
// child is revoked, and a DebugAllocator made over the child is revoked too.
for (const parent of PARENTS) {
  const cases: { name: string; id: string; grandchild: boolean }[] = [];
  for (const child of CHILDREN) {
    for (const release of parent.releases) {
      const prefix = `conformance: chain ${parent.name} > ${child.name}: ${RELEASE_LABEL[release]} revokes`;
      const id = `release|${parent.name}|${child.name}|${release}`;
      cases.push({ name: `${prefix} the child`, id, grandchild: false });
      if (child.name !== "DebugAllocator") {
        cases.push({ name: `${prefix} a DebugAllocator over the child`, id, grandchild: true });
      }
    }
  }
  const ids = [...new Set(cases.filter((c) => willRun(c.name)).map((c) => c.id))];
  const results = batch(ids);
  for (const c of cases) conformanceTest(c.name, () => expectOk(part(results(c.id), c.grandchild)));
}

// Lying backings: one child process for all.
{
  const cases: { name: string; id: string }[] = [];
  for (const child of CHILDREN) {
    for (const lie of Object.keys(LIE_LABEL) as Lie[]) {
      if (lie === "twice" && !ASKS_AGAIN.has(child.name)) continue;
      // A DebugAllocator reads such a block only through the backing's own views (test/debug/shrunk_backing_test.ts).
      if (lie === "resizable" && child.name === "DebugAllocator") continue;
      cases.push({
        name: `conformance: ${child.name} over a backing that returns ${LIE_LABEL[lie]}: ` +
          `AllocationError("corruption") naming the backing`,
        id: `trust|${child.name}|${lie}`,
      });
    }
  }
  const results = batch(cases.filter((c) => willRun(c.name)).map((c) => c.id));
  for (const c of cases) conformanceTest(c.name, () => expectOk(results(c.id)));
}
