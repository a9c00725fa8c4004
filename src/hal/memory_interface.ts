/**
 * The HAL memory interface (a game engine's hardware layer): typed memory with real
 * backings, requests with fallback and timeouts, per-type budgets and
 * statistics, pressure callbacks, allocator access, defragmentation and
 * pointer validation.
 *
 * @module
 */
import { native, requestGC } from "../../ffi/native.ts";
import { type Arena, carveBlock, carvedSerial } from "../alloc/arena.ts";
import type { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import type { DefragReport } from "../alloc/free_list_types.ts";
import { type PoolAllocator, takeBlock, takenSlot } from "../alloc/pool_allocator.ts";
import { isArrayOrRevoked, lengthOf, MAX_BLOCK_SIZE, refuseArguments } from "../base/_validate.ts";
import type { AllocatorKind } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import { Allocation, FRAMED_TYPES, Origin } from "./_allocation.ts";
import { Books } from "./_books.ts";
import { AllocationIndex } from "./_allocation_index.ts";
import { B_HEAP, BACKING_OF_KIND, Backings, stackSize } from "./_backings.ts";
import { defragmentHeap, typeSources } from "./_interface_parts.ts";
import { addressOfTarget, findAllocation, registerIndex } from "./_lookup.ts";
import { Counters, StatsCache } from "./_memory_stats.ts";
import { PressureLink } from "./_pressure_link.ts";
import {
  checkFields,
  checkKind,
  checkRequest,
  isKnownField,
  KINDS,
  NO_FLAGS,
  readRequest,
  type Request,
  requestObject,
  T_POOL,
  T_STACK,
  T_TEMPORARY,
  typeIndexOf,
  TYPES,
  unknownFieldError,
  unreadable,
} from "./_request.ts";
import { mayFit, serve } from "./_serve.ts";
import { allocateLater } from "./_allocate_later.ts";
import { parseInterfaceOptions } from "./_interface_options.ts";
import { LARGEST_CLASS } from "./_size_class_pools.ts";
import { guardAllocator, type OwnedMemory } from "./_owned_allocators.ts";
import type {
  InterfaceAllocator,
  InterfaceArena,
  InterfaceBuddyAllocator,
  InterfaceFreeListAllocator,
  InterfaceStackAllocator,
  InterfaceSystemAllocator,
} from "./interface_allocators.ts";
import { WaitQueue } from "./_wait_queue.ts";
import { releasingFor } from "../alloc/_lease.ts";
import type {
  AllocationRequest,
  MemoryAllocation,
  MemoryFlag,
  MemoryInterfaceOptions,
  MemoryPressureCallback,
  MemoryStats,
  MemoryType,
  PlatformMemory,
} from "./memory_types.ts";
import { byteCount, describeValue } from "./_words.ts";

const MiB = 1 << 20;
const OVERALL = TYPES.length;
/** The largest temporary block the fast path tries: above one view's limit only serve() answers (it refuses). */
const MAX_FAST_TEMPORARY = Math.min(MAX_BLOCK_SIZE, native.maxViewBytes);
/** What holders of a frame's memory hear when the scope `frame()` returned ends. */
const FRAME_SCOPE_ENDED = "the end of a MemoryInterface.frame() scope released it";

/**
 * One memory interface for a program, from a 16 MiB console to a desktop:
 * memory by type, each type with a real backing of its own (see
 * {@linkcode MemoryType}), flags ({@linkcode MemoryFlag}), budgets per type,
 * statistics, pressure callbacks and pointer validation.
 *
 * - `allocate(request)` tries the preferred allocator, then, with
 *   `allowFallback`, the type's own and the system type; the allocation
 *   records which `type` and `allocator` served it.
 * - `allocateAsync(request)` waits up to `timeoutMs` for headroom under the
 *   type's budget (woken by deallocations and `endFrame()`), and holds a
 *   request that may wait back while pressure is High or Critical ("defer
 *   non-critical allocations"; woken when the level falls); then it fails
 *   with `AllocationError("timeout")`. With `timeoutMs` 0 (the default) it
 *   answers as `allocate` does, at once.
 * - Temporary memory lives until `endFrame()` (or the end of a `frame()` scope),
 *   which releases it all at once; its views then read as length 0. A
 *   temporary block deallocated out of order (not the arena's most recent)
 *   stays taken by the arena and counts against the temporary budget, as
 *   `unreclaimedBytes` in its stats, until its frame ends; outside frames,
 *   until no temporary allocation of the interface is live, when the
 *   interface gives the arena's memory back at once (see `deallocate`). So
 *   a program without frames stays within its budget too.
 * - Waiting requests are served in the order they came among those that may
 *   use the same memory type (see `allocateAsync`).
 * - `deallocate` takes the allocation, its own `bytes` or its address (a
 *   view kept from a deallocated block never frees the block now there).
 * - `getMemoryStats(type?)` is cached: a call that finds nothing changed
 *   costs well under a microsecond.
 *
 * Allocators from `getAllocator(kind)` are the interface's own: blocks taken
 * from them directly are not counted in its statistics or budgets, and no
 * call on them releases memory a live allocation of the interface owns.
 * `dispose()` gives everything back (every view reads as length 0).
 *
 * @example The "Dreamcast" pattern: a sprite pool and a per-frame buffer in 16 MiB
 * ```ts
 * import { MemoryInterface } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ budgets: { pool: 12 << 20, temporary: 4 << 20 }, pressure: false });
 * const sprites = Array.from({ length: 1024 }, () => memory.allocateTyped(64, "pool"));
 * for (let frame = 0; frame < 3; frame++) {
 *   const scratch = memory.allocateTyped(256 << 10, "temporary"); // a linear per-frame buffer
 *   scratch.bytes.fill(frame);
 *   memory.endFrame(); // every temporary allocation of the frame goes at once
 *   assert.equal(scratch.bytes.length, 0);
 * }
 * assert.equal(memory.getMemoryStats("pool").usedBytes, 64 * 1024);
 * for (const sprite of sprites) memory.deallocate(sprite);
 * ```
 */
export class MemoryInterface implements Disposable {
  readonly #backings: Backings;
  readonly #counters = new Counters();
  readonly #books: Books;
  readonly #stats: StatsCache;
  readonly #index: AllocationIndex;
  readonly #pressure: PressureLink;
  readonly #waiters: WaitQueue;
  /** What the fast paths' allocations share: one origin per class pool, one for the arena (made on first use). */
  readonly #classOrigins: (Origin | undefined)[] = [];
  #arenaOrigin: Origin | null = null;
  #ended: string | null = null;
  /** Takes the index out of the other interfaces' lookups (at dispose). */
  readonly #unregisterIndex: () => void;
  /** What getAllocator returns, by kind (made on first call). */
  readonly #guards = new Map<AllocatorKind, InterfaceAllocator>();
  /** What those guards ask: which memory live allocations own (off the hot paths). */
  readonly #owned: OwnedMemory = {
    liveAt: (address) => {
      if (this.#counters.totalCount === 0) return undefined;
      const found = this.#index.find(address, false);
      return found !== undefined && Allocation.isLive(found) ? found : undefined;
    },
    liveIn: (from, since) =>
      this.#counters.totalCount === 0
        ? 0
        : this.#index.countLive((a) => Allocation.from(a) === from && Allocation.serial(a) >= since),
    frameDepth: () => this.#ended === null ? this.#backings.frameDepth : 0,
    changed: () => {
      this.#counters.changed();
      // A block of the caller's own that held the arena's released blocks back may have gone.
      if (this.#ended === null && this.#books.heldBlocks !== 0) this.#books.reclaim();
    },
    arenaReleased: (since) => {
      if (this.#ended !== null) return;
      for (const frame of this.#backings.allFrames()) this.#books.returned(frame, since);
    },
    arenaFreed: (view, kept) => {
      if (this.#ended === null) this.#books.ownFreed(view, kept);
    },
    untracked: () => {
      this.#stats.untracked = true;
      this.#counters.changed();
    },
    epoch: () => {
      this.#arenaOrigin = null;
      return Origin.next;
    },
  };

  /**
   * Creates an interface; its allocators are made on first use.
   *
   * @param options Budgets per type and the pressure monitor.
   * @throws {TypeError} For options of the wrong type or unknown keys (or types).
   * @throws {RangeError} For a budget that is not an integer from 0 to 2^47.
   */
  constructor(options?: MemoryInterfaceOptions) {
    const parsed = parseInterfaceOptions(options);
    const budgets = (parsed.budgets ?? {}) as Partial<Record<MemoryType, number>>;
    for (const [type, bytes] of Object.entries(budgets)) {
      if (bytes !== undefined) this.#counters.budget(this.#counters.types[typeIndexOf(type)], bytes);
    }
    this.#pressure = new PressureLink(parsed.pressure); // first: the platform's memory caps the stack's size
    const stack = stackSize(budgets.stack, this.#pressure.platform.totalBytes);
    this.#backings = new Backings({
      stackBytes: stack.bytes,
      stackCap: stack.cap,
      temporaryBytes: Math.max(4096, Math.min(MiB, budgets.temporary ?? MiB)),
      buddyBytes: 16 * MiB,
    });
    this.#index = new AllocationIndex(() => this.#counters.totalCount);
    this.#unregisterIndex = registerIndex(this.#index);
    this.#waiters = new WaitQueue(
      () => this.#pressure.level >= PressureLevel.High,
      (count) => this.#books.waitersCounted(count), // no waiter before #books is made: called later only
    );
    this.#books = new Books(this.#counters, this.#index, this.#waiters, this.#backings);
    this.#stats = new StatsCache(this.#counters, (t) => typeSources(this.#backings, t));
  }

  /** The platform band and the memory the process may use (from its cgroup limit, else physical memory). */
  get platform(): PlatformMemory {
    return this.#pressure.platform;
  }

  /**
   * Allocates `size` bytes of system memory at `alignment` (default 16).
   *
   * @throws {TypeError} For arguments of the wrong type.
   * @throws {RangeError} For a size or alignment out of range.
   * @throws {AllocationError} "limit-exceeded" (the system budget), "out-of-memory", "unsupported" for a size
   *   above what one ArrayBuffer holds in this runtime (`nativeInfo().maxViewBytes`: 4 GiB in Bun; an
   *   allocation is one view), "use-after-free" after `dispose()`.
   */
  allocate(size: number, alignment?: number): MemoryAllocation;
  /**
   * Serves a full {@linkcode AllocationRequest}. It never waits: `timeoutMs`
   * may only be 0 here (use {@linkcode MemoryInterface.allocateAsync} to wait).
   *
   * @throws {TypeError} For fields of the wrong type, unknown types, flags or fields, a combination that
   *   does not go together (`secret` with `shared`, ...), or a `timeoutMs` above 0.
   * @throws {RangeError} For a size or alignment out of range, or a size no candidate can ever serve.
   * @throws {AllocationError} "limit-exceeded" (a budget), "out-of-memory" (also the kernel's ENOMEM for
   *   locked, secret or shared memory), "platform" (e.g. the kernel refusing to lock pages under
   *   RLIMIT_MEMLOCK, or a `name` that other shared memory has), "unsupported" (`preferredAllocator:
   *   "debug"`, or a size above what one ArrayBuffer holds in this runtime: `nativeInfo().maxViewBytes`, 4 GiB
   *   in Bun; refused before anything is mapped), "use-after-free" after `dispose()`. Each refusal says the
   *   type, the size and what would serve it; the kernel's own error is its `cause`. A refused request
   *   changes nothing: no allocator made for it stays, and every statistic reads as before.
   */
  allocate(request: AllocationRequest): MemoryAllocation;
  allocate(sizeOrRequest: number | AllocationRequest, alignment?: number): MemoryAllocation {
    // Kept small, so the engine can inline it and a block path into the caller: a request object's fields are
    // read once, as readRequest reads them (a getter runs once, before anything changes), and a plain request
    // for a pool block or temporary memory is served here; everything else in #allocateRead.
    if (
      typeof sizeOrRequest !== "object" || sizeOrRequest === null || alignment !== undefined ||
      isArrayOrRevoked(sizeOrRequest) // an array, or a revoked Proxy (Array.isArray throws for one): refused there
    ) return this.#allocateOther(sizeOrRequest, alignment);
    const r = sizeOrRequest as unknown as Record<string, unknown>;
    let size, type, align, flags, preferred, timeoutMs, allowFallback, name;
    try {
      size = r.size, type = r.type, align = r.alignment, flags = r.flags, preferred = r.preferredAllocator;
      timeoutMs = r.timeoutMs, allowFallback = r.allowFallback, name = r.name;
      for (const key in r) if (!isKnownField(key)) throw unknownFieldError(key, "allocate");
    } catch (error) {
      throw unreadable(error, r, "request", "allocate"); // a Proxy its own trap revoked: in the library's words
    }
    if (
      typeof size === "number" && align === undefined && flags === undefined && preferred === undefined &&
      (timeoutMs === undefined || timeoutMs === 0) && (allowFallback === undefined || allowFallback === false) &&
      name === undefined
    ) {
      const a = type === "pool" ? this.#poolBlock(size) : type === "temporary" ? this.#temporaryBlock(size) : null;
      if (a !== null) return a;
    }
    return this.#allocateRead(size, type, align, flags, preferred, timeoutMs, allowFallback, name);
  }

  // allocate(size, alignment?), and the refusals of a request that is no object or has an alignment beside it.
  #allocateOther(sizeOrRequest: unknown, alignment: unknown): MemoryAllocation {
    if (typeof sizeOrRequest === "number") {
      return this.#served(checkRequest(sizeOrRequest, undefined, alignment, undefined, undefined, "allocate"));
    }
    requestObject(sizeOrRequest, "allocate"); // throws for anything but a request object
    throw new TypeError(
      `Cannot allocate as 'alignment' goes in the request, not beside it: current value is ${describeValue(alignment)}`,
    );
  }

  // A request's fields, read once and every key known: checked and served.
  #allocateRead(
    size: unknown,
    type: unknown,
    align: unknown,
    flags: unknown,
    preferred: unknown,
    timeoutMs: unknown,
    allowFallback: unknown,
    name: unknown,
  ): MemoryAllocation {
    const req = checkFields(size, type, align, flags, preferred, timeoutMs, allowFallback, name, "allocate");
    if (req.timeoutMs > 0) {
      throw new TypeError(
        `Cannot allocate with 'timeoutMs' ${req.timeoutMs} as allocate() never waits: use allocateAsync(request)`,
      );
    }
    return this.#served(req);
  }

  /**
   * Serves `request`, waiting up to its `timeoutMs` for headroom when it
   * cannot be served now: for room under the type's budget or in its
   * allocator (a deallocation or `endFrame()` wakes it), and, while the
   * pressure level is High or Critical, for the level to fall ("defer
   * non-critical allocations").
   *
   * What it settles with, case by case:
   * - `timeoutMs` 0 (the default: no wait): exactly what `allocate(request)`
   *   does, as a promise: the allocation if it can be served now, whatever
   *   the pressure level (pressure defers only a request that may wait),
   *   else allocate's error at once ("limit-exceeded" for a full budget,
   *   "out-of-memory" for an allocator without room, ...).
   * - `timeoutMs` above 0, the request can be served now and pressure is
   *   below High: the allocation, at once.
   * - A full budget or an allocator without room, or pressure at High or
   *   above: it waits; when the time is up, AllocationError("timeout"), whose
   *   message and `cause` say what held it back (the budget's
   *   "limit-exceeded", the allocator's "out-of-memory", or the pressure level).
   *   The kernel refusing locked, secret or shared memory for want of memory
   *   (ENOMEM) waits the same way. A refusal to lock pages under
   *   RLIMIT_MEMLOCK ("platform") waits too when the block fits under the
   *   limit (locked pages this process gives back make room for it; as for
   *   every wait, this interface's deallocations wake it), and fails at once
   *   when the block is larger than the whole limit: only raising the limit
   *   serves it.
   * - A request no wait can serve (larger than the whole budget of every type
   *   it may come from): allocate's "limit-exceeded" at once, whatever the
   *   timeout; larger than every candidate allocator serves: a RangeError at
   *   once (under High pressure it is held back before it is tried, so these
   *   end in "timeout"); larger than one ArrayBuffer holds in this runtime
   *   (`nativeInfo().maxViewBytes`, 4 GiB in Bun): "unsupported" at once,
   *   whatever the pressure.
   * - Bad input: the TypeError / RangeError of `allocate`, as a rejection.
   * - `dispose()` while it waits, or a disposed interface: "use-after-free".
   *
   * Each refusal says what would serve it: raise `budgets.<type>`, pass
   * `allowFallback: true` (when other allocators could serve it), pass a
   * (longer) `timeoutMs`.
   *
   * Order: waiting requests that may be served from the same memory type are
   * served in the order they came. A request that cannot be served yet holds
   * back the later ones of its type, which are not tried until it is served
   * or leaves (its timeout, an error no wait cures, `dispose()`), and a new
   * request with a timeout queues behind them rather than overtake them (a
   * request no wait could ever serve still fails at once). So a stream of
   * small requests never starves a large one, at the cost of the small ones
   * waiting behind it. A request with `allowFallback` competes for every
   * type it may come from: it waits behind earlier waiters of any of them,
   * and holds back later waiters of all of them. Requests that share no type
   * do not wait for each other. `allocate()` (and `allocateAsync` with
   * `timeoutMs` 0) never waits: it takes the room it finds, waiters or not.
   *
   * What counts as room is what the type's budget really has: temporary
   * blocks deallocated out of order still count against it until the arena
   * gives them back (see {@linkcode MemoryInterface.deallocate}): such a
   * deallocation makes no room, the arena's release does (and wakes the
   * waiters).
   *
   * @returns The allocation; rejects as listed above.
   *
   * @example Waiting for a budget to have room
   * ```ts
   * import { AllocationError, MemoryInterface } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using memory = new MemoryInterface({ budgets: { pool: 4096 }, pressure: false });
   * const held = memory.allocateTyped(4096, "pool");
   * await assert.rejects(memory.allocateAsync({ size: 64, type: "pool" }), AllocationError); // no wait: full
   * const later = memory.allocateAsync({ size: 64, type: "pool", timeoutMs: 1000 });
   * memory.deallocate(held); // wakes the waiting request
   * memory.deallocate(await later);
   * ```
   */
  allocateAsync(request: AllocationRequest): Promise<MemoryAllocation> {
    let req: Request;
    try {
      req = readRequest(request, "allocate");
      this.#usable("allocate");
    } catch (error) {
      return Promise.reject(error);
    }
    return allocateLater(req, {
      usable: () => this.#usable("allocate"),
      heldBack: () => this.#pressure.level >= PressureLevel.High,
      heldBackReason: (throughout) => this.#pressure.heldBackReason(throughout),
      serve: () => {
        const result = serve(this, this.#books, this.#backings, req);
        return result instanceof Allocation ? this.#indexed(result) : result;
      },
      mayFit: () => mayFit(this.#counters, this.#backings, req),
      platformBytes: this.#pressure.platform.totalBytes,
      waiters: this.#waiters,
    });
  }

  /**
   * Allocates `size` bytes of `type` (`allocate_typed` in C HALs).
   * @param size Bytes, an integer from 1.
   * @param type The memory type.
   * @param alignment A power of two up to the page size; the type's own alignment when it is stricter.
   * @param flags As in {@linkcode AllocationRequest.flags}.
   * @throws As for {@linkcode MemoryInterface.allocate}; a TypeError when `type` is left out (system memory
   *   is `allocate(size)`).
   */
  allocateTyped(size: number, type: MemoryType, alignment?: number, flags?: MemoryFlag[]): MemoryAllocation {
    // Fast paths for the types a hot loop uses (a class pool, the arena), each small enough for the engine to
    // inline into the caller with this method; everything else below.
    if (alignment === undefined && flags === undefined && typeof size === "number") {
      if (type === "pool") {
        const a = this.#poolBlock(size);
        if (a !== null) return a;
      } else if (type === "temporary") {
        const a = this.#temporaryBlock(size);
        if (a !== null) return a;
      }
    }
    return this.#served(checkRequest(size, type, alignment, flags, undefined, "allocate", 0, false, undefined, true));
  }

  // A block of a class pool for a plain size within the classes and the pool type's budget, else null.
  #poolBlock(size: number): Allocation | null {
    if (this.#ended !== null || !(size > 0 && size <= LARGEST_CLASS && Number.isInteger(size))) return null;
    const counter = this.#counters.types[T_POOL];
    if (counter.used + size > counter.cap) return null;
    const c = size <= 16 ? 0 : 28 - Math.clz32(size - 1);
    let origin = this.#classOrigins[c];
    if (origin === undefined) {
      origin = this.#classOrigin(c);
      if (origin === undefined) return null; // the class's first block: serve() makes its pool
    }
    const pool = origin.from as PoolAllocator;
    let view = takeBlock(pool, size), slot = takenSlot;
    if (view === null) {
      // No free block (the pool grows) or a pool that needs the full path: its block goes back by view.
      view = pool.tryAlloc(size);
      if (view === null) return null;
      slot = -1;
    }
    const a = new Allocation(origin, view, size, null, slot);
    this.#counters.added(counter, size);
    this.#index.add(a);
    return a;
  }

  // A block of the arena in the current frame for a plain size within the temporary type's budget, else null.
  #temporaryBlock(size: number): Allocation | null {
    if (this.#ended !== null || !(size > 0 && size <= MAX_FAST_TEMPORARY && Number.isInteger(size))) return null;
    const counter = this.#counters.types[T_TEMPORARY];
    if (counter.used + size > counter.cap) return null;
    let origin = this.#arenaOrigin;
    if (origin === null) {
      origin = this.#frameOrigin();
      if (origin === null) return null; // the first temporary block: serve() makes the arena
    }
    let view = carveBlock(origin.from as Arena, size), serial = carvedSerial;
    if (view === null) {
      // The arena needs its full path (it grows, observers, ...): that block goes back by view, not by number.
      view = (origin.from as Arena).tryAlloc(size);
      if (view === null) return null;
      serial = -1;
    }
    const a = new Allocation(origin, view, size, null, serial);
    this.#counters.added(counter, size);
    this.#index.add(a);
    return a;
  }

  /**
   * Gives an allocation back: the allocation itself, its own `bytes`, or its
   * address. Another view over its first byte is refused ("double-free"):
   * it cannot be told from a view kept from an allocation released before,
   * whose slot this one reuses, and that must never free the new owner.
   *
   * Its `bytes` read as length 0 afterwards only for `system`, `audio`,
   * `shared` and secret memory. Pool, network, stack and video blocks stay
   * readable, and so does a temporary block given back as the arena's most
   * recent one: they show whatever is allocated there next (the next
   * allocation of the same size gets the same bytes).
   *
   * A temporary block given back out of order (not the arena's most recent
   * one) stays taken by the arena, and its type's budget counts it
   * (`unreclaimedBytes` in {@linkcode MemoryInterface.getMemoryStats}), until
   * the memory comes back: when its frame ends (`endFrame()`, a `frame()`
   * scope's end, the end of a scope of your own on `getAllocator("arena")`
   * it was made in), and, outside frames, as soon as no temporary allocation
   * of the interface is live: the interface then resets its arena at once,
   * and the views of those blocks read as length 0 (nothing can read the
   * memory the arena hands out again). Blocks of your own taken from
   * `getAllocator("arena")` (or a scope of yours open on it) keep that
   * memory held until they are freed or the time outside frames ends with
   * `endFrame()`. The same holds for system memory the arena served
   * (`preferredAllocator: "arena"`).
   * @throws {TypeError} For anything else.
   * @throws {RangeError} For an address that is not an integer from 0.
   * @throws {AllocationError} "double-free" (already deallocated, or its frame ended, or a view that is not
   *   the live allocation's own `bytes`), "invalid-free" (not
   *   an allocation of this interface, or a view starting inside one), "mismatched-allocator" (another
   *   interface's), "invalid-free" from a stack freed out of order, "use-after-free" after `dispose()`.
   */
  deallocate(target: MemoryAllocation | ArrayBufferView | number): void {
    // The common case (a live allocation of this interface) stays small enough to inline into the caller.
    if (this.#ended !== null || !Allocation.release(target, this)) this.#deallocateFound(target);
  }

  // Everything deallocate's fast path did not take: by address or view, and every refusal.
  #deallocateFound(target: MemoryAllocation | ArrayBufferView | number): void {
    const found = findAllocation(this.#index, target, "deallocate", () => this.#usable("deallocate"));
    if (!Allocation.ownedBy(found, this)) {
      throw new AllocationError(
        "mismatched-allocator",
        "Cannot deallocate: the allocation belongs to another MemoryInterface",
      );
    }
    if (!Allocation.isLive(found)) {
      throw new AllocationError(
        "double-free",
        `Cannot deallocate ${byteCount(found.size)} of ${found.type} memory: ${Allocation.whyReleased(found)}`,
      );
    }
    Allocation.release(found, this); // may throw (a stack out of order), changing nothing
  }

  /**
   * Opens a frame: temporary allocations from now until the matching
   * `endFrame()` are released together. Frames nest.
   *
   * Frames are one LIFO stack per interface, not per task: two async tasks
   * that each open a frame and `await` inside it end each other's frames
   * (`endFrame()` ends the innermost, which may be the other task's; a
   * `frame()` scope's end also ends every frame opened after it, whose
   * temporary views then read length 0). Give each concurrent task its own
   * interface, or keep frames between awaits.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  beginFrame(): void {
    this.#usable("begin a frame");
    const older = this.#backings.beginFrame().older;
    for (let t = 0; t < OVERALL; t++) {
      if ((FRAMED_TYPES & (1 << t)) === 0) continue;
      const counter = this.#counters.types[t];
      older[t].bytes = counter.used - counter.unframedBytes;
      older[t].count = counter.count - counter.unframedCount;
    }
    this.#arenaOrigin = null;
    this.#counters.changed(); // the arena may have been made for it
  }

  /**
   * Ends the innermost frame, releasing every temporary allocation made in
   * it (their views read as length 0); outside frames, releases every
   * temporary allocation made outside one. Waiting allocations are woken.
   * Every block the arena served in that frame goes, whatever its type
   * (the `temporary` flag, `preferredAllocator: "arena"`), and so do blocks
   * of your own taken from `getAllocator("arena")` in it.
   * @throws {AllocationError} "use-after-free" after `dispose()`; "unsupported" from an Arena observer told of
   *   a block another allocator is taking (an Arena chain), for a frame begun before that (nothing changes).
   */
  endFrame(): void {
    this.#usable("end a frame");
    // Holders of the frame's memory (an array over getAllocator("arena")) hear what the program did, not the
    // arena's reset or scope end inside.
    const frame = releasingFor("MemoryInterface.endFrame() released it", () => this.#backings.endFrame());
    this.#arenaOrigin = null;
    // What the frame holds: the type's framed bytes less what older frames hold (see Frame).
    for (let t = 0; t < OVERALL; t++) {
      if ((FRAMED_TYPES & (1 << t)) === 0) continue;
      const counter = this.#counters.types[t], older = frame.older[t];
      const count = counter.count - counter.unframedCount - older.count;
      if (count !== 0) this.#counters.removed(counter, counter.used - counter.unframedBytes - older.bytes, count);
    }
    // The arena gave its bytes back even when nothing counted was left in the frame (blocks deallocated
    // out of order stay taken until then): its figures changed either way.
    this.#books.returned(frame);
    this.#counters.changed();
    // Back outside frames, blocks held since before the first frame may come back now too.
    if (this.#books.heldBlocks !== 0) this.#books.reclaim();
    if (this.#waiters.count !== 0) this.#waiters.wake();
  }

  /**
   * `beginFrame()` now, and when the returned scope is disposed (`using`), the
   * end of that frame: of frames still open inside it too, and of nothing when
   * it was already ended by hand (`endFrame()`), never of a frame around it.
   *
   * The frames are the interface's one LIFO stack (see
   * {@linkcode MemoryInterface.beginFrame}): a frame another async task opened
   * while this scope awaited is "inside it" and ends with it, and its
   * temporary views read length 0 while that task still uses them. The
   * scope's end ends all those frames or (refused as `endFrame()` is) none.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  frame(): Disposable {
    refuseArguments(arguments.length, "open a frame", "`using _frame = memory.frame();` ends it with its block");
    this.beginFrame();
    const own = this.#backings.frame; // the scope's identity: ending frames by count could end an outer one
    return {
      [Symbol.dispose]: () => {
        if (!own.open || this.#ended !== null) return;
        // Its arena scope first, which ends those of the frames inside it too, or throws changing nothing
        // (frames opened inside it could end where its own cannot: a claim under way).
        releasingFor(FRAME_SCOPE_ENDED, () => {
          this.#backings.endScopeOf(own);
          while (own.open) this.endFrame();
        });
      },
    };
  }

  /**
   * Statistics of one type, or of the whole interface without `type`.
   * Cached: recomputed after anything done through the interface or the
   * allocators `getAllocator` gives that changes them (an allocation, a
   * deallocation, a frame's end, a defragmentation, a block of your own);
   * what passes neither (a heap handle's own `free()`, pages locked elsewhere
   * in the process, which bound audio's `largestFreeBlock`) shows within 100 ms.
   * @throws {TypeError} For an unknown type.
   */
  getMemoryStats(type?: MemoryType): MemoryStats {
    let t = OVERALL;
    if (type !== undefined) {
      t = typeIndexOf(type);
      if (t < 0) {
        throw new TypeError(
          `Cannot get memory stats as 'type' must be one of ${TYPES.join(", ")}: current value is ${
            describeValue(type)
          }`,
        );
      }
    }
    this.#usable("get memory stats");
    const counters = this.#counters;
    let total = t < OVERALL && counters.types[t].budget !== Infinity
      ? counters.types[t].budget
      : this.platform.totalBytes;
    // The stack holds what its one chunk holds: a budget above that (capped there) is not room. Without a budget
    // the chunk is the total (it is never above the platform's, see stackSize), even where the process may use
    // less than the page a stack holds at least: the stack's totalBytes is never below what it holds in use.
    if (t === T_STACK) total = Math.min(counters.types[t].budget, this.#backings.stackBytes);
    return this.#stats.get(t, total);
  }

  /**
   * Calls `callback(level, info)` each time the pressure level rises to
   * `level` or above (and once, soon, when it is there already). Without a
   * monitor (`pressure: false`) it is kept but never called. A callback
   * that throws is a notification that failed, not an error of the
   * interface: its error goes to `console.error` (prefixed "memkit: a
   * pressure callback threw"), the other callbacks still run, and nothing
   * else changes (as for an Arena's observers).
   * @returns An id for {@linkcode MemoryInterface.unregisterPressureCallback}.
   * @throws {TypeError} When `callback` is not a function or `level` not a number.
   * @throws {RangeError} For a level outside Low (1) to Critical (4).
   */
  registerPressureCallback(level: PressureLevelValue, callback: MemoryPressureCallback): number {
    this.#usable("register a pressure callback");
    return this.#pressure.register(level, callback, () => this.#counters.totalUsed, "register a pressure callback");
  }

  /** Stops the calls of a pressure callback; unknown ids are ignored. */
  unregisterPressureCallback(id: number): void {
    this.#pressure.unregister(id);
  }

  /** The temporary type's arena, with `scope()`, `reset()` and `dump()` (see the general signature). */
  getAllocator(kind: "arena"): InterfaceArena;
  /** The stack type's stack, with `mark()`, `rewind()`, `reset()` and `dump()` (see the general signature). */
  getAllocator(kind: "stack"): InterfaceStackAllocator;
  /** Video memory's heap, with `handle()`, `defragment()` and `dump()` (see the general signature). */
  getAllocator(kind: "free-list"): InterfaceFreeListAllocator;
  /** The system type's allocator, with `trim()`, `retainedBytes` and `dump()` (see the general signature). */
  getAllocator(kind: "system"): InterfaceSystemAllocator;
  /** The buddy allocator, with `dump()` (see the general signature). */
  getAllocator(kind: "buddy"): InterfaceBuddyAllocator;
  /** The size classes as one allocator (see the general signature). */
  getAllocator(kind: "pool"): InterfaceAllocator;
  /**
   * The interface's allocator of `kind` (made on first use; the same object
   * each call): `system` (the system type's), `arena` (temporary), `stack`,
   * `pool` (the size classes as one allocator), `buddy`, `free-list` (video
   * memory's heap; its handles are what `defragment()` moves).
   *
   * Blocks taken from it directly are the caller's: not counted in the
   * interface's statistics or budgets, freed and resized through it as with
   * the allocator itself. Memory a live allocation of the interface owns is
   * never released through it: `free` / `resize` of such a block throws
   * AllocationError("mismatched-allocator") (give it back with
   * `deallocate`); a release of many blocks at once (the arena's `reset()`
   * or a `scope()`'s end, the stack's `reset()` or `rewind(marker)`) throws
   * "invalid-free" while it would take a live interface allocation (or end
   * one of its frames); `dispose()` throws "unsupported" (the allocator goes
   * with the interface). A refused call changes nothing. Besides the
   * `Allocator` methods it has the kind's own where they apply, and
   * its type says which ({@linkcode InterfaceArena}, {@linkcode InterfaceStackAllocator},
   * {@linkcode InterfaceFreeListAllocator}, {@linkcode InterfaceSystemAllocator},
   * {@linkcode InterfaceBuddyAllocator}; {@linkcode InterfaceAllocator} for `pool`):
   * `dump()`; the arena's `scope()`, `reset()`; the stack's `mark()`,
   * `rewind()`, `reset()`; the heap's `handle()`, `defragment()`; the system
   * allocator's `trim()`, `retainedBytes`. They are guards over the allocators,
   * not instances of `Arena`, `StackAllocator`, ...: `instanceof` is false.
   *
   * @throws {TypeError} For anything but an allocator kind; {AllocationError} "unsupported" for "debug",
   *   "use-after-free" after `dispose()`.
   *
   * @example Blocks of the caller's own beside the interface's
   * ```ts
   * import { AllocationError, MemoryInterface } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using memory = new MemoryInterface({ pressure: false });
   * const pool = memory.getAllocator("pool");
   * const mine = pool.alloc(64); // the caller's: not in the interface's statistics
   * const sprite = memory.allocateTyped(64, "pool");
   * assert.equal(memory.getMemoryStats("pool").allocationCount, 1);
   * assert.throws(() => pool.free(sprite.bytes), AllocationError); // the interface's: memory.deallocate(sprite)
   * pool.free(mine);
   * memory.deallocate(sprite);
   * ```
   */
  getAllocator(kind: AllocatorKind): InterfaceAllocator;
  getAllocator(kind: AllocatorKind): InterfaceAllocator {
    const checked = checkKind(kind, "get an allocator", "kind");
    this.#usable("get an allocator");
    let guard = this.#guards.get(checked);
    if (guard === undefined) {
      guard = guardAllocator(checked, this.#backings.allocator(BACKING_OF_KIND[checked])!, this.#owned);
      this.#guards.set(checked, guard);
      this.#counters.changed(); // the allocator may have been made now: the overall figures include it
    }
    return guard;
  }

  /** The kinds {@linkcode MemoryInterface.getAllocator} gives. */
  availableAllocators(): AllocatorKind[] {
    return [...KINDS];
  }

  /**
   * Compacts every allocator that can: the free-list heap's unpinned
   * handles slide down (blocks from `allocate` never move).
   * @param onProgress Called after each move with bytes moved, bytes movable and the fraction done.
   * @throws {TypeError} When `onProgress` is not a function.
   */
  defragment(onProgress?: (movedBytes: number, totalBytes: number, progress: number) => void): DefragReport {
    if (onProgress !== undefined && typeof onProgress !== "function") {
      throw new TypeError(
        `Cannot defragment as 'onProgress' must be a function: current value is ${describeValue(onProgress)}`,
      );
    }
    this.#usable("defragment");
    try {
      // A chain over a handle's bytes that a move ends hears of the call the program made.
      return releasingFor("MemoryInterface.defragment() moved it", () =>
        defragmentHeap(
          this.#backings.made().find((m) => m.backing === B_HEAP)?.allocator as FreeListAllocator,
          onProgress,
        ));
    } finally {
      this.#counters.changed(); // blocks moved (some, when onProgress threw)
    }
  }

  /**
   * Compacts one allocator: only `free-list` can move its blocks.
   * @throws {TypeError} For anything but an allocator kind.
   * @throws {AllocationError} "unsupported" for a kind whose blocks cannot move; "use-after-free" after
   *   `dispose()` (for every kind).
   */
  defragmentAllocator(kind: AllocatorKind): DefragReport {
    const checked = checkKind(kind, "defragment an allocator", "kind");
    this.#usable("defragment"); // a disposed interface says so first, whatever the kind
    if (checked !== "free-list") {
      throw new AllocationError(
        "unsupported",
        `Cannot defragment the ${checked} allocator: its blocks are views the program holds and cannot move; ` +
          `only the free-list heap's handles can (getAllocator("free-list").handle(size))`,
      );
    }
    return releasingFor('MemoryInterface.defragmentAllocator("free-list") moved it', () => this.defragment());
  }

  /**
   * Whether `target` points into a live allocation of this interface: an
   * address anywhere in one (its first byte to its last), or a view whose
   * bytes all lie within one (its own `bytes`, a subarray, a typed array or
   * DataView over any part of it, from its first byte or inside). False for
   * foreign or released memory, and for a view that runs past the end of
   * an allocation (into another, or into memory of none).
   *
   * It answers about memory, not about where a view came from: a view kept
   * from a released allocation whose place another one took now covers that
   * one and is valid (`deallocate` still refuses it: it takes only an
   * allocation, its own `bytes` or its address).
   * @throws {TypeError} For anything but a number or a view (naming isValidPointer).
   */
  isValidPointer(target: number | ArrayBufferView): boolean {
    return this.#liveAt(target, "check a pointer with isValidPointer") !== null;
  }

  /**
   * The live allocation `target` (an address or a view) points into, or
   * null: by the rule of {@linkcode MemoryInterface.isValidPointer} (a view
   * counts when all its bytes lie within the allocation).
   * @throws {TypeError} For anything but a number or a view.
   */
  getAllocationInfo(target: number | ArrayBufferView): MemoryAllocation | null {
    return this.#liveAt(target, "get allocation info with getAllocationInfo");
  }

  #liveAt(target: number | ArrayBufferView, op: string): Allocation | null {
    // An allocation object is taken too (judged by itself: a released one is not valid, whoever holds its
    // place now), but the signature names what the lookup is for.
    if (Allocation.is(target)) return Allocation.isLive(target) && Allocation.ownedBy(target, this) ? target : null;
    const address = addressOfTarget(target, op, false, "an address (a number) or a view (an ArrayBufferView)");
    if (address === null || this.#ended !== null) return null;
    const found = this.#index.find(address, true);
    if (found === undefined || !Allocation.isLive(found) || !Allocation.ownedBy(found, this)) return null;
    // A view's first byte is in the allocation: so must its last be (a view running on past it covers memory
    // the allocation does not own).
    if (typeof target === "object" && address + lengthOf(target) > Allocation.addressIfLive(found) + found.size) {
      return null;
    }
    return found;
  }

  /** Asks the runtime for a garbage collection where it allows one; true if it ran. */
  gcHint(): boolean {
    return requestGC();
  }

  /**
   * Gives everything back: every allocator is disposed (every view of every
   * allocation reads as length 0), shared memory closed and unlinked, waiting
   * allocations rejected, the monitor stopped if it is the interface's own or
   * the interface started it (and no other live interface that started it
   * uses it; one the caller started keeps running). Later calls throw
   * "use-after-free" (after their arguments' TypeError / RangeError), except
   * those that only answer: `isValidPointer` (false), `getAllocationInfo`
   * (null), `availableAllocators`, `platform`, `gcHint` and
   * `unregisterPressureCallback` (nothing to stop); a second call does nothing.
   * @throws {AllocationError} "unsupported" from an Arena observer told of a block another allocator is
   *   taking (an Arena chain), while the interface's arena is in use (nothing changes: dispose it later).
   */
  dispose(): void {
    if (this.#ended !== null) return;
    this.#backings.checkDisposable(); // the arena may refuse: before anything changes
    this.#ended = "the MemoryInterface was disposed";
    this.#waiters.rejectAll(() => this.#endedError("allocate"));
    this.#pressure.dispose();
    for (const a of this.#index.all()) Allocation.forget(a);
    this.#index.clear();
    this.#unregisterIndex();
    // Holders of its memory (arrays and allocators over getAllocator()) hear what the program did, not the
    // dispose() of an allocator inside, which the program cannot call (the guards refuse it).
    releasingFor("MemoryInterface.dispose() released it", () => this.#backings.dispose());
  }

  /** Same as {@linkcode MemoryInterface.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #served(req: Request): MemoryAllocation {
    this.#usable("allocate");
    const result = serve(this, this.#books, this.#backings, req);
    if (result instanceof Allocation) return this.#indexed(result);
    throw result.error("wait for memory to be freed with allocateAsync({ ..., timeoutMs })");
  }

  #indexed(a: Allocation): Allocation {
    this.#index.add(a);
    return a;
  }

  // The origin of class pool `c`'s blocks, or undefined while the pool is not made. The fast path never makes an
  // allocator: one made for a block it then could not give would stay, changing the stats after a refused call;
  // serve() makes it, and disposes it again when it refuses (see Backings.take).
  #classOrigin(c: number): Origin | undefined {
    const pools = this.#backings.pools;
    if (!pools.has(c)) return undefined;
    const origin = new Origin(this, this.#books, T_POOL, "pool", 16 << c, NO_FLAGS, pools.pool(c), null);
    this.#classOrigins[c] = origin;
    return origin;
  }

  // The arena's origin for the current frame (made again when frames begin and end), or null while the arena
  // is not made (as #classOrigin).
  #frameOrigin(): Origin | null {
    const backings = this.#backings;
    if (!backings.arenaMade) return null;
    const frame = backings.frame;
    return this.#arenaOrigin = new Origin(this, this.#books, T_TEMPORARY, "arena", 16, NO_FLAGS, backings.arena, frame);
  }

  #usable(op: string): void {
    if (this.#ended !== null) throw this.#endedError(op);
  }

  #endedError(op: string): AllocationError {
    return new AllocationError("use-after-free", `Cannot ${op}: ${this.#ended}`);
  }
}
