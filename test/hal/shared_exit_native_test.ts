// libmemkit's table of names to unlink at the process's exit (mk_unlink_at_exit, mk_forget_at_exit): what
// unlinks the made-up names of shared allocations where no JavaScript runs any more (a Worker terminated, or
// still running when the process exits). Its exit handler runs as a C atexit handler (Deno) and an
// at_quick_exit handler (Bun) and unlinks each listed path that still names the object listed (device and
// inode); without libmemkit the JavaScript exit hook still unlinks the main thread's names.
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { native, nativeReady } from "../../ffi/native.ts";
import { fixture, runChild } from "../_helpers.ts";
import { HAS_PROC } from "./_locked_memory.ts";

await nativeReady();
const lib = native.memkit;
const noLibrary = lib === null && `needs libmemkit (${native.libraryError})`;
// The files below stand for /dev/shm names; macOS lists POSIX shared memory names instead (shm_unlink).
const notLinux = native.os !== "linux" && "lists files on Linux only";
const noShm = (!HAS_PROC || !existsSync("/dev/shm")) && "needs /dev/shm";
const cPath = (path: string) => new TextEncoder().encode(`${path}\0`);

test("mk_unlink_at_exit lists a path until mk_forget_at_exit, and refuses what it cannot keep", {
  skip: noLibrary,
}, () => {
  const dir = mkdtempSync(`${tmpdir()}/memkit-names-`);
  try {
    const path = `${dir}/listed`;
    writeFileSync(path, "x");
    const stat = lstatSync(path, { bigint: true });
    const a = lib!.mk_unlink_at_exit!(cPath(path), stat.dev, stat.ino);
    const b = lib!.mk_unlink_at_exit!(cPath(path), stat.dev, stat.ino);
    assert.ok(a >= 0 && b >= 0 && a !== b, `two slots: ${a}, ${b}`);
    lib!.mk_forget_at_exit!(a);
    // Other threads of this process may list names meanwhile: which slot comes is theirs to say (the C tests
    // check that a forgotten slot is taken again), but never one still listed.
    const c = lib!.mk_unlink_at_exit!(cPath(path), stat.dev, stat.ino);
    assert.ok(c >= 0 && c !== b, `a third slot: ${c}`);
    lib!.mk_forget_at_exit!(c);
    lib!.mk_forget_at_exit!(b);
    lib!.mk_forget_at_exit!(b); // twice: nothing happens
    lib!.mk_forget_at_exit!(-1); // what a refusal returned: nothing happens
    lib!.mk_forget_at_exit!(1 << 30);
    assert.equal(lib!.mk_unlink_at_exit!(cPath(`${dir}/${"x".repeat(4096)}`), 1n, 1n), -1, "a path too long");
    assert.equal(lib!.mk_unlink_at_exit!(new Uint8Array([0]), 1n, 1n), -1, "an empty path");
    assert.equal(existsSync(path), true, "nothing is unlinked before the exit");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [how, status] of [["end", 0], ["throw", 1], ["exit", 3], ["running", 0]] as const) {
  test(`libmemkit's exit handler unlinks the listed paths still naming their object at an exit by ${how}`, {
    skip: noLibrary || notLinux,
  }, () => {
    const dir = mkdtempSync(`${tmpdir()}/memkit-names-`);
    try {
      const child = runChild(fileURLToPath(new URL("./_shared_native_exit_child.ts", import.meta.url)), {}, [
        dir,
        how,
      ]);
      assert.equal(child.status, status, child.stderr);
      const slots = JSON.parse(child.stdout.trim().split("\n")[0]) as Record<string, number>;
      for (const slot of Object.values(slots)) assert.ok(slot >= 0, `listed: ${child.stdout}`);
      assert.equal(existsSync(`${dir}/kept`), false, "the listed path was unlinked at exit");
      assert.equal(existsSync(`${dir}/forgotten`), true, "a forgotten path is left alone");
      assert.equal(existsSync(`${dir}/replaced`), true, "a path that names another object now is left alone");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// Without libmemkit (disabled, or MEMKIT_LIB naming no library) the JavaScript exit hook unlinks the main
// thread's made-up names as before.
const WITHOUT_LIBRARY = [
  ["MEMKIT_NATIVE=0", { MEMKIT_NATIVE: "0" }],
  ["MEMKIT_LIB naming nothing", { MEMKIT_LIB: "/nonexistent/libmemkit.so" }],
] as const;
for (const [label, env] of WITHOUT_LIBRARY) {
  for (const [how, status] of [["end", 0], ["exit", 3]] as const) {
    test(`with ${label}, a program that ends by ${how} leaves no made-up shared name behind`, { skip: noShm }, () => {
      const child = runChild(fixture("hal_shared_exit.ts"), env, [how]);
      const names = JSON.parse(child.stdout.trim().split("\n")[0] || "{}") as { made?: string; own?: string };
      try {
        assert.equal(child.status, status, child.stderr);
        assert.match(names.made!, /^memkit-/);
        assert.equal(existsSync(`/dev/shm/${names.made}`), false, "the made-up name was unlinked at exit");
      } finally {
        if (names.own !== undefined) rmSync(`/dev/shm/${names.own}`, { force: true });
        if (names.made !== undefined) rmSync(`/dev/shm/${names.made}`, { force: true });
      }
    });
  }
}
