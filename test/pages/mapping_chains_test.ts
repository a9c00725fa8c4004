// Chains over a mapping cannot dangle (safety rules 1 and 4): an allocator or array built over an Allocator
// written in JavaScript that passes on a mapping's memory (`bytes`, view(), a window) reads as length 0 and
// refuses use with "use-after-free" once memkit unmaps it, closes the window, or lowers its protection; a
// chain disposed first leaves the later release harmless; a chain's own buffer transferred away keeps the
// pages mapped. (Before, nothing leased that memory: the chain's views outlived munmap and the next touch was
// a segfault.) The cases run in child processes (test/pages/_chained_child.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { caseIds, runChainCases, theftIds } from "./_chained_run.ts";

const ids = [
  ...caseIds((source) => source.startsWith("mapPages") || source.startsWith("mapFile")),
  ...theftIds().filter((id) => id.includes("mapping")),
];
const results = runChainCases(ids);

for (const id of ids) {
  test(`a chain over memkit's memory ends with it: ${id} (child process)`, () => {
    assert.deepEqual(results.get(id), []);
  });
}
