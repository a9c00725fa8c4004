// getMemoryStats("audio").largestFreeBlock under RLIMIT_MEMLOCK (issue 15 adversarial finding 7): audio
// blocks are locked pages, so the largest one left is bounded by what the process may still lock (it used
// to report the whole budget or platform memory, and a block that size was refused). Runs in a child
// process under a 64 KiB limit with CAP_IPC_LOCK dropped; never locks more than that.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fixture } from "../_helpers.ts";
import { HAS_PROC, runUnderMemlockLimit } from "./_locked_memory.ts";

test(
  "audio largestFreeBlock is what RLIMIT_MEMLOCK still allows: a block that size is served, one page more is refused",
  {
    skip: !HAS_PROC,
  },
  () => {
    const result = runUnderMemlockLimit(fixture("hal_memlock_stats.ts"), 64);
    if ("skip" in result) return void console.log(`skipped: ${result.skip}`);
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    assert.ok(report.largest <= 32 << 10, `largest ${report.largest} within the 32 KiB left`);
    assert.ok(report.largest > 0);
    assert.equal(report.largestServed, true);
    assert.equal(report.beyond, "platform", "allowFallback does not fall back from a refusal to lock");
  },
);
