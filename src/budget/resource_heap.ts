/**
 * One heap block from which resources are placed, with aliasing of resources
 * whose lifetimes do not overlap.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import { detach } from "../base/_detach.ts";
import { checkAlignment, checkSize, describe, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";

/**
 * Options of {@linkcode ResourceHeap}.
 *
 * @example
 * ```ts
 * import { ResourceHeap, type ResourceHeapOptions } from "@memkit/memkit";
 *
 * const options: ResourceHeapOptions = { capacity: 64 << 20 };
 * using heap = new ResourceHeap(options);
 * ```
 */
export interface ResourceHeapOptions {
  /** Bytes of the heap block (rounded up to whole pages); it never grows. @default {16777216} */
  capacity?: number;
}

/**
 * Options of {@linkcode ResourceHeap.allocate}.
 *
 * @example
 * ```ts
 * import { ResourceHeap, type ResourceOptions } from "@memkit/memkit";
 *
 * using heap = new ResourceHeap();
 * const options: ResourceOptions = { alignment: 256, aliasable: true, name: "blur pass" };
 * heap.allocate(1 << 16, options)!.release();
 * ```
 */
export interface ResourceOptions {
  /** A power of two up to the page size. @default {16} */
  alignment?: number;
  /** Whether `alias()` may give this resource's memory to a later one. @default {false} */
  aliasable?: boolean;
  /** What errors call it. @default {"resource #n"} */
  name?: string;
}

/**
 * A resource placed in a {@linkcode ResourceHeap}. Its `bytes` are one view
 * over its memory; after `release()`, or after `alias()` gave its memory to
 * another resource, the view reads as length 0 and every accessor throws
 * `AllocationError("use-after-free")` naming it (it never reads the other
 * resource's bytes).
 *
 * @example
 * ```ts
 * import { ResourceHeap } from "@memkit/memkit";
 *
 * using heap = new ResourceHeap();
 * const texture = heap.allocate(4096, { alignment: 256, name: "albedo" })!;
 * texture.bytes.fill(128);
 * texture.release();
 * ```
 */
export interface HeapResource {
  /** The name given, or "resource #n". */
  readonly name: string;
  /** Bytes asked for. */
  readonly size: number;
  /** Alignment of its address. */
  readonly alignment: number;
  /** Whether `alias()` may give its memory to a later resource. */
  readonly aliasable: boolean;
  /** Byte offset in the heap block. @throws {AllocationError} "use-after-free" once it is gone. */
  readonly offset: number;
  /** The resource's memory. @throws {AllocationError} "use-after-free" once it is gone. */
  readonly bytes: Uint8Array;
  /** The resource whose memory this one uses (after `alias(that, this)`), or null. */
  readonly aliasOf: string | null;
  /** "live", "released", or "aliased" (its memory went to another resource). */
  readonly state: "live" | "released" | "aliased";
  /** Gives the memory back to the heap (a resource living in an aliased one's memory gives that back). */
  release(): void;
}

/**
 * What a {@linkcode ResourceHeap} holds.
 *
 * @example
 * ```ts
 * import { ResourceHeap, type ResourceHeapStats } from "@memkit/memkit";
 *
 * using heap = new ResourceHeap();
 * const stats: ResourceHeapStats = heap.stats();
 * console.log(stats.usedBytes); // 0
 * ```
 */
export interface ResourceHeapStats {
  /** Bytes of the heap block. */
  capacityBytes: number;
  /** Bytes of live resources' blocks (an aliased block counts once). */
  usedBytes: number;
  /** Live resources. */
  resources: number;
  /** Live resources that live in another's memory. */
  aliasedResources: number;
  /** Bytes those resources would need of their own: what aliasing saves. */
  aliasedBytesSaved: number;
  /** The largest free block (see `maxAvailableSize` for a given alignment). */
  largestFreeBlock: number;
}

const OptionsSchema = z.object({
  capacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
}).strict();

const ResourceSchema = z.object({
  alignment: z.unknown().optional(),
  aliasable: z.boolean().optional(),
  name: z.string().optional(),
}).strict();

// A block of the heap: placed once, held by one live resource at a time.
interface Block {
  readonly view: Uint8Array; // the allocator's view, never handed out
  readonly address: number;
  readonly size: number;
  holder: Resource;
}

class Resource implements HeapResource {
  readonly name: string;
  readonly size: number;
  readonly alignment: number;
  readonly aliasable: boolean;
  readonly heap: ResourceHeap;
  block: Block;
  buffer: ArrayBuffer | null = null;
  bytesView: Uint8Array | null = null;
  aliasOf: string | null = null;
  state: "live" | "released" | "aliased" = "live";
  gaveTo = "";

  constructor(heap: ResourceHeap, name: string, size: number, alignment: number, aliasable: boolean, block: Block) {
    this.heap = heap;
    this.name = name;
    this.size = size;
    this.alignment = alignment;
    this.aliasable = aliasable;
    this.block = block;
  }

  get offset(): number {
    this.check("read offset");
    return this.block.address - this.heap.baseAddress;
  }

  get bytes(): Uint8Array {
    this.check("read bytes");
    if (this.bytesView === null) {
      this.buffer = native.wrap(this.block.address, this.size);
      this.bytesView = new Uint8Array(this.buffer);
    }
    return this.bytesView;
  }

  release(): void {
    this.heap.free(this);
  }

  /** Detaches the resource's own view (its memory goes to another resource or back to the heap). */
  detachView(): void {
    if (this.buffer !== null) detach(this.buffer, this.block.address, this.size);
    this.buffer = null;
    this.bytesView = null;
  }

  check(op: string): void {
    if (this.state === "aliased") {
      throw new AllocationError(
        "use-after-free",
        `Cannot ${op} of ${this.name}: alias() gave its memory to ${this.gaveTo}, whose bytes it now holds`,
      );
    }
    if (this.state === "released") {
      throw new AllocationError("use-after-free", `Cannot ${op} of ${this.name}: it was released`);
    }
  }
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
 * pass's scratch target and the bloom pass's) can share memory. Allocate the
 * first `aliasable`; when it is done, `alias(first, later)` gives its memory
 * to the later resource: the later one's bytes are copied there and its own
 * block goes back to the heap (`stats().aliasedBytesSaved` counts it), and
 * the first one is gone: its views read as length 0 and using it throws
 * `AllocationError("use-after-free")` naming it, instead of reading the later
 * resource's bytes.
 *
 * **Pressure**: `compact()` gives every whole free page of the block back to
 * the OS (resident memory falls; the address range stays the heap's).
 *
 * @example Two passes of a frame sharing one block of memory
 * ```ts
 * import { ResourceHeap } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using heap = new ResourceHeap({ capacity: 1 << 20 });
 * const blur = heap.allocate(256 << 10, { alignment: 256, aliasable: true, name: "blur target" })!;
 * blur.bytes.fill(1); // the blur pass runs
 * const bloom = heap.allocate(200 << 10, { alignment: 256, name: "bloom target" })!;
 * heap.alias(blur, bloom); // blur is done: bloom takes its memory
 * assert.equal(heap.stats().aliasedBytesSaved, 200 << 10);
 * assert.throws(() => blur.bytes); // AllocationError("use-after-free") naming "blur target"
 * bloom.release();
 * ```
 */
export class ResourceHeap implements Disposable {
  /** Address of the heap block's first byte. */
  readonly baseAddress: number;
  /** Bytes of the heap block. */
  readonly capacity: number;
  readonly #placement: FreeListAllocator;
  readonly #live = new Set<Resource>();
  #count = 0;
  #disposed = false;

  /**
   * Maps the heap block.
   * @throws {TypeError} For mistyped options. @throws {RangeError} For an out-of-range capacity.
   * @throws {AllocationError} "out-of-memory" when the OS refuses the block.
   */
  constructor(options?: ResourceHeapOptions) {
    const parsed = parseOptions(OptionsSchema, options, "create ResourceHeap");
    this.capacity = Math.ceil((parsed.capacity ?? 1 << 24) / native.pageSize) * native.pageSize;
    this.#placement = new FreeListAllocator({ capacity: this.capacity, growth: "fixed" });
    // The block's address: one allocation spanning it, given back at once.
    const whole = this.#placement.alloc(this.capacity, 16);
    this.baseAddress = native.addressOf(whole);
    this.#placement.free(whole);
  }

  /**
   * Places a resource of `size` bytes, or returns `null` when no free block
   * fits it (see `maxAvailableSize`).
   * @throws {TypeError} For a non-number size or mistyped options.
   * @throws {RangeError} For a size that is not an integer from 1 to the capacity, or an alignment that is
   *   not a power of two up to the page size.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  allocate(size: number, options?: ResourceOptions): HeapResource | null {
    checkSize(size, "allocate a resource", "size", this.capacity, 1);
    const parsed = parseOptions(ResourceSchema, options, "allocate a resource");
    const alignment = checkAlignment(parsed.alignment, "allocate a resource", native.pageSize);
    this.#alive("allocate a resource");
    const view = this.#placement.tryAlloc(size, alignment);
    if (view === null) return null;
    const name = parsed.name ?? `resource #${++this.#count}`;
    const block = { view, address: native.addressOf(view), size } as Block;
    const resource = new Resource(this, name, size, alignment, parsed.aliasable ?? false, block);
    block.holder = resource;
    this.#live.add(resource);
    return resource;
  }

  /**
   * The largest size `allocate(size, { alignment })` places now.
   * @throws {TypeError} For a non-number. @throws {RangeError} For an alignment that is not a power of two up
   *   to the page size. @throws {AllocationError} "use-after-free" after `dispose()`.
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
   * throws "use-after-free" naming it).
   * @throws {TypeError} For anything but resources of a ResourceHeap.
   * @throws {RangeError} For a resource aliased with itself, a `later` larger than `first`'s memory, or one
   *   whose alignment `first`'s address does not meet.
   * @throws {AllocationError} "mismatched-allocator" for resources of different heaps; "use-after-free" for a
   *   resource released or aliased away; "unsupported" when `first` was not allocated `aliasable`.
   */
  alias(first: HeapResource, later: HeapResource): void {
    for (const [name, r] of [["first", first], ["later", later]] as const) {
      if (!(r instanceof Resource)) {
        throw new TypeError(
          `Cannot alias as '${name}' must be a resource of a ResourceHeap: current value is ${describe(r)}`,
        );
      }
    }
    const a = first as Resource;
    const b = later as Resource;
    this.#alive("alias");
    for (const r of [a, b]) {
      if (r.heap !== this) {
        throw new AllocationError("mismatched-allocator", `Cannot alias ${r.name}: it belongs to another ResourceHeap`);
      }
    }
    if (a === b) throw new RangeError(`Cannot alias ${a.name} with itself: alias needs two resources`);
    a.check("alias");
    b.check("alias");
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
          `memory at offset ${a.block.address - this.baseAddress} does not meet`,
      );
    }
    const own = b.block;
    a.block.view.set(own.view.subarray(0, b.size));
    a.detachView();
    b.detachView();
    a.state = "aliased";
    a.gaveTo = b.name;
    this.#live.delete(a);
    b.block = a.block;
    b.block.holder = b;
    b.aliasOf = a.aliasOf ?? a.name;
    if (own.holder === b) this.#placement.free(own.view);
  }

  /**
   * Gives a resource's memory back to the heap; its views read as length 0.
   * @throws {TypeError} For anything but a resource. @throws {AllocationError} "double-free" for a resource
   *   released already, "use-after-free" for one aliased away, "mismatched-allocator" for another heap's.
   */
  free(resource: HeapResource): void {
    if (!(resource instanceof Resource)) {
      throw new TypeError(`Cannot free ${describe(resource)} as it is not a resource of a ResourceHeap`);
    }
    if (resource.heap !== this) {
      throw new AllocationError(
        "mismatched-allocator",
        `Cannot free ${resource.name}: it belongs to another ResourceHeap`,
      );
    }
    this.#alive("free a resource");
    if (resource.state === "released") {
      throw new AllocationError("double-free", `Cannot free ${resource.name}: it was released already`);
    }
    resource.check("free");
    resource.detachView();
    resource.state = "released";
    this.#live.delete(resource);
    if (resource.block.holder === resource) this.#placement.free(resource.block.view);
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
    let cursor = this.baseAddress;
    for (const [start, end] of [...used, [this.baseAddress + this.capacity, 0] as const]) {
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

  /** What the heap holds. @throws {AllocationError} "use-after-free" after `dispose()`. */
  stats(): ResourceHeapStats {
    this.#alive("read stats");
    let used = 0; // each live resource holds one block: an aliased block counts once
    let saved = 0;
    let aliased = 0;
    for (const r of this.#live) {
      used += r.block.size;
      if (r.aliasOf !== null) {
        aliased++;
        saved += r.size;
      }
    }
    return {
      capacityBytes: this.capacity,
      usedBytes: used,
      resources: this.#live.size,
      aliasedResources: aliased,
      aliasedBytesSaved: saved,
      largestFreeBlock: this.#placement.stats().largestFreeBlock,
    };
  }

  /** Detaches every resource's view and unmaps the block; resources then throw "use-after-free". */
  dispose(): void {
    if (this.#disposed) return;
    for (const r of this.#live) {
      r.detachView();
      r.state = "released";
    }
    this.#live.clear();
    this.#disposed = true;
    this.#placement.dispose();
  }

  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #alive(op: string): void {
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} of a ResourceHeap: it was disposed`);
  }
}
