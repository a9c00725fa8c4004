// What serves each memory type: the allocators a MemoryInterface holds (each
// made on first use), the temporary arena's frames, and the shared mappings.
// `take` asks one backing for a block; `limit` says when a backing can never
// serve a request (so fallback and allocateAsync know not to wait for it).
//
// A refused request changes nothing: an allocator `take` made for a block it
// then could not give (a heap or arena takes its first chunk when made, and
// the kernel refused the block's own) is disposed again at once, so the
// statistics read as before the call. Nothing else can hold such an
// allocator: getAllocator and frames make theirs before any request is
// served from them, and the interface's fast paths never make one (see
// MemoryInterface's #frameOrigin). The kernel's refusals of locked, secret and
// shared memory come back as a `Refusal` for serve() to word as the
// interface's other refusals are.
import { roundToPage } from "../alloc/_chunks.ts";
import { searchBytes } from "../alloc/_tlsf_heap.ts";
import process from "node:process";
import { native } from "../../ffi/native.ts";
import { Arena, arenaEnded, bulkReleaseRefusal } from "../alloc/arena.ts";
import { BuddyAllocator } from "../alloc/buddy_allocator.ts";
import { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import { PoolAllocator } from "../alloc/pool_allocator.ts";
import { StackAllocator } from "../alloc/stack_allocator.ts";
import { SystemAllocator } from "../alloc/system_allocator.ts";
import type { ArenaScope } from "../alloc/arena_types.ts";
import type { Allocator, AllocatorKind, NativeAllocator } from "../base/allocator.ts";
import { describe } from "../base/_validate.ts";
import { errnoName } from "../base/_platform_error.ts";
import { AllocationError } from "../base/errors.ts";
import { Frame, type Releasable } from "./_allocation.ts";
import { classOf, LARGEST_CLASS, SizeClassPools } from "./_size_class_pools.ts";
import { LockedPageAllocator } from "./locked_page_allocator.ts";
import { SecretAllocator } from "./secret_allocator.ts";
import { forgetAtExit, unlinkAtExit } from "./_shared_names.ts";
import { canLockPastLimit, memlockLimit } from "./_memlock_limit.ts";
import { EEXIST, openSharedMemory, type SharedMemory } from "./shared_memory.ts";
import { releasingFor } from "../alloc/_lease.ts";
import { byteCount, counted } from "./_words.ts";

/** Backings. The first eight are the types' own, by type index. */
export const B_SYSTEM = 0, B_HEAP = 1, B_LOCKED = 2, B_NETWORK = 3, B_SHARED = 4, B_ARENA = 5, B_STACK = 6;
export const B_POOLS = 7, B_SECRET = 8, B_BUDDY = 9;

/** The backing a preferred allocator kind names (for the system type). */
export const BACKING_OF_KIND: Readonly<Record<string, number>> = {
  system: B_SYSTEM,
  "free-list": B_HEAP,
  pool: B_POOLS,
  arena: B_ARENA,
  stack: B_STACK,
  buddy: B_BUDDY,
};

/** The allocator kind each backing reports. */
export const KIND_OF: readonly AllocatorKind[] = [
  "system",
  "free-list",
  "system",
  "pool",
  "system",
  "arena",
  "stack",
  "pool",
  "system",
  "buddy",
];

/** Packet buffers: an Ethernet MTU (1500) rounded up to whole cache lines, and the line size. */
export const PACKET_BYTES = 1536;
export const CACHE_LINE = 64;
/** Video memory's alignment (WebGPU's uniform-offset and most GPUs' buffer alignment). */
export const GPU_ALIGN = 256;

/** Sizes of the backings that have one. */
export interface BackingSizes {
  /** Bytes of the stack (it never grows): see {@linkcode stackSize}. */
  stackBytes: number;
  /** What capped the stack below its budget, for messages ("the 67108864 bytes this process may use"), or null. */
  stackCap: string | null;
  /** First chunk of the temporary arena (it grows). */
  temporaryBytes: number;
  /** Bytes the buddy allocator manages. */
  buddyBytes: number;
}

/** A block a backing gave, and where it goes back. */
export interface Taken {
  view: Uint8Array<ArrayBuffer>;
  from: Allocator | null;
  releasable: Releasable | null;
  /** The alignment its address is guaranteed to have. */
  alignment: number;
  name: string | undefined;
}

/**
 * The stack's size for budget `budget` (budgets.stack; undefined: none) in a process that may use `usableBytes`
 * (its cgroup limit or physical memory; Infinity when unknown), and what capped it below the budget (null: it
 * is the budget, or 1 MiB without one). The stack is one chunk that never grows, made on first use, so its
 * size is what the budget lets the stack type hold, but never more than could ever be used (the memory the
 * process may use) or viewed (what one ArrayBuffer holds: 4 GiB in Bun), and at least a page (a process said to
 * have less than a page gets a one-page stack, and the cap says so). It reserves address space: its pages take
 * memory only once touched. `usableBytes` is a whole number from 0 (the monitor's checked reading) or Infinity.
 */
export function stackSize(budget: number | undefined, usableBytes: number): { bytes: number; cap: string | null } {
  const wanted = Math.max(4096, budget ?? 1 << 20);
  if (wanted > usableBytes && usableBytes <= native.maxViewBytes) {
    const cap = `the ${byteCount(usableBytes)} this process may use`;
    if (usableBytes >= 4096) return { bytes: usableBytes, cap };
    return { bytes: 4096, cap: `${cap}, raised to one page of 4096 bytes, the least a stack holds` };
  }
  if (wanted > native.maxViewBytes) {
    const runtime = native.runtime === "deno" ? "Deno" : "Bun";
    return {
      bytes: native.maxViewBytes,
      cap: `${native.maxViewBytes} bytes, what one ArrayBuffer holds in ${runtime}, nativeInfo().maxViewBytes`,
    };
  }
  return { bytes: wanted, cap: null };
}

/**
 * The kernel's refusal of a block (locked, secret or shared memory), for serve() to say in the request's terms
 * ("Cannot allocate <n> bytes of audio memory from the system allocator: <reason> (<what to do>)").
 */
export class Refusal {
  constructor(
    /** What follows "from the <kind> allocator: ". */
    readonly reason: string,
    readonly category: "out-of-memory" | "platform",
    /** Whether the block may be given later (memory or locked pages given back), so allocateAsync waits. */
    readonly retryable: boolean,
    /** The allocator's or mapping's own error. */
    readonly cause: AllocationError,
  ) {}
}

/**
 * `error` (the locked allocators' or openSharedMemory's refusal, its cause the failing call's error) as a
 * Refusal. ENOMEM of mmap / mprotect is memory the system has not got now: as system memory's refusal, waiting
 * may cure it. A refusal to lock pages (RLIMIT_MEMLOCK) may be cured by waiting too, when the block fits
 * under the limit: pages this process gives back (deallocating locked memory) make room for it; a block
 * larger than the whole limit never fits, and no wait helps. Any other refusal (madvise) is final.
 */
function refusalOf(error: AllocationError, pages: number): Refusal {
  const inner = error.cause instanceof AllocationError ? error.cause : error;
  if (inner.category === "out-of-memory") {
    const how = inner.call !== undefined && inner.errno !== undefined
      ? `${inner.call} failed with ${errnoName(inner.errno).split(" ")[0]}`
      : inner.message;
    return new Refusal(`the system has no memory for it now: ${how}`, "out-of-memory", true, error);
  }
  if (inner.call === "mlock") {
    // Never fits: a block above the soft limit, which binds this process (no CAP_IPC_LOCK). A limit that cannot be
    // read, or none: the refusal is the kernel's want of memory, which waiting may cure.
    const limit = memlockLimit();
    const never = limit !== null && limit.soft !== null && pages > limit.soft && !canLockPastLimit();
    return new Refusal(inner.message, "platform", !never, error);
  }
  // Another call the system refused (madvise; for shared memory open, ftruncate): named by its call and errno.
  const how = inner.call !== undefined && inner.errno !== undefined
    ? `the system refused it: ${inner.call} failed with ${errnoName(inner.errno)}`
    : inner.message.replace(/^Cannot [^:]*: /, "");
  return new Refusal(how, "platform", false, error);
}

let sharedNames = 0;

export class Backings {
  readonly system: SystemAllocator = new SystemAllocator();
  readonly pools: SizeClassPools = new SizeClassPools();
  readonly #sizes: BackingSizes;
  #heap: FreeListAllocator | null = null;
  #network: PoolAllocator | null = null;
  #arena: Arena | null = null;
  #stack: StackAllocator | null = null;
  #buddy: BuddyAllocator | null = null;
  #locked: LockedPageAllocator | null = null;
  #secret: SecretAllocator | null = null;
  readonly #shared = new Set<SharedMemory>();
  /** Open frames, innermost last, each with its arena scope; `base` holds what is allocated outside them. */
  readonly #frames: { frame: Frame; scope: ArenaScope }[] = [];
  base: Frame = new Frame();

  constructor(sizes: BackingSizes) {
    this.#sizes = sizes;
  }

  /** The allocator of a backing (made on first use); null for shared mappings. */
  allocator(backing: number): NativeAllocator | null {
    switch (backing) {
      case B_SYSTEM:
        return this.system;
      case B_HEAP:
        return this.#heap ??= new FreeListAllocator({ capacity: 1 << 20 });
      case B_LOCKED:
        return this.#locked ??= new LockedPageAllocator();
      case B_NETWORK:
        return this.#network ??= new PoolAllocator({ blockSize: PACKET_BYTES, align: CACHE_LINE });
      case B_ARENA:
        return this.arena;
      case B_STACK:
        return this.#stack ??= this.#makeStack();
      case B_POOLS:
        return this.pools;
      case B_SECRET:
        return this.#secret ??= new SecretAllocator();
      case B_BUDDY:
        return this.#buddy ??= new BuddyAllocator({ capacity: this.#sizes.buddyBytes });
      default:
        return null;
    }
  }

  // The stack, made on first use: a system that cannot give its one chunk (an address space or overcommit
  // limit) is told in the terms of the option that sized it.
  #makeStack(): StackAllocator {
    const bytes = this.#sizes.stackBytes;
    try {
      return new StackAllocator({ capacity: bytes });
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error;
      throw new AllocationError(
        error.category,
        `Cannot make the MemoryInterface's stack of ${byteCount(bytes)} (budgets.stack sets its size; it is one ` +
          `chunk, made on first use): ${error.message}; set a smaller budgets.stack`,
        { cause: error },
      );
    }
  }

  /** The temporary arena. */
  get arena(): Arena {
    return this.#arena ??= new Arena({ capacity: this.#sizes.temporaryBytes });
  }

  /** The frame temporary allocations belong to now. */
  get frame(): Frame {
    const frames = this.#frames;
    return frames.length === 0 ? this.base : frames[frames.length - 1].frame;
  }

  /** Every allocator made so far, with the backings they are. */
  made(): { backing: number; allocator: Allocator }[] {
    const all: [number, Allocator | null][] = [
      [B_SYSTEM, this.system],
      [B_HEAP, this.#heap],
      [B_LOCKED, this.#locked],
      [B_NETWORK, this.#network],
      [B_ARENA, this.#arena],
      [B_STACK, this.#stack],
      [B_POOLS, this.pools],
      [B_SECRET, this.#secret],
      [B_BUDDY, this.#buddy],
    ];
    return all.filter(([, a]) => a !== null).map(([backing, allocator]) => ({ backing, allocator: allocator! }));
  }

  /** Bytes of the stack. */
  get stackBytes(): number {
    return this.#sizes.stackBytes;
  }

  /** Bytes mapped for shared allocations. */
  sharedBytes(): number {
    let bytes = 0;
    for (const memory of this.#shared) bytes += memory.byteLength;
    return bytes;
  }

  /**
   * Why `backing` can never give `size` bytes at `align`, or null when it may.
   * (A full stack or pool may have room later; a block larger than the stack never will.)
   */
  limit(backing: number, size: number, align: number): string | null {
    switch (backing) {
      case B_POOLS:
        return classOf(size, align) < 0 ? `the pool's size classes end at ${LARGEST_CLASS} bytes` : null;
      case B_NETWORK:
        if (size > PACKET_BYTES) return `packet buffers hold at most ${PACKET_BYTES} bytes`;
        return align > CACHE_LINE ? `packet buffers are aligned to ${CACHE_LINE} bytes, not ${align}` : null;
      case B_STACK: {
        const sizes = this.#sizes;
        if (size <= sizes.stackBytes) return null;
        // One clause, no aside: the refusal adds its fixes in parentheses after it.
        return `the stack holds ${byteCount(sizes.stackBytes)}, the size budgets.stack sets${
          sizes.stackCap === null ? "" : `, capped at ${sizes.stackCap}`
        }`;
      }
      case B_BUDDY:
        return size > this.#sizes.buddyBytes ? `the buddy allocator manages ${this.#sizes.buddyBytes} bytes` : null;
      case B_HEAP:
        // The heap takes a chunk of the block plus its alignment and headers, rounded to pages: near the
        // one-view limit (4 GiB in Bun) that chunk is more than one ArrayBuffer holds, and no wait helps.
        return roundToPage(searchBytes(size, align)) > native.maxViewBytes
          ? `the free-list heap's chunk for it would be more than one ArrayBuffer holds: ${native.maxViewBytes} ` +
            "bytes, nativeInfo().maxViewBytes"
          : null;
      default:
        return null;
    }
  }

  /** The alignment `backing` gives when asked for `align` (at least the type's `minimum`). */
  alignment(backing: number, align: number, size: number): number {
    switch (backing) {
      case B_POOLS:
        return Math.min(16 << classOf(size, align), native.pageSize);
      case B_NETWORK:
        return CACHE_LINE;
      case B_LOCKED:
      case B_SHARED:
        return native.pageSize;
      default:
        return align;
    }
  }

  /**
   * A block from `backing`; null when it has no room now (a full stack, a pool or arena whose backing
   * refused); a Refusal when the kernel refused locked, secret or shared memory. An allocator made for this
   * block is disposed again when it cannot give it (see the top of this file). Throws for a shared name
   * another mapping has ("platform", said in the request's terms).
   */
  take(backing: number, size: number, align: number, name: string | undefined): Taken | Refusal | null {
    if (backing === B_SHARED) return this.#takeShared(size, name);
    // A pool block goes back to its class pool; everything else to the backing's allocator.
    const c = backing === B_POOLS ? classOf(size, align) : -1;
    const fresh = c >= 0 ? !this.pools.has(c) : !this.#made(backing);
    const from = c >= 0 ? this.pools.pool(c) : this.allocator(backing)!;
    let view: Uint8Array<ArrayBuffer> | null;
    try {
      if (backing === B_LOCKED || backing === B_SECRET) {
        view = from.alloc(size, align); // its AllocationError says what the kernel refused (ENOMEM, RLIMIT_MEMLOCK)
      } else {
        view = from.tryAlloc(size, backing === B_NETWORK || backing === B_POOLS ? undefined : align);
      }
    } catch (error) {
      if (fresh) this.#unmake(backing, c);
      if (!(error instanceof AllocationError) || (backing !== B_LOCKED && backing !== B_SECRET)) throw error;
      return refusalOf(error, Math.ceil(size / native.pageSize) * native.pageSize);
    }
    if (view === null) {
      if (fresh) this.#unmake(backing, c);
      return null;
    }
    return { view, from, releasable: null, alignment: this.alignment(backing, align, size), name: undefined };
  }

  /** Whether the allocator of `backing` (not the pools: see SizeClassPools.has) is made. */
  #made(backing: number): boolean {
    switch (backing) {
      case B_HEAP:
        return this.#heap !== null;
      case B_LOCKED:
        return this.#locked !== null;
      case B_NETWORK:
        return this.#network !== null;
      case B_ARENA:
        return this.#arena !== null;
      case B_STACK:
        return this.#stack !== null;
      case B_SECRET:
        return this.#secret !== null;
      case B_BUDDY:
        return this.#buddy !== null;
      default:
        return true; // the system allocator and the pools are made with the interface
    }
  }

  /**
   * Disposes the allocator of `backing` (class pool `c` of the pools) that take() made for a block it could
   * not give: it holds nothing, and nothing else has it yet.
   */
  #unmake(backing: number, c: number): void {
    if (c >= 0) return this.pools.drop(c);
    const made = this.allocator(backing) as Allocator & Disposable;
    switch (backing) {
      case B_HEAP:
        this.#heap = null;
        break;
      case B_LOCKED:
        this.#locked = null;
        break;
      case B_NETWORK:
        this.#network = null;
        break;
      case B_ARENA:
        this.#arena = null;
        break;
      case B_STACK:
        this.#stack = null;
        break;
      case B_SECRET:
        this.#secret = null;
        break;
      case B_BUDDY:
        this.#buddy = null;
        break;
      default:
        return;
    }
    made[Symbol.dispose]();
  }

  /** Whether the temporary arena is made (the fast path of temporary blocks never makes it: see take). */
  get arenaMade(): boolean {
    return this.#arena !== null;
  }

  #takeShared(size: number, name: string | undefined): Taken | Refusal {
    const chosen = name ?? uniqueName();
    let memory: SharedMemory;
    try {
      memory = openSharedMemory(chosen, size, { create: true, exclusive: true });
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error; // the runtime's own (a permission missing)
      // The system's refusal (ENOMEM, ...): serve() says it in the request's terms, as for locked memory.
      if (error.errno !== EEXIST) return refusalOf(error, 0);
      // Taken (exclusive: another allocation, interface or process has it): said in the request's terms.
      throw new AllocationError(
        "platform",
        `Cannot allocate ${byteCount(size)} of shared memory named ${describe(chosen)}: other shared memory has that ` +
          `name (EEXIST); pass another name, leave out 'name' for a unique one, or open the existing memory with ` +
          `openSharedMemory(${describe(chosen)})`,
        { cause: error, call: error.call, errno: EEXIST },
      );
    }
    let view: Uint8Array<ArrayBuffer>;
    try {
      view = memory.bytes; // serve() refused sizes above one view already: this is the last step that may fail
    } catch (error) {
      // All or nothing: the object was created by this call (exclusive), so its mapping and its name go again.
      memory.close();
      memory.unlink();
      throw error;
    }
    const shared = this.#shared;
    shared.add(memory);
    if (name === undefined) unlinkAtExit(memory); // a made-up name must not outlive its program (what holds: there)
    const releasable: Releasable = {
      release() {
        // A holder of this memory (an allocator over an Allocator in JavaScript that passed `bytes` on) hears
        // what the program did, not the mapping's own close().
        releasingFor("MemoryInterface.deallocate() released it", () => memory.close());
        shared.delete(memory);
        forgetAtExit(memory);
        memory.unlink();
      },
    };
    return { view, from: null, releasable, alignment: native.pageSize, name: chosen };
  }

  /**
   * Opens a frame: temporary allocations from now until its `endFrame()` are released together. The caller
   * sets what the older frames hold in it (see Frame).
   */
  beginFrame(): Frame {
    const scope = this.arena.scope();
    const frame = new Frame();
    this.#frames.push({ frame, scope });
    return frame;
  }

  /**
   * `size` bytes of type `t` in `frame` (open) were released: the frames opened after it count that much
   * less as held by older frames (nothing when `frame` is the innermost).
   */
  releasedFrom(frame: Frame, t: number, size: number): void {
    const frames = this.#frames;
    let i = 0;
    if (frame !== this.base) { while (i < frames.length && frames[i++].frame !== frame); }
    for (; i < frames.length; i++) {
      const older = frames[i].frame.older[t];
      older.bytes -= size;
      older.count--;
    }
  }

  /**
   * Ends the innermost frame (or, outside frames, releases every temporary
   * allocation made outside one): returns the frame whose allocations went.
   */
  endFrame(): Frame {
    // The arena first: it may refuse (a claim under way, see Arena's bulkReleaseRefusal), and then nothing
    // here may have changed (the frame still open, its blocks live).
    const frames = this.#frames;
    if (frames.length !== 0) {
      const open = frames[frames.length - 1];
      open.scope.end();
      frames.pop();
      open.frame.open = false;
      return open.frame;
    }
    // An arena that ended (a transferred buffer found) keeps its memory and hands none out: nothing to reset,
    // but the time outside frames still ends (reset() would throw after every frame's end from then on).
    const arena = this.#arena;
    if (arena !== null && !arenaEnded(arena)) arena.reset("retain-capacity");
    const base = this.base;
    base.open = false;
    this.base = new Frame();
    return base;
  }

  /**
   * Ends the arena scope of open frame `frame` and so of every frame opened after it, or throws (the arena
   * refuses) changing nothing; the caller then ends those frames (their scopes' ends do nothing more).
   */
  endScopeOf(frame: Frame): void {
    for (const open of this.#frames) if (open.frame === frame) return open.scope.end();
  }

  /** Throws, before anything changes, what the arena's dispose() would (a claim under way). */
  checkDisposable(): void {
    const arena = this.#arena;
    if (arena === null || arenaEnded(arena)) return;
    const refusal = bulkReleaseRefusal("dispose a MemoryInterface (its temporary arena)");
    if (refusal !== null) throw refusal;
  }

  /** The time outside frames and every open frame, outermost first. */
  allFrames(): Frame[] {
    return [this.base, ...this.#frames.map((open) => open.frame)];
  }

  /** Frames open now. */
  get frameDepth(): number {
    return this.#frames.length;
  }

  /** Returns everything: every allocator disposed (their views read as length 0), every mapping closed and unlinked. */
  dispose(): void {
    for (const frame of this.#frames) frame.frame.open = false;
    this.#frames.length = 0;
    this.base.open = false;
    const errors: unknown[] = [];
    for (const memory of this.#shared) {
      forgetAtExit(memory);
      try {
        memory.close();
        memory.unlink();
      } catch (error) {
        errors.push(error);
      }
    }
    this.#shared.clear();
    for (const { allocator } of this.made()) (allocator as Allocator & Disposable)[Symbol.dispose]();
    if (errors.length > 0) {
      throw new AllocationError(
        "platform",
        `Cannot remove ${counted(errors.length, "shared memory name")} while disposing`,
        {
          cause: errors[0],
        },
      );
    }
  }
}

// A name no other live mapping has: the process, a counter and randomness (30 characters at most).
function uniqueName(): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `memkit-${process.pid}-${(sharedNames++).toString(36)}-${random}`.slice(0, 30);
}
