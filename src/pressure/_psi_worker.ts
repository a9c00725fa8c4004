// Bun's PSI poll (see _psi_poller.ts): bun:ffi has no calls on another thread, so this Worker makes the
// blocking poll(2) over every watched trigger's duplicate descriptor, a slice at a time so that it reads
// its messages between slices, and posts each event. In: { watch: fd, id } (the duplicate is this Worker's
// to close) and { unwatch: id }; out: { id, revents } and { id, released: true } once the duplicate is
// closed (after every message about that watch).
import { native } from "../../ffi/native.ts";
import { POLL_SLICE_MS } from "./_psi_poller.ts";

const POLLPRI = 2;
const POLLERR = 8;
const POLLNVAL = 32;

// deno-lint-ignore no-explicit-any
const scope = globalThis as any as { onmessage: unknown; postMessage(message: unknown): void };
/** Watched duplicates by watch id; a watch whose descriptor failed (POLLERR) stays here, unpolled, until unwatched. */
const watched = new Map<number, { fd: number; polled: boolean }>();
let scheduled = false;
let failures = 0;

scope.onmessage = (event: MessageEvent<{ watch?: number; id: number; unwatch?: number }>) => {
  const { watch, id, unwatch } = event.data;
  if (watch !== undefined) watched.set(id, { fd: watch, polled: true });
  if (unwatch !== undefined) {
    // No poll runs while a message is handled (this thread makes them): the duplicate can go now.
    const entry = watched.get(unwatch);
    watched.delete(unwatch);
    if (entry !== undefined) native.libc.close(entry.fd);
    scope.postMessage({ id: unwatch, released: true });
  }
  schedule();
};

function schedule(): void {
  if (scheduled) return;
  for (const entry of watched.values()) {
    if (entry.polled) {
      scheduled = true;
      setTimeout(pollOnce, 0);
      return;
    }
  }
}

function pollOnce(): void {
  scheduled = false;
  const ids = [...watched.keys()].filter((id) => watched.get(id)!.polled);
  if (ids.length === 0) return;
  const pollfds = new Uint8Array(8 * ids.length); // struct pollfd { int fd; short events; short revents; }
  const view = new DataView(pollfds.buffer);
  ids.forEach((id, i) => {
    view.setInt32(8 * i, watched.get(id)!.fd, true);
    view.setInt16(8 * i + 4, POLLPRI, true);
  });
  const result = native.libc.poll(pollfds, ids.length, POLL_SLICE_MS);
  if (result < 0) {
    // A signal on this thread (poll is not restarted), or worse: retried a slice later, for 5 s, then the
    // owner's onerror (its waits check on a timer then).
    if (++failures >= 50) throw new Error(`poll of ${ids.length} PSI descriptors failed for 5 s`);
    scheduled = true;
    setTimeout(pollOnce, POLL_SLICE_MS);
    return;
  }
  failures = 0;
  ids.forEach((id, i) => {
    const revents = view.getInt16(8 * i + 6, true);
    if (revents === 0) return;
    // A failed descriptor would end every later poll at once: it is left out until its owner unwatches it.
    if (revents & (POLLERR | POLLNVAL)) watched.get(id)!.polled = false;
    scope.postMessage({ id, revents });
  });
  schedule();
}
