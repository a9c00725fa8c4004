// The engine of a DebugAllocator: its blocks, how they are taken from and
// given back to the backing, and how a view or an address finds its block.
// The public class (debug_allocator.ts) turns views into slots and calls in
// here; the C-style API (_c_style.ts) does the same with addresses; resizing
// is in _heap_resize.ts, and what happens when the backing releases memory
// by itself, or the allocator ends, in _heap_release.ts.
//
// Rule 5 (all or nothing): nothing in the table, the counters or the user's
// views changes until the backing's call has succeeded. A free goes to the
// backing first, so a backing that refuses (a stack freeing out of order)
// leaves the block live and its view usable; only then are leases revoked,
// the block's own buffer detached and its record dropped. No user code runs
// in between (the backing's own bookkeeping does), so the detached-late
// buffer is never read while its memory is gone (rule 1).
//
// Holders (a child allocator or an array over this allocator, or over memory
// its backing passed on: see _lease.ts) are told of a free or resize as every
// allocator tells them: inside a change (beginChange), the heap busy while it
// tells them, so what a revoked child gives back waits until the change is made
// and then goes back as an ordinary free. The heap's own holders are told last,
// once its records and counters are done (tellFreed); those leasing memory in
// its blocks from the allocator whose memory it is (a chain through an
// Allocator written in JavaScript: the blocks are views of the backing's
// memory) are told by that allocator as the backing gives it back, while the
// heap is busy calling the backing, and by the heap when it holds a freed block
// back (quarantine), as the backing then hears nothing. A free opens the change
// only when someone may hear of it (mayTell).
import { intrinsic } from "../../ffi/boundary.ts";
import { anyTaken, detach, isDetached, keep, mayRelease, transferredError } from "../base/_detach.ts";
import { bufferOf, lengthOf, offsetOf } from "../base/_validate.ts";
import { native } from "../../ffi/native.ts";
import {
  anyLooseLeases,
  beginChange,
  endChange,
  type Lease,
  LeaseTable,
  leaseTableOf,
  looseTableOf,
  tellFreedAfter,
} from "../alloc/_lease.ts";
import { Ledger } from "../alloc/_ledger.ts";
import { OffsetTable } from "../alloc/_offset_table.ts";
import type { Allocator } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { BackingIntake } from "./_backing_intake.ts";
import { type CensusOwner, censusOwner } from "../base/_native_census.ts";
import {
  armBlock,
  type BlockTag,
  type BufferWords,
  bytesOf,
  CANARY,
  damageOf,
  firstWritten,
  FREED_BYTE,
  FRESH_BYTE,
  frontOf,
  headerId,
  headerSlot,
  setTag,
  tagOf,
} from "./_block_layout.ts";
import { BlockTable } from "./_block_table.ts";
import { type FreedBlock, FreedRecords, Quarantine, QUARANTINE_BYTES, type Quarantined } from "./_freed_records.ts";
import { retireAll, retireRange } from "./_heap_release.ts";
import { leaseAgain, leaseOuter, seeking, unlease } from "./_block_leases.ts";
import { allocCounted } from "./_hot_path.ts";
import { badBlockError, corruptionError, type MisuseContext } from "./_misuse.ts";
import { taskClock } from "./_task_clock.ts";
import type { Trace, Tracer } from "./_traces.ts";

/** An outer block kept for the backing after the heap ended (see DebugHeap.stranded). */
export interface Stranded {
  readonly outer: Uint8Array<ArrayBuffer>;
  /** Allocation id (they go back newest first). */
  readonly id: number;
  /** Address of the outer block's first byte. */
  readonly start: number;
  readonly lease: Lease | null;
}

/** What a DebugAllocator was asked to check and keep. */
export interface HeapConfig {
  /** Canaries and misuse checks; false: counters only, the backing's own views. */
  readonly safety: boolean;
  /** Each block gets its own ArrayBuffer, detached when the block goes (safety only). */
  readonly detach: boolean;
  /** Fill fresh blocks with 0xAA and freed ones with 0xDD. */
  readonly poison: boolean;
  readonly neverUnmap: boolean;
  readonly retainMetadata: boolean;
  /** Most bytes live at once (Infinity: no limit). */
  readonly limit: number;
  readonly tracer: Tracer;
  readonly reportUnreachable: boolean;
}

/** The blocks of one DebugAllocator and everything done to them. */
export class DebugHeap implements MisuseContext {
  /** The public allocator (named in tags and ownership checks). */
  readonly owner: object;
  readonly backing: Allocator;
  readonly safety: boolean;
  readonly detach: boolean;
  readonly tracer: Tracer;
  readonly blocks: BlockTable = new BlockTable();
  readonly records: FreedRecords;
  readonly ledger: Ledger = new Ledger("debug", "DebugAllocator");
  /**
   * Leases on this allocator's blocks, by user address. With `safety: false`
   * the blocks are the backing's, and so are their leases (this table stays empty).
   */
  readonly leases: LeaseTable = new LeaseTable();
  /**
   * The backing's lease table (empty when it has none: see `leasing`): holders of memory inside this allocator's
   * blocks (passed on by an Allocator written in JavaScript) lease it there, and the backing tells them as it
   * takes a block back, so a free opens a change for them when it is not empty (see mayTell).
   */
  readonly backingLeases: LeaseTable;
  /** Live blocks without a readable header, by address: out-of-band, unaligned, C-style; all with safety off. */
  index: OffsetTable = new OffsetTable();
  /** The view the last `resizeBlock` handed out (when asked to). */
  lastView: Uint8Array<ArrayBuffer> | null = null;
  /** A write after free found in a block as it left the quarantine, for the next `check()` to report. */
  lateWrite: AllocationError | null = null;
  /** Asks the backing and checks what it returns. */
  readonly intake: BackingIntake;
  /** Who the blocks are for in the census of native memory (the leak check at exit). */
  readonly census: CensusOwner;
  /** Freed blocks held back from the backing (neverUnmap, retainMetadata), or null. */
  readonly quarantine: Quarantine | null;
  /** The backing frees only in LIFO order (a stack): its top block is resized in place. */
  readonly lifo: boolean;
  /** Most bytes live at once (Infinity: no limit). */
  readonly limit: number;
  /** Fill fresh blocks with 0xAA and freed ones with 0xDD. */
  readonly poison: boolean;
  /**
   * Checks on views of the backing's memory with nothing poisoned or held
   * back (the default options): alloc and free of 16-aligned blocks take the
   * flat paths of _hot_path.ts.
   */
  readonly leanChecks: boolean;
  /** Stops watching the backing (deinit, dispose), or null when it is not a memkit allocator. */
  readonly unwatch: (() => void) | null;
  /**
   * The backing has no lease table to watch (an Allocator written in JavaScript, which may pass on memkit's
   * memory): each block taken from it is leased from the owner of its memory instead (see _block_leases.ts).
   */
  readonly leasing: boolean;
  /**
   * Outer blocks of memory that lives on, still leased, kept from the backing when the owner of other memory of
   * the heap went and the heap ended (see loseLeased in _heap_release.ts): they go back at deinit() or dispose(),
   * unless their own owner releases them first.
   */
  stranded: Stranded[] = [];
  /** The most recent block taken from the backing, while live: the top of a LIFO backing. */
  top = -1;
  /**
   * The block whose outer block is being handed back or resized right now: a
   * backing that reports its own free as a released range (a stack) must not
   * make this allocator retire it.
   */
  busy = -1;
  readonly #retainMetadata: boolean;
  readonly #registry: FinalizationRegistry<BlockTag> | null;
  /** The next allocation id (ids only grow: invariant 2 of the block table). */
  nextId = 1;

  constructor(owner: object, backing: Allocator, config: HeapConfig) {
    this.owner = owner;
    this.backing = backing;
    this.safety = config.safety;
    this.detach = config.safety && config.detach;
    this.tracer = config.tracer;
    this.census = censusOwner("DebugAllocator", owner);
    this.intake = new BackingIntake(backing, this.census, this.ledger);
    this.poison = config.safety && config.poison;
    this.#retainMetadata = config.safety && config.retainMetadata;
    this.limit = config.limit;
    this.records = new FreedRecords(this.#retainMetadata);
    this.quarantine = !config.safety
      ? null
      : config.neverUnmap
      ? new Quarantine(Infinity)
      : config.retainMetadata
      ? new Quarantine(QUARANTINE_BYTES)
      : null;
    this.lifo = (backing as { kind?: unknown }).kind === "stack";
    this.leanChecks = this.safety && !this.detach && !this.poison && this.quarantine === null && !this.#retainMetadata;
    const blocks = this.blocks;
    this.#registry = this.detach && config.reportUnreachable
      ? new FinalizationRegistry((tag: BlockTag) => {
        if (!tag.freed && blocks.ids[tag.slot] === tag.id) blocks.unreachable[tag.slot] = 1;
      })
      : null;
    // Chains cannot dangle (rule 4): hear about every bulk release of the backing, or, when it cannot tell (an
    // Allocator written in JavaScript), of each block's release by the owner of its memory.
    const table = leaseTableOf(backing);
    this.backingLeases = table ?? new LeaseTable();
    this.unwatch = table?.watch({
      released: (lo, hi, reason) => retireRange(this, lo, hi, reason),
      releasedAll: (reason) => retireAll(this, reason),
    }) ?? null;
    this.leasing = table === null;
  }

  // ---------------------------------------------------------------- allocation

  /**
   * A counted block of `size` > 0 bytes and its view, or null with the
   * failure recorded in the ledger. `depth` counts the frames from this call
   * out to `entry`, the public function the user called.
   * @throws {AllocationError} "corruption" when the backing returns a block it must not.
   */
  allocBlock(size: number, align: number, entry: unknown, depth: number): Uint8Array<ArrayBuffer> | null {
    if (this.ledger.allocatedBytes + size > this.limit) return this.failLimit();
    if (!this.safety) return allocCounted(this, size, align, entry, depth + 1);
    const slot = this.take(size, align, entry, depth + 1);
    if (slot < 0) return this.ledger.fail("out-of-memory", this.intake.refusal, this.intake.cause);
    let view: Uint8Array<ArrayBuffer>;
    if (!this.detach) view = this.dress(slot);
    else {
      try {
        view = this.dress(slot);
      } catch (error) {
        this.discard(slot);
        if (error instanceof AllocationError && error.category === "out-of-memory") {
          return this.ledger.fail("out-of-memory", error.message, error);
        }
        throw error;
      }
    }
    this.ledger.allocated(size);
    return view;
  }

  /** The user's view of live `slot` (a fresh one: the block's own buffer, or a view of the backing's). */
  viewOf(slot: number): Uint8Array<ArrayBuffer> {
    return this.dress(slot);
  }

  failLimit(): null {
    return this.ledger.fail(
      "limit-exceeded",
      `${this.ledger.allocatedBytes} of the ${this.limit}-byte memory limit are in use`,
    );
  }

  // Takes a block from the backing (in-band when the padded size fits, else
  // out-of-band), checks it, arms it and records it; not yet counted. The
  // slot, or -1 with the refusal recorded in `intake`.
  take(size: number, align: number, entry: unknown, depth: number): number {
    // The trace first: nothing has changed yet (see _traces.ts).
    const tracer = this.tracer;
    const trace = tracer.frames > 0 && tracer.sampled(this.nextId) ? tracer.capture(entry, depth + 1) : null;
    const alignArg = align === 16 ? undefined : align; // the backing's own default keeps its fast path
    let front = 0;
    let outer: unknown = null;
    if (this.safety) {
      front = frontOf(align);
      outer = this.intake.ask(front + size + CANARY, alignArg);
    }
    if (outer === null) {
      front = 0;
      outer = this.intake.ask(size, alignArg);
      if (outer === null) return -1;
    }
    return this.adopt(outer, front, size, align, trace);
  }

  /**
   * The heap ended while its backing served a request (code the backing runs disposed the DebugAllocator, or
   * the backing released its memory): what the backing gave goes back, and the allocation fails as any use
   * after the end does.
   */
  endedWhileAsking(outer: unknown): never {
    if (ArrayBuffer.isView(outer)) {
      try {
        this.backing.free(outer);
      } catch { /* the backing let go of it itself */ }
    }
    throw this.ledger.usedAfterEnd("allocate");
  }

  /**
   * Checks, arms and records `outer`, the backing's answer to a request for
   * `size` bytes with `front` bytes of canary and header before them (0: an
   * out-of-band block, no canaries); not yet counted, with `trace` (captured
   * by the caller before it asked the backing, for allocation id `nextId`).
   * Its slot.
   * @throws {AllocationError} "corruption" when `outer` is not a block the heap can use (nothing recorded).
   */
  adopt(outer: unknown, front: number, size: number, align: number, trace: Trace | null): number {
    if (this.ledger.ended !== null) this.endedWhileAsking(outer);
    const need = front === 0 ? size : front + size + CANARY;
    const problem = this.intake.check(outer, need, align);
    if (problem !== null) throw badBlockError(this.backing, need, align, problem);
    const host = this.intake.host!;
    const user = this.intake.offset + front;
    const address = host.base + user;
    const blocks = this.blocks;
    const twin = this.#liveAt(user, host, address);
    if (twin >= 0) {
      throw badBlockError(
        this.backing,
        need,
        align,
        `it is memory the backing already gave: the live ${blocks.sizes[twin]}-byte block at 0x${address.toString(16)}`,
      );
    }
    const slot = blocks.take();
    const id = this.nextId++;
    blocks.ids[slot] = id;
    blocks.addresses[slot] = address;
    blocks.sizes[slot] = size;
    blocks.userOffsets[slot] = user;
    blocks.aligns[slot] = align;
    blocks.fronts[slot] = front;
    blocks.born[slot] = taskClock();
    blocks.outers[slot] = outer as Uint8Array<ArrayBuffer>; // check() refused a shared buffer
    blocks.hosts[slot] = host;
    if (front === 0 || !armBlock(host, user, front, size, slot, id)) this.index.set(address, slot);
    if (this.records.kept !== 0) this.records.supersede(address); // an older generation lived here
    if (this.poison) intrinsic.fill(bytesOf(host), FRESH_BYTE, user, user + size);
    if (trace !== null) blocks.traces[slot] = trace;
    this.top = slot;
    if (this.leasing) leaseOuter(this, slot);
    return slot;
  }

  // The live slot whose user bytes start at `user` of `host` (memory handed
  // out twice), or -1. With safety off the backing's blocks are only counted,
  // and this check is skipped.
  #liveAt(user: number, host: BufferWords, address: number): number {
    if (!this.safety) return -1;
    const blocks = this.blocks;
    let slot = headerSlot(user, host);
    if (slot >= 0 && slot < blocks.end && blocks.hosts[slot] === host && blocks.userOffsets[slot] === user) return slot;
    if (this.index.size === 0) return -1;
    slot = this.index.get(address);
    return slot >= 0 && blocks.ids[slot] !== 0 && blocks.addresses[slot] === address ? slot : -1;
  }

  // The user's view: the block's own buffer (detached when it goes), a view
  // of the backing's buffer, or with safety off the backing's own view.
  dress(slot: number): Uint8Array<ArrayBuffer> {
    const blocks = this.blocks;
    if (!this.safety) return blocks.outers[slot]!;
    const size = blocks.sizes[slot];
    if (!this.detach) {
      const view = new Uint8Array(blocks.hosts[slot]!.buffer, blocks.userOffsets[slot], size);
      blocks.handed[slot] = view;
      return view;
    }
    const address = blocks.addresses[slot];
    // SAFETY: the block's user bytes are [address, address + size) of memory
    // the backing gave; the buffer is detached before that memory goes back
    // (or, when the backing frees first, before any user code runs again).
    const buffer = native.wrap(address, size);
    const tag: BlockTag = {
      owner: this.owner,
      slot,
      id: blocks.ids[slot],
      address,
      size,
      trace: blocks.traces[slot],
      freedTrace: null,
      freed: false,
      releasedBy: null,
      resized: false,
    };
    setTag(buffer, tag);
    blocks.buffers[slot] = this.#registry !== null ? new WeakRef(buffer) : buffer;
    this.#registry?.register(buffer, tag, tag);
    return new Uint8Array(buffer);
  }

  // ---------------------------------------------------------------- lookups

  /** The live block `view` starts (its slot), or -1; never throws. */
  locate(view: ArrayBufferView): number {
    const buffer = bufferOf(view);
    if (this.detach) {
      const tag = tagOf(buffer);
      return tag !== undefined && tag.owner === this.owner && !tag.freed && offsetOf(view) === 0 ? tag.slot : -1;
    }
    const host = this.intake.knownHostOf(buffer);
    if (host === undefined) return -1;
    const user = offsetOf(view);
    // A view its shrunk resizable buffer no longer covers reads offset 0 and length 0 too: it names no byte, least
    // of all the first of the block at offset 0 (a detached one is left to the caller, which says it was transferred).
    if (user === 0 && lengthOf(view) === 0 && !isDetached(buffer)) return -1;
    const blocks = this.blocks;
    if (this.safety) {
      // A header names a slot; the slot must name this very block back.
      const slot = headerSlot(user, host);
      if (
        slot >= 0 && slot < blocks.end && blocks.hosts[slot] === host && blocks.userOffsets[slot] === user &&
        (blocks.ids[slot] | 0) === headerId(user, host)
      ) return slot;
    }
    if (this.index.size === 0) return -1;
    const slot = this.index.get(host.base + user);
    return slot >= 0 && blocks.hosts[slot] === host && blocks.userOffsets[slot] === user ? slot : -1;
  }

  /** The user bytes of live `slot`, as a view of the backing's buffer (for copies). */
  userBytes(slot: number): Uint8Array<ArrayBuffer> {
    const blocks = this.blocks;
    return new Uint8Array(blocks.hosts[slot]!.buffer, blocks.userOffsets[slot], blocks.sizes[slot]);
  }

  /** The damage to live `slot`'s canaries as an error, or null (always null for out-of-band blocks). */
  corruption(slot: number): AllocationError | null {
    const blocks = this.blocks;
    const front = blocks.fronts[slot];
    if (front === 0) return null;
    // A resizable buffer the backing shrank under the block: its canaries (and maybe its bytes) are gone, and
    // no view over the old length can be made (the engine's RangeError, before this check).
    const host = blocks.hosts[slot]!;
    const now = intrinsic.bufferByteLength(host.buffer);
    if (now < host.byteLength && !isDetached(host.buffer)) {
      return new AllocationError(
        "corruption",
        `the ${blocks.sizes[slot]}-byte block at 0x${blocks.addresses[slot].toString(16)} lies in a buffer its ` +
          `backing shrank from ${host.byteLength} to ${now} bytes: its canaries cannot be checked`,
      );
    }
    const damage = damageOf(
      blocks.hosts[slot]!,
      blocks.userOffsets[slot],
      front,
      blocks.sizes[slot],
      slot,
      blocks.ids[slot],
    );
    return damage === null
      ? null
      : corruptionError(damage, blocks.sizes[slot], blocks.addresses[slot], this.tracer.format(blocks.traces[slot]));
  }

  // ---------------------------------------------------------------- release

  /**
   * Frees live `slot`: the backing first (what it throws goes to the caller,
   * and nothing has changed), then the block's own view and its record, then
   * its holders (see tellFreed), all in one change: what they give back waits
   * until the free is made.
   */
  freeBlock(slot: number, reason: string, entry: unknown, depth: number): void {
    this.checkKept(slot, "free");
    // Where a traced block was freed, captured before anything changes (see _traces.ts).
    const freedTrace = this.safety && this.blocks.traces[slot] !== null ? this.tracer.capture(entry, depth + 1) : null;
    const size = this.blocks.sizes[slot];
    const address = this.blocks.addresses[slot];
    if (!this.mayTell()) {
      this.#free(slot, size, freedTrace);
      return;
    }
    const buffer = this.blocks.hosts[slot]?.buffer ?? null; // (for the holders of a block held back)
    beginChange();
    try {
      const held = this.#free(slot, size, freedTrace);
      if (held !== null) this.tellFreed(address, size, reason, held ? buffer : null);
    } finally {
      endChange();
    }
  }

  /**
   * Whether a release of one of its blocks may have holders to tell: its own (an array or a chain over it), its
   * backing's (counters only: their leases are the backing's), or anyone holding memory an Allocator written in
   * JavaScript passed on (the backing's memory, leased from whichever allocator owns it; or, over such a backing,
   * this heap's). The release opens a change only then (see tellFreed): two counters and a flag on the flat paths.
   */
  mayTell(): boolean {
    return this.leases.leased !== 0 || this.backingLeases.leased !== 0 || anyLooseLeases();
  }

  // freeBlock's release of `slot` (`size` bytes): true when the block went to the quarantine, false when back to
  // the backing, null when the backing's code ended the heap meanwhile (its teardown counted all).
  #free(slot: number, size: number, freedTrace: Trace | null): boolean | null {
    let held = false;
    if (!this.safety) {
      // Counters only: the backing's block (and its leases, which the backing revokes, or, over a backing without
      // a lease table, this heap: see DebugAllocator's registerLeases).
      const blocks = this.blocks;
      if (this.leasing) unlease(this, slot);
      this.busy = slot;
      const calling = this.ledger.busy();
      try {
        this.backing.free(blocks.outers[slot]!);
      } catch (error) {
        if (this.leasing) leaseAgain(this, slot);
        throw error;
      } finally {
        this.busy = -1;
        if (calling) this.ledger.idle();
      }
      if (this.ledger.ended !== null) return null; // the backing's code ended the heap meanwhile: it counted all
      this.index.delete(blocks.addresses[slot]);
      if (this.top === slot) this.top = -1;
      blocks.release(slot);
    } else {
      held = this.giveBack(slot);
      if (this.ledger.ended !== null) return null; // the backing's code ended the heap meanwhile: it counted all
      this.forget(slot, freedTrace, false);
    }
    this.ledger.freed(size);
    return held;
  }

  /**
   * Tells the holders of the `size` bytes at `address` (a block this heap just freed, resized or moved: its
   * records and counters done) that `reason` released them, the heap busy meanwhile (code they run cannot call
   * back in: "unsupported", but owns and stats). Its own holders; and with `held`, the buffer of a block that went
   * to the quarantine (its backing heard nothing), those that lease memory in it from the allocator whose memory
   * it is. Call it inside a change (beginChange), last: what they give back waits until the caller is done. A
   * holder's code may end the heap (it released the backing's memory): the caller reads `ledger.ended` after.
   */
  tellFreed(address: number, size: number, reason: string, held: ArrayBufferLike | null): void {
    if (this.leases.leased !== 0) tellFreedAfter(this.ledger, this.leases, address, reason, size);
    if (held === null || !anyLooseLeases()) return;
    // As leaseBlock finds it for them: the owner of that memory, never this heap (see `seeking`).
    seeking.self = this.owner;
    seeking.address = address;
    let table: LeaseTable | null;
    try {
      table = looseTableOf(held, address, size);
    } finally {
      seeking.self = null;
    }
    if (table !== null && table !== this.leases && table.leased !== 0) {
      // Over a backing without a lease table the heap leases the whole block it holds back there (see
      // _block_leases.ts): that lease is the heap's own, on memory it still has, not a holder to tell. Told, it
      // took the block out of the quarantine as if its owner had released it, and the block never went back.
      const newest = this.quarantine?.newest() ?? null;
      const own = newest !== null && newest.host.buffer === held && newest.start <= address &&
          address < newest.start + newest.bytes
        ? newest.lease
        : null;
      tellFreedAfter(this.ledger, table, address, reason, size, own);
    }
  }

  // Returns the outer block to the backing, or to the quarantine (true). Poisoned
  // bytes are restored when the backing refuses. Callers check mustKeep first.
  giveBack(slot: number): boolean {
    const blocks = this.blocks;
    const outer = blocks.outers[slot]!;
    if (this.quarantine !== null) {
      const host = blocks.hosts[slot]!;
      const user = blocks.userOffsets[slot];
      const size = blocks.sizes[slot];
      if (this.poison) intrinsic.fill(bytesOf(host), FREED_BYTE, user, user + size);
      const front = blocks.fronts[slot];
      const evicted = this.quarantine.add({
        outer,
        host,
        user,
        size,
        start: blocks.addresses[slot] - front,
        bytes: front === 0 ? size : front + size + CANARY,
        id: blocks.ids[slot],
        lease: blocks.leases[slot], // held back, the block is still this heap's: its lease goes with it
      });
      blocks.leases[slot] = null;
      for (const old of evicted) {
        // Its last chance to show a write after free; the next check() reports it.
        if (this.lateWrite === null) this.lateWrite = this.writtenAfterFree(old);
        old.lease?.end();
        this.intake.freeQuietly(old.outer);
      }
      return true;
    }
    const bytes = this.poison ? bytesOf(blocks.hosts[slot]!) : null;
    const user = blocks.userOffsets[slot];
    const end = user + blocks.sizes[slot];
    const saved = bytes === null ? undefined : intrinsic.copyOf(bytes, user, end - user);
    if (bytes !== null) intrinsic.fill(bytes, FREED_BYTE, user, end);
    if (this.leasing) unlease(this, slot);
    this.busy = slot;
    const calling = this.ledger.busy();
    try {
      this.backing.free(outer);
    } catch (error) {
      if (this.leasing) leaseAgain(this, slot);
      if (saved !== undefined) {
        try {
          intrinsic.set(bytes!, saved, user);
        } catch {
          // A backing that let the memory go and then threw (its buffer is detached): nothing left to restore.
        }
      }
      throw error;
    } finally {
      this.busy = -1;
      if (calling) this.ledger.idle();
    }
    return false;
  }

  /**
   * A write after free into held-back memory: "use-after-free" naming the
   * block and the first written byte, when `held` was poisoned and a byte
   * no longer holds 0xDD; else null.
   */
  writtenAfterFree(held: Quarantined): AllocationError | null {
    // A buffer transferred away (then detached) reads as empty: nothing to judge.
    if (!this.poison || isDetached(held.host.buffer)) return null;
    const at = firstWritten(held.host, held.user, held.size);
    if (at < 0) return null;
    return new AllocationError(
      "use-after-free",
      `Write after free detected: the ${held.size}-byte block at 0x${
        (held.host.base + held.user).toString(16)
      } (allocation #${held.id}) was written at offset ${at} after it was freed (its bytes were poisoned with 0xDD)`,
    );
  }

  // Drops the record of `slot` after its memory went back: its lease, its own
  // buffer (detached, tagged freed), what is remembered of it, with
  // `freedTrace`, where it was freed (captured before its memory went back).
  // Its holders are told after (see tellFreed).
  forget(slot: number, freedTrace: Trace | null, resized: boolean): void {
    const blocks = this.blocks;
    const address = blocks.addresses[slot];
    const id = blocks.ids[slot];
    const size = blocks.sizes[slot];
    const trace = blocks.traces[slot];
    if (this.leasing) unlease(this, slot);
    if (this.safety) {
      if (this.detach) this.detachOwn(slot, null, freedTrace, resized);
      this.records.noteFree(address, id, size, blocks.handed[slot], trace, freedTrace);
      if (this.#retainMetadata) this.records.keep({ id, address, size, trace, freedTrace, releasedBy: null });
    }
    if (this.index.size !== 0) this.index.delete(address);
    if (this.top === slot) this.top = -1;
    blocks.release(slot);
  }

  /**
   * Whether `slot`'s memory must never go back to the backing: its own buffer
   * was transferred away (recorded here), or collected before it could be
   * checked (unreachable blocks reported: memkit cannot tell whether it was
   * transferred first), or it overlaps memory recorded as reachable elsewhere.
   */
  mustKeep(slot: number): boolean {
    // The common case, checked first: no own buffer to inspect and no memory ever found transferred away.
    if (!this.detach && !anyTaken()) return false;
    const blocks = this.blocks;
    const front = blocks.fronts[slot];
    const start = blocks.addresses[slot] - front;
    const bytes = front === 0 ? blocks.sizes[slot] : front + blocks.sizes[slot] + CANARY;
    if (this.detach) {
      const held = blocks.buffers[slot];
      const buffer = held instanceof WeakRef ? held.deref() : held;
      if (held !== undefined && buffer === undefined) {
        keep(start, bytes);
        return true;
      }
      if (buffer !== undefined && isDetached(buffer) && !tagOf(buffer)!.freed) {
        detach(buffer, start, bytes); // records the memory as reachable elsewhere
        return true;
      }
    }
    return anyTaken() && !mayRelease(start, bytes);
  }

  /** Records `slot`'s memory as reachable elsewhere: it never goes back to the backing. */
  keepBlock(slot: number): void {
    const blocks = this.blocks;
    const front = blocks.fronts[slot];
    keep(blocks.addresses[slot] - front, front === 0 ? blocks.sizes[slot] : front + blocks.sizes[slot] + CANARY);
  }

  /**
   * Throws "corruption" (nothing changed) when a free or resize would give
   * back memory another buffer may reach; the block stays allocated for good.
   */
  checkKept(slot: number, op: string): void {
    if (this.mustKeep(slot)) {
      throw transferredError(
        op,
        `the ${this.blocks.sizes[slot]}-byte block at 0x${this.blocks.addresses[slot].toString(16)}`,
      );
    }
  }

  // Detaches the block's own buffer, tagging why.
  detachOwn(slot: number, releasedBy: string | null, freedTrace: Trace | null, resized: boolean): void {
    const held = this.blocks.buffers[slot];
    const buffer = held instanceof WeakRef ? held.deref() : held;
    if (buffer === undefined) return;
    const tag = tagOf(buffer)!;
    tag.freed = true;
    tag.freedTrace = freedTrace;
    tag.releasedBy = releasedBy;
    tag.resized = resized;
    this.#registry?.unregister(tag);
    detach(buffer, tag.address, tag.size);
  }

  // A block taken but never handed out: back to the backing, not counted.
  discard(slot: number): void {
    const blocks = this.blocks;
    if (this.detach) this.detachOwn(slot, null, null, false);
    if (this.leasing) unlease(this, slot);
    this.busy = slot;
    this.intake.freeQuietly(blocks.outers[slot]!);
    this.busy = -1;
    if (this.index.size !== 0) this.index.delete(blocks.addresses[slot]);
    if (this.top === slot) this.top = -1;
    blocks.release(slot);
  }

  // A block whose memory the backing took back: its views detached, its
  // record kept as released (a later free says so), counted as freed.
  retire(slot: number, reason: string): void {
    const blocks = this.blocks;
    // Recorded before the backing lets the memory go (it checks the record):
    // a block whose buffer was transferred away, or collected unchecked.
    this.mustKeep(slot);
    if (this.leasing) unlease(this, slot);
    const record: FreedBlock = {
      id: blocks.ids[slot],
      address: blocks.addresses[slot],
      size: blocks.sizes[slot],
      trace: blocks.traces[slot],
      freedTrace: null,
      releasedBy: reason,
    };
    if (this.safety) {
      if (this.detach) this.detachOwn(slot, reason, null, false);
      else if (blocks.handed[slot] !== undefined) this.records.keepView(blocks.handed[slot]!, record);
      this.records.keep(record);
    }
    if (this.index.size !== 0) this.index.delete(record.address);
    if (this.top === slot) this.top = -1;
    this.ledger.freed(record.size);
    blocks.release(slot);
  }
}
