// Bun's PSI waiter: bun:ffi has no worker-thread calls, so this Worker makes
// the blocking poll(2) on the trigger's file descriptor (shared by the whole
// process) and posts "fired" whenever the kernel marks it.
import { native } from "../../ffi/native.ts";

const POLLPRI = 2;
const POLLERR = 8;

// deno-lint-ignore no-explicit-any
const scope = globalThis as any as { onmessage: unknown; postMessage(message: string): void };

scope.onmessage = (event: MessageEvent<{ fd: number }>) => {
  const fds = new Uint8Array(8);
  const view = new DataView(fds.buffer);
  view.setInt32(0, event.data.fd, true);
  view.setInt16(4, POLLPRI, true);
  for (;;) {
    // Wake at least once a second, so a closed descriptor is noticed.
    const result = native.libc.poll(fds, 1, 1000);
    const revents = view.getInt16(6, true);
    if (result < 0 || revents & POLLERR) {
      scope.postMessage("closed");
      return;
    }
    if (result > 0 && revents & POLLPRI) scope.postMessage("fired");
  }
};
