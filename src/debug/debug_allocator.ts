/**
 * A debugging allocator: leak reports, double-free and invalid-free detection,
 * canaries against overflow and underflow, poisoning, memory limits and
 * allocation stack traces, wrapped around any allocator.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { typedArrayOf } from "../alloc/_typed_array_of.ts";
import { defaultBacking } from "../alloc/_default_backing.ts";
import { BlockTable } from "./_block_table.ts";
import { taskClock } from "./_task_clock.ts";
import { OffsetTable } from "../alloc/_offset_table.ts";
import { isEmptyView, ownerKindOf, registerOwner } from "../alloc/_ownership.ts";
import { addressOf } from "../base/native_info.ts";
import { checkAlignment, checkSize, checkView, describe, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";

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
const CANARY_WORD = 0xfdfdfdfd | 0;
const FRESH_BYTE = 0xaa;
const FREED_BYTE = 0xdd;
/** Bytes of canary after a block, and of header + canary before it. */
const CANARY = 16;

// Each block's 16 bytes just before the user's are a header and a canary:
// [slot, id (low 32 bits), canary, canary] as Int32 words. A free reads the
// header through the chunk's cached Int32Array and checks it against the
// block table: no hash lookup on the hot path, and a header destroyed by an
// underflow is caught like any other canary.

/** What memkit caches on each ArrayBuffer it carves debug blocks from. */
interface Chunk {
  /** Address of the buffer's first byte. */
  readonly base: number;
  /** The buffer as Int32 words, for headers and canaries. */
  readonly words: Int32Array;
}

const CHUNK = Symbol("memkit.debugChunk");

function chunkOf(buffer: ArrayBufferLike): Chunk {
  const tagged = buffer as unknown as Record<symbol, Chunk | undefined>;
  let chunk = tagged[CHUNK];
  if (chunk === undefined) {
    chunk = {
      base: buffer.byteLength > 0 ? native.addressOf(new Uint8Array(buffer)) : 0,
      words: new Int32Array(buffer, 0, Math.min(Math.floor(buffer.byteLength / 4), 2 ** 30)),
    };
    tagged[CHUNK] = chunk;
  }
  return chunk;
}

/** Whether a block whose user bytes start at `user` in its buffer has an Int32 header (else it is in the address table). */
function hasHeader(user: number, words: Int32Array): boolean {
  return (user & 3) === 0 && user >= CANARY && user <= words.length * 4;
}

/**
 * The record a block's own ArrayBuffer carries when views are detached on
 * free: it outlives the slot, so a double free through a stale view can say
 * where the block was allocated and first freed.
 */
interface BufferTag {
  readonly owner: DebugAllocator;
  readonly slot: number;
  readonly id: number;
  readonly address: number;
  readonly size: number;
  readonly trace: Error | null;
  freedTrace: Error | null;
  freed: boolean;
}

const TAG = Symbol("memkit.debugBlock");

function tagOf(buffer: ArrayBufferLike): BufferTag | undefined {
  return (buffer as unknown as Record<symbol, BufferTag | undefined>)[TAG];
}

/** What `retainMetadata` keeps of a freed block. */
interface FreedRecord {
  readonly size: number;
  readonly trace: Error | null;
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

function indent(title: string, trace: string | undefined): string {
  return trace ? `\n  ${title}:\n    ${trace.replaceAll("\n", "\n    ")}` : "";
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
 * - **overflow and underflow** written through raw pointers: a 16-byte canary
 *   after every block and a 16-byte header and canary before it, checked on
 *   free and by `check()`;
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
  readonly #detach: boolean;
  readonly #blocks = new BlockTable();
  /** Outer blocks kept by `neverUnmap` until deinit. */
  readonly #retained: Uint8Array[] = [];
  // Blocks found by address rather than by header: those of the C-style API and
  // the rare block whose offset cannot hold an Int32 header (no Map: see _offset_table.ts).
  readonly #byAddress = new OffsetTable();
  // The last 64 freed addresses, to name double frees when views are not detached.
  readonly #recentlyFreed = new Float64Array(64).fill(-1);
  #recentAt = 0;
  readonly #freedByAddress = new Map<number, FreedRecord>();
  readonly #registry: FinalizationRegistry<BufferTag> | null;
  #nextId = 1;
  #allocatedBytes = 0;
  #peakBytes = 0;
  #totalAllocations = 0;
  #totalFrees = 0;
  #failedAllocations = 0;
  #deinitialized = false;
  #lastError: AllocationError | null = null;

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
    const blocks = this.#blocks;
    this.#registry = parsed.reportUnreachable
      ? new FinalizationRegistry((tag) => {
        if (!tag.freed && blocks.ids[tag.slot] === tag.id) blocks.unreachable[tag.slot] = 1;
      })
      : null;
    registerOwner(this, "debug", DebugAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const tag = tagOf(buffer);
    return tag !== undefined && tag.owner === owner && !tag.freed;
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

  /** Like {@linkcode DebugAllocator.alloc}, but `null` instead of an out-of-memory or limit error. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    checkSize(size, "allocate");
    const a = checkAlignment(align, "allocate", native.pageSize);
    if (this.#deinitialized) this.#usable("allocate");
    if (!this.#safety) return this.#allocPlain(size, a);
    const slot = this.#allocate(size, a);
    if (slot < 0) return null;
    const outer = this.#blocks.outers[slot]!;
    const front = a > CANARY ? a : CANARY;
    if (!this.#detach) {
      return new Uint8Array(outer.buffer, outer.byteOffset + front, size);
    }
    // Its own ArrayBuffer, so free can detach every view of it.
    const address = this.#blocks.addresses[slot];
    const buffer = size > 0 ? native.wrap(address, size) : new ArrayBuffer(0);
    const tag: BufferTag = {
      owner: this,
      slot,
      id: this.#blocks.ids[slot],
      address,
      size,
      trace: this.#blocks.traces[slot],
      freedTrace: null,
      freed: false,
    };
    (buffer as unknown as Record<symbol, BufferTag>)[TAG] = tag;
    this.#blocks.views[slot] = this.#registry ? new WeakRef(buffer) : buffer;
    this.#registry?.register(buffer, tag, tag);
    return new Uint8Array(buffer);
  }

  // Takes a block from the backing, arms its header and canaries and records
  // it; the slot, or -1 with #lastError set.
  #allocate(size: number, a: number): number {
    if (this.#overLimit(size)) return -1;
    const front = a > CANARY ? a : CANARY;
    // The default alignment is left implicit, so backings keep their fast paths.
    const outer = this.#backing.tryAlloc(front + size + CANARY, a === 16 ? undefined : a);
    if (outer === null) {
      return this.#fail("out-of-memory", `Cannot allocate ${size} bytes: the backing allocator refused`);
    }
    const chunk = chunkOf(outer.buffer);
    const user = outer.byteOffset + front;
    const blocks = this.#blocks;
    const slot = blocks.take();
    const id = this.#nextId++;
    const address = chunk.base + user;
    blocks.ids[slot] = id;
    blocks.addresses[slot] = address;
    blocks.sizes[slot] = size;
    blocks.aligns[slot] = a;
    blocks.born[slot] = taskClock();
    blocks.outers[slot] = outer;
    if (this.#frames > 0 && id % this.#sampleEvery === 0) blocks.traces[slot] = captureTrace(this.#frames);
    const words = chunk.words;
    if (hasHeader(user, words)) {
      const h = (user - CANARY) >>> 2;
      words[h] = slot;
      words[h + 1] = id | 0;
      words[h + 2] = CANARY_WORD;
      words[h + 3] = CANARY_WORD;
      if (front > CANARY) outer.fill(CANARY_BYTE, 0, front - CANARY);
    } else {
      outer.fill(CANARY_BYTE, 0, front);
      this.#byAddress.set(address, slot);
    }
    const end = user + size;
    if ((end & 3) === 0 && end + CANARY <= words.length * 4) {
      const e = end >>> 2;
      words[e] = CANARY_WORD;
      words[e + 1] = CANARY_WORD;
      words[e + 2] = CANARY_WORD;
      words[e + 3] = CANARY_WORD;
    } else {
      outer.fill(CANARY_BYTE, front + size);
    }
    if (this.#poison) outer.fill(FRESH_BYTE, front, front + size);
    this.#count(size);
    return slot;
  }

  // True (with #lastError set) when `size` more bytes would pass memoryLimit.
  #overLimit(size: number): boolean {
    if (this.#allocatedBytes + size <= this.#limit) return false;
    this.#fail(
      "limit-exceeded",
      `Cannot allocate ${size} bytes: ${this.#allocatedBytes} of the ${this.#limit}-byte memory limit are in use`,
    );
    return true;
  }

  #fail(category: "limit-exceeded" | "out-of-memory", message: string): -1 {
    this.#failedAllocations++;
    this.#lastError = new AllocationError(category, message);
    return -1;
  }

  // Counters only (safety off): the backing's own block.
  #allocPlain(size: number, align: number): Uint8Array | null {
    if (this.#overLimit(size)) return null;
    const view = this.#backing.tryAlloc(size, align);
    if (view === null) {
      this.#fail("out-of-memory", `Cannot allocate ${size} bytes: the backing allocator refused`);
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
    const slot = this.#slotOf(view, "free");
    if (slot < 0) return;
    const corruption = this.#canaryError(slot);
    this.#release(slot);
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
    const slot = this.#slotOf(view, "resize");
    if (slot < 0) return this.alloc(newSize);
    const fresh = this.alloc(newSize, this.#blocks.aligns[slot]);
    fresh.set(this.#userBytes(slot).subarray(0, newSize));
    this.free(view);
    return fresh;
  }

  /** Whether `view` is a live block of this allocator. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (!this.#safety) return this.#backing.owns(view);
    return this.#locate(view) >= 0;
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
      liveAllocations: this.#safety ? this.#blocks.live : this.#totalAllocations - this.#totalFrees,
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
    const blocks = this.#blocks;
    return blocks.liveSlots().map((slot) => {
      const record: LeakRecord = {
        address: blocks.addresses[slot],
        size: blocks.sizes[slot],
        align: blocks.aligns[slot],
        ageMs: Math.max(0, now - blocks.born[slot]),
      };
      const stack = formatTrace(blocks.traces[slot], this.#frames);
      if (stack !== undefined) record.stack = stack;
      if (blocks.unreachable[slot]) record.unreachable = true;
      return record;
    });
  }

  /**
   * Checks every live block's canaries.
   * @throws {AllocationError} "corruption" naming the first damaged block.
   */
  check(): void {
    for (const slot of this.#blocks.liveSlots()) {
      const error = this.#canaryError(slot);
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
    const leaked = this.#blocks.live > 0;
    for (const slot of this.#blocks.liveSlots()) this.#release(slot, true);
    for (const outer of this.#retained) this.#backing.free(outer);
    this.#retained.length = 0;
    this.#deinitialized = true;
    return leaked ? "leak" : "ok";
  }

  #usable(op: string): void {
    if (this.#deinitialized) {
      throw new AllocationError("use-after-free", `Cannot ${op}: the DebugAllocator was deinitialized`);
    }
  }

  #front(slot: number): number {
    const a = this.#blocks.aligns[slot];
    return a > CANARY ? a : CANARY;
  }

  #userBytes(slot: number): Uint8Array {
    const outer = this.#blocks.outers[slot]!;
    return new Uint8Array(outer.buffer, outer.byteOffset + this.#front(slot), this.#blocks.sizes[slot]);
  }

  // The live block `view` starts, or -1; never throws (owns() and the fast path of free()).
  #locate(view: ArrayBufferView): number {
    const buffer = view.buffer;
    const blocks = this.#blocks;
    if (this.#detach) {
      const tag = tagOf(buffer);
      return tag !== undefined && tag.owner === this && !tag.freed && view.byteOffset === 0 ? tag.slot : -1;
    }
    const chunk = (buffer as unknown as Record<symbol, Chunk | undefined>)[CHUNK];
    if (chunk === undefined) return -1;
    const user = view.byteOffset;
    let slot = -1;
    if (hasHeader(user, chunk.words)) {
      const h = (user - CANARY) >>> 2;
      slot = chunk.words[h];
      // A header names a slot; the slot must name this very block back.
      if (
        !(slot >= 0 && slot < blocks.end && blocks.ids[slot] !== 0 && (blocks.ids[slot] | 0) === chunk.words[h + 1])
      ) {
        slot = -1;
      }
    }
    if (slot < 0 && this.#byAddress.size > 0) slot = this.#byAddress.get(chunk.base + user);
    if (slot < 0) return -1;
    const outer = blocks.outers[slot]!;
    return outer.buffer === buffer && outer.byteOffset + this.#front(slot) === user ? slot : -1;
  }

  // The live block `view` starts; -1 for an empty foreign view (freeing it is a
  // no-op); throws for every kind of misuse.
  #slotOf(view: ArrayBufferView, op: "free" | "resize"): number {
    const slot = this.#locate(view);
    if (slot >= 0) return slot;
    return this.#detach ? this.#misuseOfTagged(view, op) : this.#misuseByAddress(view, op);
  }

  // Detached views: the buffer's tag says whose block it was and whether it was freed.
  #misuseOfTagged(view: ArrayBufferView, op: "free" | "resize"): number {
    const buffer = view.buffer;
    const tag = tagOf(buffer);
    if (tag === undefined || tag.owner !== this) {
      if (tag === undefined && isEmptyView(view)) return -1;
      const kind = tag !== undefined ? "debug" : ownerKindOf(buffer, this);
      if (kind !== null) throw this.#mismatched(view, op, kind === "debug" ? "another debug" : `a ${kind}`);
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${describe(view)}: it was not allocated by this DebugAllocator`,
      );
    }
    if (tag.freed) {
      throw new AllocationError(
        op === "free" ? "double-free" : "use-after-free",
        `Cannot ${op} the ${tag.size}-byte block at 0x${tag.address.toString(16)}: it was already freed` +
          indent("allocated at", formatTrace(tag.trace, this.#frames)) +
          indent("first freed at", formatTrace(tag.freedTrace, this.#frames)),
      );
    }
    throw this.#interior(view, op, tag.size, tag.address);
  }

  // Views of the backing's memory: classify by address.
  #misuseByAddress(view: ArrayBufferView, op: "free" | "resize"): number {
    const buffer = view.buffer as ArrayBuffer;
    if (isEmptyView(view) && (buffer as unknown as Record<symbol, unknown>)[CHUNK] === undefined) return -1;
    const blocks = this.#blocks;
    const address = buffer.detached || buffer.byteLength === 0 ? -1 : addressOf(view);
    if (address >= 0) {
      // A block whose header was overwritten: free it, and let the canary check report the damage.
      const slot = blocks.find(address);
      if (slot >= 0 && blocks.outers[slot]!.buffer === buffer) return slot;
    }
    // A detached buffer: the backing returned that memory, so the block was freed.
    if (buffer.detached || this.#recentlyFreed.includes(address) || this.#freedByAddress.has(address)) {
      const freed = this.#freedByAddress.get(address);
      throw new AllocationError(
        op === "free" ? "double-free" : "use-after-free",
        `Cannot ${op} ${describe(view)}${address >= 0 ? ` at 0x${address.toString(16)}` : ""}: its ${
          freed ? `${freed.size}-byte ` : ""
        }block was already freed` + indent("allocated at", formatTrace(freed?.trace ?? null, this.#frames)),
      );
    }
    for (const slot of blocks.liveSlots()) {
      const start = blocks.addresses[slot];
      if (address > start && address < start + blocks.sizes[slot] && blocks.outers[slot]!.buffer === buffer) {
        throw this.#interior(view, op, blocks.sizes[slot], start);
      }
    }
    const kind = ownerKindOf(buffer, this);
    if (kind !== null) throw this.#mismatched(view, op, kind === "debug" ? "another debug" : `a ${kind}`);
    throw new AllocationError(
      "invalid-free",
      `Cannot ${op} ${describe(view)}: it does not start a live block of this DebugAllocator`,
    );
  }

  #mismatched(view: ArrayBufferView, op: string, owner: string): AllocationError {
    return new AllocationError(
      "mismatched-allocator",
      `Cannot ${op} ${describe(view)} in this DebugAllocator: it belongs to ${owner} allocator`,
    );
  }

  #interior(view: ArrayBufferView, op: string, size: number, address: number): AllocationError {
    const offset = this.#detach ? view.byteOffset : addressOf(view) - address;
    return new AllocationError(
      "invalid-free",
      `Cannot ${op} ${describe(view)} at offset ${offset} of the ${size}-byte block at 0x${
        address.toString(16)
      }: pass a view that starts at the block's first byte`,
    );
  }

  // The fast check compares Int32 words; only a damaged block is read byte by byte.
  #canaryError(slot: number): AllocationError | null {
    const blocks = this.#blocks;
    const outer = blocks.outers[slot]!;
    const front = this.#front(slot);
    const size = blocks.sizes[slot];
    const words = chunkOf(outer.buffer).words;
    const user = outer.byteOffset + front;
    const end = user + size;
    let intact = hasHeader(user, words);
    if (intact) {
      const h = (user - CANARY) >>> 2;
      intact = words[h] === slot && words[h + 1] === (blocks.ids[slot] | 0) && words[h + 2] === CANARY_WORD &&
        words[h + 3] === CANARY_WORD;
    }
    if (intact && (end & 3) === 0 && end + CANARY <= words.length * 4) {
      const e = end >>> 2;
      intact = words[e] === CANARY_WORD && words[e + 1] === CANARY_WORD && words[e + 2] === CANARY_WORD &&
        words[e + 3] === CANARY_WORD;
    } else if (intact) {
      for (let i = front + size; i < front + size + CANARY; i++) if (outer[i] !== CANARY_BYTE) intact = false;
    }
    if (intact) { for (let i = 0; i < front - CANARY; i++) if (outer[i] !== CANARY_BYTE) intact = false; }
    if (intact) return null;
    // Byte by byte: the farthest damaged byte on each side.
    const expected = this.#expectedFront(slot, user, words, front);
    for (let i = 0; i < front; i++) {
      if (outer[i] !== expected[i]) return this.#corruption(slot, "underflow", front - i);
    }
    for (let i = front + size + CANARY - 1; i >= front + size; i--) {
      if (outer[i] !== CANARY_BYTE) return this.#corruption(slot, "overflow", i - front - size + 1);
    }
    return null;
  }

  // What the bytes before a block should be: canary, then its header when it has one.
  #expectedFront(slot: number, user: number, words: Int32Array, front: number): Uint8Array {
    const expected = new Uint8Array(front).fill(CANARY_BYTE);
    if (hasHeader(user, words)) {
      new Int32Array(expected.buffer, front - CANARY, 2).set([slot, this.#blocks.ids[slot] | 0]);
    }
    return expected;
  }

  #corruption(slot: number, kind: "overflow" | "underflow", distance: number): AllocationError {
    const blocks = this.#blocks;
    return new AllocationError(
      "corruption",
      `Heap ${kind} detected: the ${blocks.sizes[slot]}-byte block at 0x${blocks.addresses[slot].toString(16)} was ` +
        `written ${distance} byte${distance === 1 ? "" : "s"} ${
          kind === "overflow" ? "past its end" : "before its start"
        }` +
        indent("allocated at", formatTrace(blocks.traces[slot], this.#frames)),
    );
  }

  #release(slot: number, quiet = false): void {
    const blocks = this.#blocks;
    const address = blocks.addresses[slot];
    const size = blocks.sizes[slot];
    const outer = blocks.outers[slot]!;
    if (this.#detach) {
      // Detach every view of the block before its memory goes anywhere.
      const held = blocks.views[slot];
      const buffer = held instanceof WeakRef ? held.deref() : held;
      if (buffer !== undefined) {
        const tag = tagOf(buffer)!;
        tag.freed = true;
        if (this.#frames > 0 && tag.trace !== null && !quiet) tag.freedTrace = captureTrace(this.#frames);
        this.#registry?.unregister(tag);
        buffer.transfer(0);
      }
    }
    this.#recentlyFreed[this.#recentAt] = address;
    this.#recentAt = (this.#recentAt + 1) & 63;
    if (this.#retainMetadata) this.#freedByAddress.set(address, { size, trace: blocks.traces[slot] });
    if (this.#byAddress.size > 0) this.#byAddress.delete(address);
    this.#allocatedBytes -= size;
    this.#totalFrees++;
    blocks.release(slot);
    if (this.#poison) outer.fill(FREED_BYTE, outer.length - CANARY - size, outer.length - CANARY);
    if (this.#neverUnmap) this.#retained.push(outer);
    else this.#backing.free(outer);
  }

  static {
    cStyle = {
      malloc: (debug, size) => {
        checkSize(size, "allocate");
        debug.#usable("allocate");
        if (!debug.#safety) throw new AllocationError("unsupported", "The C-style API needs safety on");
        if (size === 0) return 0; // like malloc(0) returning NULL: nothing to free
        const slot = debug.#allocate(size, 16);
        if (slot < 0) throw debug.#lastError!;
        const address = debug.#blocks.addresses[slot];
        debug.#byAddress.set(address, slot);
        return address;
      },
      free: (debug, address, size) => debug.#freeAddress(address, size),
      realloc: (debug, address, oldSize, newSize) => {
        if (address === 0) return cStyle.malloc(debug, newSize);
        const old = debug.#slotAt(address, oldSize, "realloc");
        const fresh = cStyle.malloc(debug, newSize);
        if (fresh !== 0) {
          debug.#userBytes(debug.#byAddress.get(fresh)).set(debug.#userBytes(old).subarray(0, newSize));
        }
        debug.#freeAddress(address, oldSize);
        return fresh;
      },
    };
  }

  #slotAt(address: number, size: number, op: string): number {
    let slot = this.#byAddress.get(address);
    if (slot < 0) slot = this.#blocks.find(address);
    if (slot < 0) {
      const freed = this.#freedByAddress.get(address);
      throw freed
        ? new AllocationError(
          "double-free",
          `Cannot ${op} 0x${address.toString(16)}: its ${freed.size}-byte block was already freed` +
            indent("allocated at", formatTrace(freed.trace, this.#frames)),
        )
        : new AllocationError(
          "invalid-free",
          `Cannot ${op} 0x${address.toString(16)}: no block of this allocator starts there`,
        );
    }
    if (this.#blocks.sizes[slot] !== size) {
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} 0x${address.toString(16)} with size ${size}: the block was allocated with size ${
          this.#blocks.sizes[slot]
        }`,
      );
    }
    return slot;
  }

  #freeAddress(address: number, size: number): void {
    if (address === 0) return;
    if (!this.#safety) throw new AllocationError("unsupported", "The C-style API needs safety on");
    const slot = this.#slotAt(address, size, "free");
    const corruption = this.#canaryError(slot);
    this.#release(slot);
    if (corruption) throw corruption;
  }
}
