// What MemoryInterface.getAllocator(kind) returns: the interface's own
// allocator behind a guard. Blocks taken from it directly are the caller's
// and work as with the allocator itself; memory a live interface allocation
// owns is never released, moved or reused through it: free/resize of such a
// block is refused ("mismatched-allocator": deallocate it), and a release of
// many blocks at once (an arena's reset or scope end, a stack's reset or
// rewind) is refused ("invalid-free") while it would take a live interface
// allocation (or, for the arena, end one of the interface's frames).
// dispose() is always refused ("unsupported"): the allocator goes with the
// interface. The allocator itself is held in a private field (a class pool
// or the arena are not reachable through the guard); the interface's hot
// paths call them directly and never pass here.
import type { Arena } from "../alloc/arena.ts";
import type { ArenaResetMode, ArenaScope, ArenaScopeStats, ArenaStats } from "../alloc/arena_types.ts";
import { parseResetMode } from "../alloc/_arena_options.ts";
import type { AllocatorDump } from "../alloc/dump.ts";
import type { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import type { DefragReport, Handle } from "../alloc/free_list_types.ts";
import { leaseTableOf, registerLeases, releasingFor } from "../alloc/_lease.ts";
import { nameAllocator } from "../base/_allocator_name.ts";
import type { StackAllocator, StackMarker } from "../alloc/stack_allocator.ts";
import type { SystemAllocator } from "../alloc/system_allocator.ts";
import { bufferOf, checkView, describe, isDetached, lengthOf, refuseArguments } from "../base/_validate.ts";
import type {
  Allocator,
  AllocatorKind,
  AllocatorStats,
  NativeAllocator,
  TypedArray,
  TypedArrayConstructor,
} from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { addressOf } from "../base/native_info.ts";
import type {
  InterfaceAllocator,
  InterfaceArena,
  InterfaceBuddyAllocator,
  InterfaceFreeListAllocator,
  InterfaceStackAllocator,
  InterfaceSystemAllocator,
} from "./interface_allocators.ts";
import { counted, isAre } from "./_words.ts";

/** What a guard asks the interface that owns the allocator. */
export interface OwnedMemory {
  /** The live allocation of the interface whose first byte is at `address` (its size and type), if any. */
  liveAt(address: number): { readonly size: number; readonly type: string } | undefined;
  /** How many live allocations of the interface go back to `from` and were made from origin serial `since` on. */
  liveIn(from: Allocator, since: number): number;
  /** The interface's frames open now. */
  frameDepth(): number;
  /** Something was done through a guard that may change the allocators' figures: the interface's stats are stale. */
  changed(): void;
  /**
   * The arena released every block made from origin serial `since` on (a scope's end; 0: a reset): the
   * interface's released blocks among them, which the arena held, came back.
   */
  arenaReleased(since: number): void;
  /**
   * The caller freed a block of their own in the arena through the guard: the arena kept it (`kept`: it was
   * not its most recent block, or not freed through that block's own view) or rolled it back.
   */
  arenaFreed(view: ArrayBufferView, kept: boolean): void;
  /**
   * A heap handle was made: its own `free()` changes the heap's figures without passing here (the
   * interface's cached stats then expire by the clock).
   */
  untracked(): void;
  /**
   * A serial at most that of every allocation made from now on (the arena's fast path takes an origin
   * made from now on): allocations made before have a lower one.
   */
  epoch(): number;
}

type Owned = NativeAllocator & Disposable & { dump?(): AllocatorDump };

// Module-private reads of a guard's fields (the subclasses' extra methods, the bench's accessor).
let realOf: (guard: OwnedAllocator) => Owned;
let ownerOf: (guard: OwnedAllocator) => OwnedMemory;

/**
 * The allocator a guard stands for (the bench times the interface against the very class pool and arena it
 * calls). Internal: never exported from mod.ts.
 */
export function ownedAllocatorOf(guard: Allocator): Allocator {
  if (!(guard instanceof OwnedAllocator)) throw new TypeError(`Not an interface's allocator: ${describe(guard)}`);
  return realOf(guard);
}

/** An interface's allocator of `kind` behind the guard that suits it. */
export function guardAllocator(kind: AllocatorKind, real: Allocator, owner: OwnedMemory): InterfaceAllocator {
  const owned = real as Owned;
  switch (kind) {
    case "arena":
      return new OwnedArena(owned, owner);
    case "stack":
      return new OwnedStack(owned, owner);
    case "free-list":
      return new OwnedHeap(owned, owner);
    case "system":
      return new OwnedSystem(owned, owner);
    case "buddy":
      return new OwnedDumpable(owned, owner);
    default:
      return new OwnedAllocator(owned, owner);
  }
}

/** Any kind: the Allocator methods, with free and resize refused for the interface's blocks. */
class OwnedAllocator implements InterfaceAllocator {
  readonly #real: Owned;
  readonly #owner: OwnedMemory;

  static {
    realOf = (guard) => guard.#real;
    ownerOf = (guard) => guard.#owner;
  }

  constructor(real: Owned, owner: OwnedMemory) {
    this.#real = real;
    this.#owner = owner;
    // Arrays over the guard hear of releases as they would over the allocator.
    registerLeases(this, () => leaseTableOf(real));
    nameAllocator(this, `MemoryInterface.getAllocator("${real.kind}")`);
  }

  /** The allocator's kind. */
  get kind(): AllocatorKind {
    return this.#real.kind;
  }

  /** A block of the caller's own (not counted by the interface). */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.#real.alloc(size, align);
    this.#owner.changed();
    return view;
  }

  /** Like `alloc`, but `null` when the allocator has no room. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    const view = this.#real.tryAlloc(size, align);
    this.#owner.changed(); // even null: a chunk may have been taken on the way
    return view;
  }

  /** A typed array in a block of the caller's own. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    const array = this.#real.array(ctor, length, align);
    this.#owner.changed();
    return array;
  }

  /**
   * Frees a block taken from this allocator.
   * @throws {AllocationError} "mismatched-allocator" for the bytes of a live interface allocation (use
   *   `deallocate`), and the allocator's own errors.
   */
  free(view: ArrayBufferView): void {
    refuseOwned(this.#owner, view, "free", this.kind);
    this.#real.free(view);
    this.#owner.changed();
  }

  /**
   * Resizes a block taken from this allocator.
   * @throws {AllocationError} As for `free`, and the allocator's own errors.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    refuseOwned(this.#owner, view, "resize", this.kind);
    const resized = this.#real.resize(view, newSize);
    this.#owner.changed();
    return resized;
  }

  /** Whether `view` points into a live block of the allocator (the interface's blocks included). */
  owns(view: ArrayBufferView): boolean {
    return this.#real.owns(view);
  }

  /** The allocator's statistics (the interface's blocks included). */
  stats(): AllocatorStats {
    return this.#real.stats();
  }

  /**
   * Refused: the allocator goes with its interface (`MemoryInterface.dispose()`).
   * @throws {AllocationError} "unsupported", always.
   */
  dispose(): void {
    throw new AllocationError(
      "unsupported",
      `Cannot dispose the MemoryInterface's ${this.kind} allocator: it goes when the interface is disposed ` +
        "(memory.dispose())",
    );
  }

  /** Same as {@linkcode OwnedAllocator.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** A kind whose allocator can describe its blocks. */
class OwnedDumpable extends OwnedAllocator implements InterfaceBuddyAllocator {
  /** The allocator's blocks and chunks. */
  dump(): AllocatorDump {
    return realOf(this).dump!();
  }
}

/** The temporary type's arena: reset and scope ends are refused while they would take interface memory. */
class OwnedArena extends OwnedDumpable implements InterfaceArena {
  /**
   * Frees a block taken from this arena (see Arena.free).
   * @throws {AllocationError} As for the other kinds.
   */
  override free(view: ArrayBufferView): void {
    const owner = ownerOf(this), arena = realOf(this) as unknown as Arena;
    refuseOwned(owner, view, "free", this.kind);
    const length = lengthOf(view);
    arena.free(view);
    // Before changed(): a block the arena kept holds the interface's reset back no longer (see Books.reclaim).
    if (length !== 0) owner.arenaFreed(view, arena.owns(view));
    owner.changed();
  }

  /**
   * Resizes a block taken from this arena (see Arena.resize).
   * @throws {AllocationError} As for the other kinds.
   */
  override resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    const owner = ownerOf(this), arena = realOf(this) as unknown as Arena;
    refuseOwned(owner, view, "resize", this.kind);
    const length = lengthOf(view);
    const resized = arena.resize(view, newSize);
    // A block copied elsewhere (or resized to 0) was freed: the arena keeps the old one or rolled it back.
    if (length !== 0 && (lengthOf(resized) === 0 || addressOf(resized) !== addressOf(view))) {
      owner.arenaFreed(view, arena.owns(view));
    }
    owner.changed();
    return resized;
  }

  /** The arena's statistics. */
  override stats(): ArenaStats {
    return (realOf(this) as unknown as Arena).stats();
  }

  /**
   * Opens a scope of the arena; ending it is refused (changing nothing) while it would release a live
   * allocation the interface made after it opened, or end one of the interface's frames begun inside it.
   */
  scope(): ArenaScope {
    refuseArguments(arguments.length, "open a scope", "`using _scope = arena.scope();` ends it with its block");
    const arena = realOf(this) as unknown as Arena;
    const owner = ownerOf(this);
    const scope = arena.scope();
    owner.changed();
    return new OwnedScope(scope, arena, owner, owner.epoch(), owner.frameDepth());
  }

  /**
   * Resets the arena (ending its scopes).
   * @throws {AllocationError} "invalid-free" while the interface has a live temporary allocation in it or
   *   a frame open (both would go; nothing changes).
   */
  reset(mode?: ArenaResetMode): void {
    parseResetMode(mode ?? "retain-capacity"); // bad input first
    const owner = ownerOf(this);
    const live = owner.liveIn(realOf(this), 0);
    if (live > 0) {
      throw new AllocationError(
        "invalid-free",
        `Cannot reset the MemoryInterface's arena: ${counted(live, "allocation")} of the interface ${
          isAre(live)
        } live in it; ` +
          "give them back with memory.deallocate() or memory.endFrame()",
      );
    }
    if (owner.frameDepth() > 0) {
      throw new AllocationError(
        "invalid-free",
        `Cannot reset the MemoryInterface's arena: ${counted(owner.frameDepth(), "frame")} of the interface ${
          isAre(owner.frameDepth())
        } open ` +
          "in it; end them with memory.endFrame()",
      );
    }
    (realOf(this) as unknown as Arena).reset(mode);
    owner.arenaReleased(0);
    owner.changed();
  }
}

/** A scope of the interface's arena opened through the guard. */
class OwnedScope implements ArenaScope {
  readonly #scope: ArenaScope;
  readonly #arena: Arena;
  readonly #owner: OwnedMemory;
  readonly #since: number;
  readonly #frames: number;

  constructor(scope: ArenaScope, arena: Arena, owner: OwnedMemory, since: number, frames: number) {
    this.#scope = scope;
    this.#arena = arena;
    this.#owner = owner;
    this.#since = since;
    this.#frames = frames;
  }

  /** Nesting depth, 1 for an outermost scope. */
  get depth(): number {
    return this.#scope.depth;
  }

  /** False once the scope has ended. */
  get active(): boolean {
    return this.#scope.active;
  }

  /** Allocations, bytes and lifetime of the scope so far. */
  stats(): ArenaScopeStats {
    return this.#scope.stats();
  }

  /**
   * Ends the scope (and any inner ones); a second call does nothing.
   * @throws {AllocationError} "invalid-free" while that would release a live interface allocation or end
   *   an interface frame (nothing changes; deallocate them or end the frame, then end the scope).
   */
  end(): void {
    if (!this.#scope.active) return;
    // An active scope means nothing below it ended since it opened: frames beyond those open then are inside it.
    const frames = this.#owner.frameDepth() - this.#frames;
    if (frames > 0) {
      throw new AllocationError(
        "invalid-free",
        `Cannot end the arena scope: ${counted(frames, "frame")} of the MemoryInterface begun inside it ${
          isAre(frames)
        } open; ` +
          "end them with memory.endFrame() first",
      );
    }
    const live = this.#owner.liveIn(this.#arena, this.#since);
    if (live > 0) {
      throw new AllocationError(
        "invalid-free",
        `Cannot end the arena scope: ${counted(live, "allocation")} the MemoryInterface made inside it ${
          isAre(live)
        } live; ` +
          "give them back with memory.deallocate() first (or end their frames with memory.endFrame())",
      );
    }
    this.#scope.end();
    this.#owner.arenaReleased(this.#since);
    this.#owner.changed();
  }

  /** Same as {@linkcode OwnedScope.end}, for `using`. */
  [Symbol.dispose](): void {
    this.end();
  }
}

/** The stack type's stack: rewind and reset are refused while they would pop an interface allocation. */
class OwnedStack extends OwnedDumpable implements InterfaceStackAllocator {
  /** Each marker taken here, with the origin serial from which allocations were made after it. */
  readonly #marks = new WeakMap<StackMarker, number>();

  /** A marker for the current top. */
  mark(): StackMarker {
    const marker = (realOf(this) as unknown as StackAllocator).mark();
    this.#marks.set(marker, ownerOf(this).epoch());
    return marker;
  }

  /**
   * Frees every block allocated after `marker` was taken.
   * @throws {AllocationError} "invalid-free" while that would free a live allocation of the interface
   *   (nothing changes), and the stack's own errors.
   */
  rewind(marker: StackMarker): void {
    const since = this.#marks.get(marker);
    if (since !== undefined) this.#refuseLive(since, "rewind the MemoryInterface's stack");
    (realOf(this) as unknown as StackAllocator).rewind(marker);
    ownerOf(this).changed();
  }

  /**
   * Frees every block.
   * @throws {AllocationError} "invalid-free" while the interface has a live allocation in the stack.
   */
  reset(): void {
    this.#refuseLive(0, "reset the MemoryInterface's stack");
    (realOf(this) as unknown as StackAllocator).reset();
    ownerOf(this).changed();
  }

  #refuseLive(since: number, what: string): void {
    const live = ownerOf(this).liveIn(realOf(this), since);
    if (live > 0) {
      throw new AllocationError(
        "invalid-free",
        `Cannot ${what}: ${counted(live, "allocation")} of the interface would go; give ${
          live === 1 ? "it" : "them"
        } back with memory.deallocate()`,
      );
    }
  }
}

/** Video memory's heap: handles of the caller's own, and defragment (which moves only handles). */
class OwnedHeap extends OwnedDumpable implements InterfaceFreeListAllocator {
  /** A movable block of the caller's own. */
  handle(size: number): Handle {
    const handle = (realOf(this) as unknown as FreeListAllocator).handle(size);
    ownerOf(this).untracked();
    return handle;
  }

  /** Slides unpinned handles down (interface allocations never move). */
  defragment(onProgress?: (movedBytes: number, totalBytes: number, progress: number) => void): DefragReport {
    try {
      // A chain over a handle's bytes that a move ends hears of the call the program made.
      return releasingFor(
        'MemoryInterface.getAllocator("free-list").defragment() moved it',
        () => (realOf(this) as unknown as FreeListAllocator).defragment(onProgress),
      );
    } finally {
      ownerOf(this).changed(); // blocks moved (some, when onProgress threw)
    }
  }
}

/** The system type's allocator. */
class OwnedSystem extends OwnedDumpable implements InterfaceSystemAllocator {
  /** Returns the freed large blocks it keeps for reuse to the system (live blocks stay). */
  trim(): number {
    const trimmed = (realOf(this) as unknown as SystemAllocator).trim();
    ownerOf(this).changed();
    return trimmed;
  }

  /** Bytes of freed large blocks kept for reuse. */
  get retainedBytes(): number {
    return (realOf(this) as unknown as SystemAllocator).retainedBytes;
  }
}

// Refuses `op` on a view whose first byte is a live interface allocation's: the interface would still count
// it, and release that memory again (another owner's by then) on deallocate.
function refuseOwned(owner: OwnedMemory, view: ArrayBufferView, op: "free" | "resize", kind: string): void {
  checkView(view, op);
  if (isDetached(bufferOf(view))) return; // released memory: the allocator says which error
  const address = addressOf(view);
  if (address === 0) return; // an empty buffer holds no memory
  const found = owner.liveAt(address);
  if (found === undefined) return;
  throw new AllocationError(
    "mismatched-allocator",
    `Cannot ${op} ${describe(view)} through the MemoryInterface's ${kind} allocator: it is a live ` +
      `${found.size}-byte ${found.type} allocation of the interface; give it back with memory.deallocate(allocation)`,
  );
}
