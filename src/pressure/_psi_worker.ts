// Bun's PSI poll (see _psi_poller.ts): bun:ffi has no calls on another thread, so this Worker makes the
// blocking poll(2) over every watched trigger's descriptor (shared by the whole process), a slice at a time
// so that it reads its messages between slices, and posts each event. Messages in: { watch: fd } and
// { unwatch: fd }; out: { fd, revents } and { fd, released: true } once no poll here includes fd.
import { native } from "../../ffi/native.ts";
import { POLL_SLICE_MS } from "./_psi_poller.ts";

const POLLPRI = 2;

// deno-lint-ignore no-explicit-any
const scope = globalThis as any as { onmessage: unknown; postMessage(message: unknown): void };
const watched = new Set<number>();
let scheduled = false;

scope.onmessage = (event: MessageEvent<{ watch?: number; unwatch?: number }>) => {
  const { watch, unwatch } = event.data;
  if (watch !== undefined) watched.add(watch);
  if (unwatch !== undefined) {
    // No poll runs while a message is handled: this thread makes them.
    watched.delete(unwatch);
    scope.postMessage({ fd: unwatch, released: true });
  }
  schedule();
};

function schedule(): void {
  if (scheduled || watched.size === 0) return;
  scheduled = true;
  setTimeout(pollOnce, 0);
}

function pollOnce(): void {
  scheduled = false;
  const fds = [...watched];
  if (fds.length === 0) return;
  const pollfds = new Uint8Array(8 * fds.length); // struct pollfd { int fd; short events; short revents; }
  const view = new DataView(pollfds.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(8 * i, fd, true);
    view.setInt16(8 * i + 4, POLLPRI, true);
  });
  const result = native.libc.poll(pollfds, fds.length, POLL_SLICE_MS);
  if (result < 0) throw new Error(`poll of ${fds.length} PSI descriptors failed`); // the owner's onerror
  fds.forEach((fd, i) => {
    const revents = view.getInt16(8 * i + 6, true);
    if (revents !== 0) scope.postMessage({ fd, revents });
  });
  schedule();
}
