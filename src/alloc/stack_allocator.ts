/**
 * A last-in, first-out allocator with markers.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { type Chunk, returnChunk, roundToPage, takeChunk } from "./_chunk.ts";
import { defaultBacking } from "./_default_backing.ts";
import { ownerKindOf, registerOwner } from "./_ownership.ts";
import {
  checkAlignment,
  checkSize,
  checkTypedArrayConstructor,
  checkView,
  describe,
  MAX_BLOCK_SIZE,
  parseOptions,
  typeCheck,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { fragmentation } from "./fragmentation.ts";

/**
 * Options of {@linkcode StackAllocator}.
 *
 * @example
 * ```ts
 * import { StackAllocator, type StackAllocatorOptions } from "@memkit/memkit";
 *
 * const options: StackAllocatorOptions = { capacity: 64 << 10 };
 * const stack = new StackAllocator(options);
 * stack.dispose();
 * ```
 */
export interface StackAllocatorOptions {
  /** Bytes of the stack (rounded up to whole pages); it never grows. */
  capacity: number;
  /** Where its one chunk comes from. @default {a shared SystemAllocator} */
  backing?: Allocator;
}

/**
 * A position in a {@linkcode StackAllocator}, from `mark()`, to `rewind()` to.
 *
 * @example
 * ```ts
 * import { StackAllocator, type StackMarker } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const stack = new StackAllocator({ capacity: 4096 });
 * const marker: StackMarker = stack.mark();
 * stack.alloc(100);
 * stack.rewind(marker);
 * assert.equal(stack.stats().liveAllocations, 0);
 * stack.dispose();
 * ```
 */
export interface StackMarker {
  /** Blocks live when the marker was taken. */
  readonly depth: number;
}

const OptionsSchema = z.object({
  capacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`),
  backing: typeCheck<Allocator>(
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
}).strict();

class Marker implements StackMarker {
  // `topId` names the block below the marker, so a marker whose blocks were
  // freed and replaced is recognised as stale.
  constructor(readonly owner: StackAllocator, readonly depth: number, readonly topId: number) {}
}

/**
 * Blocks are freed in the reverse order of allocation (LIFO), so allocation
 * and free are a pointer bump each. Freeing out of order throws
 * `AllocationError("invalid-free")`; `mark()` and `rewind(marker)` free
 * everything allocated after a point at once. One fixed chunk: when it is
 * full, allocation fails with "out-of-memory".
 *
 * All blocks are views over the stack's one ArrayBuffer, so a freed block's
 * views stay readable until `dispose()` (which detaches them) and see later
 * allocations; use {@linkcode Arena} with `safety` for scoped temporaries
 * that must not be read after their release.
 *
 * @example
 * ```ts
 * import { StackAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const stack = new StackAllocator({ capacity: 1 << 16 });
 * const a = stack.alloc(100);
 * const b = stack.array(Float32Array, 10);
 * stack.free(b); // most recent first
 * stack.free(a);
 * assert.equal(stack.stats().allocatedBytes, 0);
 * stack.dispose();
 * ```
 */
export class StackAllocator implements Allocator {
  /** Always `"stack"`. */
  readonly kind = "stack" as const;
  readonly #backing: Allocator;
  #chunk: Chunk | null;
  readonly #size: number;
  // Live blocks, bottom to top: chunk offset and requested size.
  #starts: number[] = [];
  #sizes: number[] = [];
  #ids: number[] = [];
  #nextId = 1;
  #cursor = 0;
  #allocatedBytes = 0;
  #peakBytes = 0;
  #totalAllocations = 0;
  #totalFrees = 0;
  #failedAllocations = 0;

  /**
   * Takes the stack's chunk from the backing.
   *
   * @param options The capacity, and optionally the backing.
   * @throws {TypeError} For missing or mistyped options.
   * @throws {RangeError} For a capacity that is not an integer from 1 to 2^47.
   * @throws {AllocationError} "out-of-memory" when the backing refuses the chunk.
   */
  constructor(options: StackAllocatorOptions) {
    const parsed = parseOptions(OptionsSchema, options, "create StackAllocator");
    this.#backing = parsed.backing ?? defaultBacking();
    this.#size = roundToPage(parsed.capacity);
    this.#chunk = takeChunk(this.#backing, this.#size);
    if (this.#chunk === null) {
      throw new AllocationError("out-of-memory", `Cannot create StackAllocator: no ${this.#size}-byte chunk`);
    }
    registerOwner(this, "stack", StackAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    return (owner as StackAllocator).#chunk?.buffer === buffer;
  }

  /**
   * Allocates `size` bytes on top of the stack.
   * @throws {AllocationError} "out-of-memory" when the stack is full, "use-after-free" after `dispose()`.
   */
  alloc(size: number, align?: number): Uint8Array {
    const view = this.tryAlloc(size, align);
    if (view === null) {
      throw new AllocationError(
        "out-of-memory",
        `Cannot allocate ${size} bytes: the stack has ${this.#size - this.#cursor} of ${this.#size} bytes left`,
      );
    }
    return view;
  }

  /** Like {@linkcode StackAllocator.alloc}, but `null` when the stack is full. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    const start = this.#push(size, align, "allocate");
    return start < 0 ? null : new Uint8Array(this.#chunk!.buffer, start, size);
  }

  /** A typed array of `length` elements on top of the stack. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    const bytesPerElement = checkTypedArrayConstructor(ctor, "allocate an array");
    checkSize(length, "allocate an array", "length", Math.floor(MAX_BLOCK_SIZE / bytesPerElement));
    const size = length * bytesPerElement;
    const start = this.#push(size, align ?? Math.max(16, bytesPerElement), "allocate an array");
    if (start < 0) {
      throw new AllocationError("out-of-memory", `Cannot allocate ${size} bytes: the stack is full`);
    }
    return new ctor(this.#chunk!.buffer, start, length);
  }

  /**
   * Frees the top block.
   * @throws {AllocationError} "invalid-free" for a block below the top (out of order), an interior or foreign view; "double-free" for a block already freed; "mismatched-allocator".
   */
  free(view: ArrayBufferView): void {
    const depth = this.#find(view, "free");
    if (depth < 0) return; // an empty view holds nothing
    this.#popTo(depth);
  }

  /**
   * Resizes the top block in place. Other blocks cannot change size in a stack.
   * @throws {AllocationError} "out-of-memory" when the stack lacks room, "unsupported" below the top.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const top = this.#starts.length - 1;
    const depth = this.#locate(view, "resize");
    if (depth < 0) return this.alloc(newSize);
    if (depth !== top) {
      throw new AllocationError(
        "unsupported",
        `Cannot resize ${describe(view)}: it is block ${depth + 1} of ${top + 1}, and only the top block of a ` +
          "stack can change size",
      );
    }
    const start = this.#starts[top];
    if (start + newSize > this.#size) {
      this.#failedAllocations++;
      throw new AllocationError("out-of-memory", `Cannot resize to ${newSize} bytes: the stack is full`);
    }
    this.#allocatedBytes += newSize - this.#sizes[top];
    if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
    this.#sizes[top] = newSize;
    this.#cursor = start + newSize;
    return new Uint8Array(this.#chunk!.buffer, start, newSize);
  }

  /** Whether `view` lies in a live block of this stack. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    return this.#chunk !== null && view.buffer === this.#chunk.buffer && view.byteOffset < this.#cursor &&
      this.#starts.length > 0;
  }

  /** A marker for the current top, to {@linkcode StackAllocator.rewind} to. */
  mark(): StackMarker {
    this.#live("mark");
    const depth = this.#starts.length;
    return new Marker(this, depth, depth === 0 ? 0 : this.#ids[depth - 1]);
  }

  /**
   * Frees every block allocated after `marker` was taken.
   * @throws {TypeError} When `marker` is not a marker.
   * @throws {AllocationError} "mismatched-allocator" for another stack's marker; "invalid-free" when blocks it covered were already freed (the marker is stale).
   */
  rewind(marker: StackMarker): void {
    if (!(marker instanceof Marker)) {
      throw new TypeError(`Cannot rewind as 'marker' must come from mark(): current value is ${describe(marker)}`);
    }
    if (marker.owner !== this) {
      throw new AllocationError("mismatched-allocator", "Cannot rewind to a marker of another StackAllocator");
    }
    this.#live("rewind");
    const depth = this.#starts.length;
    if (marker.depth > depth || (marker.depth > 0 && this.#ids[marker.depth - 1] !== marker.topId)) {
      throw new AllocationError(
        "invalid-free",
        `Cannot rewind to a marker at depth ${marker.depth}: the stack is at depth ${depth} and the blocks the ` +
          "marker covered were already freed",
      );
    }
    this.#popTo(marker.depth);
  }

  /** Frees every block. */
  reset(): void {
    this.#live("reset");
    this.#popTo(0);
  }

  /** Returns the chunk to the backing (detaching every view); the stack is unusable afterwards. */
  dispose(): void {
    if (this.#chunk === null) return;
    this.#totalFrees += this.#starts.length;
    this.#starts = [];
    this.#sizes = [];
    this.#ids = [];
    this.#cursor = 0;
    this.#allocatedBytes = 0;
    returnChunk(this.#backing, this.#chunk);
    this.#chunk = null;
  }

  /** Same as {@linkcode StackAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Counters; the free space is the one region above the top. */
  stats(): AllocatorStats {
    const capacity = this.#chunk === null ? 0 : this.#size;
    const available = capacity - this.#cursor;
    return {
      kind: "stack",
      capacityBytes: capacity,
      allocatedBytes: this.#allocatedBytes,
      availableBytes: available,
      peakBytes: this.#peakBytes,
      liveAllocations: this.#starts.length,
      totalAllocations: this.#totalAllocations,
      totalFrees: this.#totalFrees,
      failedAllocations: this.#failedAllocations,
      largestFreeBlock: available,
      fragmentation: fragmentation([available]),
      overheadBytes: this.#cursor - this.#allocatedBytes,
    };
  }

  #live(op: string): void {
    if (this.#chunk === null) {
      throw new AllocationError("use-after-free", `Cannot ${op}: the StackAllocator was disposed`);
    }
  }

  // Reserves a block on top; returns its offset, or -1 when full. Size 0
  // reserves nothing (alloc(0) views are not blocks).
  #push(size: number, align: number | undefined, op: string): number {
    checkSize(size, op);
    const a = checkAlignment(align, op, native.pageSize);
    this.#live(op);
    if (size === 0) return this.#cursor; // an empty view: not a block, nothing to free
    const rem = this.#cursor % a;
    const start = rem === 0 ? this.#cursor : this.#cursor + a - rem;
    if (start + size > this.#size) {
      this.#failedAllocations++;
      return -1;
    }
    this.#starts.push(start);
    this.#sizes.push(size);
    this.#ids.push(this.#nextId++);
    this.#cursor = start + size;
    this.#allocatedBytes += size;
    if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
    this.#totalAllocations++;
    return start;
  }

  #popTo(depth: number): void {
    while (this.#starts.length > depth) {
      this.#starts.pop();
      this.#ids.pop();
      this.#allocatedBytes -= this.#sizes.pop()!;
      this.#totalFrees++;
    }
    this.#cursor = depth === 0 ? 0 : this.#starts[depth - 1] + this.#sizes[depth - 1];
  }

  // The depth of the top block `view` starts, checking everything else.
  #find(view: ArrayBufferView, op: "free"): number {
    checkView(view, op);
    const depth = this.#locate(view, op);
    if (depth >= 0 && depth !== this.#starts.length - 1) {
      throw new AllocationError(
        "invalid-free",
        `Cannot free ${describe(view)} out of order: it is block ${depth + 1} of ${this.#starts.length}; free the ` +
          "top block first, or rewind to a marker",
      );
    }
    return depth;
  }

  // Index of the live block starting at `view`, -1 for an empty view; throws otherwise.
  #locate(view: ArrayBufferView, op: string): number {
    const buffer = view.buffer as ArrayBuffer;
    if (this.#chunk === null || buffer !== this.#chunk.buffer) {
      if (view.byteLength === 0 && buffer.byteLength === 0 && !buffer.detached) return -1;
      if (this.#chunk === null && buffer.detached) {
        throw new AllocationError("use-after-free", `Cannot ${op}: the StackAllocator was disposed`);
      }
      const kind = ownerKindOf(buffer, this);
      if (kind !== null) {
        return this.#throw(
          "mismatched-allocator",
          `Cannot ${op} ${describe(view)} in this StackAllocator: it belongs to a ${kind} allocator`,
        );
      }
      return this.#throw("invalid-free", `Cannot ${op} ${describe(view)}: it was not allocated by this StackAllocator`);
    }
    if (view.byteLength === 0) return -1;
    const offset = view.byteOffset;
    // Binary search: starts are increasing.
    let lo = 0, hi = this.#starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#starts[mid] < offset) lo = mid + 1;
      else if (this.#starts[mid] > offset) hi = mid - 1;
      else return mid;
    }
    if (offset >= this.#cursor) {
      return this.#throw("double-free", `Cannot ${op} ${describe(view)}: its block was already freed`);
    }
    return this.#throw(
      "invalid-free",
      `Cannot ${op} ${describe(view)} at offset ${offset}: it starts inside a block, not at its first byte`,
    );
  }

  #throw(category: "mismatched-allocator" | "invalid-free" | "double-free", message: string): never {
    throw new AllocationError(category, message);
  }
}
