// Names MemoryInterface made up for shared allocations (the `shared` type without a `name`). A POSIX
// shared-memory name outlives the process (it stays in /dev/shm until unlinked or reboot), so a program
// that ends without deallocate or dispose would leave one behind per allocation. The names still in use
// are unlinked when this thread's program ends (ffi's onProcessExit, as the exit check uses): on the main
// thread at the process's exit (a normal end, exit(), an uncaught error; not SIGKILL); in a Worker only
// where the runtime runs the Worker's exit hooks, when it ends itself (process.exit() in it; self.close() in
// Bun). Nothing runs in a Worker that is terminated or that still runs when the process exits (measured on
// Deno 2.9 and Bun 1.4: no unload, no process "exit" there), and its module state is not the main thread's,
// so those names stay: AllocationRequest.name documents it. (Only native code sees every exit: glibc runs
// atexit handlers at Deno's exit and at_quick_exit handlers at Bun's, whichever thread loaded the library;
// a name table in libmemkit unlinked there would cover Workers too.) Names the user chose are the user's:
// they are never unlinked here.
import { onProcessExit } from "../../ffi/native.ts";
import type { SharedMemory } from "./shared_memory.ts";

const live = new Set<SharedMemory>();
let hooked = false;

/** `memory` has a made-up name: unlink it at exit unless {@linkcode forgetAtExit} comes first. */
export function unlinkAtExit(memory: SharedMemory): void {
  live.add(memory);
  if (hooked) return;
  hooked = true;
  onProcessExit(() => {
    for (const m of live) {
      try {
        m.unlink(); // only while the name still names this object (another may have re-created it)
      } catch {
        // Exiting: a name that cannot be removed now (permissions changed) is not worth a crash.
      }
    }
    live.clear();
  });
}

/** `memory` was unlinked (deallocated, or its interface disposed). */
export function forgetAtExit(memory: SharedMemory): void {
  live.delete(memory);
}
