// Chains over a FramePool frame, a PurgeableBuffer or a ResourceHeap resource cannot dangle (safety rules 1
// and 4): an allocator or array built over an Allocator written in JavaScript that passes such memory on reads
// as length 0 and refuses use with "use-after-free" once memkit releases or reuses it (a frame released to its
// pool and handed to the next acquire, the pool's dispose, makeVolatile, a resource released, aliased or placed
// `into`, the heap's dispose), and the later owner's bytes stay its own; a chain disposed first leaves the
// later release harmless, and a chain's own buffer transferred away keeps that memory from the next owner.
// (Before, the chain kept views over unmapped memory, a segfault, or over the next owner's.) The cases run in
// child processes (test/pages/_chained_child.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { caseIds, runChainCases, theftIds } from "../pages/_chained_run.ts";

const ids = [
  ...caseIds((source) => /^(FramePool|PurgeableBuffer|ResourceHeap)/.test(source)),
  ...theftIds().filter((id) => /FramePool|ResourceHeap/.test(id)),
];
const results = runChainCases(ids);

for (const id of ids) {
  test(`a chain over memkit's memory ends with it: ${id} (child process)`, () => {
    assert.deepEqual(results.get(id), []);
  });
}
