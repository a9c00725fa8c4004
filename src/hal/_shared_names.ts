// Names MemoryInterface made up for shared allocations (the `shared` type without a `name`). A POSIX
// shared-memory name outlives the process (it stays in /dev/shm until unlinked or reboot), so a program
// that ends without deallocate or dispose would leave one behind per allocation. The names still in use
// are unlinked when the process exits, by two hooks:
// - libmemkit's table of names (mk_unlink_at_exit in ffi/memkit.h): one per process, shared by every thread,
//   whose handler runs in C at the process's exit (atexit, which Deno's exit runs; at_quick_exit, which
//   Bun's runs), on every path that ends the process through the runtime: a normal end, exit(), an uncaught
//   error, also with Workers still running or terminated before (measured on Deno 2.9 and Bun 1.4), where no
//   JavaScript of theirs runs any more. It unlinks a name only while it names the object made here (the
//   device and inode listed; on macOS by name), and only in the process that listed it. It has room for
//   MK_EXIT_NAMES (4096) live names per process; past that only the JavaScript hook has a name.
// - this thread's JavaScript exit hook (ffi's onProcessExit, as the exit check uses), which unlinks them
//   first where it runs: on the main thread at the process's exit; in a Worker when it ends itself where the
//   runtime runs its exit hooks (process.exit() in it; self.close() in Bun), so its names go then, not only
//   at the process's exit.
// Without libmemkit (MEMKIT_NATIVE=0, MEMKIT_LIB naming nothing usable, no compiler) only the JavaScript hook
// remains, and the names of a Worker that is terminated, closes itself in Deno or still runs at the exit
// stay: AllocationRequest.name documents it. A name made while libmemkit is still being built is listed once
// the build is done. Nothing runs at SIGKILL or another fatal signal. Names the user chose are the user's:
// they are never unlinked here.
import { lstatSync } from "node:fs";
import { native, onProcessExit, whenMemkitLoaded } from "../../ffi/native.ts";
import type { SharedMemory } from "./shared_memory.ts";

type Memkit = NonNullable<typeof native.memkit>;

// Each live made-up name, and its slot in libmemkit's table (-1: not listed there).
const live = new Map<SharedMemory, number>();
let hooked = false;
let waiting = false;
const encoder = new TextEncoder();

/** `memory` has a made-up name: unlink it at exit unless {@linkcode forgetAtExit} comes first. */
export function unlinkAtExit(memory: SharedMemory): void {
  const memkit = native.memkit;
  live.set(memory, memkit === null ? -1 : listNative(memkit, memory));
  if (memkit === null && !waiting) {
    waiting = true;
    // Being built (or unavailable: then this never runs): list what is still live once it is loaded.
    whenMemkitLoaded((loaded) => {
      for (const [m, slot] of live) if (slot < 0) live.set(m, listNative(loaded, m));
    });
  }
  if (hooked) return;
  hooked = true;
  onProcessExit(() => {
    for (const [m, slot] of live) {
      try {
        m.unlink(); // only while the name still names this object (another may have re-created it)
      } catch {
        // Exiting: a name that cannot be removed now (permissions changed) is left to libmemkit's handler.
        continue;
      }
      // Gone (or another object's now): off libmemkit's list, whose slots a Worker ending itself must not keep.
      forgetNative(slot);
    }
    live.clear();
  });
}

/** `memory` was unlinked (deallocated, or its interface disposed). */
export function forgetAtExit(memory: SharedMemory): void {
  const slot = live.get(memory);
  if (slot === undefined) return;
  live.delete(memory);
  forgetNative(slot);
}

// Lists `memory`'s name in libmemkit's table: its slot, or -1 (a library without the table, a full table, a
// name that cannot be looked at).
function listNative(memkit: Memkit, memory: SharedMemory): number {
  const list = memkit.mk_unlink_at_exit;
  if (list === undefined) return -1;
  try {
    if (native.os === "darwin") return list(encoder.encode(`/${memory.name}\0`), 0n, 0n); // shm_unlink's name
    // Where shared_memory.ts keeps it on Linux; its identity now, just after this thread created it (exclusive).
    const path = `/dev/shm/${memory.name}`;
    const stat = lstatSync(path, { bigint: true });
    return list(encoder.encode(`${path}\0`), stat.dev, stat.ino);
  } catch {
    return -1; // the JavaScript exit hook still has it
  }
}

function forgetNative(slot: number): void {
  if (slot >= 0) native.memkit?.mk_forget_at_exit?.(slot);
}
