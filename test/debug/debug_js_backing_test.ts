// A DebugAllocator over an Allocator written in JavaScript that passes on memory memkit owns (a SystemAllocator's,
// an Arena's or a PoolAllocator's blocks, a mapping, a window) hears of that memory's release by its real owner
// (safety rules 1 and 4): its views read as length 0, its blocks are retired (a later free names the release),
// a release of everything ends it ("use-after-free" on every call, naming the release), and nothing it does
// afterwards reaches memory given to another owner; disposed first, the later release is harmless. Before, it
// leased nothing: with detachFreed its own buffers outlived munmap (a segfault at the next touch), and its
// records kept blocks the owner had handed to someone else. The cases run in child processes
// (test/debug/_js_backing_child.ts): a crash fails the case it happened in, and the others run in a fresh one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCaseChildren } from "../_helpers.ts";
import { caseIds } from "./_js_backing_child.ts";

function runCases(ids: string[]): Map<string, string[]> {
  return runCaseChildren(fileURLToPath(new URL("./_js_backing_child.ts", import.meta.url)), ids);
}

const ids = caseIds();
let results: Map<string, string[]> | null = null;

for (const id of ids) {
  test(`a DebugAllocator over a JavaScript backing passing memkit's memory on: ${id} (child process)`, () => {
    results ??= runCases(ids);
    assert.deepEqual(results.get(id), []);
  });
}
