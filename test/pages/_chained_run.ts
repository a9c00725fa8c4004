// Runs cases of test/pages/_chained_child.ts in child processes of this runtime: a case that crashes the
// process fails (named with the signal and the end of stderr), and the cases after it run in a fresh one.
import { fileURLToPath } from "node:url";
import { runChild } from "../_helpers.ts";

export { caseIds, theftIds } from "./_chained_child.ts";

/** What one case found: empty when the chain ended as it must. */
export type ChainFailures = Map<string, string[]>;

/** Runs `ids`; each id maps to its failures (none: it passed). */
export function runChainCases(ids: string[]): ChainFailures {
  const script = fileURLToPath(new URL("./_chained_child.ts", import.meta.url));
  const results: ChainFailures = new Map();
  let remaining = ids;
  while (remaining.length > 0) {
    const child = runChild(script, {}, remaining);
    let begun: string | null = null;
    for (const line of child.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      const value = JSON.parse(line) as { begin?: string; id?: string; failures?: string[] };
      if (value.begin !== undefined) begun = value.begin;
      else if (value.id !== undefined) {
        results.set(value.id, value.failures ?? []);
        begun = null;
      }
    }
    const how = child.signal !== null ? `signal ${child.signal}` : `exit code ${child.status}`;
    const stderr = child.stderr.trim().split("\n").slice(-4).join(" | ");
    if (begun !== null) results.set(begun, [`the process died (${how}) in this case: ${stderr}`]);
    else if (child.status !== 0 || child.signal !== null) {
      // It ended badly between cases: every case not reported fails, or it would loop.
      for (const id of remaining) if (!results.has(id)) results.set(id, [`the process ended with ${how}: ${stderr}`]);
    }
    remaining = remaining.filter((id) => !results.has(id));
  }
  return results;
}
