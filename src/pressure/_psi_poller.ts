// One poll for every PSI trigger with a wait pending, per JavaScript realm (the main thread, each Worker).
//
// Why one: a poll that blocks runs on a thread of its own. In Deno that is one of the runtime's blocking
// threads, which its file system calls use too, so a poll per wait starved file reads (64 pending waits
// delayed an async read 0.3 s); in Bun it is a Worker, ~27 ms to start, one per trigger. One poll over
// every watched descriptor holds one thread whatever the number of waits, and every wait on a trigger
// sees the trigger's event (the kernel gives each event to one poll only).
//
// Invariants:
// - A descriptor is in a poll only while its client is watched, or in the one poll running when it was
//   unwatched; `released()` is called once that poll has returned (or at once when none ran), and only then
//   may the client close the descriptor (a later open() may get the same number).
// - Every event a poll takes goes to its client, watched or not (a client that stopped watching keeps it for
//   its next check): the kernel has cleared it.
// - A client joins the poll running now at the next slice: at most POLL_SLICE_MS late, and no event is lost
//   meanwhile (the kernel keeps it until a poll takes it).
import { native } from "../../ffi/native.ts";
import { detach } from "../base/_detach.ts";
import { platformError } from "../base/_platform_error.ts";

/** The longest single poll: how late a new client joins, and how soon a slice gives its thread back. */
export const POLL_SLICE_MS = 100;
const POLLPRI = 2;

/** A descriptor polled for POLLPRI, and what its owner hears. */
export interface PollClient {
  readonly fd: number;
  /** A poll returned `revents` (not 0) for the descriptor. */
  polled(revents: number): void;
  /**
   * The poll failed (`error`), or cannot run here any more (null: check by other means). Not watched now;
   * `released()` follows once no poll includes the descriptor.
   */
  lost(error: Error | null): void;
  /** No poll on the descriptor runs now or later (until it is watched again). */
  released(): void;
}

/** The poll for one realm: Deno's non-blocking FFI poll in slices, else a Worker making the blocking poll. */
class PsiPoller {
  /** Watched clients. */
  readonly #watched = new Set<PollClient>();
  /** Clients whose descriptor is in the poll running now (Deno), or whose removal the Worker has not acknowledged (Bun). */
  readonly #polling = new Set<PollClient>();
  #running = false;
  /** Bun: the Worker (undefined: not started; null: could not start or failed). */
  #worker: Worker | null | undefined = undefined;
  readonly #byFd = new Map<number, PollClient>();

  /** Whether waits can be polled here at all (else a caller checks on a timer). */
  get available(): boolean {
    return native.libc.poll_async !== undefined || this.#worker !== null;
  }

  watch(client: PollClient): void {
    if (this.#watched.has(client)) return;
    this.#watched.add(client);
    if (native.libc.poll_async) {
      if (!this.#running) void this.#pollOnThreads(native.libc.poll_async);
      return;
    }
    const worker = this.#startWorker();
    if (worker === null) {
      this.#watched.delete(client);
      client.lost(null);
      client.released();
      return;
    }
    this.#byFd.set(client.fd, client);
    this.#polling.add(client);
    worker.postMessage({ watch: client.fd });
  }

  unwatch(client: PollClient): void {
    if (!this.#watched.delete(client)) return;
    if (native.libc.poll_async) {
      if (!this.#polling.has(client)) client.released();
      return;
    }
    // The Worker answers { released } once its poll no longer includes the descriptor.
    this.#worker?.postMessage({ unwatch: client.fd });
  }

  // Deno: poll every watched descriptor on one of the runtime's threads, a slice at a time, over pollfds in
  // native memory (the thread writes revents when poll returns, perhaps after this realm ended and freed its
  // buffers: then the pollfds are left allocated rather than written after free).
  async #pollOnThreads(pollAsync: (fds: number, nfds: number, timeoutMs: number) => Promise<number>): Promise<void> {
    this.#running = true;
    try {
      while (this.#watched.size > 0) {
        const clients = [...this.#watched];
        const bytes = 8 * clients.length; // struct pollfd { int fd; short events; short revents; }
        const address = native.libc.malloc(bytes);
        if (address === 0) {
          this.#loseAll(platformError("malloc", `${bytes} bytes for pollfds`), true);
          return;
        }
        const pollfds = new DataView(native.wrap(address, bytes));
        clients.forEach((client, i) => {
          pollfds.setInt32(8 * i, client.fd, true);
          pollfds.setInt16(8 * i + 4, POLLPRI, true);
          pollfds.setInt16(8 * i + 6, 0, true);
          this.#polling.add(client);
        });
        let result: number;
        try {
          result = await pollAsync(address, clients.length, POLL_SLICE_MS);
        } finally {
          this.#polling.clear();
        }
        const revents = clients.map((_, i) => pollfds.getInt16(8 * i + 6, true));
        detach(pollfds.buffer, address, bytes);
        native.libc.free(address);
        if (result < 0) {
          // Before the clients hear of it: any of them may watch again when told.
          const error = platformError("poll", `${clients.length} PSI descriptors`);
          for (const client of clients) if (!this.#watched.has(client)) client.released();
          this.#loseAll(error, true);
          return;
        }
        clients.forEach((client, i) => {
          if (revents[i] !== 0) client.polled(revents[i]);
          if (!this.#watched.has(client)) client.released();
        });
      }
    } finally {
      this.#running = false;
    }
  }

  // Every watched client is dropped and told; `release`: no poll includes any of them now.
  #loseAll(error: Error | null, release: boolean): void {
    const clients = [...this.#watched];
    this.#watched.clear();
    for (const client of clients) client.lost(error);
    if (release) { for (const client of clients) client.released(); }
  }

  // Bun: a Worker polls every watched descriptor and reports; unref'd, it does not keep the process alive.
  #startWorker(): Worker | null {
    if (this.#worker !== undefined) return this.#worker;
    try {
      const worker = new Worker(new URL("./_psi_worker.ts", import.meta.url), { type: "module" });
      (worker as unknown as { unref?: () => void }).unref?.();
      worker.onmessage = (event: MessageEvent<{ fd: number; revents?: number; released?: true }>) => {
        const client = this.#byFd.get(event.data.fd);
        if (client === undefined) return;
        if (event.data.revents !== undefined) client.polled(event.data.revents);
        if (event.data.released && !this.#watched.has(client)) {
          this.#byFd.delete(client.fd);
          this.#polling.delete(client);
          client.released();
        }
      };
      worker.onerror = () => {
        // The Worker could not start or poll: its clients, and later waits, check on a timer instead. A
        // blocking poll may outlive terminate() for one slice: each descriptor is released after it.
        worker.terminate();
        this.#worker = null;
        const held = [...this.#polling];
        this.#polling.clear();
        this.#byFd.clear();
        this.#loseAll(null, false);
        setTimeout(() => {
          for (const client of held) client.released();
        }, 2 * POLL_SLICE_MS);
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
