// Shared allocations with a made-up name (issue 15 adversarial finding 4): a POSIX shared-memory name
// outlives the process, so a program that ended without deallocate or dispose left one in /dev/shm per
// allocation. Those names are now unlinked when the process exits; a name the user chose stays theirs.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { nativeReady } from "../../mod.ts";
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
// exit hooks (process.exit() in it, both runtimes; self.close(), Bun), or with its interface's dispose. A
// Worker that never ends itself (terminated, or still running when the process exits) runs no JavaScript any
// more: its names go at the process's exit, unlinked by libmemkit's exit handler (a C atexit and
// at_quick_exit handler, which Deno and Bun run on every exit path), as do those of a Worker that closes
// itself in Deno. Without libmemkit (MEMKIT_NATIVE=0, no compiler) those stay: see AllocationRequest.name.
const info = await nativeReady();
const noShm = (!HAS_PROC || !existsSync("/dev/shm")) && "needs /dev/shm";
const noLibrary = info.library === null && `needs libmemkit (${info.libraryError})`;
for (
  const [how, status, native] of [
    ["exit", 0, false],
    ["close", 0, info.runtime === "deno"],
    ["dispose", 0, false],
    ["terminate", 0, true],
    ["running", 0, true],
    ["throw", 1, true],
    ["late", 0, true],
  ] as const
) {
  const when = native ? "once the process has exited" : "as soon as the Worker has ended";
  test(`a Worker's made-up shared name is gone ${when} after the Worker ends by ${how}`, {
    skip: noShm || (native && noLibrary),
  }, () => {
    // "late": an empty cache, so the Worker's libmemkit is built after its allocation, which it lists then.
    const cache = how === "late" ? mkdtempSync(`${tmpdir()}/memkit-cache-`) : undefined;
    const env: Record<string, string> = cache === undefined ? {} : { MEMKIT_CACHE_DIR: cache };
    const child = runChild(fileURLToPath(new URL("./_shared_worker_main.ts", import.meta.url)), env, [how]);
    const lines = child.stdout.trim().split("\n");
    const { name, loaded } = JSON.parse(lines[0] || "{}") as { name?: string; loaded?: boolean };
    try {
      assert.equal(child.status, status, child.stderr);
      assert.match(name!, /^memkit-/);
      assert.equal(loaded, how !== "late", "libmemkit was loaded at the allocation (late: not yet)");
      if (!native) {
        const seen = JSON.parse(lines.at(-1) ?? "{}") as { poll?: boolean; left?: boolean };
        assert.equal(seen.poll, true);
        assert.equal(seen.left, false, "the Worker's made-up name was unlinked when the Worker ended");
      }
      assert.equal(existsSync(`/dev/shm/${name}`), false, "the Worker's made-up name is gone after the process");
    } finally {
      if (name !== undefined) rmSync(`/dev/shm/${name}`, { force: true });
      if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
    }
  });
}
