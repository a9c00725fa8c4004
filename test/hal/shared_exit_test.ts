// Shared allocations with a made-up name (issue 15 adversarial finding 4): a POSIX shared-memory name
// outlives the process, so a program that ended without deallocate or dispose left one in /dev/shm per
// allocation. Those names are now unlinked when the process exits; a name the user chose stays theirs.
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { test } from "node:test";
import { fixture, runChild } from "../_helpers.ts";
import { HAS_PROC } from "./_locked_memory.ts";

for (const [how, status] of [["end", 0], ["throw", 1], ["exit", 3]] as const) {
  test(`a program that ends by ${how} without dispose leaves no made-up shared name behind`, {
    skip: !HAS_PROC || !existsSync("/dev/shm"),
  }, () => {
    const child = runChild(fixture("hal_shared_exit.ts"), {}, [how]);
    const names = JSON.parse(child.stdout.trim().split("\n")[0]) as { made: string; own: string };
    try {
      assert.equal(child.status, status, child.stderr);
      assert.match(names.made, /^memkit-/);
      assert.equal(existsSync(`/dev/shm/${names.made}`), false, "the made-up name was unlinked at exit");
      assert.equal(existsSync(`/dev/shm/${names.own}`), true, "the user's own name is left to the user");
    } finally {
      rmSync(`/dev/shm/${names.own}`, { force: true });
      rmSync(`/dev/shm/${names.made}`, { force: true });
    }
  });
}
