/**
 * Linux PSI triggers: the kernel signals when memory stalls pass a threshold.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { detach } from "../base/_detach.ts";
import { platformError } from "../base/_platform_error.ts";
import { describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";

/**
 * Options of {@linkcode PsiTrigger.open}.
 *
 * @example
 * ```ts
 * import type { PsiTriggerOptions } from "@memkit/memkit";
 *
 * const options: PsiTriggerOptions = { kind: "some", stallUs: 150_000, windowUs: 2_000_000 };
 * ```
 */
export interface PsiTriggerOptions {
  /**
   * The PSI file: `/proc/pressure/<resource>` or a cgroup v2 group's
   * `<resource>.pressure` (resource `memory`, `cpu`, `io` or `irq`); no other
   * file is written to. @default {"/proc/pressure/memory"}
   */
  path?: string;
  /** `some`: any task stalled; `full`: all tasks stalled at once. @default {"some"} */
  kind?: "some" | "full";
  /** Stall time within the window that fires the trigger, in µs. @default {150000} */
  stallUs?: number;
  /**
   * The window in µs, 500 ms to 10 s. Without CAP_SYS_RESOURCE the kernel
   * (6.5+) only accepts multiples of 2 s. @default {2000000}
   */
  windowUs?: number;
}

// What PSI files are called (the path option's check): a trigger is written into the file, so any other file,
// or a name a NUL would cut short, is refused before anything is opened.
const OptionsSchema = z.object({
  path: z.string().regex(
    /^\/proc\/pressure\/(memory|cpu|io|irq)$|^\/[^\0]*\/(memory|cpu|io|irq)\.pressure$/,
    "must name a PSI file: /proc/pressure/<memory|cpu|io|irq> or a cgroup's <memory|cpu|io|irq>.pressure",
  ).optional(),
  kind: z.enum(["some", "full"]).optional(),
  stallUs: z.number().int("must be an integer").min(1, "must be at least 1").max(10_000_000, "must be at most 10 s")
    .optional(),
  windowUs: z.number().int("must be an integer").min(500_000, "must be at least 500 ms")
    .max(10_000_000, "must be at most 10 s").optional(),
}).strict();

const POLLPRI = 2;
const POLLERR = 8;
/** The longest single poll of a Deno wait (see #pollOnThread). */
const POLL_SLICE_MS = 100;

// Only open() constructs a trigger.
const OPEN_KEY: unique symbol = Symbol("PsiTrigger.open");

/**
 * A PSI trigger (Linux 5.2+): the kernel marks it when memory stalls reach
 * `stallUs` within `windowUs`. `fired()` checks without waiting; `wait()`
 * waits on another thread: Deno's non-blocking FFI `poll` (the pending wait
 * keeps the process alive until it ends), or in Bun a Worker making the
 * blocking `poll` (unref'd, so it does not). Close it (or `using`) when done.
 *
 * @example
 * ```ts
 * import { PsiTrigger } from "@memkit/memkit";
 *
 * try {
 *   using trigger = PsiTrigger.open({ windowUs: 2_000_000 });
 *   console.log(trigger.fired()); // false unless memory stalled lately
 * } catch (error) {
 *   console.log(`no PSI trigger here: ${(error as Error).message}`);
 * }
 * ```
 */
export class PsiTrigger implements Disposable {
  readonly #fd: number;
  readonly #fds = new Uint8Array(8); // struct pollfd { int fd; short events; short revents; }
  readonly #view = new DataView(this.#fds.buffer);
  /** The PSI file watched. */
  readonly path: string;
  #closed = false;
  // Polls that may still be running on another thread (Deno's slices, Bun's Worker): the descriptor is
  // closed only once none is, so no poll ever runs on a number a later open() got.
  #inFlight = 0;
  #fdClosed = false;
  // Bun: an event the Worker's poll took while no wait was pending, kept for the next fired() or wait().
  #latched = false;
  #waiter: Worker | null | undefined = undefined;
  readonly #waiters = new Set<(fired: boolean) => void>();

  private constructor(key: symbol, fd: number, path: string) {
    // Private in TypeScript, and in JavaScript too: only open() has the key.
    if (key !== OPEN_KEY) throw new TypeError("Cannot construct a PsiTrigger directly: use PsiTrigger.open(options)");
    this.#fd = fd;
    this.path = path;
    this.#view.setInt32(0, fd, true);
    this.#view.setInt16(4, POLLPRI, true);
  }

  /**
   * Creates a trigger.
   * @throws {TypeError} / {RangeError} For bad options (a `path` not named as a PSI file is a TypeError).
   * @throws {AllocationError} "unsupported" off Linux; "platform" when the kernel refuses (ENOENT without PSI, EINVAL for a window the process may not use, EPERM / EACCES without permission), naming the errno, or when the file at `path` does not read as a PSI file (nothing is written to it then).
   */
  static open(options?: PsiTriggerOptions): PsiTrigger {
    if (options === undefined) options = {};
    const parsed = parseOptions(OptionsSchema, options, "open a PSI trigger");
    const path = parsed.path ?? "/proc/pressure/memory";
    const kind = parsed.kind ?? "some";
    const stall = parsed.stallUs ?? 150_000;
    const window = parsed.windowUs ?? 2_000_000;
    if (stall > window) {
      throw new RangeError(
        `Cannot open a PSI trigger as 'stallUs' must not exceed 'windowUs': current value is ${stall}`,
      );
    }
    if (native.os !== "linux") {
      throw new AllocationError("unsupported", `PSI triggers exist only on Linux, not ${native.os}`);
    }
    if (native.libcError) throw new AllocationError("unsupported", native.libcError);
    const c = native.platform;
    const fd = native.libc.open(new TextEncoder().encode(`${path}\0`), c.O_RDWR | c.O_NONBLOCK | c.O_CLOEXEC);
    if (fd < 0) throw platformError("open", describe(path));
    // A file named like a PSI file may still be another (a cgroup path under /tmp): it must read as one and,
    // unlike a regular file holding a copy of PSI text, have no size (procfs and cgroupfs report an error or 0).
    // Read through the descriptor: the file checked is the file written, and the runtime is asked for no read
    // permission; O_NONBLOCK keeps a FIFO from blocking.
    const head = new Uint8Array(16);
    const count = native.libc.read(fd, head, head.length);
    const contents = count > 0 ? new TextDecoder().decode(head.subarray(0, count)) : "";
    if (!contents.startsWith("some avg10=") || native.libc.lseek(fd, 0, c.SEEK_END) > 0) {
      native.libc.close(fd);
      throw new AllocationError(
        "platform",
        `Cannot open a PSI trigger as ${describe(path)} is not a PSI file (one reads "some avg10=..." and has ` +
          "no size): nothing was written to it",
      );
    }
    // The kernel replaces the last byte with NUL: write the terminator too.
    const text = new TextEncoder().encode(`${kind} ${stall} ${window}\0`);
    if (native.libc.write(fd, text, text.length) < 0) {
      const error = platformError("write", `${describe(path)}, "${kind} ${stall} ${window}"`);
      native.libc.close(fd);
      throw error;
    }
    return new PsiTrigger(OPEN_KEY, fd, path);
  }

  /**
   * Whether the trigger fired since the last check, without waiting.
   * @throws {AllocationError} "use-after-free" after `close()`.
   */
  fired(): boolean {
    if (this.#latched && !this.#closed) {
      this.#latched = false;
      return true;
    }
    return this.#poll(native.libc.poll(this.#fds, 1, 0));
  }

  /**
   * Waits up to `timeoutMs` for the trigger. `close()` ends a pending wait
   * with false (in Deno within 100 ms: the poll on the other thread runs in
   * slices of at most that, so a closed trigger holds no thread longer).
   * In Deno each pending wait keeps one of the runtime's blocking threads
   * busy, the threads its file system calls use too: an async file read
   * took 2 ms with 32 waits pending, 0.3 s with 64, 0.7 s with 128 and 1.1 s
   * with 256, and the waits themselves ran up to 0.7 s late (measured on
   * this project's 2-core machine). Share one trigger's wait among tasks
   * rather than waiting many times.
   * @returns Whether it fired.
   * @throws {AllocationError} "use-after-free" when the trigger is closed already.
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (typeof timeoutMs !== "number") {
      throw new TypeError(`Cannot wait as 'timeoutMs' must be a number: current value is ${describe(timeoutMs)}`);
    }
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 3_600_000) {
      throw new RangeError(
        `Cannot wait as 'timeoutMs' must be an integer from 0 to 3600000: current value is ${describe(timeoutMs)}`,
      );
    }
    if (this.#closed) throw new AllocationError("use-after-free", "Cannot wait on a closed PSI trigger");
    timeoutMs += 0; // -0 becomes 0: FFI integers refuse -0
    const pollAsync = native.libc.poll_async;
    if (pollAsync) {
      const result = await this.#pollOnThread(pollAsync, timeoutMs);
      // Closed meanwhile (also in the few microtasks after the last slice): the wait ends with false.
      return this.#closed ? false : this.#poll(result);
    }
    // Bun: a Worker makes the blocking poll and reports; it does not keep the process alive.
    if (this.fired()) return true;
    const worker = this.#worker();
    if (worker === null) return await this.#checkEvery50ms(timeoutMs);
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (fired: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve(fired);
      };
      this.#waiters.add(done);
    });
  }

  /**
   * Deno's poll on a worker thread, over a pollfd in native memory: the thread writes `revents`
   * when poll returns, perhaps after this isolate ended (a Worker terminated, a test module done)
   * and freed its buffers. Then the 8 bytes are left allocated rather than written after free.
   * The wait is polled in slices of at most POLL_SLICE_MS: a blocked poll is not woken when its
   * descriptor is closed, and a slice that ends lets close() end the wait and hands the
   * runtime's blocking thread back to other work (file reads queue behind pending polls).
   */
  async #pollOnThread(
    pollAsync: (fds: number, nfds: number, timeoutMs: number) => Promise<number>,
    timeoutMs: number,
  ): Promise<number> {
    const address = native.libc.malloc(8);
    if (address === 0) throw platformError("malloc", "8 bytes for a pollfd");
    const pollfd = new Uint8Array(native.wrap(address, 8));
    pollfd.set(this.#fds);
    const until = Date.now() + timeoutMs;
    try {
      for (;;) {
        const slice = Math.max(0, Math.min(POLL_SLICE_MS, until - Date.now()));
        this.#inFlight++;
        let result: number;
        try {
          result = await pollAsync(address, 1, slice);
        } finally {
          this.#inFlight--;
        }
        if (this.#closed) {
          this.#closeFd(); // the last poll on it has returned
          return result;
        }
        if (result !== 0 || Date.now() >= until) {
          this.#fds.set(pollfd.subarray(6, 8), 6); // revents
          return result;
        }
      }
    } finally {
      detach(pollfd.buffer, address, 8);
      native.libc.free(address);
    }
  }

  #worker(): Worker | null {
    if (this.#waiter !== undefined) return this.#waiter;
    try {
      const worker = new Worker(new URL("./_psi_worker.ts", import.meta.url), { type: "module" });
      (worker as unknown as { unref?: () => void }).unref?.();
      worker.onmessage = (event: MessageEvent<string>) => {
        const fired = event.data === "fired";
        // The Worker's poll took the kernel's one event: with no wait pending, keep it for fired()/wait().
        if (fired && this.#waiters.size === 0) this.#latched = true;
        for (const done of [...this.#waiters]) done(fired);
      };
      // The Worker's blocking poll may outlive terminate() for up to its 1 s slice: the descriptor is
      // closed when the Worker has ended (see #inFlight).
      this.#inFlight++;
      worker.addEventListener("close", () => {
        this.#inFlight--;
        this.#closeFd();
      });
      worker.onerror = () => {
        // The Worker could not start or poll: later waits check every 50 ms instead.
        worker.terminate();
        this.#waiter = null;
      };
      worker.postMessage({ fd: this.#fd });
      this.#waiter = worker;
    } catch {
      this.#waiter = null;
    }
    return this.#waiter;
  }

  async #checkEvery50ms(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.fired()) {
      if (Date.now() >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, Math.max(0, until - Date.now()))));
    }
    return true;
  }

  /** Closes the trigger, ending pending waits with false; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter?.terminate();
    for (const done of [...this.#waiters]) done(false);
    this.#closeFd();
  }

  // Closes the descriptor once the trigger is closed and no poll on it may still run.
  #closeFd(): void {
    if (!this.#closed || this.#inFlight !== 0 || this.#fdClosed) return;
    this.#fdClosed = true;
    native.libc.close(this.#fd);
  }

  /** Same as {@linkcode PsiTrigger.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #poll(result: number): boolean {
    if (this.#closed) throw new AllocationError("use-after-free", "Cannot poll a closed PSI trigger");
    if (result < 0) throw platformError("poll", describe(this.path));
    const revents = this.#view.getInt16(6, true);
    if (revents & POLLERR) {
      throw new AllocationError("platform", `The PSI source ${describe(this.path)} went away (POLLERR)`);
    }
    return result > 0 && (revents & POLLPRI) !== 0;
  }
}
