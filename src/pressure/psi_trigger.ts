/**
 * Linux PSI triggers: the kernel signals when memory stalls pass a threshold.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { platformError } from "../base/_platform_error.ts";
import { describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { type PollClient, psiPoller } from "./_psi_poller.ts";

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
const POLLNVAL = 32;

// Only open() constructs a trigger.
const OPEN_KEY: unique symbol = Symbol("PsiTrigger.open");

/**
 * A PSI trigger (Linux 5.2+): the kernel marks it when memory stalls reach
 * `stallUs` within `windowUs`. `fired()` checks without waiting; `wait()`
 * waits on another thread, where one `poll` serves every pending wait of
 * the thread that asked: Deno's non-blocking FFI `poll` (a pending wait
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
  // An event the poller took while no wait was pending, kept for the next fired() or wait().
  #latched = false;
  readonly #waiters = new Set<Waiter>();
  // The 50 ms checks, where no poll runs (see #checkOnTimer).
  #timer: ReturnType<typeof setInterval> | undefined = undefined;
  // What the poller polls (a duplicate of the descriptor: see _psi_poller.ts) and tells.
  readonly #client: PollClient;

  private constructor(key: symbol, fd: number, path: string) {
    // Private in TypeScript, and in JavaScript too: only open() has the key.
    if (key !== OPEN_KEY) throw new TypeError("Cannot construct a PsiTrigger directly: use PsiTrigger.open(options)");
    this.#fd = fd;
    this.#client = { fd, polled: (revents) => this.#polledEvent(revents), lost: (error) => this.#pollLost(error) };
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
   * Whether the trigger fired since the last check, without waiting. When
   * it did, the trigger's pending waits end true too (the check took the
   * kernel's event, which they wait for).
   * @throws {AllocationError} "use-after-free" after `close()`.
   */
  fired(): boolean {
    if (this.#latched && !this.#closed) {
      this.#latched = false;
      return true;
    }
    const fired = this.#poll(native.libc.poll(this.#fds, 1, 0));
    // This check took the kernel's event: the waits pending on the trigger hear it too.
    if (fired) { for (const waiter of [...this.#waiters]) waiter.settle(true); }
    return fired;
  }

  /**
   * Waits up to `timeoutMs` for the trigger: true at once when it fired
   * since the last check, else when it fires. Every pending wait of this
   * thread (on any trigger) is served by one `poll` on one other thread,
   * in slices of at most 100 ms, so a wait holds no thread of its own (in
   * Deno, the runtime's blocking threads stay free for its file system
   * calls); each wait on a trigger hears its event, whether the poll or a
   * check (`fired()`, another wait's start) takes it; a wait begun while a
   * slice runs joins at the next one (its event is kept by the kernel
   * meanwhile, so it is at most 100 ms late, never lost). `close()` ends
   * pending waits with false.
   * @returns Whether it fired.
   * @throws {AllocationError} "use-after-free" when the trigger is closed already; "platform" when the
   *   PSI source went away (its cgroup was removed: POLLERR) or the poll failed.
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
    if (this.#closed) {
      throw new AllocationError(
        "use-after-free",
        "Cannot wait on a closed PSI trigger (closed by close() or by the end of its `using` scope)",
      );
    }
    if (this.fired()) return true;
    if (timeoutMs === 0) return false;
    return await new Promise<boolean>((resolve, reject) => {
      const waiter: Waiter = {
        settle: (fired, error) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          if (this.#waiters.size === 0) psiPoller.unwatch(this.#client);
          if (error === undefined) resolve(fired);
          else reject(error);
        },
      };
      const timer = setTimeout(() => waiter.settle(false), timeoutMs);
      this.#waiters.add(waiter);
      if (!psiPoller.available) return this.#checkOnTimer();
      try {
        psiPoller.watch(this.#client);
      } catch (error) {
        waiter.settle(false, error as Error); // the descriptor could not be duplicated
      }
    });
  }

  // The poller saw an event: every pending wait hears it; with none pending it is kept for the next check.
  #polledEvent(revents: number): void {
    if (this.#closed) return;
    const error = this.#sourceError(revents);
    if (error === undefined && (revents & POLLPRI) === 0) return; // nothing a wait is for
    if (this.#waiters.size === 0) {
      if (error === undefined) this.#latched = true;
      return;
    }
    for (const waiter of [...this.#waiters]) waiter.settle(true, error);
  }

  // The poller stopped polling for us: with an error, the waits reject; without, they check on a timer.
  #pollLost(error: Error | null): void {
    if (error === null) this.#checkOnTimer();
    else for (const waiter of [...this.#waiters]) waiter.settle(false, error);
  }

  // Where no poll runs on another thread (its Worker could not start or failed): checks every 50 ms while
  // waits are pending. A check that finds the event ends every pending wait (fired()).
  #checkOnTimer(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      if (this.#closed || this.#waiters.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        return;
      }
      try {
        this.fired();
      } catch (error) {
        for (const waiter of [...this.#waiters]) waiter.settle(false, error as Error);
      }
    }, 50);
  }

  /**
   * Closes the trigger, ending pending waits with false; a second call does
   * nothing. Its descriptor is closed at once; the poll that served its
   * waits held a duplicate, which goes when that poll has returned: in Deno
   * with libmemkit the thread that polled closes it, even after this thread
   * ended. Without libmemkit (Deno), and in Bun, where the poll's Worker
   * closes it when it reads the news, a Worker that ends within a slice
   * (100 ms) of `close()` may leave that duplicate open until the process
   * exits.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.settle(false);
    psiPoller.unwatch(this.#client);
    // At once: the poller never polls this number, only duplicates of it, which it closes itself.
    native.libc.close(this.#fd);
  }

  /** Same as {@linkcode PsiTrigger.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #poll(result: number): boolean {
    if (this.#closed) {
      throw new AllocationError(
        "use-after-free",
        "Cannot poll a closed PSI trigger (closed by close() or by the end of its `using` scope)",
      );
    }
    if (result < 0) throw platformError("poll", describe(this.path));
    const revents = this.#view.getInt16(6, true);
    const error = this.#sourceError(revents);
    if (error !== undefined) throw error;
    return result > 0 && (revents & POLLPRI) !== 0;
  }

  // What a poll's revents say went wrong with the PSI file, if anything.
  #sourceError(revents: number): AllocationError | undefined {
    if (revents & POLLERR) {
      return new AllocationError("platform", `The PSI source ${describe(this.path)} went away (POLLERR)`);
    }
    if (revents & POLLNVAL) {
      return new AllocationError("platform", `The PSI source ${describe(this.path)} is not open (POLLNVAL)`);
    }
    return undefined;
  }
}

/** A pending wait. */
interface Waiter {
  /** Ends the wait (removing it first): `fired`, or rejected with `error`. */
  settle(fired: boolean, error?: Error): void;
}
