// Runs cases of test/pages/_chained_child.ts in child processes of this runtime: a case that crashes the
// process fails (named with the signal and the end of stderr), and the cases after it run in a fresh one.
import { fileURLToPath } from "node:url";
import { runCaseChildren } from "../_helpers.ts";

export { caseIds, theftIds } from "./_chained_child.ts";

/** What one case found: empty when the chain ended as it must. */
export type ChainFailures = Map<string, string[]>;

/** Runs `ids`; each id maps to its failures (none: it passed). */
export function runChainCases(ids: string[]): ChainFailures {
  return runCaseChildren(fileURLToPath(new URL("./_chained_child.ts", import.meta.url)), ids);
}
