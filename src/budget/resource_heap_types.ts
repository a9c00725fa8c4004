/**
 * The shapes of {@linkcode ResourceHeap}: its options, a resource's options,
 * a placed resource, and its statistics.
 *
 * @module
 */

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
  /**
   * Bytes of the heap block (rounded up to whole pages); it never grows.
   * @default {16777216}
   */
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
 * const blurOptions: ResourceOptions = { alignment: 256, aliasable: true, name: "blur pass" };
 * const blur = heap.allocate(1 << 16, blurOptions)!;
 * // The blur pass is done: the bloom pass takes its memory instead of a block of its own.
 * const bloomOptions: ResourceOptions = { alignment: 256, name: "bloom pass", into: blur };
 * heap.allocate(1 << 15, bloomOptions)!.release();
 * ```
 */
export interface ResourceOptions {
  /**
   * A power of two up to the page size.
   * @default {16}
   */
  alignment?: number;
  /**
   * Whether a later resource may take this one's memory once it is done
   * (`allocate(size, { into })` or `alias()`).
   * @default {false}
   */
  aliasable?: boolean;
  /**
   * What errors call it.
   * @default {"resource #n"}
   */
  name?: string;
  /**
   * A finished `aliasable` resource of the same heap whose memory the new
   * one takes: the new resource is placed at its address (its bytes are
   * what the finished one left there), no block of its own is taken, and
   * the finished one is gone as after `alias()` (views length 0, use throws
   * `AllocationError("use-after-free")` naming it). Its memory must be at
   * least `size` bytes and meet `alignment`. `allocate` then never returns
   * `null`. Without it, the resource takes a block of its own.
   */
  into?: HeapResource;
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
  /** Whether a later resource may take its memory (`allocate(size, { into })` or `alias()`). */
  readonly aliasable: boolean;
  /**
   * Byte offset in the heap block.
   * @throws {AllocationError} "use-after-free" once it is gone.
   */
  readonly offset: number;
  /**
   * The resource's memory.
   * @throws {AllocationError} "use-after-free" once it is gone.
   */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /**
   * The resource whose memory this one uses (after `allocate(size, { into: that })` or `alias(that, this)`),
   * or null.
   */
  readonly aliasOf: string | null;
  /** "live", "released", or "aliased" (its memory went to a later resource). */
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
  /** Live resources that live in another's memory (placed there by `into`, or moved there by `alias()`). */
  aliasedResources: number;
  /**
   * Bytes of live resources placed with `allocate(size, { into })`: memory they never took from the heap,
   * which aliasing truly saved. A resource moved by `alias()` took a block of its own first (the heap held
   * both at once), so it saves nothing here.
   */
  aliasedBytesSaved: number;
  /** The largest free block (see `maxAvailableSize` for a given alignment). */
  largestFreeBlock: number;
}
