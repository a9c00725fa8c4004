// The engine of the two allocators whose blocks are pages locked in RAM:
// LockedPageAllocator (one mlock'ed mapping per block) and SecretAllocator
// (the same, fenced by inaccessible guard pages, excluded from core dumps and
// wiped on free). Each block is its own mmap, so freeing it gives its pages
// back to the kernel at once, and the mapping is what the census counts.
//
// Invariants: `#blocks` holds exactly the live blocks; each live block's
// buffer covers exactly its `size` bytes (never a guard page, so no view can
// fault); a block's pages go back (munmap) only after its buffer was detached
// and, for a secret, wiped; an operation that throws leaves every block,
// counter and census entry as it was.
import { intrinsic } from "../../ffi/boundary.ts";
import { native } from "../../ffi/native.ts";
import { detach, isDetached, mayRelease, transferredError } from "../base/_detach.ts";
import { type CensusEntry, type CensusOwner, censusOwner, enterCensus, leaveCensus } from "../base/_native_census.ts";
import { platformError } from "../base/_platform_error.ts";
import { viewLimitError } from "../base/_view_limit.ts";
import { createStamp } from "../base/_stamp.ts";
import { bufferOf, checkView, offsetOf } from "../base/_validate.ts";
import type { AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { beginChange, endChange, LeaseTable, registerLeases, tellFreed } from "../alloc/_lease.ts";
import { Ledger } from "../alloc/_ledger.ts";
import { foreignBlockError, isEmptyView, registerOwner } from "../alloc/_ownership.ts";
import { describeBlock, interiorError, type ListedBlock, unlistBlock } from "../alloc/_own_blocks.ts";
import { typedArrayOf } from "../alloc/_typed_array_of.ts";
import { type AllocatorDump, makeDump } from "../alloc/dump.ts";
import { memlockError } from "./_memlock_limit.ts";
import { byteCount, checkAlignment, checkSize } from "./_words.ts";

/** What sets the two allocators apart. */
export interface LockedBlocksConfig {
  /** The public class, for messages and the census ("SecretAllocator"). */
  readonly name: string;
  /** How a misdirected free names it: "belongs to another <label> allocator". */
  readonly label: string;
  /** A PROT_NONE page on each side of every block, the block ending where the upper one starts. */
  readonly guardPages: boolean;
  /** Zero the block's bytes before its pages go back (free, a moving resize, dispose). */
  readonly wipe: boolean;
  /** madvise(MADV_DONTDUMP) over the mapping, where the OS has it (Linux). */
  readonly dontDump: boolean;
  /** Zero what an in-place resize adds (its pages may hold what the block held before it shrank). */
  readonly zero: boolean;
}

interface Block {
  /** The whole mapping, guard pages included. */
  readonly mapAddress: number;
  readonly mapLength: number;
  /** The locked, read-write pages. */
  readonly dataAddress: number;
  readonly dataLength: number;
  /** The block inside them. */
  readonly address: number;
  readonly size: number;
  readonly align: number;
}

interface LiveBlock extends Block, ListedBlock {
  /** The public allocator that handed it out. */
  readonly owner: object;
  readonly census: CensusEntry;
  readonly buffer: ArrayBuffer;
}

// Each block's record rides on its ArrayBuffer in a private slot (see _stamp.ts).
const BLOCKS = createStamp<LiveBlock>();

/** The allocator behind LockedPageAllocator and SecretAllocator (they delegate every method here). */
export class LockedBlocks {
  readonly #config: LockedBlocksConfig;
  readonly #facade: object;
  readonly #ledger: Ledger;
  readonly #leases = new LeaseTable();
  readonly #blocks: LiveBlock[] = [];
  readonly #censusOwner: CensusOwner;
  #lockedBytes = 0;
  #lastError: AllocationError | null = null;

  /** `facade` is the public allocator: leases and ownership checks are registered for it. */
  constructor(facade: object, config: LockedBlocksConfig) {
    if (native.libcError) throw new AllocationError("unsupported", native.libcError);
    this.#config = config;
    this.#facade = facade;
    this.#ledger = new Ledger("system", config.name);
    this.#censusOwner = censusOwner(config.name);
    registerLeases(facade, this.#leases);
    registerOwner(facade, config.label, LockedBlocks.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const block = BLOCKS.get(buffer);
    return block !== undefined && block.owner === owner && block.index >= 0;
  }

  #own(buffer: ArrayBufferLike): LiveBlock | undefined {
    const block = BLOCKS.get(buffer);
    return block !== undefined && block.owner === this.#facade && block.index >= 0 ? block : undefined;
  }

  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#lastError!;
    return view;
  }

  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    checkSize(size, "allocate");
    const alignment = checkAlignment(align, "allocate", native.pageSize);
    this.#ledger.guard("allocate");
    if (size === 0) return new Uint8Array(0);
    const tooLarge = this.#viewLimit(size, "allocate");
    if (tooLarge !== null) return this.#refuse(tooLarge);
    const block = this.#map(size, alignment);
    return block === null ? null : this.#adopt(block, null);
  }

  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align);
  }

  free(view: ArrayBufferView): void {
    // SystemAllocator.free makes these checks inline (its hot path); here a transferred secret is wiped too.
    checkView(view, "free");
    this.#ledger.guard("free");
    if (isEmptyView(view)) return; // an empty view holds nothing (alloc(0)'s, or any other)
    const buffer = bufferOf(view);
    const block = this.#own(buffer);
    if (block === undefined) throw foreignBlockError(view, "free", this.#facade, this.#config.name);
    if (offsetOf(view) !== 0) throw interiorError(view, block, "free");
    if (isDetached(block.buffer)) {
      const refused = transferredError("free", describeBlock(block));
      if (!this.#config.wipe) throw refused;
      // A secret is wiped even so: the buffer that went away must not read the key after its owner freed it.
      this.#wipeByAddress(block);
      throw new AllocationError("corruption", `${refused.message}; its bytes were zeroed`);
    }
    this.#release(block, `${this.#config.name}.free() released it`, "free");
  }

  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    // SystemAllocator.resize makes these checks inline too (see free).
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    this.#ledger.guard("resize");
    if (isEmptyView(view)) return this.alloc(newSize); // size 0 is not a block: see Allocator
    const buffer = bufferOf(view);
    const block = this.#own(buffer);
    if (block === undefined) throw foreignBlockError(view, "resize", this.#facade, this.#config.name);
    if (offsetOf(view) !== 0) throw interiorError(view, block, "resize");
    if (isDetached(block.buffer) || !mayRelease(block.address, block.size)) {
      throw transferredError("resize", describeBlock(block));
    }
    const reason = `${this.#config.name}.resize() moved it`;
    if (newSize === 0) {
      this.#release(block, reason, "resize");
      return new Uint8Array(0);
    }
    // Unfenced blocks start at their first page: one that keeps its page count stays where it is. A fenced
    // block ends at its upper guard page, so any other size starts elsewhere and moves.
    if (!this.#config.guardPages && Math.ceil(newSize / native.pageSize) * native.pageSize === block.dataLength) {
      return this.#resizeInPlace(block, newSize, reason);
    }
    const tooLarge = this.#viewLimit(newSize, "resize");
    if (tooLarge !== null) {
      this.#refuse(tooLarge);
      throw tooLarge; // the old block is untouched
    }
    const next = this.#map(newSize, block.align);
    const fresh = next === null ? null : this.#adopt(next, block.census.owner);
    if (fresh === null) throw this.#lastError!; // the old block is untouched
    intrinsic.set(fresh, intrinsic.uint8Array(block.buffer, 0, Math.min(block.size, newSize)));
    this.#release(block, reason, "resize");
    return fresh;
  }

  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    return this.#own(bufferOf(view)) !== undefined;
  }

  /** Capacity is the locked bytes (whole pages); guard pages hold address space, not memory, and are not counted. */
  stats(): AllocatorStats {
    return this.#ledger.stats({
      capacityBytes: this.#lockedBytes,
      availableBytes: 0,
      largestFreeBlock: 0,
      freeBlocks: 0,
    });
  }

  /** Each live block's locked pages as a chunk (guard pages left out), the block in it, the rest free. */
  dump(op: string): AllocatorDump {
    this.#ledger.guard(op);
    return makeDump(
      this.stats(),
      this.#blocks.map((block) => ({
        address: block.dataAddress,
        size: block.dataLength,
        blocks: [{ offset: block.address - block.dataAddress, size: block.size, free: false }],
      })),
    );
  }

  dispose(): void {
    this.#ledger.refuseWhileBusy("dispose"); // code a holder of its blocks runs cannot end it halfway through a call
    if (!this.#ledger.end("was disposed")) return;
    const reason = `${this.#config.name}.dispose() released it`;
    this.#leases.releasedAll(reason);
    for (const block of [...this.#blocks]) this.#unlist(block);
  }

  // ---------------------------------------------------------------- mapping

  // Not SystemAllocator's mapping: guard pages, MADV_DONTDUMP and mlock, all undone when one step fails.
  // Maps, fences, marks and locks the pages of one block; null (the reason in
  // #lastError, nothing left mapped) when the kernel refuses any step.
  #map(size: number, align: number): Block | null {
    const c = native.platform;
    const page = native.pageSize;
    const dataLength = Math.ceil(size / page) * page;
    const guard = this.#config.guardPages ? page : 0;
    const mapLength = dataLength + 2 * guard;
    const readWrite = c.PROT_READ | c.PROT_WRITE;
    const mapAddress = native.libc.mmap(
      0,
      mapLength,
      guard ? c.PROT_NONE : readWrite,
      c.MAP_PRIVATE | c.MAP_ANONYMOUS,
      -1,
      0,
    );
    if (mapAddress >= 2 ** 63 || mapAddress === 0) {
      return this.#fail(size, platformError("mmap", `${mapLength} bytes`, "out-of-memory"));
    }
    const dataAddress = mapAddress + guard;
    let error: AllocationError | null = null;
    if (guard && native.libc.mprotect(dataAddress, dataLength, readWrite) !== 0) {
      error = platformError("mprotect", `${dataLength} bytes between guard pages, read-write`, "out-of-memory");
    } else if (
      this.#config.dontDump && c.MADV_DONTDUMP >= 0 &&
      native.heap.madvise(mapAddress, mapLength, c.MADV_DONTDUMP) !== 0
    ) {
      error = platformError("madvise", `${mapLength} bytes, MADV_DONTDUMP`);
    } else if (native.libc.mlock(dataAddress, dataLength) !== 0) {
      error = memlockError(dataLength, native.errno()); // errno first: munmap below may change it
    }
    if (error !== null) {
      native.libc.munmap(mapAddress, mapLength); // munmap also drops any lock taken
      return this.#fail(size, error);
    }
    // A fenced block ends where the upper guard page begins (rounded down to its alignment), so a store one
    // byte past its end faults; dataAddress is page-aligned, so the start stays inside the data pages.
    const address = guard ? Math.floor((dataAddress + dataLength - size) / align) * align : dataAddress;
    return { mapAddress, mapLength, dataAddress, dataLength, address, size, align };
  }

  // A block above what one ArrayBuffer holds here (4 GiB in Bun) could be mapped and locked but never viewed:
  // it is refused before any native call (mapping and locking first faulted in every page, seconds per GiB).
  #viewLimit(size: number, op: "allocate" | "resize"): AllocationError | null {
    const name = this.#config.name;
    return viewLimitError(
      size,
      op === "allocate" ? `allocate ${byteCount(size)} in the ${name}` : `resize to ${byteCount(size)} in the ${name}`,
      "the block",
      this.#config.guardPages
        ? "keep secrets in smaller blocks"
        : "allocate smaller blocks, or map the memory with mapPages(size), lock it with mapping.lock() and use " +
          "it through windows (mapping.view(offset, length))",
    );
  }

  // Records a refusal whose message is complete (no "Cannot allocate ... in the ..." around it): null.
  #refuse(error: AllocationError): null {
    this.#lastError = error;
    this.#ledger.fail("limit-exceeded", error.message);
    return null;
  }

  #fail(size: number, error: AllocationError): null {
    this.#lastError = new AllocationError(
      error.category,
      `Cannot allocate ${byteCount(size)} in the ${this.#config.name}: ${error.message}`,
      { cause: error, call: error.call, errno: error.errno },
    );
    // The ledger counts every failure; its category is only for its own failure(), which is never asked here.
    this.#ledger.fail(error.category === "out-of-memory" ? "out-of-memory" : "limit-exceeded", error.message);
    return null;
  }

  // A view over a freshly mapped block, or null (its pages given back) when the runtime cannot view it.
  // Not SystemAllocator's #adopt: the census and the locked bytes count the mapped data pages, not the block.
  #adopt(block: Block, keep: CensusOwner | null): Uint8Array<ArrayBuffer> | null {
    let buffer: ArrayBuffer;
    try {
      // SAFETY: the block's size bytes are read-write pages this allocator owns until #release detaches this.
      buffer = native.wrap(block.address, block.size);
    } catch (error) {
      native.libc.munmap(block.mapAddress, block.mapLength);
      return this.#fail(
        block.size,
        new AllocationError("out-of-memory", `the runtime cannot view it in one ArrayBuffer (${error})`),
      );
    }
    const census = enterCensus(block.dataAddress, block.dataLength, this.#censusOwner, keep);
    const live: LiveBlock = { ...block, owner: this.#facade, census, index: this.#blocks.length, buffer };
    this.#blocks.push(live);
    BLOCKS.set(buffer, live);
    this.#lockedBytes += block.dataLength;
    this.#ledger.allocated(block.size);
    return new Uint8Array(buffer);
  }

  #resizeInPlace(block: LiveBlock, newSize: number, reason: string): Uint8Array<ArrayBuffer> {
    // SAFETY: the same locked pages, newSize <= dataLength; the old buffer is detached below.
    const buffer = native.wrap(block.address, newSize); // may throw: nothing has changed yet
    const leases = this.#leases;
    if (leases.leased === 0) return this.#resizedInPlace(block, newSize, buffer);
    // Its holders are told first, the allocator busy meanwhile, and what they give back waits until the resize is
    // made (see beginChange).
    beginChange();
    try {
      tellFreed(this.#ledger, "resize", leases, block.address, reason, block.size);
      return this.#resizedInPlace(block, newSize, buffer);
    } finally {
      endChange();
    }
  }

  // The rest of #resizeInPlace, with `buffer` over the block's new size.
  #resizedInPlace(block: LiveBlock, newSize: number, buffer: ArrayBuffer): Uint8Array<ArrayBuffer> {
    detach(block.buffer, block.address, block.size);
    const live: LiveBlock = { ...block, size: newSize, buffer };
    this.#blocks[block.index] = live;
    block.index = -1;
    BLOCKS.set(buffer, live);
    this.#ledger.resized(block.size, newSize);
    const view = new Uint8Array(buffer);
    if (this.#config.zero && newSize > block.size) intrinsic.fill(view, 0, block.size);
    return view;
  }

  // ---------------------------------------------------------------- release

  #release(block: LiveBlock, reason: string, op: string): void {
    const leases = this.#leases;
    if (leases.leased === 0) {
      this.#unlist(block);
      return;
    }
    // Its holders are told first, the allocator busy meanwhile, and what they give back waits until the block is
    // unmapped (see beginChange).
    beginChange();
    try {
      tellFreed(this.#ledger, op, leases, block.address, reason, block.size);
      this.#unlist(block);
    } finally {
      endChange();
    }
  }

  // Wipes (a secret), detaches, forgets and unmaps one block: the first rule of the safety model, in order.
  #unlist(block: LiveBlock): void {
    if (this.#config.wipe) {
      if (!isDetached(block.buffer)) intrinsic.fill(new Uint8Array(block.buffer), 0);
      else this.#wipeByAddress(block); // transferred away: the pages stay mapped below, so zero them now
    }
    detach(block.buffer, block.address, block.size); // records a theft found now (dispose)
    unlistBlock(this.#blocks, block);
    leaveCensus(block.census);
    this.#lockedBytes -= block.dataLength;
    this.#ledger.freed(block.size);
    // Pages another buffer may still reach (one over them was transferred away) stay mapped. munmap also
    // unlocks them (mlock(2)): no separate munlock call.
    if (!mayRelease(block.address, block.size)) return;
    native.libc.munmap(block.mapAddress, block.mapLength);
  }

  // Zeroes a block whose own buffer was transferred away, through a view of its own over the same pages
  // (still mapped and read-write: they are never unmapped while another buffer may reach them).
  #wipeByAddress(block: LiveBlock): void {
    // SAFETY: the block's pages stay mapped (mayRelease is false for them); this buffer is detached at once.
    const scratch = native.wrap(block.address, block.size);
    intrinsic.fill(new Uint8Array(scratch), 0);
    intrinsic.detach(scratch);
  }
}
