// Runs a group of test/fixtures/budget_hostile.ts in a child process (a
// regression there is a crash) and returns what each step came to.
import assert from "node:assert/strict";
import { fixture, runChild } from "../_helpers.ts";

/** The outcome of each step of `group`, by its label; fails the test when the child crashed or did not finish. */
export function outcomes(group: string): Map<string, string> {
  const child = runChild(fixture("budget_hostile.ts"), {}, [group]);
  assert.equal(child.signal, null, `${group} crashed: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split("\n");
  assert.equal(lines.at(-1), "DONE", child.stdout);
  // `label: outcome`, where a label may hold ": " and an outcome does not.
  return new Map(
    lines.slice(0, -1).map((line) => {
      const at = line.lastIndexOf(": ");
      return [line.slice(0, at), line.slice(at + 2)];
    }),
  );
}
