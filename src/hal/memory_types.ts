/**
 * The vocabulary of the HAL memory interface (a game engine's hardware layer): memory
 * types, flags, alignments, requests, allocations and statistics.
 *
 * @module
 */
import type { AllocatorKind } from "../base/allocator.ts";
import type { MemoryStatus } from "../pressure/memory_status.ts";
import type { PressureLevelValue } from "../pressure/pressure_level.ts";
import type { PressureMonitor } from "../pressure/pressure_monitor.ts";

/**
 * What memory is for; each type has its own backing:
 *
 * | type        | backing                                                        | default alignment |
 * | ----------- | -------------------------------------------------------------- | ----------------- |
 * | `system`    | a `SystemAllocator` (malloc / mmap per block)                  | 16                |
 * | `video`     | a `FreeListAllocator` heap, every block 256-byte aligned       | 256               |
 * | `audio`     | pages locked in RAM (`mlock`) from a `LockedPageAllocator`      | page              |
 * | `network`   | a pool of MTU-sized (1536 B), cache-line-aligned packet blocks | 64                |
 * | `shared`    | a named shared mapping other Workers and processes can open    | page              |
 * | `temporary` | an `Arena`, released at `endFrame()`                            | 16                |
 * | `stack`     | a `StackAllocator` (free in LIFO order)                         | 16                |
 * | `pool`      | size-class `PoolAllocator`s, 16 B to 4 KiB                      | the class size    |
 *
 * @example
 * ```ts
 * import { MemoryInterface, type MemoryType } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const type: MemoryType = "video";
 * const texture = memory.allocateTyped(4096, type);
 * assert.equal(texture.address % 256, 0);
 * memory.deallocate(texture);
 * ```
 */
export type MemoryType = "system" | "video" | "audio" | "network" | "shared" | "temporary" | "stack" | "pool";

/**
 * Properties asked of an allocation:
 * - `zero`: the bytes read as zero;
 * - `cacheable`: the block starts on a cache line (64 B) and has whole cache lines to itself, so it shares none
 *   with another allocation (no false sharing);
 * - `dma-capable`: pages locked in RAM (`mlock`), as for the `audio` type;
 * - `temporary`: served by the temporary arena (released at `endFrame()`);
 * - `secret`: its own locked mapping, fenced by guard pages, kept out of core dumps and wiped on free.
 *
 * @example
 * ```ts
 * import { MemoryInterface, type MemoryFlag } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const flags: MemoryFlag[] = ["zero", "cacheable"];
 * const block = memory.allocateTyped(100, "pool", undefined, flags);
 * assert.equal(block.address % 64, 0);
 * assert.ok(block.bytes.every((b) => b === 0));
 * memory.deallocate(block);
 * ```
 */
export type MemoryFlag = "zero" | "cacheable" | "dma-capable" | "temporary" | "secret";

/**
 * Named alignments, in bytes: the usual table, with a 64-byte cache line.
 *
 * @example
 * ```ts
 * import { MemoryAlignment, MemoryInterface } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const block = memory.allocate(1024, MemoryAlignment.Cache);
 * assert.equal(block.address % 64, 0);
 * memory.deallocate(block);
 * ```
 */
export const MemoryAlignment = { None: 1, Word: 4, SIMD: 16, Cache: 64, GPU: 256, Page: 4096 } as const;

/**
 * A full allocation request for {@linkcode MemoryInterface.allocate} and
 * {@linkcode MemoryInterface.allocateAsync}.
 *
 * @example
 * ```ts
 * import { type AllocationRequest, MemoryInterface } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const request: AllocationRequest = { size: 200, type: "system", preferredAllocator: "pool", allowFallback: true };
 * const block = memory.allocate(request);
 * assert.equal(block.allocator, "pool");
 * memory.deallocate(block);
 * ```
 */
export interface AllocationRequest {
  /** Bytes, an integer from 1 to 2^47. */
  size: number;
  /** What the memory is for. @default {"system"} */
  type?: MemoryType;
  /** A power of two up to the page size; raised to the type's own alignment. @default {the type's} */
  alignment?: number;
  /** Properties asked of the block; each at most once. @default {[]} */
  flags?: MemoryFlag[];
  /**
   * The allocator to try first. The `system` type takes any of
   * {@linkcode MemoryInterface.availableAllocators}; other types only their own.
   */
  preferredAllocator?: AllocatorKind;
  /**
   * How long {@linkcode MemoryInterface.allocateAsync} waits for headroom, in
   * ms, of any length (above setTimeout's 2^31-1 ms too; `Infinity`: no
   * limit). `allocate` cannot wait: only 0 is allowed there.
   * @default {0}
   */
  timeoutMs?: number;
  /**
   * When the preferred allocator cannot serve the request (no room, a budget
   * reached, a size it never serves), try the type's own allocator, then the
   * `system` type. @default {false}
   *
   * The allocation's `type` and `allocator` say which served it. A
   * `temporary` request that falls back is served by the system type's
   * long-lived allocator: `endFrame()` does NOT release it (its views stay
   * readable and it stays counted); give it back with `deallocate`.
   *
   * A refusal of the kernel is not a lack of room and is never fallen back
   * from: `audio` memory (or `dma-capable`) that cannot be locked in RAM
   * under RLIMIT_MEMLOCK throws AllocationError("platform") rather than
   * handing out pages that may be swapped (being locked is the point).
   */
  allowFallback?: boolean;
  /**
   * For the `shared` type: the name other processes open it by. A name given
   * here is unlinked by `deallocate` and `dispose()` only; one that other
   * shared memory has is refused (AllocationError "platform", errno EEXIST).
   * @default {a unique name}
   *
   * A name made up here never outlives the process: it is unlinked at
   * `deallocate`, at `dispose()` or, at the latest, when the process exits (a
   * normal end, `exit()`, an uncaught error; not SIGKILL or another fatal
   * signal), whichever thread's interface made it: also a Worker that is
   * terminated (`worker.terminate()`) or that still runs when the process
   * exits, where no JavaScript runs any more (libmemkit's exit handler, run
   * by the C library at the process's exit, unlinks it; it keeps up to 4096
   * live names per process). A Worker that ends
   * itself with `process.exit()` (Deno and Bun) or `self.close()` (Bun)
   * unlinks its names then, not only at the process's exit.
   *
   * That handler needs libmemkit loaded in the thread that made the name
   * (`nativeInfo().library` not null; the very first run compiles it in the
   * background: `await nativeReady()` waits for it). Without it
   * (`MEMKIT_NATIVE=0`, no C compiler, `MEMKIT_LIB` naming no usable library)
   * only the main thread's names and those of a Worker that ends itself as
   * above are unlinked; a Worker's other names stay in `/dev/shm` until a
   * reboot or `rm`: there, dispose the Worker's interface (or deallocate its
   * shared allocations) before it goes.
   */
  name?: string;
}

/**
 * A block from a {@linkcode MemoryInterface}: its bytes, where it is, and
 * which type and allocator served it (after fallback, not necessarily the
 * ones asked for).
 *
 * @example
 * ```ts
 * import { MemoryInterface, type MemoryAllocation } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const packet: MemoryAllocation = memory.allocateTyped(1500, "network");
 * assert.deepEqual([packet.type, packet.allocator, packet.size, packet.alignment], ["network", "pool", 1500, 64]);
 * memory.deallocate(packet);
 * ```
 */
export interface MemoryAllocation {
  /** The block (exactly `size` bytes). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The address of its first byte. */
  readonly address: number;
  /** Bytes asked for. */
  readonly size: number;
  /** The alignment its address is guaranteed to have. */
  readonly alignment: number;
  /** The memory type that served it. */
  readonly type: MemoryType;
  /** The kind of allocator that served it. */
  readonly allocator: AllocatorKind;
  /** The flags it was allocated with. */
  readonly flags: readonly MemoryFlag[];
  /** For the `shared` type: the name another Worker or process opens it by (`openSharedMemory(name)`). */
  readonly name?: string;
}

/**
 * Statistics of one memory type or of the whole interface, from
 * {@linkcode MemoryInterface.getMemoryStats}: a frozen object (the cached
 * one, returned again while nothing changed), so assigning to a field throws
 * a TypeError; copy it (`{ ...stats }`) to keep a figure of your own.
 *
 * @example
 * ```ts
 * import { MemoryInterface, type MemoryStats } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ budgets: { pool: 1 << 20 }, pressure: false });
 * const block = memory.allocateTyped(64, "pool");
 * const stats: MemoryStats = memory.getMemoryStats("pool");
 * assert.deepEqual([stats.totalBytes, stats.usedBytes, stats.allocationCount], [1 << 20, 64, 1]);
 * memory.deallocate(block);
 * ```
 */
export interface MemoryStats {
  /**
   * The budget of the type, or the memory the process may use (cgroup limit or physical memory; `Infinity`
   * when unknown, see {@linkcode PlatformMemory.totalBytes}). The stack's is at most what its one chunk holds
   * (at least a page, even where the process may use less).
   */
  readonly totalBytes: number;
  /** Bytes in live allocations, as asked for. */
  readonly usedBytes: number;
  /** `totalBytes - usedBytes - unreclaimedBytes`, at least 0 (`Infinity` when `totalBytes` is). */
  readonly freeBytes: number;
  /**
   * Bytes of allocations already deallocated that the memory still holds, so the budget still counts them:
   * blocks of the temporary arena given back out of order (only its most recent block goes back at once).
   * They come back when their frame ends, and outside frames as soon as no temporary allocation of the
   * interface is live (see {@linkcode MemoryInterface.deallocate}). 0 for the types no arena serves.
   */
  readonly unreclaimedBytes: number;
  /** Highest `usedBytes` seen. */
  readonly peakUsedBytes: number;
  /** Live allocations. */
  readonly allocationCount: number;
  /** 0..1: how scattered the free space of the serving allocators is (capacity-weighted). */
  readonly fragmentation: number;
  /**
   * The largest single allocation the type could get now (budget and
   * allocator limits; for `audio`, also the bytes RLIMIT_MEMLOCK still lets
   * the process lock, in whole pages).
   */
  readonly largestFreeBlock: number;
  /** 0..1: bytes in live blocks of the serving allocators over the bytes they hold (1 when they hold none). */
  readonly allocationEfficiency: number;
}

/**
 * What a pressure callback is told, besides the level.
 *
 * @example
 * ```ts
 * import { MemoryInterface, type MemoryPressureInfo, PressureLevel } from "@memkit/memkit";
 *
 * using memory = new MemoryInterface();
 * const id = memory.registerPressureCallback(PressureLevel.High, (_level, info: MemoryPressureInfo) => {
 *   console.log(`${info.availableBytes} bytes left, pressure ${(info.pressureRatio * 100).toFixed(0)} %`);
 * });
 * memory.unregisterPressureCallback(id);
 * ```
 */
export interface MemoryPressureInfo {
  /** Bytes still available to the process (the tighter of the machine and its cgroup). */
  availableBytes: number;
  /** The memory the process may use: its cgroup limit, or physical memory. */
  totalBytes: number;
  /** 0..1: `1 - availableBytes / totalBytes`. */
  pressureRatio: number;
  /** Bytes in this interface's live allocations. */
  interfaceBytes: number;
  /** The reading the level came from. */
  status: MemoryStatus;
}

/**
 * A pressure callback: the level reached, and the figures behind it.
 *
 * @example
 * ```ts
 * import { MemoryInterface, type MemoryPressureCallback, PressureLevel } from "@memkit/memkit";
 *
 * const shed: MemoryPressureCallback = (level, info) => console.log(level, info.availableBytes);
 * using memory = new MemoryInterface();
 * memory.unregisterPressureCallback(memory.registerPressureCallback(PressureLevel.Medium, shed));
 * ```
 */
export type MemoryPressureCallback = (level: PressureLevelValue, info: MemoryPressureInfo) => void;

/**
 * The memory band of the platform, picked from the memory the process may
 * use (see {@linkcode MemoryInterface.platform}); frozen, thresholds included.
 *
 * @example
 * ```ts
 * import { MemoryInterface, type PlatformMemory } from "@memkit/memkit";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const platform: PlatformMemory = memory.platform;
 * console.log(platform.band, platform.totalBytes, platform.thresholds.high);
 * ```
 */
export interface PlatformMemory {
  /** `"constrained"` (at most 32 MiB), `"moderate"` (at most 128 MiB) or `"relaxed"` (more, or unknown). */
  readonly band: "constrained" | "moderate" | "relaxed";
  /**
   * The memory the process may use: the cgroup limit, else physical memory;
   * `Infinity` when no memory status can be read (Deno without `-A` cannot read
   * /proc): no known total.
   */
  readonly totalBytes: number;
  /** The pressure thresholds of the band (available fractions; see `PressureThresholds`). */
  readonly thresholds: {
    readonly low: number;
    readonly medium: number;
    readonly high: number;
    readonly critical: number;
  };
}

/**
 * Options of {@linkcode MemoryInterface}.
 *
 * @example
 * ```ts
 * import { MemoryInterface, type MemoryInterfaceOptions } from "@memkit/memkit";
 *
 * const options: MemoryInterfaceOptions = { budgets: { pool: 8 << 20, temporary: 4 << 20 }, pressure: false };
 * using memory = new MemoryInterface(options);
 * ```
 */
export interface MemoryInterfaceOptions {
  /**
   * Most bytes each type may hold in live allocations (beyond it: "limit-exceeded", or
   * a wait in `allocateAsync`). `stack` also sizes the stack: one chunk that never
   * grows, made on first use, as large as the budget but never more than the
   * memory the process may use (`platform.totalBytes`) nor than one ArrayBuffer
   * holds (`nativeInfo().maxViewBytes`, 4 GiB in Bun). It reserves address
   * space, not memory (pages count once touched); a system that refuses even that
   * (an address-space or strict overcommit limit) makes the first stack request
   * throw "out-of-memory" naming `budgets.stack`. @default {no budget; a 1 MiB stack}
   */
  budgets?: Partial<Record<MemoryType, number>>;
  /**
   * The monitor whose level drives pressure callbacks and holds back
   * `allocateAsync` at High and above; `false` for none. @default {a monitor of
   * its own, with the platform band's thresholds, stopped by `dispose()`}
   *
   * A monitor passed here that is not running is started (with its own
   * thresholds and interval), and `dispose()` stops it once no other live
   * interface that started it uses it; a monitor you started yourself is left
   * running: you stop it. (Its `psiTrigger` wait, if asked for, keeps the
   * process alive while it runs.)
   */
  pressure?: PressureMonitor | false;
}
