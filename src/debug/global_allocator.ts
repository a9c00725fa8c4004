/**
 * One process-wide debugging allocator, with C-style
 * functions and a leak check when the process exits.
 *
 * @module
 */
import { currentExitCode, onProcessExit, readEnv, setExitCode, workerLabel } from "../../ffi/native.ts";
import { census } from "../base/_native_census.ts";
import { describeError, exitReport, printError, TRACE_FRAMES_VARIABLE } from "./_exit_report.ts";
import { checkSize, describe, parseOptions, z } from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { cFreeIn, cMalloc, cReallocIn } from "./_c_style.ts";
import { DebugAllocator } from "./debug_allocator.ts";

/**
 * Options of {@linkcode initAllocator}. Mapping to Zig's DebugAllocator:
 * `enableSafety` is `safety`, `stackTraceFrames` is `stack_trace_frames`,
 * `neverUnmap` and `retainMetadata` are the same; `enableLeakDetection` turns
 * on the leak check of `deinit()` and at exit (Zig's leak check under
 * `safety`), and `enableTracking` keeps the counters of `getMemStats()`.
 *
 * @example
 * ```ts
 * import { type GlobalAllocatorConfig, initAllocator, deinit } from "@memkit/memkit";
 *
 * const config: GlobalAllocatorConfig = { stackTraceFrames: 6, leakCheckAtExit: "fail" };
 * initAllocator(config);
 * deinit();
 * ```
 */
export interface GlobalAllocatorConfig {
  /** Check for leaks in `checkForLeaks()`, `deinit()` and at exit. @default {true} */
  enableLeakDetection?: boolean;
  /** Keep the counters `getMemStats()` reports. @default {true} */
  enableTracking?: boolean;
  /**
   * Canaries, double-free and invalid-free checks; off, only the counters
   * and the leak list. Either way a freed block's views from
   * `getAllocator()` read as length 0 once its memory goes back (the
   * SystemAllocator under the global allocator detaches each block's buffer
   * when it is freed); memory held back by `neverUnmap` or `retainMetadata`
   * stays readable until then. @default {true}
   */
  enableSafety?: boolean;
  /** Never reuse freed memory until `deinit()`. @default {false} */
  neverUnmap?: boolean;
  /**
   * Remember freed blocks and hold their memory back (the most recent 64 MiB
   * freed), so a second `cFree` of an address is reported as a double free
   * even when the allocator would have reused the address. @default {false}
   */
  retainMetadata?: boolean;
  /**
   * Frames of allocation stack trace in leak reports (0: none), the
   * program's own frames only (memkit's are dropped). @default {the
   * environment variable MEMKIT_TRACE_FRAMES, else 0}
   */
  stackTraceFrames?: number;
  /**
   * At process exit: say nothing, print the leaks, or print them and exit
   * non-zero (1 where the program would have exited 0; its own non-zero code
   * is kept, unless the system would read it as 0: it keeps 8 bits, so 256
   * becomes 1 too). In a Worker, "fail" only prints: the main thread's check
   * decides the process's exit code. The check covers the global
   * allocator's blocks and every other piece of native memory memkit still
   * holds (arrays, allocators on the default backing, SystemAllocator blocks,
   * page mappings), by owner; not the freed blocks a DebugAllocator holds back
   * by design (neverUnmap, retainMetadata). It runs on every way out: a
   * return (after the program's own exit listeners), `process.exit()` (also
   * from inside an exit listener), `Deno.exit()`, an uncaught error the
   * program does not handle.
   * @default {"warn"}
   */
  leakCheckAtExit?: "off" | "warn" | "fail";
}

/**
 * The counters of {@linkcode getMemStats}.
 *
 * @example
 * ```ts
 * import { getMemStats, type MemStats } from "@memkit/memkit";
 *
 * const stats: MemStats = getMemStats();
 * console.log(`${stats.currentBytes} bytes in ${stats.currentAllocations} blocks`);
 * ```
 */
export interface MemStats {
  /** Blocks allocated and not freed. */
  currentAllocations: number;
  /** Bytes in those blocks. */
  currentBytes: number;
  /** Highest `currentBytes` seen. */
  peakBytes: number;
  /** Blocks ever allocated. */
  totalAllocations: number;
  /** Blocks ever freed. */
  totalFrees: number;
}

const ConfigSchema = z.object({
  enableLeakDetection: z.boolean().optional(),
  enableTracking: z.boolean().optional(),
  enableSafety: z.boolean().optional(),
  neverUnmap: z.boolean().optional(),
  retainMetadata: z.boolean().optional(),
  // The range first: zod's int() also refuses integers past 2^53, and its message would not name the limit.
  stackTraceFrames: z.number().min(0, "must be at least 0").max(100, "must be at most 100").int("must be an integer")
    .optional(),
  leakCheckAtExit: z.enum(["off", "warn", "fail"]).optional(),
}).strict();

interface GlobalState {
  readonly debug: DebugAllocator;
  readonly leakDetection: boolean;
  readonly tracking: boolean;
}

/** What the exit check does; it outlives `deinit()`, which ends the allocator but not the program. */
interface ExitCheck {
  readonly leakDetection: boolean;
  readonly atExit: "off" | "warn" | "fail";
  readonly frames: number;
}

let state: GlobalState | null = null;
let exitCheckConfig: ExitCheck | null = null;
let exitHookInstalled = false;
// The configuration a use after deinit() starts the next global allocator with.
let lastConfig: GlobalAllocatorConfig = {};

// Allocation sites from the start when the environment asks for them, so
// owners created before initAllocator() have theirs too.
const fromEnvironment = traceFramesFromEnvironment();
if (fromEnvironment > 0) census.frames = fromEnvironment;

function traceFramesFromEnvironment(): number {
  const value = readEnv(TRACE_FRAMES_VARIABLE);
  if (value === undefined || !/^\d{1,3}$/.test(value.trim())) return 0;
  return Math.min(100, Number(value.trim()));
}

/**
 * The leak check at exit: the global allocator's live blocks, then every
 * other owner of native memory memkit still holds (arrays, allocators on the
 * default backing, a program's own SystemAllocator blocks, page mappings),
 * grouped by owner. Under "fail", a clean exit becomes 1; a program's own
 * non-zero code is kept when the process would end with it (see endsClean).
 */
function exitCheck(code: number | null): void {
  const check = exitCheckConfig;
  if (check === null || !check.leakDetection || check.atExit === "off") return;
  let report: string | null;
  try {
    const global = state;
    report = exitReport(global?.debug ?? null, global?.leakDetection ?? false, check.frames);
  } catch (error) {
    // Built-ins the program replaced can break the report; the verdict stands without it.
    report = `memkit: the leak check at exit could not list the leaks (${describeError(error)})`;
  }
  if (report === null) return;
  const own = code ?? currentExitCode();
  const fail = check.atExit === "fail" && endsClean(own);
  const worker = workerLabel();
  const verdict = worker !== null
    ? workerVerdict(worker, check.atExit)
    : check.atExit === "fail"
    ? (fail
      ? `leaks at exit; exit code set to 1 (leakCheckAtExit: "fail"${
        own !== 0 ? `; the program's own code ${own} would have ended the process with status 0` : ""
      })`
      : "leaks at exit; the program's own exit code is kept")
    : 'leaks at exit; the exit code is unchanged (leakCheckAtExit: "warn")';
  try {
    printError(`${report}\nmemkit: ${verdict}.`);
  } catch {
    // Nowhere to print: the exit code still says it.
  }
  if (fail) setExitCode(1);
}

/**
 * Whether a process that ends with `code` reports success: the system keeps
 * the low 8 bits of an exit code, so 256 (or -256) ends it with status 0 too.
 */
function endsClean(code: number): boolean {
  return (code & 0xff) === 0;
}

// A Worker's verdict. Its exit code is its own, never the process's: only the main thread's check, when it has
// one, reports what Workers still hold and sets the process's exit code.
function workerVerdict(worker: string, atExit: "warn" | "fail"): string {
  return `leaks at exit in ${worker}; a Worker cannot set the process's exit code` +
    (atExit === "fail" ? ' ("fail" in a Worker only prints)' : "") +
    ": the main thread's leak check reports what this Worker still holds and decides it, when the main thread " +
    'has one (initAllocator() or a use of the global allocator there, leakCheckAtExit not "off"); without one, ' +
    "nothing more is reported and the exit code stays as it is";
}

/**
 * Sets up the global allocator (replacing an earlier one, whose leaks are
 * then reported like at exit). Optional: the first use initialises it with
 * the defaults. Allocation sites in reports: `stackTraceFrames`, or the
 * environment variable `MEMKIT_TRACE_FRAMES` when the option is not given.
 *
 * @param config What to track and check, and what to do at exit.
 * @throws {TypeError} For mistyped options.
 */
export function initAllocator(config?: GlobalAllocatorConfig): void {
  if (config === undefined) config = {};
  const parsed = parseOptions(ConfigSchema, config, "initialise the global allocator");
  if (state !== null) deinit();
  lastConfig = { ...parsed };
  const frames = parsed.stackTraceFrames ?? fromEnvironment;
  census.frames = frames;
  state = {
    debug: new DebugAllocator(undefined, {
      safety: parsed.enableSafety ?? true,
      stackTraceFrames: frames,
      neverUnmap: parsed.neverUnmap ?? false,
      retainMetadata: parsed.retainMetadata ?? false,
    }),
    leakDetection: parsed.enableLeakDetection ?? true,
    tracking: parsed.enableTracking ?? true,
  };
  exitCheckConfig = {
    leakDetection: parsed.enableLeakDetection ?? true,
    atExit: parsed.leakCheckAtExit ?? "warn",
    frames,
  };
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    onProcessExit(exitCheck); // once per process: later calls change only the configuration above
  }
}

function current(): GlobalState {
  if (state === null) initAllocator(lastConfig);
  return state!;
}

/**
 * The global allocator (a {@linkcode DebugAllocator}).
 *
 * @example
 * ```ts
 * import { getAllocator } from "@memkit/memkit";
 *
 * const allocator = getAllocator();
 * const block = allocator.alloc(32);
 * allocator.free(block);
 * ```
 */
export function getAllocator(): Allocator {
  return current().debug;
}

/**
 * The global allocator's counters (zeros when tracking is off).
 *
 * @example
 * ```ts
 * import { getAllocator, getMemStats } from "@memkit/memkit";
 *
 * const before = getMemStats().currentBytes;
 * const block = getAllocator().alloc(100);
 * console.log(getMemStats().currentBytes - before); // 100
 * getAllocator().free(block);
 * ```
 */
export function getMemStats(): MemStats {
  const global = current();
  if (!global.tracking) {
    return { currentAllocations: 0, currentBytes: 0, peakBytes: 0, totalAllocations: 0, totalFrees: 0 };
  }
  const stats = global.debug.stats();
  return {
    currentAllocations: stats.liveAllocations,
    currentBytes: stats.allocatedBytes,
    peakBytes: stats.peakBytes,
    totalAllocations: stats.totalAllocations,
    totalFrees: stats.totalFrees,
  };
}

/**
 * Whether the global allocator has blocks still allocated (false when leak
 * detection is off).
 *
 * @example
 * ```ts
 * import { checkForLeaks } from "@memkit/memkit";
 *
 * if (checkForLeaks()) console.error("native memory still allocated");
 * ```
 */
export function checkForLeaks(): boolean {
  const global = current();
  return global.leakDetection && global.debug.leaks().length > 0;
}

/**
 * Prints the counters, and the leak report when there are leaks.
 *
 * @example
 * ```ts
 * import { printMemStats } from "@memkit/memkit";
 *
 * printMemStats();
 * ```
 */
export function printMemStats(): void {
  const s = getMemStats();
  console.log(
    `memkit: ${s.currentAllocations} blocks, ${s.currentBytes} bytes live (peak ${s.peakBytes}); ` +
      `${s.totalAllocations} allocations, ${s.totalFrees} frees`,
  );
  if (checkForLeaks()) console.log(current().debug.report());
}

/**
 * Ends the global allocator: reports its leaks (as at exit), returns all its
 * memory. The exit check stays armed for the rest of the program's native
 * memory. The next use starts a fresh global allocator with the same
 * configuration.
 *
 * @example
 * ```ts
 * import { deinit, getAllocator } from "@memkit/memkit";
 *
 * getAllocator().free(getAllocator().alloc(8));
 * deinit();
 * ```
 */
export function deinit(): void {
  if (state === null) return;
  const global = state;
  if (exitCheckConfig !== null && exitCheckConfig.atExit !== "off" && checkForLeaks()) {
    printError(`memkit: deinit() ended the global allocator while it still held blocks:\n${global.debug.report()}`);
    if (exitCheckConfig.atExit === "fail" && endsClean(currentExitCode())) setExitCode(1);
  }
  global.debug.deinit();
  state = null;
}

/**
 * C-style allocation: the address of `size` fresh bytes (0 for size 0).
 * Reach the bytes with a view from {@linkcode getAllocator} or FFI; free them
 * with {@linkcode cFree}.
 *
 * @example
 * ```ts
 * import { cFree, malloc } from "@memkit/memkit";
 *
 * const address = malloc(64);
 * cFree(address, 64);
 * ```
 */
export function malloc(size: number): number {
  checkSize(size, "malloc");
  const address = cMalloc(current().debug, size, malloc, 1);
  // Never true; a call in tail position would lose this frame in JavaScriptCore (see _traces.ts).
  if (address < 0) throw new RangeError(`malloc returned ${address}`);
  return address;
}

/**
 * C-style reallocation: moves the block to `newSize` bytes, keeping its
 * contents, and returns the new address.
 * @throws {AllocationError} "invalid-free" for an unknown address or a wrong `oldSize`; "double-free".
 *
 * @example
 * ```ts
 * import { cFree, cRealloc, malloc } from "@memkit/memkit";
 *
 * let address = malloc(16);
 * address = cRealloc(address, 16, 64);
 * cFree(address, 64);
 * ```
 */
export function cRealloc(address: number, oldSize: number, newSize: number): number {
  checkAddress(address, "realloc");
  checkSize(oldSize, "realloc", "oldSize");
  checkSize(newSize, "realloc", "newSize");
  const moved = cReallocIn(current().debug, address, oldSize, newSize, cRealloc, 1);
  // Never true; a call in tail position would lose this frame in JavaScriptCore (see _traces.ts).
  if (moved < 0) throw new RangeError(`realloc returned ${moved}`);
  return moved;
}

/**
 * C-style free: the size must be the one the block was allocated with.
 * @throws {AllocationError} "invalid-free" for an unknown address or a wrong size; "double-free"; "corruption" when a canary was overwritten.
 *
 * @example
 * ```ts
 * import { cFree, malloc } from "@memkit/memkit";
 *
 * cFree(malloc(100), 100);
 * ```
 */
export function cFree(address: number, size: number): void {
  checkAddress(address, "free");
  checkSize(size, "free");
  cFreeIn(current().debug, address, size, cFree, 1);
}

function checkAddress(address: unknown, op: string): void {
  if (typeof address !== "number") {
    throw new TypeError(`Cannot ${op} as 'address' must be a number: current value is ${describe(address)}`);
  }
  if (!Number.isSafeInteger(address) || address < 0) {
    throw new RangeError(
      `Cannot ${op} as 'address' must be a non-negative integer: current value is ${describe(address)}`,
    );
  }
}
