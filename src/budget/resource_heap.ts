/**
 * One heap block from which resources are placed, with aliasing of resources
 * whose lifetimes do not overlap.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import { anyTaken, detach, isDetached, mayRelease, transferredError } from "../base/_detach.ts";
import { createOwnerNamed } from "../base/_native_census.ts";
import { checkAlignment, checkSize, describe, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { checkViewLimit } from "../base/_view_limit.ts";
import { type FindLeases, LeaseTable, type Lending, registerLessor, unregisterLessor } from "../alloc/_lease.ts";

import type { HeapResource, ResourceHeapOptions, ResourceHeapStats, ResourceOptions } from "./resource_heap_types.ts";
export type { HeapResource, ResourceHeapOptions, ResourceHeapStats, ResourceOptions } from "./resource_heap_types.ts";

const OptionsSchema = z.object({
  capacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
}).strict();

const ResourceSchema = z.object({
  alignment: z.unknown().optional(),
  aliasable: z.boolean().optional(),
  name: z.string().optional(),
  into: z.unknown().optional(), // checked by the heap: a resource's state is private
}).strict();

// A block of the heap: placed once, held by one live resource at a time.
interface Block {
  readonly view: Uint8Array<ArrayBuffer>; // the allocator's view, never handed out
  readonly address: number;
  readonly size: number;
  holder: State;
}

// Everything memkit trusts about a resource lives here, out of the user's reach: the resource object only
// holds it in a private field, so an own property, a Proxy or an object made from its prototype changes
// nothing (a Proxy or a forged object fails the brand check and is a TypeError).
interface State {
  readonly name: string;
  readonly size: number;
  readonly alignment: number;
  readonly aliasable: boolean;
  readonly heap: ResourceHeap;
  readonly base: number; // the heap block's address
  block: Block;
  buffer: ArrayBuffer | null;
  bytesView: Uint8Array<ArrayBuffer> | null;
  aliasOf: string | null;
  // Placed in another's memory by `into`: it never took a block of its own (what aliasedBytesSaved counts).
  neverTook: boolean;
  state: "live" | "released" | "aliased";
  gaveTo: string;
}

// Only this module makes resources: the constructor is reachable through any resource's prototype.
const MAKE = Symbol("ResourceHeap resource");
let stateOf: (value: unknown) => State | undefined;

class Resource implements HeapResource {
  readonly #s: State;

  static {
    stateOf = (
      value,
    ) => (typeof value === "object" && value !== null && #s in value ? (value as Resource).#s : undefined);
  }

  // The state behind `this`, checked: a getter called on a Proxy or a forged object is a clear TypeError.
  static #of(self: unknown, what: string): State {
    const s = stateOf(self);
    if (s === undefined) {
      throw new TypeError(`Cannot read ${what} of ${describe(self)}: it is not a resource of a ResourceHeap`);
    }
    return s;
  }

  constructor(key: symbol, state: State) {
    if (key !== MAKE) throw new TypeError("Illegal constructor: resources come from ResourceHeap.allocate()");
    this.#s = state;
  }

  get name(): string {
    return Resource.#of(this, "name").name;
  }

  get size(): number {
    return Resource.#of(this, "size").size;
  }

  get alignment(): number {
    return Resource.#of(this, "alignment").alignment;
  }

  get aliasable(): boolean {
    return Resource.#of(this, "aliasable").aliasable;
  }

  get aliasOf(): string | null {
    return Resource.#of(this, "aliasOf").aliasOf;
  }

  get state(): "live" | "released" | "aliased" {
    return Resource.#of(this, "state").state;
  }

  get offset(): number {
    const s = Resource.#of(this, "offset");
    check(s, "read the offset of");
    return s.block.address - s.base;
  }

  get bytes(): Uint8Array<ArrayBuffer> {
    const s = Resource.#of(this, "bytes");
    check(s, "read the bytes of");
    if (s.buffer !== null && isDetached(s.buffer)) {
      detach(s.buffer, s.block.address, s.size); // records the theft: this memory is never reused
      throw transferredError("read bytes", `${s.name}'s memory`);
    }
    if (s.bytesView === null) {
      // SAFETY: the resource's block inside the heap block; free, alias and dispose detach this buffer first.
      s.buffer = native.wrap(s.block.address, s.size);
      s.bytesView = new Uint8Array(s.buffer);
    }
    return s.bytesView;
  }

  release(): void {
    Resource.#of(this, "release").heap.free(this);
  }
}

// Detaches the resource's own view (its memory goes to another resource or back to the heap).
function detachView(s: State): void {
  if (s.buffer !== null) detach(s.buffer, s.block.address, s.size);
  s.buffer = null;
  s.bytesView = null;
}

function check(s: State, op: string): void {
  if (s.state === "aliased") {
    throw new AllocationError(
      "use-after-free",
      `Cannot ${op} ${s.name}: its memory went to ${s.gaveTo}, whose bytes it now holds`,
    );
  }
  if (s.state === "released") {
    throw new AllocationError("use-after-free", `Cannot ${op} ${s.name}: it was released`);
  }
}

// Whether a buffer over the resource's memory was transferred away (recorded, so nothing reuses that memory).
function stolen(s: State): boolean {
  if (s.buffer !== null && isDetached(s.buffer)) {
    detach(s.buffer, s.block.address, s.size);
    return true;
  }
  return anyTaken() && !mayRelease(s.block.address, s.block.size);
}

let isResourceHeapBrand: (value: unknown) => boolean;
// The heap's leases, for memory inside its block while it lives; else null (see registerLessor).
let leasesOver: FindLeases;
let footprintOf: (value: unknown) => ResourceHeapFootprint | undefined;

/** What a ResourceHeap holds, for the profiler: see {@linkcode resourceHeapFootprint}. */
export interface ResourceHeapFootprint {
  /** Bytes of the heap block. */
  readonly capacityBytes: number;
  /** Bytes of live resources' blocks (an aliased block counts once). */
  readonly usedBytes: number;
  /** Fragmentation of the block's free space (0..1), as the placement allocator measures it. */
  readonly fragmentation: number;
}

/**
 * Whether `value` is a ResourceHeap made by its constructor: a brand check, so a Proxy of one or an object
 * made from its prototype (which pass `instanceof`) is not. memkit checks its options with it; not exported
 * from mod.ts.
 */
export function isResourceHeap(value: unknown): value is ResourceHeap {
  return isResourceHeapBrand(value);
}

/**
 * What a ResourceHeap holds, read from its private state (a `stats` replaced on the instance changes
 * nothing), or undefined for anything but a ResourceHeap its constructor made.
 * @throws {AllocationError} "use-after-free" after its `dispose()`.
 */
export function resourceHeapFootprint(value: unknown): ResourceHeapFootprint | undefined {
  return footprintOf(value);
}

/**
 * One heap block from which resources (textures, buffers, intermediate render
 * targets) are placed, like a Metal heap: `allocate(size, { alignment,
 * aliasable })` places a resource by Two-Level Segregated Fit (memkit's
 * {@linkcode FreeListAllocator} over the block), `maxAvailableSize(alignment)`
 * says how large a resource still fits, and `allocate` returns `null` when
 * one does not.
 *
 * **Aliasing**: two resources whose lifetimes do not overlap (the blur
 * pass's scratch target and the bloom pass's) can share memory, so the heap
 * needs room for the larger one only, not for both. Allocate the first
 * `aliasable`; when it is done, `allocate(size, { into: first })` places the
 * later resource directly in its memory (as a Metal heap hands a finished
 * aliasable resource's memory to a new allocation): no second block is ever
 * taken, and `stats().aliasedBytesSaved` counts the bytes. The first one is
 * then gone: its views read as length 0 and using it throws
 * `AllocationError("use-after-free")` naming it, instead of reading the later
 * resource's bytes. For two resources that both exist already,
 * `alias(first, later)` moves the later one into the first one's memory (its
 * bytes are copied, its own block goes back to the heap); the heap held both
 * until then, so that lowers what it holds from now on, not its peak.
 *
 * **Pressure**: `compact()` gives every whole free page of the block back to
 * the OS (resident memory falls; the address range stays the heap's).
 *
 * **Transferred buffers**: when a resource's `bytes` buffer was transferred
 * away (`ArrayBuffer.prototype.transfer`, a postMessage transfer list), the
 * new buffer still reaches the resource's memory, so memkit never reuses it:
 * `release()`, `free()`, `alias()`, `allocate(size, { into })` and `bytes`
 * throw `AllocationError("corruption")` and the resource keeps its memory (also
 * after `dispose()`, which leaves such memory mapped).
 *
 * @example Two passes of a frame in a heap sized for the larger one
 * ```ts
 * import { ResourceHeap } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using heap = new ResourceHeap({ capacity: 260 << 10 }); // room for one pass (and alignment), not two
 * const blur = heap.allocate(256 << 10, { alignment: 256, aliasable: true, name: "blur target" })!;
 * blur.bytes.fill(1); // the blur pass runs
 * assert.equal(heap.allocate(200 << 10, { alignment: 256 }), null); // no room beside it
 * // blur is done: bloom is placed in its memory
 * const bloom = heap.allocate(200 << 10, { alignment: 256, name: "bloom target", into: blur })!;
 * assert.equal(heap.stats().usedBytes, 256 << 10); // the peak stayed at one pass
 * assert.equal(heap.stats().aliasedBytesSaved, 200 << 10);
 * assert.throws(() => blur.bytes); // AllocationError("use-after-free") naming "blur target"
 * bloom.release();
 * ```
 */
export class ResourceHeap implements Disposable {
  readonly #baseAddress: number;
  readonly #capacity: number;
  readonly #placement: FreeListAllocator;
  readonly #live = new Set<State>();
  #count = 0;
  #disposed = false;
  // The leases of holders that keep memory of a resource (an allocator over an Allocator in JavaScript that
  // passed its bytes on), ended when that memory goes back to the heap or to another resource (free, alias,
  // `into`) and at dispose(). `#lending` registers the heap with the lessors leaseBlock looks through.
  readonly #leases = new LeaseTable();
  readonly #lending: Lending;

  /**
   * Maps the heap block.
   * @throws {TypeError} For mistyped options.
   * @throws {RangeError} For an out-of-range capacity.
   * @throws {AllocationError} "out-of-memory" when the OS refuses the block; "unsupported" for a capacity larger
   *   than one ArrayBuffer holds in this runtime (`nativeInfo().maxViewBytes`, 4 GiB in Bun).
   */
  constructor(options?: ResourceHeapOptions) {
    const parsed = parseOptions(OptionsSchema, options, "create ResourceHeap");
    this.#capacity = Math.ceil((parsed.capacity ?? 1 << 24) / native.pageSize) * native.pageSize;
    checkViewLimit(this.#capacity, "create ResourceHeap", "the heap's block", "use several smaller heaps");
    // Named for the report at exit after what the program made, not the allocator memkit made for it.
    this.#placement = createOwnerNamed(
      "ResourceHeap",
      () => new FreeListAllocator({ capacity: this.#capacity, growth: "fixed" }),
    );
    // The block's address: one allocation spanning it, given back at once.
    const whole = this.#placement.alloc(this.#capacity, 16);
    this.#baseAddress = native.addressOf(whole);
    this.#placement.free(whole);
    this.#lending = registerLessor(this, leasesOver);
  }

  /** Address of the heap block's first byte. */
  get baseAddress(): number {
    return this.#baseAddress;
  }

  /** Bytes of the heap block. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * Places a resource of `size` bytes, or returns `null` when no free block
   * fits it (see `maxAvailableSize`). With `into`, places it in that
   * finished aliasable resource's memory instead (see {@linkcode ResourceOptions.into}).
   * @throws {TypeError} For a non-number size, mistyped options, or an `into` that is not a resource a
   *   ResourceHeap made (a Proxy of one too).
   * @throws {RangeError} For a size that is not an integer from 1 to the capacity, or an alignment that is
   *   not a power of two up to the page size; for a size larger than the memory of `into`, or an alignment
   *   its address does not meet.
   * @throws {AllocationError} "use-after-free" after `dispose()`, or for an `into` released or whose memory
   *   went to another resource already; "mismatched-allocator" for an `into` of another heap; "unsupported"
   *   for an `into` not allocated `aliasable`; "corruption" when a buffer over the memory of `into` was
   *   transferred away. Nothing changes when it throws.
   */
  allocate(size: number, options?: ResourceOptions): HeapResource | null {
    const op = "allocate a resource";
    checkSize(size, op, "size", this.#capacity, 1);
    const parsed = parseOptions(ResourceSchema, options, op);
    const alignment = checkAlignment(parsed.alignment, op, native.pageSize);
    let into: State | null = null;
    if (parsed.into !== undefined) {
      into = stateOf(parsed.into) ?? null;
      if (into === null) {
        throw new TypeError(
          `Cannot ${op} as 'into' must be a resource of a ResourceHeap: current value is ${describe(parsed.into)}`,
        );
      }
    }
    this.#alive(op);
    if (into !== null) this.#checkInto(into, size, alignment, parsed.name ?? "the new resource");
    let block: Block;
    if (into === null) {
      const view = this.#placement.tryAlloc(size, alignment);
      if (view === null) return null;
      block = { view, address: native.addressOf(view), size } as Block;
    } else block = into.block;
    const name = parsed.name ?? `resource #${++this.#count}`;
    const state: State = {
      name,
      size,
      alignment,
      aliasable: parsed.aliasable ?? false,
      heap: this,
      base: this.#baseAddress,
      block,
      buffer: null,
      bytesView: null,
      aliasOf: into === null ? null : into.aliasOf ?? into.name,
      neverTook: into !== null,
      state: "live",
      gaveTo: "",
    };
    if (into !== null) this.#handOver(into, name);
    block.holder = state;
    const resource = new Resource(MAKE, state);
    this.#live.add(state);
    // Holders over the memory of `into` lose it: it holds the new resource's bytes now.
    if (into !== null) this.#revoke(block, `ResourceHeap.allocate({ into }) gave it to ${name}`);
    return resource;
  }

  /**
   * The largest size `allocate(size, { alignment })` places now.
   * @throws {TypeError} For a non-number.
   * @throws {RangeError} For an alignment that is not a power of two up to the page size.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  maxAvailableSize(alignment = 16): number {
    const align = checkAlignment(alignment, "find the largest available size", native.pageSize);
    this.#alive("find the largest available size");
    const largest = this.#placement.stats().largestFreeBlock;
    // A free block may start anywhere on the 16-byte grid: an alignment above 16 may cost up to align - 16.
    return Math.max(0, Math.floor((largest - Math.max(0, align - 16)) / 16) * 16);
  }

  /**
   * Gives `first`'s memory to `later`, whose lifetime begins after `first`'s
   * ended: `later`'s bytes are copied into `first`'s memory, `later`'s own
   * block goes back to the heap, and `first` is gone (views length 0, use
   * throws "use-after-free" naming it). Both existed until now, so the heap
   * held both: to keep its peak at one of them, place the later resource
   * with `allocate(size, { into: first })` instead.
   * @throws {TypeError} For anything but resources this or another ResourceHeap made (a Proxy of one too).
   * @throws {RangeError} For a resource aliased with itself, a `later` larger than `first`'s memory, or one
   *   whose alignment `first`'s address does not meet.
   * @throws {AllocationError} "mismatched-allocator" for resources of different heaps; "use-after-free" for a
   *   resource released or aliased away; "unsupported" when `first` was not allocated `aliasable`;
   *   "corruption" when a buffer over either one's memory was transferred away (nothing changes).
   */
  alias(first: HeapResource, later: HeapResource): void {
    const states: State[] = [];
    for (const [name, r] of [["first", first], ["later", later]] as const) {
      const s = stateOf(r);
      if (s === undefined) {
        throw new TypeError(
          `Cannot alias as '${name}' must be a resource of a ResourceHeap: current value is ${describe(r)}`,
        );
      }
      states.push(s);
    }
    const [a, b] = states;
    this.#alive("alias");
    for (const s of states) {
      if (s.heap !== this) {
        throw new AllocationError("mismatched-allocator", `Cannot alias ${s.name}: it belongs to another ResourceHeap`);
      }
    }
    if (a === b) throw new RangeError(`Cannot alias ${a.name} with itself: alias needs two resources`);
    check(a, "alias");
    check(b, "alias");
    if (!a.aliasable) {
      throw new AllocationError(
        "unsupported",
        `Cannot alias ${a.name}: it was not allocated with { aliasable: true }, so its memory is not for others`,
      );
    }
    if (b.size > a.block.size) {
      throw new RangeError(
        `Cannot alias ${a.name} with ${b.name}: ${b.name} needs ${b.size} bytes and ${a.name}'s memory has ${a.block.size}`,
      );
    }
    if (a.block.address % b.alignment !== 0) {
      throw new RangeError(
        `Cannot alias ${a.name} with ${b.name}: ${b.name} needs an alignment of ${b.alignment}, which ${a.name}'s ` +
          `memory at offset ${a.block.address - this.#baseAddress} does not meet`,
      );
    }
    // Another buffer reaching either block: `first`'s would be written and handed on, `later`'s reused.
    for (const s of states) {
      if (stolen(s)) throw transferredError(`alias ${a.name} with ${b.name}`, `${s.name}'s memory`);
    }
    const own = b.block;
    a.block.view.set(own.view.subarray(0, b.size));
    detachView(b);
    this.#handOver(a, b.name);
    b.block = a.block;
    b.block.holder = b;
    b.aliasOf = a.aliasOf ?? a.name;
    // Holders over either block lose it: `first`'s holds `later`'s bytes now, `later`'s goes back to the heap.
    this.#revoke(b.block, `ResourceHeap.alias() gave it to ${b.name}`);
    if (own.holder === b) {
      this.#revoke(own, `ResourceHeap.alias() moved ${b.name} out of it`);
      if (this.#reusable(own)) this.#placement.free(own.view);
    }
  }

  /**
   * Gives a resource's memory back to the heap; its views read as length 0, and so do those of an allocator
   * built over its bytes (an Arena over an Allocator in JavaScript that passed them on: also after `alias`,
   * `into` and `dispose()`).
   * @throws {TypeError} For anything but a resource a ResourceHeap made (a Proxy of one too).
   * @throws {AllocationError} "double-free" for a resource released already, "use-after-free" for one aliased
   *   away, "mismatched-allocator" for another heap's, "corruption" when its `bytes` buffer was transferred
   *   away (the resource keeps its memory: another buffer reaches it).
   */
  free(resource: HeapResource): void {
    const s = stateOf(resource);
    if (s === undefined) {
      throw new TypeError(`Cannot free ${describe(resource)} as it is not a resource of a ResourceHeap`);
    }
    if (s.heap !== this) {
      throw new AllocationError(
        "mismatched-allocator",
        `Cannot free ${s.name}: it belongs to another ResourceHeap`,
      );
    }
    this.#alive("free a resource");
    if (s.state === "released") {
      throw new AllocationError("double-free", `Cannot free ${s.name}: it was released already`);
    }
    check(s, "free");
    if (stolen(s)) throw transferredError(`free ${s.name}`, `${s.name}'s memory`);
    detachView(s);
    s.state = "released";
    this.#live.delete(s);
    if (s.block.holder !== s) return;
    this.#revoke(s.block, "ResourceHeap.free() released it");
    if (this.#reusable(s.block)) this.#placement.free(s.block.view);
  }

  /**
   * Gives every whole free page of the heap block back to the OS (madvise
   * `MADV_DONTNEED`); live resources are untouched. Returns the bytes advised.
   * @throws {AllocationError} "platform" when the kernel refuses; "use-after-free" after `dispose()`.
   */
  compact(): { releasedBytes: number } {
    this.#alive("compact");
    const page = native.pageSize;
    const used = [...this.#live].map((r) => r.block).filter((b, i, all) => all.indexOf(b) === i)
      .map((b) => [b.address, b.address + Math.ceil(b.size / 16) * 16] as const)
      .sort((x, y) => x[0] - y[0]);
    let released = 0;
    let cursor = this.#baseAddress;
    for (const [start, end] of [...used, [this.#baseAddress + this.#capacity, 0] as const]) {
      const from = Math.ceil(cursor / page) * page;
      const to = Math.floor(start / page) * page;
      if (to > from) {
        if (native.heap.madvise(from, to - from, native.platform.MADV_DONTNEED) !== 0) {
          throw new AllocationError("platform", `madvise(${to - from} free bytes of a ResourceHeap, dont-need) failed`);
        }
        released += to - from;
      }
      cursor = Math.max(cursor, end);
    }
    return { releasedBytes: released };
  }

  /**
   * What the heap holds.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  stats(): ResourceHeapStats {
    this.#alive("read stats");
    let used = 0; // each live resource holds one block: an aliased block counts once
    let saved = 0;
    let aliased = 0;
    for (const r of this.#live) {
      used += r.block.size;
      if (r.aliasOf !== null) aliased++;
      if (r.neverTook) saved += r.size;
    }
    return {
      capacityBytes: this.#capacity,
      usedBytes: used,
      resources: this.#live.size,
      aliasedResources: aliased,
      aliasedBytesSaved: saved,
      largestFreeBlock: this.#placement.stats().largestFreeBlock,
    };
  }

  /**
   * Detaches every resource's view and unmaps the block; resources then throw "use-after-free". Memory a
   * transferred buffer reaches stays mapped.
   */
  dispose(): void {
    if (this.#disposed) return;
    for (const r of this.#live) {
      detachView(r); // a buffer transferred away is recorded here: the placement then keeps its pages mapped
      r.state = "released";
    }
    this.#live.clear();
    this.#disposed = true;
    unregisterLessor(this.#lending);
    // Holders that leased a resource's memory end before the block goes (rule 1; a buffer of theirs found
    // transferred away is recorded, and the placement then keeps those pages).
    if (this.#leases.count !== 0) this.#leases.releasedAll("ResourceHeap.dispose() released it");
    this.#placement.dispose();
  }

  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** "ResourceHeap", so a message naming this object (`Object.prototype.toString`) says what it is. */
  get [Symbol.toStringTag](): string {
    return "ResourceHeap";
  }

  static {
    leasesOver = (lessor, _buffer, address, size) => {
      const heap = lessor as ResourceHeap;
      const end = heap.#baseAddress + heap.#capacity;
      return heap.#disposed || address < heap.#baseAddress || address + size > end ? null : heap.#leases;
    };
    isResourceHeapBrand = (value) => typeof value === "object" && value !== null && #live in value;
    footprintOf = (value) => {
      if (!isResourceHeapBrand(value)) return undefined;
      const heap = value as ResourceHeap;
      heap.#alive("read what it holds");
      let used = 0;
      for (const r of heap.#live) used += r.block.size;
      return { capacityBytes: heap.#capacity, usedBytes: used, fragmentation: heap.#placement.stats().fragmentation };
    };
  }

  #alive(op: string): void {
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op}: the ResourceHeap was disposed`);
  }

  // Whether a resource of `size` and `alignment` may be placed in the memory of `s` (the `into` option).
  #checkInto(s: State, size: number, alignment: number, name: string): void {
    const op = `place ${name} in the memory of ${s.name}`;
    if (s.heap !== this) {
      throw new AllocationError("mismatched-allocator", `Cannot ${op}: ${s.name} belongs to another ResourceHeap`);
    }
    if (s.state === "released") throw new AllocationError("use-after-free", `Cannot ${op}: ${s.name} was released`);
    if (s.state === "aliased") {
      throw new AllocationError("use-after-free", `Cannot ${op}: its memory went to ${s.gaveTo} already`);
    }
    if (!s.aliasable) {
      throw new AllocationError(
        "unsupported",
        `Cannot ${op}: ${s.name} was not allocated with { aliasable: true }, so its memory is not for others`,
      );
    }
    if (size > s.block.size) {
      throw new RangeError(`Cannot ${op}: ${name} needs ${size} bytes and ${s.name}'s memory has ${s.block.size}`);
    }
    if (s.block.address % alignment !== 0) {
      throw new RangeError(
        `Cannot ${op}: ${name} needs an alignment of ${alignment}, which ${s.name}'s memory at offset ` +
          `${s.block.address - this.#baseAddress} does not meet`,
      );
    }
    // Another buffer reaching that memory would see the new resource's bytes.
    if (stolen(s)) throw transferredError(op, `${s.name}'s memory`);
  }

  // Ends the leases over `block` (see #leases), telling their holders `reason`; the heap lives on.
  #revoke(block: Block, reason: string): void {
    if (this.#leases.count === 0) return;
    this.#leases.released(block.address, block.address + block.size, reason, true);
  }

  // Whether `block` may go back to the placement: not when a holder's buffer over it, found as its lease ended,
  // was transferred away (that memory is kept, as a resource's own stolen buffer keeps it).
  #reusable(block: Block): boolean {
    return !anyTaken() || mayRelease(block.address, block.size);
  }

  // `s` is done: its memory goes to the resource `to` (its views are detached, use of it throws).
  #handOver(s: State, to: string): void {
    detachView(s);
    s.state = "aliased";
    s.gaveTo = to;
    this.#live.delete(s);
  }
}
