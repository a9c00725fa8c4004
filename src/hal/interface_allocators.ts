/**
 * What {@linkcode MemoryInterface.getAllocator} returns, kind by kind: the
 * interface's own allocator behind a guard. Each type lists exactly what the
 * guard offers (they are not instances of `Arena`, `StackAllocator`, ...):
 * the {@linkcode Allocator} methods, and the kind's own where they apply.
 *
 * @module
 */
import type { ArenaResetMode, ArenaScope, ArenaStats } from "../alloc/arena_types.ts";
import type { AllocatorDump } from "../alloc/dump.ts";
import type { DefragReport, Handle } from "../alloc/free_list_types.ts";
import type { StackMarker } from "../alloc/stack_allocator.ts";
import type { Allocator } from "../base/allocator.ts";
// deno-lint-ignore no-unused-vars
import type { MemoryInterface } from "./memory_interface.ts";

/**
 * An allocator of a {@linkcode MemoryInterface} (the `pool` kind, and the base
 * of every other): blocks taken from it are the caller's, not counted in the
 * interface's statistics or budgets. `free` / `resize` of a live interface
 * allocation's bytes throw AllocationError("mismatched-allocator") (give it
 * back with `deallocate`); `dispose()` throws "unsupported" (the allocator goes
 * with the interface).
 *
 * @example
 * ```ts
 * import { type InterfaceAllocator, MemoryInterface } from "@memkit/memkit";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const pool: InterfaceAllocator = memory.getAllocator("pool");
 * pool.free(pool.alloc(64));
 * ```
 */
export interface InterfaceAllocator extends Allocator, Disposable {
  /**
   * Refused: the allocator goes with its interface (`MemoryInterface.dispose()`).
   * @throws {AllocationError} "unsupported", always.
   */
  dispose(): void;
}

/**
 * The `buddy` kind: an {@linkcode InterfaceAllocator} that describes its blocks.
 *
 * @example
 * ```ts
 * import { type InterfaceBuddyAllocator, MemoryInterface } from "@memkit/memkit";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const buddy: InterfaceBuddyAllocator = memory.getAllocator("buddy");
 * console.log(buddy.dump().chunks.length);
 * ```
 */
export interface InterfaceBuddyAllocator extends InterfaceAllocator {
  /** The allocator's blocks and chunks (the interface's included). */
  dump(): AllocatorDump;
}

/**
 * The `arena` kind (the temporary type's arena). Ending a scope opened here,
 * or `reset()`, throws AllocationError("invalid-free"), changing nothing,
 * while it would release a live interface allocation or end one of the
 * interface's frames.
 *
 * @example
 * ```ts
 * import { MemoryInterface } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const arena = memory.getAllocator("arena");
 * {
 *   using _scope = arena.scope();
 *   const scratch = arena.alloc(256); // the caller's, gone at the scope's end
 *   assert.equal(scratch.length, 256);
 * }
 * arena.reset();
 * ```
 */
export interface InterfaceArena extends InterfaceAllocator {
  /** The allocator's blocks and chunks (the interface's included). */
  dump(): AllocatorDump;
  /** The arena's statistics (the interface's blocks included). */
  stats(): ArenaStats;
  /** Opens a scope of the arena: blocks taken in it go at its end. */
  scope(): ArenaScope;
  /**
   * Resets the arena (ending its scopes).
   * @throws {AllocationError} "invalid-free" while the interface has a live temporary allocation or an open frame.
   */
  reset(mode?: ArenaResetMode): void;
}

/**
 * The `stack` kind. `rewind(marker)` and `reset()` throw
 * AllocationError("invalid-free"), changing nothing, while they would free a
 * live interface allocation.
 *
 * @example
 * ```ts
 * import { MemoryInterface } from "@memkit/memkit";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const stack = memory.getAllocator("stack");
 * const marker = stack.mark();
 * stack.alloc(128);
 * stack.rewind(marker); // frees what was taken after the mark
 * ```
 */
export interface InterfaceStackAllocator extends InterfaceAllocator {
  /** The allocator's blocks and chunks (the interface's included). */
  dump(): AllocatorDump;
  /** A marker for the current top. */
  mark(): StackMarker;
  /**
   * Frees every block allocated after `marker` was taken.
   * @throws {AllocationError} "invalid-free" while that would free a live interface allocation.
   */
  rewind(marker: StackMarker): void;
  /**
   * Frees every block.
   * @throws {AllocationError} "invalid-free" while the interface has a live allocation in the stack.
   */
  reset(): void;
}

/**
 * The `free-list` kind (video memory's heap): movable handles of the caller's
 * own, and `defragment()`, which moves only handles (interface allocations
 * never move).
 *
 * @example
 * ```ts
 * import { MemoryInterface } from "@memkit/memkit";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const heap = memory.getAllocator("free-list");
 * const texture = heap.handle(4096);
 * heap.defragment();
 * texture.free();
 * ```
 */
export interface InterfaceFreeListAllocator extends InterfaceAllocator {
  /** The allocator's blocks and chunks (the interface's included). */
  dump(): AllocatorDump;
  /** A movable block of the caller's own. */
  handle(size: number): Handle;
  /** Slides unpinned handles down (interface allocations never move). */
  defragment(onProgress?: (movedBytes: number, totalBytes: number, progress: number) => void): DefragReport;
}

/**
 * The `system` kind (the system type's allocator).
 *
 * @example
 * ```ts
 * import { MemoryInterface } from "@memkit/memkit";
 *
 * using memory = new MemoryInterface({ pressure: false });
 * const system = memory.getAllocator("system");
 * system.trim(); // freed large blocks it kept go back to the system
 * console.log(system.retainedBytes);
 * ```
 */
export interface InterfaceSystemAllocator extends InterfaceAllocator {
  /** The allocator's blocks and chunks (the interface's included). */
  dump(): AllocatorDump;
  /** Returns the freed large blocks it keeps for reuse to the system (live blocks stay); the bytes returned. */
  trim(): number;
  /** Bytes of freed large blocks kept for reuse. */
  readonly retainedBytes: number;
}
