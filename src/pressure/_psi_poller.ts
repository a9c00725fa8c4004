// One poll for every PSI trigger with a wait pending, per JavaScript realm (the main thread, each Worker).
//
// Why one: a poll that blocks runs on a thread of its own. In Deno that is one of the runtime's blocking
// threads, which its file system calls use too, so a poll per wait starved file reads (64 pending waits
// delayed an async read 0.3 s); in Bun it is a Worker, ~27 ms to start, one per trigger. One poll over
// every watched descriptor holds one thread whatever the number of waits.
//
// Why duplicates: the poll runs on another thread, so it never polls a trigger's own descriptor, which
// close() gives back at once and a later open() may get again (a poll on that number would take the new
// trigger's event). It polls close-on-exec duplicates made on this thread, which point at the same trigger
// (the kernel's event is per open file, so polling a duplicate takes it as polling the original would):
// - Deno: a duplicate per watched trigger per slice, closed by the thread that polled once poll returns
//   (libmemkit's mk_poll_close), so none outlives a realm that ended meanwhile; without libmemkit, closed
//   here after the slice (a realm that ends during one leaves them open).
// - Bun: a duplicate per watch, handed to the Worker, which polls it between messages and closes it when
//   told to stop (no poll runs while it reads a message).
//
// Invariants:
// - Every event a poll takes goes to its client, watched or not (a client that stopped watching keeps it for
//   its next check): the kernel has cleared it.
// - A client joins at the next slice (at most POLL_SLICE_MS later); the kernel keeps an event until a poll
//   takes it, so none is lost meanwhile.
// - Bun: messages name a watch by its number (`id`), never by descriptor, so a late message of an ended
//   watch cannot reach a later one that got the same descriptor.
import { native } from "../../ffi/native.ts";
import { detach } from "../base/_detach.ts";
import { errnoName, platformError } from "../base/_platform_error.ts";
import { AllocationError } from "../base/errors.ts";

/** The longest single poll: how late a new client joins, and how soon a slice gives its thread back. */
export const POLL_SLICE_MS = 100;
const POLLPRI = 2;
const F_DUPFD_CLOEXEC = 1030; // Linux, every architecture (PSI exists only there)

/** A descriptor polled for POLLPRI, and what its owner hears. */
export interface PollClient {
  readonly fd: number;
  /** A poll returned `revents` (not 0) for the descriptor. */
  polled(revents: number): void;
  /** The poll failed (`error`), or cannot run here any more (null: check by other means). Not watched now. */
  lost(error: Error | null): void;
}

/** A close-on-exec duplicate of `fd`, or a platform error. */
function duplicate(fd: number): number {
  const copy = native.libc.fcntl_dupfd?.(fd, F_DUPFD_CLOEXEC, 0) ?? -1;
  if (copy < 0) throw platformError("fcntl", `F_DUPFD_CLOEXEC of descriptor ${fd}`);
  return copy;
}

/** The poll for one realm: Deno's non-blocking FFI poll in slices, else a Worker making the blocking poll. */
class PsiPoller {
  readonly #watched = new Set<PollClient>();
  #running = false;
  /** Bun: the Worker (undefined: not started; null: could not start, or failed). */
  #worker: Worker | null | undefined = undefined;
  /** Bun: the watches the Worker may still report on, by id, and their duplicates, until it let go of them. */
  readonly #watches = new Map<number, { client: PollClient; copy: number }>();
  /** Bun: each watched client's current watch id. */
  readonly #idOf = new Map<PollClient, number>();
  #nextId = 1;

  /** Whether waits can be polled here at all (else a caller checks on a timer). */
  get available(): boolean {
    return native.libc.poll_async !== undefined || this.#worker !== null;
  }

  /** Polls `client`'s descriptor from the next slice on. @throws {AllocationError} "platform" when it cannot be duplicated. */
  watch(client: PollClient): void {
    if (this.#watched.has(client)) return;
    if (native.libc.poll_async) {
      this.#watched.add(client);
      if (!this.#running) void this.#pollOnThreads(native.libc.poll_async);
      return;
    }
    const worker = this.#startWorker();
    if (worker === null) {
      client.lost(null);
      return;
    }
    const copy = duplicate(client.fd); // may throw: nothing changed yet
    const id = this.#nextId++;
    this.#watched.add(client);
    this.#watches.set(id, { client, copy });
    this.#idOf.set(client, id);
    worker.postMessage({ watch: copy, id });
  }

  /** Stops polling `client`'s descriptor (an event a poll already took still reaches it). */
  unwatch(client: PollClient): void {
    if (!this.#watched.delete(client)) return;
    const id = this.#idOf.get(client);
    if (id === undefined) return; // Deno: the next slice leaves it out
    this.#idOf.delete(client);
    this.#worker?.postMessage({ unwatch: id }); // the Worker closes its duplicate and answers { id, released }
  }

  // Deno: polls every watched descriptor on one of the runtime's threads, a slice at a time, over pollfds in
  // native memory (the thread writes revents when poll returns, perhaps after this realm ended and freed
  // its buffers: then the pollfds are left allocated rather than written after free).
  async #pollOnThreads(pollAsync: (fds: number, nfds: number, timeoutMs: number) => Promise<number>): Promise<void> {
    this.#running = true;
    let failures = 0;
    try {
      while (this.#watched.size > 0) {
        const clients: PollClient[] = [];
        const copies: number[] = [];
        for (const client of this.#watched) {
          try {
            copies.push(duplicate(client.fd));
            clients.push(client);
          } catch (error) {
            this.#watched.delete(client);
            client.lost(error as Error);
          }
        }
        if (clients.length === 0) continue;
        const bytes = 8 * clients.length; // struct pollfd { int fd; short events; short revents; }
        const address = native.libc.malloc(bytes);
        if (address === 0) {
          for (const copy of copies) native.libc.close(copy);
          this.#loseAll(platformError("malloc", `${bytes} bytes for pollfds`));
          return;
        }
        const pollfds = new DataView(native.wrap(address, bytes));
        copies.forEach((copy, i) => {
          pollfds.setInt32(8 * i, copy, true);
          pollfds.setInt16(8 * i + 4, POLLPRI, true);
          pollfds.setInt16(8 * i + 6, 0, true);
        });
        // With libmemkit the polling thread closes the duplicates itself (and retries on EINTR).
        const pollClose = native.memkit?.mk_poll_close;
        const result = pollClose
          ? await pollClose(address, clients.length, POLL_SLICE_MS)
          : await pollAsync(address, clients.length, POLL_SLICE_MS);
        if (!pollClose) { for (const copy of copies) native.libc.close(copy); }
        const revents = clients.map((_, i) => pollfds.getInt16(8 * i + 6, true));
        detach(pollfds.buffer, address, bytes);
        native.libc.free(address);
        if (result < 0) {
          // mk_poll_close retries a signal itself, so its failure is real; libc's poll is not restarted after
          // a signal on that thread, and its errno cannot be read here: retried a slice later, for 5 s.
          if (!pollClose && ++failures < 50) {
            await new Promise((resolve) => setTimeout(resolve, POLL_SLICE_MS));
            continue;
          }
          const what = `poll(${clients.length} PSI descriptors) failed`;
          this.#loseAll(
            pollClose
              ? new AllocationError("platform", `${what} with ${errnoName(-result)}`, { call: "poll", errno: -result })
              : new AllocationError("platform", `${what} for 5 s`, { call: "poll" }),
          );
          return;
        }
        failures = 0;
        clients.forEach((client, i) => {
          if (revents[i] !== 0) client.polled(revents[i]);
        });
      }
    } finally {
      this.#running = false;
    }
  }

  #loseAll(error: Error | null): void {
    const clients = [...this.#watched];
    this.#watched.clear();
    this.#idOf.clear();
    this.#watches.clear();
    for (const client of clients) client.lost(error);
  }

  // Bun: a Worker polls every watched duplicate and reports; unref'd, it does not keep the process alive.
  #startWorker(): Worker | null {
    if (this.#worker !== undefined) return this.#worker;
    try {
      const worker = new Worker(new URL("./_psi_worker.ts", import.meta.url), { type: "module" });
      (worker as unknown as { unref?: () => void }).unref?.();
      worker.onmessage = (event: MessageEvent<{ id: number; revents?: number; released?: true }>) => {
        const { id, revents, released } = event.data;
        const watch = this.#watches.get(id);
        if (watch === undefined) return;
        if (revents !== undefined) watch.client.polled(revents);
        if (released) this.#watches.delete(id);
      };
      worker.onerror = () => {
        // The Worker could not start or poll: its clients, and later waits, check on a timer instead. Its
        // duplicates are closed here, once a blocking poll that outlives terminate() has surely returned.
        worker.terminate();
        this.#worker = null;
        const copies = [...this.#watches.values()].map((watch) => watch.copy);
        this.#loseAll(null);
        setTimeout(() => {
          for (const copy of copies) native.libc.close(copy);
        }, 3 * POLL_SLICE_MS);
      };
      this.#worker = worker;
    } catch {
      this.#worker = null;
    }
    return this.#worker;
  }
}

/** This realm's poller. */
export const psiPoller: PsiPoller = new PsiPoller();
