// Chains over shared memory and a MemoryInterface's allocations cannot dangle (safety rules 1 and 4): an
// allocator or array built over an Allocator written in JavaScript that passes an allocation's bytes on reads
// as length 0 and refuses use with "use-after-free", naming what the program did (deallocate, endFrame,
// dispose, close), once memkit releases that memory; a chain disposed first leaves the later release harmless.
// (Before, a "shared" allocation's chain kept views over the unmapped pages: a segfault.) The cases run in
// child processes (test/pages/_chained_child.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { caseIds, runChainCases } from "../pages/_chained_run.ts";

const ids = caseIds((source) => /^(openSharedMemory|MemoryInterface)/.test(source));
const results = runChainCases(ids);

for (const id of ids) {
  test(`a chain over memkit's memory ends with it: ${id} (child process)`, () => {
    assert.deepEqual(results.get(id), []);
  });
}
