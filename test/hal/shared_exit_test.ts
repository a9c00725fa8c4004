// Shared allocations with a made-up name (issue 15 adversarial finding 4): a POSIX shared-memory name
// outlives the process, so a program that ended without deallocate or dispose left one in /dev/shm per
// allocation. Those names are now unlinked when the process exits; a name the user chose stays theirs.
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { nativeInfo } from "../../mod.ts";
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

// In a Worker, the made-up names of its interfaces go when the Worker ends itself where the runtime runs its
// exit hooks: process.exit() in it (both runtimes), self.close() (Bun). A Worker that is terminated, or that
// still runs when the process exits, runs no code of its own any more: its names stay (documented at
// AllocationRequest.name), so dispose its interface first, as the "dispose" case does.
for (
  const [how, skip] of [
    ["exit", false],
    ["close", nativeInfo().runtime === "deno" && "Deno runs no exit hook in a Worker that calls self.close()"],
    ["dispose", false],
  ] as const
) {
  test(`a Worker's made-up shared name is gone after the Worker ends by ${how}`, {
    skip: skip || ((!HAS_PROC || !existsSync("/dev/shm")) && "needs /dev/shm"),
  }, () => {
    const child = runChild(fileURLToPath(new URL("./_shared_worker_main.ts", import.meta.url)), {}, [how]);
    const seen = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "{}") as { name?: string; left?: boolean };
    try {
      assert.equal(child.status, 0, child.stderr);
      assert.match(seen.name!, /^memkit-/);
      assert.equal(seen.left, false, "the Worker's made-up name was unlinked when it ended");
    } finally {
      if (seen.name !== undefined) rmSync(`/dev/shm/${seen.name}`, { force: true });
    }
  });
}
