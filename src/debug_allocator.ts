/**
 * A debugging allocator: leak reports, double-free and invalid-free detection,
 * canaries against overflow and underflow, poisoning, memory limits and
 * allocation stack traces, wrapped around any allocator.
 *
 * @module
 */
import { native } from "../ffi/native.ts";
import { typedArrayOf } from "./_typed_array_of.ts";
import { defaultBacking } from "./_default_backing.ts";
import { OffsetTable } from "./_offset_table.ts";
import { ownerKindOf, registerOwner } from "./_ownership.ts";
import { checkAlignment, checkSize, checkView, describe, MAX_BLOCK_SIZE, parseOptions, z } from "./_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "./allocator.ts";
import { AllocationError } from "./errors.ts";

/**
 * Options of {@linkcode DebugAllocator}. The names follow Zig's
 * `DebugAllocator` (`safety`, `stack_trace_frames`, `never_unmap`,
 * `retain_metadata`, memory limit).
 *
 * @example
 * ```ts
 * import { DebugAllocator, type DebugAllocatorOptions } from "@memkit/memkit";
 *
 * const options: DebugAllocatorOptions = { stackTraceFrames: 8, sampleEvery: 1, poison: true };
 * const debug = new DebugAllocator(undefined, options);
 * debug.deinit();
 * ```
 */
export interface DebugAllocatorOptions {
  /** Canaries, double-free and invalid-free checks, detached views. `false` keeps only the counters. @default {true} */
  safety?: boolean;
  /** Frames of allocation stack trace to keep (0: none). @default {0} */
  stackTraceFrames?: number;
  /** Trace one allocation in this many when `stackTraceFrames` is set. @default {1} */
  sampleEvery?: number;
  /** Fill fresh blocks with 0xAA and freed ones with 0xDD. @default {false} */
  poison?: boolean;
  /** Keep freed blocks' memory (poisoned when `poison`) until `deinit()`, so it is never reused. @default {false} */
  neverUnmap?: boolean;
  /** Keep freed blocks' records, so a C-style double free is reported even after the address was reused. @default {false} */
  retainMetadata?: boolean;
  /** Most bytes live at once; beyond it allocation fails with "limit-exceeded". @default {unlimited} */
  memoryLimit?: number;
  /** Report blocks whose every view was garbage-collected without `free` as "unreachable". @default {false} */
  reportUnreachable?: boolean;
  /**
   * Give each block its own ArrayBuffer and detach it on free, so stale views
   * read as length 0 (about 1 µs per block for the wrap). `false` hands out
   * views of the backing's memory: every other check stays, at a fraction of
   * the cost, but a stale view can still read reused memory. @default {true}
   */
  detachFreed?: boolean;
}

/**
 * A block still allocated, as {@linkcode DebugAllocator.leaks} reports it.
 *
 * @example
 * ```ts
 * import { DebugAllocator, type LeakRecord } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const debug = new DebugAllocator();
 * debug.alloc(10);
 * const [leak]: LeakRecord[] = debug.leaks();
 * assert.equal(leak.size, 10);
 * debug.deinit();
 * ```
 */
export interface LeakRecord {
  /** Address of the block's first byte. */
  address: number;
  /** Bytes requested. */
  size: number;
  /** Alignment requested. */
  align: number;
  /** Milliseconds since it was allocated. */
  ageMs: number;
  /** Where it was allocated, when traced. */
  stack?: string;
  /** True when every view of it was garbage-collected without a free. */
  unreachable?: boolean;
}

const OptionsSchema = z.object({
  safety: z.boolean().optional(),
  stackTraceFrames: z.number().int("must be an integer").min(0, "must be at least 0").max(100, "must be at most 100")
    .optional(),
  sampleEvery: z.number().int("must be an integer").min(1, "must be at least 1").optional(),
  poison: z.boolean().optional(),
  neverUnmap: z.boolean().optional(),
  retainMetadata: z.boolean().optional(),
  memoryLimit: z.number().int("must be an integer").min(0, "must be at least 0").max(
    MAX_BLOCK_SIZE,
    "must be at most 2^47",
  )
    .optional(),
  reportUnreachable: z.boolean().optional(),
  detachFreed: z.boolean().optional(),
}).strict();

const CANARY_BYTE = 0xfd;
const FRESH_BYTE = 0xaa;
const FREED_BYTE = 0xdd;
const CANARY = 16;

interface DebugBlock {
  readonly owner: DebugAllocator;
  readonly id: number;
  /** The backing's block: canary, user bytes, canary. */
  readonly outer: Uint8Array;
  /** Offset of the user bytes in `outer`. */
  readonly front: number;
  readonly address: number;
  readonly size: number;
  readonly align: number;
  readonly born: number;
  readonly trace: Error | null;
  /** The user's ArrayBuffer: weakly held when unreachable blocks are reported. */
  view: ArrayBuffer | WeakRef<ArrayBuffer> | null;
  freedTrace: Error | null;
  index: number;
  /** Its place in the allocator's slot table. */
  readonly slot: number;
  freed: boolean;
  unreachable: boolean;
}

// Address of an ArrayBuffer's first byte, cached on the buffer (an FFI-side
// lookup in Deno, so done once per buffer rather than once per block).
const BASE = Symbol("memkit.baseAddress");

function baseAddress(buffer: ArrayBufferLike): number {
  const tagged = buffer as unknown as Record<symbol, number | undefined>;
  let base = tagged[BASE];
  if (base === undefined) {
    base = buffer.byteLength > 0 ? native.addressOf(new Uint8Array(buffer)) : 0;
    tagged[BASE] = base;
  }
  return base;
}

// The user's ArrayBuffer of each block carries its record (a property, not a
// Map: per-operation Map churn is O(entries) in V8 and JSC).
const RECORD = Symbol("memkit.debugBlock");

function recordOf(buffer: ArrayBufferLike): DebugBlock | undefined {
  return (buffer as unknown as Record<symbol, DebugBlock | undefined>)[RECORD];
}

function captureTrace(frames: number): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = frames + 3;
  const error = new Error("allocated here");
  Error.stackTraceLimit = limit;
  return error;
}

function formatTrace(error: Error | null, frames: number): string | undefined {
  if (error === null || error.stack === undefined) return undefined;
  // Drop the message line and memkit's own frames.
  return error.stack.split("\n").slice(1).filter((line) => !/debug_allocator\.ts|global_allocator\.ts/.test(line))
    .slice(0, frames).map((line) => line.trim()).join("\n");
}

/** Address-based access for the global allocator's C-style functions (not public). */
export let cStyle: {
  malloc(debug: DebugAllocator, size: number): number;
  free(debug: DebugAllocator, address: number, size: number): void;
  realloc(debug: DebugAllocator, address: number, oldSize: number, newSize: number): number;
};

/**
 * Wraps an allocator (by default a SystemAllocator) and checks every use of it,
 * like Zig's `DebugAllocator` and AssemblyScript's rtrace:
 *
 * - **leaks**: `leaks()`, `report()` and `deinit()` list every block still
 *   allocated, with its size, address, age and (when traced) allocation site;
 * - **double free**, also through a stale view after the memory was reused;
 *   **invalid free** of a foreign or interior view; **free into the wrong
 *   allocator**;
 * - **use after free**: each block gets its own ArrayBuffer, detached on free,
 *   so stale views read as length 0; `poison` fills freed memory with 0xDD;
 * - **overflow and underflow** written through raw pointers: 16-byte canaries
 *   around every block, checked on free and by `check()`;
 * - **memory limit**: `memoryLimit` bytes live at most.
 *
 * Stack traces cost nothing when off; on, they are captured unformatted (and
 * only for one allocation in `sampleEvery`) and formatted only in reports.
 *
 * @example Finding a leak
 * ```ts
 * import { DebugAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const debug = new DebugAllocator(undefined, { stackTraceFrames: 6 });
 * const kept = debug.alloc(100);
 * debug.free(debug.alloc(50));
 * assert.equal(debug.leaks().length, 1);
 * console.log(debug.report()); // 1 leaked block, 100 bytes, with where it was allocated
 * debug.free(kept);
 * assert.equal(debug.deinit(), "ok");
 * ```
 */
export class DebugAllocator implements Allocator {
  /** Always `"debug"`. */
  readonly kind = "debug" as const;
  readonly #backing: Allocator;
  readonly #safety: boolean;
  readonly #frames: number;
  readonly #sampleEvery: number;
  readonly #poison: boolean;
  readonly #neverUnmap: boolean;
  readonly #retainMetadata: boolean;
  readonly #limit: number;
  readonly #live: DebugBlock[] = [];
  readonly #retained: DebugBlock[] = [];
  readonly #detach: boolean;
  // Live blocks by address (no Map: see _offset_table.ts), through reusable slots.
  readonly #byAddress = new OffsetTable();
  readonly #slots: (DebugBlock | undefined)[] = [];
  readonly #freeSlots: number[] = [];
  // The last 64 freed addresses, to name double frees when views are not detached.
  readonly #recentlyFreed = new Float64Array(64).fill(-1);
  #recentAt = 0;
  readonly #freedByAddress = new Map<number, DebugBlock>();
  readonly #registry: FinalizationRegistry<DebugBlock> | null;
  #nextId = 1;
  #allocatedBytes = 0;
  #peakBytes = 0;
  #totalAllocations = 0;
  #totalFrees = 0;
  #failedAllocations = 0;
  #deinitialized = false;

  /**
   * Creates a debugging allocator over `backing`.
   *
   * @param backing Where blocks come from (default: a shared SystemAllocator).
   * @param options What to check and record.
   * @throws {TypeError} For a backing that is not an Allocator, or mistyped options.
   * @throws {RangeError} For out-of-range numbers.
   */
  constructor(backing?: Allocator, options: DebugAllocatorOptions = {}) {
    if (
      backing !== undefined && (typeof backing !== "object" || backing === null || typeof backing.alloc !== "function")
    ) {
      throw new TypeError(
        `Cannot create DebugAllocator as 'backing' must be an Allocator: current value is ${describe(backing)}`,
      );
    }
    const parsed = parseOptions(OptionsSchema, options, "create DebugAllocator");
    this.#backing = backing ?? defaultBacking();
    this.#safety = parsed.safety ?? true;
    this.#frames = parsed.stackTraceFrames ?? 0;
    this.#sampleEvery = parsed.sampleEvery ?? 1;
    this.#poison = parsed.poison ?? false;
    this.#neverUnmap = parsed.neverUnmap ?? false;
    this.#retainMetadata = parsed.retainMetadata ?? false;
    this.#limit = parsed.memoryLimit ?? Infinity;
    this.#detach = parsed.detachFreed ?? true;
    this.#registry = parsed.reportUnreachable
      ? new FinalizationRegistry((block) => {
        if (!block.freed) block.unreachable = true;
      })
      : null;
    registerOwner(this, "debug", DebugAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const record = recordOf(buffer);
    return record !== undefined && record.owner === owner && !record.freed;
  }

  /**
   * Allocates `size` bytes.
   * @throws {AllocationError} "limit-exceeded" past `memoryLimit`; "out-of-memory" when the backing refuses.
   */
  alloc(size: number, align?: number): Uint8Array {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#lastError!;
    return view;
  }

  #lastError: AllocationError | null = null;

  /** Like {@linkcode DebugAllocator.alloc}, but `null` instead of an out-of-memory or limit error. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    checkSize(size, "allocate");
    const a = checkAlignment(align, "allocate", native.pageSize);
    this.#usable("allocate");
    if (this.#allocatedBytes + size > this.#limit) {
      this.#failedAllocations++;
      this.#lastError = new AllocationError(
        "limit-exceeded",
        `Cannot allocate ${size} bytes: ${this.#allocatedBytes} of the ${this.#limit}-byte memory limit are in use`,
      );
      return null;
    }
    if (!this.#safety) return this.#allocPlain(size, a);
    const front = Math.max(CANARY, a);
    // The default alignment is left implicit, so backings keep their fast paths.
    const outer = this.#backing.tryAlloc(front + size + CANARY, a === 16 ? undefined : a);
    if (outer === null) {
      this.#failedAllocations++;
      this.#lastError = new AllocationError(
        "out-of-memory",
        `Cannot allocate ${size} bytes: the backing allocator refused`,
      );
      return null;
    }
    outer.fill(CANARY_BYTE, 0, front);
    outer.fill(CANARY_BYTE, front + size);
    const address = baseAddress(outer.buffer) + outer.byteOffset + front;
    const id = this.#nextId++;
    const trace = this.#frames > 0 && id % this.#sampleEvery === 0 ? captureTrace(this.#frames) : null;
    const block: DebugBlock = {
      owner: this,
      id,
      outer,
      front,
      address,
      size,
      align: a,
      born: Date.now(), // Date.now, not performance.now: the latter is a ~100 ns op call in Deno
      trace,
      view: null,
      freedTrace: null,
      index: this.#live.length,
      slot: this.#freeSlots.length ? this.#freeSlots.pop()! : this.#slots.length,
      freed: false,
      unreachable: false,
    };
    this.#live.push(block);
    this.#slots[block.slot] = block;
    this.#byAddress.set(address, block.slot);
    this.#count(size);
    if (!this.#detach) {
      const shared = new Uint8Array(outer.buffer, outer.byteOffset + front, size);
      if (this.#poison) shared.fill(FRESH_BYTE);
      return shared;
    }
    // Its own ArrayBuffer, so free can detach every view of it.
    const buffer = size > 0 ? native.wrap(address, size) : new ArrayBuffer(0);
    (buffer as unknown as Record<symbol, DebugBlock>)[RECORD] = block;
    block.view = this.#registry ? new WeakRef(buffer) : buffer;
    const view = new Uint8Array(buffer);
    if (this.#poison) view.fill(FRESH_BYTE);
    this.#registry?.register(buffer, block, block);
    return view;
  }

  // Counters only (safety off): the backing's own block, tagged for free().
  #allocPlain(size: number, align: number): Uint8Array | null {
    const view = this.#backing.tryAlloc(size, align);
    if (view === null) {
      this.#failedAllocations++;
      this.#lastError = new AllocationError(
        "out-of-memory",
        `Cannot allocate ${size} bytes: the backing allocator refused`,
      );
      return null;
    }
    this.#count(size);
    return view;
  }

  #count(size: number): void {
    this.#allocatedBytes += size;
    if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
    this.#totalAllocations++;
  }

  /** A typed array of `length` elements. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align);
  }

  /**
   * Frees a block after checking it: canaries intact, freed once, its own.
   * @throws {AllocationError} "double-free", "invalid-free", "mismatched-allocator", "corruption" (a canary was overwritten; the block is still freed).
   */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    if (!this.#safety) {
      const size = view.byteLength;
      this.#backing.free(view);
      this.#allocatedBytes -= size;
      this.#totalFrees++;
      return;
    }
    const block = this.#own(view, "free");
    if (block === null) return;
    const corruption = this.#canaryError(block);
    this.#release(block);
    if (corruption) throw corruption;
  }

  /**
   * Resizes by allocating, copying and freeing, so every resize moves and
   * detaches the old view (stale views after a resize are caught at once).
   * @throws {AllocationError} As for `alloc` and `free`.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    if (!this.#safety) {
      const size = view.byteLength;
      const fresh = this.#backing.resize(view, newSize);
      this.#allocatedBytes += newSize - size;
      if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
      return fresh;
    }
    const block = this.#own(view, "resize");
    if (block === null) return this.alloc(newSize);
    const fresh = this.alloc(newSize, block.align);
    fresh.set(new Uint8Array(block.outer.buffer, block.outer.byteOffset + block.front, Math.min(block.size, newSize)));
    this.free(view);
    return fresh;
  }

  /** Whether `view` is a live block of this allocator. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (!this.#safety) return this.#backing.owns(view);
    if (!this.#detach && recordOf(view.buffer) === undefined) {
      if ((view.buffer as ArrayBuffer).detached || view.buffer.byteLength === 0) return false;
      const slot = this.#byAddress.get(baseAddress(view.buffer) + view.byteOffset);
      return slot >= 0 && this.#slots[slot]?.outer.buffer === view.buffer;
    }
    const block = recordOf(view.buffer);
    return block !== undefined && block.owner === this && !block.freed;
  }

  /** Counters of the blocks as the user sees them (canaries are overhead). */
  stats(): AllocatorStats {
    const backing = this.#backing.stats();
    return {
      kind: "debug",
      capacityBytes: backing.capacityBytes,
      allocatedBytes: this.#allocatedBytes,
      availableBytes: backing.availableBytes,
      peakBytes: this.#peakBytes,
      liveAllocations: this.#safety ? this.#live.length : this.#totalAllocations - this.#totalFrees,
      totalAllocations: this.#totalAllocations,
      totalFrees: this.#totalFrees,
      failedAllocations: this.#failedAllocations,
      largestFreeBlock: backing.largestFreeBlock,
      fragmentation: backing.fragmentation,
      overheadBytes: Math.max(0, backing.allocatedBytes - this.#allocatedBytes),
    };
  }

  /** Every block still allocated, oldest first. */
  leaks(): LeakRecord[] {
    const now = Date.now();
    return [...this.#live].sort((a, b) => a.id - b.id).map((block) => {
      const record: LeakRecord = {
        address: block.address,
        size: block.size,
        align: block.align,
        ageMs: now - block.born,
      };
      const stack = formatTrace(block.trace, this.#frames);
      if (stack !== undefined) record.stack = stack;
      if (block.unreachable) record.unreachable = true;
      return record;
    });
  }

  /**
   * Checks every live block's canaries.
   * @throws {AllocationError} "corruption" naming the first damaged block.
   */
  check(): void {
    for (const block of this.#live) {
      const error = this.#canaryError(block);
      if (error) throw error;
    }
  }

  /** A report a person can act on: counts, bytes, and each leaked block. */
  report(): string {
    const leaks = this.leaks();
    if (leaks.length === 0) return "memkit: no leaks";
    const bytes = leaks.reduce((sum, l) => sum + l.size, 0);
    const unreachable = leaks.filter((l) => l.unreachable).length;
    const lines = [
      `memkit: ${leaks.length} leaked block${leaks.length === 1 ? "" : "s"}, ${bytes} bytes` +
      (unreachable ? ` (${unreachable} unreachable: every view was garbage-collected without free)` : ""),
    ];
    for (const leak of leaks.slice(0, 50)) {
      lines.push(
        `  ${leak.size} bytes at 0x${leak.address.toString(16)}, align ${leak.align}, age ${leak.ageMs.toFixed(0)} ms` +
          (leak.unreachable ? ", unreachable" : ""),
      );
      if (leak.stack) { for (const frame of leak.stack.split("\n")) lines.push(`      ${frame}`); }
    }
    if (leaks.length > 50) lines.push(`  … and ${leaks.length - 50} more`);
    return lines.join("\n");
  }

  /**
   * Ends the allocator's life: checks canaries, returns every block (live,
   * and kept by `neverUnmap`) to the backing, and says whether anything leaked.
   * A second call returns "ok".
   * @returns "leak" when blocks were still allocated, else "ok".
   */
  deinit(): "ok" | "leak" {
    if (this.#deinitialized) return "ok";
    const leaked = this.#live.length > 0;
    for (const block of [...this.#live]) this.#release(block, true);
    for (const block of this.#retained) this.#backing.free(block.outer);
    this.#retained.length = 0;
    this.#deinitialized = true;
    return leaked ? "leak" : "ok";
  }

  #usable(op: string): void {
    if (this.#deinitialized) {
      throw new AllocationError("use-after-free", `Cannot ${op}: the DebugAllocator was deinitialized`);
    }
  }

  // The live block `view` starts, null for an empty foreign view; throws for misuse.
  #own(view: ArrayBufferView, op: "free" | "resize"): DebugBlock | null {
    const buffer = view.buffer;
    if (!this.#detach && recordOf(buffer) === undefined) return this.#ownByAddress(view, op);
    const block = recordOf(buffer);
    if (block === undefined || block.owner !== this) {
      if (
        view.byteLength === 0 && buffer.byteLength === 0 && !(buffer as ArrayBuffer).detached && block === undefined
      ) {
        return null;
      }
      const kind = block !== undefined ? "debug" : ownerKindOf(buffer, this);
      if (kind !== null) {
        throw new AllocationError(
          "mismatched-allocator",
          `Cannot ${op} ${describe(view)} in this DebugAllocator: it belongs to another ${kind} allocator`,
        );
      }
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${describe(view)}: it was not allocated by this DebugAllocator`,
      );
    }
    if (block.freed) {
      const where = formatTrace(block.freedTrace, this.#frames);
      const born = formatTrace(block.trace, this.#frames);
      throw new AllocationError(
        op === "free" ? "double-free" : "use-after-free",
        `Cannot ${op} the ${block.size}-byte block at 0x${block.address.toString(16)}: it was already freed` +
          (born ? `\n  allocated at:\n    ${born.replaceAll("\n", "\n    ")}` : "") +
          (where ? `\n  first freed at:\n    ${where.replaceAll("\n", "\n    ")}` : ""),
      );
    }
    if (view.byteOffset !== 0) {
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${describe(view)} at offset ${view.byteOffset} of the ${block.size}-byte block at 0x${
          block.address.toString(16)
        }: pass a view that starts at the block's first byte`,
      );
    }
    return block;
  }

  // Without detached views: find the block by the view's address.
  #ownByAddress(view: ArrayBufferView, op: "free" | "resize"): DebugBlock | null {
    const buffer = view.buffer;
    if (view.byteLength === 0 && buffer.byteLength === 0 && !(buffer as ArrayBuffer).detached) return null;
    const address = (buffer as ArrayBuffer).detached ? -1 : baseAddress(buffer) + view.byteOffset;
    const slot = address < 0 ? -1 : this.#byAddress.get(address);
    const block = slot < 0 ? undefined : this.#slots[slot];
    if (block !== undefined && block.outer.buffer === buffer) return block;
    // A detached buffer: the backing returned that memory, so the block was freed.
    if (
      (buffer as ArrayBuffer).detached || this.#recentlyFreed.includes(address) || this.#freedByAddress.has(address)
    ) {
      throw new AllocationError(
        op === "free" ? "double-free" : "use-after-free",
        `Cannot ${op} ${describe(view)}${
          address >= 0 ? ` at 0x${address.toString(16)}` : ""
        }: its block was already freed`,
      );
    }
    if (this.#backing.owns(view)) {
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${
          describe(view)
        }: it does not start a block of this DebugAllocator (an interior view, or a freed block)`,
      );
    }
    const kind = ownerKindOf(buffer, this);
    if (kind !== null) {
      throw new AllocationError(
        "mismatched-allocator",
        `Cannot ${op} ${describe(view)} in this DebugAllocator: it belongs to a ${kind} allocator`,
      );
    }
    throw new AllocationError(
      "invalid-free",
      `Cannot ${op} ${describe(view)}: it was not allocated by this DebugAllocator`,
    );
  }

  #canaryError(block: DebugBlock): AllocationError | null {
    const outer = block.outer;
    const end = block.front + block.size;
    for (let i = 0; i < block.front; i++) {
      if (outer[i] !== CANARY_BYTE) return this.#corruption(block, "underflow", block.front - i);
    }
    for (let i = end + CANARY - 1; i >= end; i--) {
      if (outer[i] !== CANARY_BYTE) return this.#corruption(block, "overflow", i - end + 1);
    }
    return null;
  }

  #corruption(block: DebugBlock, kind: "overflow" | "underflow", distance: number): AllocationError {
    const born = formatTrace(block.trace, this.#frames);
    return new AllocationError(
      "corruption",
      `Heap ${kind} detected: the ${block.size}-byte block at 0x${block.address.toString(16)} was written ` +
        `${distance} byte${distance === 1 ? "" : "s"} ${kind === "overflow" ? "past its end" : "before its start"}` +
        (born ? `\n  allocated at:\n    ${born.replaceAll("\n", "\n    ")}` : ""),
    );
  }

  #release(block: DebugBlock, quiet = false): void {
    block.freed = true;
    if (this.#frames > 0 && block.trace !== null && !quiet) block.freedTrace = captureTrace(this.#frames);
    // Swap-remove from the live list.
    const last = this.#live.pop()!;
    if (last !== block) {
      this.#live[block.index] = last;
      last.index = block.index;
    }
    this.#byAddress.delete(block.address);
    this.#slots[block.slot] = undefined;
    this.#freeSlots.push(block.slot);
    this.#recentlyFreed[this.#recentAt] = block.address;
    this.#recentAt = (this.#recentAt + 1) & 63;
    if (this.#retainMetadata) this.#freedByAddress.set(block.address, block);
    this.#registry?.unregister(block);
    this.#allocatedBytes -= block.size;
    this.#totalFrees++;
    // Detach every view of the block before its memory goes anywhere.
    const buffer = block.view instanceof WeakRef ? block.view.deref() : block.view;
    buffer?.transfer(0);
    block.view = null;
    if (this.#poison) block.outer.fill(FREED_BYTE, block.front, block.front + block.size);
    if (this.#neverUnmap) this.#retained.push(block);
    else this.#backing.free(block.outer);
  }

  static {
    cStyle = {
      malloc: (debug, size) => {
        const view = debug.alloc(size);
        return size === 0 ? 0 : recordOf(view.buffer)!.address;
      },
      free: (debug, address, size) => debug.#freeAddress(address, size),
      realloc: (debug, address, oldSize, newSize) => {
        if (address === 0) return cStyle.malloc(debug, newSize);
        const block = debug.#blockAt(address, oldSize, "realloc");
        const fresh = debug.alloc(newSize, block.align);
        fresh.set(new Uint8Array(block.outer.buffer, block.outer.byteOffset + block.front, Math.min(oldSize, newSize)));
        debug.#freeAddress(address, oldSize);
        return newSize === 0 ? 0 : recordOf(fresh.buffer)!.address;
      },
    };
  }

  #blockAt(address: number, size: number, op: string): DebugBlock {
    const slot = this.#byAddress.get(address);
    const block = slot < 0 ? undefined : this.#slots[slot];
    if (block === undefined) {
      const freed = this.#freedByAddress.get(address);
      throw freed
        ? new AllocationError(
          "double-free",
          `Cannot ${op} 0x${address.toString(16)}: its ${freed.size}-byte block was already freed`,
        )
        : new AllocationError(
          "invalid-free",
          `Cannot ${op} 0x${address.toString(16)}: no block of this allocator starts there`,
        );
    }
    if (block.size !== size) {
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} 0x${address.toString(16)} with size ${size}: the block was allocated with size ${block.size}`,
      );
    }
    return block;
  }

  #freeAddress(address: number, size: number): void {
    if (address === 0) return;
    if (!this.#safety) throw new AllocationError("unsupported", "The C-style API needs safety on");
    const block = this.#blockAt(address, size, "free");
    const corruption = this.#canaryError(block);
    this.#release(block);
    if (corruption) throw corruption;
  }
}
