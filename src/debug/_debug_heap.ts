// The engine of a DebugAllocator: its blocks, how they are taken from and
// given back to the backing, and what happens when the backing releases
// memory by itself. The public class (debug_allocator.ts) turns views into
// slots and calls in here; the C-style API (_c_style.ts) does the same with
// addresses.
//
// Rule 5 (all or nothing): nothing in the table, the counters or the user's
// views changes until the backing's call has succeeded. A free goes to the
// backing first, so a backing that refuses (a stack freeing out of order)
// leaves the block live and its view usable; only then are leases revoked,
// the block's own buffer detached and its record dropped. No user code runs
// in between (the backing's own bookkeeping does), so the detached-late
// buffer is never read while its memory is gone (rule 1).
import { native } from "../../ffi/native.ts";
import { LeaseTable, leaseTableOf } from "../alloc/_lease.ts";
import { Ledger } from "../alloc/_ledger.ts";
import { OffsetTable } from "../alloc/_offset_table.ts";
import { describe } from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import {
  alignedAt,
  armBlock,
  type BlockTag,
  type BufferWords,
  bytesOf,
  cachedWordsOf,
  CANARY,
  damageOf,
  FREED_BYTE,
  FRESH_BYTE,
  frontOf,
  headerId,
  headerSlot,
  setTag,
  tagOf,
  wordsOf,
} from "./_block_layout.ts";
import { BlockTable } from "./_block_table.ts";
import { type FreedBlock, FreedRecords, Quarantine, QUARANTINE_BYTES } from "./_freed_records.ts";
import { backingName, badBlockError, corruptionError, goneError, type MisuseContext } from "./_misuse.ts";
import { taskClock } from "./_task_clock.ts";
import type { Trace, Tracer } from "./_traces.ts";

/** What a DebugAllocator was asked to check and keep. */
export interface HeapConfig {
  /** Canaries and misuse checks; false: counters only, the backing's own views. */
  readonly safety: boolean;
  /** Each block gets its own ArrayBuffer, detached when the block goes (safety only). */
  readonly detach: boolean;
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
  /** Live blocks without a readable header, by address: out-of-band, unaligned, C-style, every block with safety off. */
  index: OffsetTable = new OffsetTable();
  /** The view the last `resize` handed out (when asked to). */
  lastView: Uint8Array | null = null;
  readonly #poison: boolean;
  readonly #retainMetadata: boolean;
  readonly #limit: number;
  readonly #quarantine: Quarantine | null;
  readonly #registry: FinalizationRegistry<BlockTag> | null;
  readonly #lifo: boolean;
  readonly #unwatch: (() => void) | null;
  #nextId = 1;
  // The most recent block taken from the backing, while live: the top of a LIFO backing.
  #top = -1;
  // The block whose outer block this allocator is handing back or resizing
  // right now: a backing that reports its own free as a released range (a
  // stack) must not make it retire that block.
  #busy = -1;
  // Why the backing refused, for the failure record.
  #refusal = "";
  #cause: AllocationError | undefined = undefined;
  // Why the backing's own resize refused, when it was tried.
  #inPlaceError: AllocationError | null = null;
  // What #check found: the outer block's buffer words and offset.
  #host: BufferWords | null = null;
  #offset = 0;
  #lastHost: BufferWords | null = null;

  constructor(owner: object, backing: Allocator, config: HeapConfig) {
    this.owner = owner;
    this.backing = backing;
    this.safety = config.safety;
    this.detach = config.safety && config.detach;
    this.tracer = config.tracer;
    this.#poison = config.safety && config.poison;
    this.#retainMetadata = config.safety && config.retainMetadata;
    this.#limit = config.limit;
    this.records = new FreedRecords(this.#retainMetadata);
    this.#quarantine = !config.safety
      ? null
      : config.neverUnmap
      ? new Quarantine(Infinity)
      : config.retainMetadata
      ? new Quarantine(QUARANTINE_BYTES)
      : null;
    this.#lifo = (backing as { kind?: unknown }).kind === "stack";
    const blocks = this.blocks;
    this.#registry = this.detach && config.reportUnreachable
      ? new FinalizationRegistry((tag: BlockTag) => {
        if (!tag.freed && blocks.ids[tag.slot] === tag.id) blocks.unreachable[tag.slot] = 1;
      })
      : null;
    // Chains cannot dangle (rule 4): hear about every bulk release of the backing.
    this.#unwatch = leaseTableOf(backing)?.watch({
      released: (lo, hi, reason) => this.retireRange(lo, hi, reason),
      releasedAll: (reason) => this.retireAll(reason),
    }) ?? null;
  }

  // ---------------------------------------------------------------- allocation

  /**
   * A counted block of `size` > 0 bytes and its view, or null with the
   * failure recorded in the ledger. `depth` counts the frames from this call
   * out to `entry`, the public function the user called.
   * @throws {AllocationError} "corruption" when the backing returns a block it must not.
   */
  allocBlock(size: number, align: number, entry: unknown, depth: number): Uint8Array | null {
    if (this.ledger.allocatedBytes + size > this.#limit) return this.#failLimit();
    const slot = this.#take(size, align, entry, depth + 1);
    if (slot < 0) return this.ledger.fail("out-of-memory", this.#refusal, this.#cause);
    let view: Uint8Array;
    if (!this.detach) view = this.#dress(slot);
    else {
      try {
        view = this.#dress(slot);
      } catch (error) {
        this.#discard(slot);
        if (error instanceof AllocationError && error.category === "out-of-memory") {
          return this.ledger.fail("out-of-memory", error.message, error);
        }
        throw error;
      }
    }
    this.ledger.allocated(size);
    return view;
  }

  /** A counted block for the C-style API, found by address: its address, or -1 with the failure recorded. */
  allocAddress(size: number, entry: unknown, depth: number): number {
    if (this.ledger.allocatedBytes + size > this.#limit) {
      this.#failLimit();
      return -1;
    }
    const slot = this.#take(size, 16, entry, depth + 1);
    if (slot < 0) {
      this.ledger.fail("out-of-memory", this.#refusal, this.#cause);
      return -1;
    }
    this.index.set(this.blocks.addresses[slot], slot);
    this.ledger.allocated(size);
    return this.blocks.addresses[slot];
  }

  /** The user's view of live `slot` (a fresh one: the block's own buffer, or a view of the backing's). */
  viewOf(slot: number): Uint8Array {
    return this.#dress(slot);
  }

  #failLimit(): null {
    return this.ledger.fail(
      "limit-exceeded",
      `${this.ledger.allocatedBytes} of the ${this.#limit}-byte memory limit are in use`,
    );
  }

  // Takes a block from the backing (in-band when the padded size fits, else
  // out-of-band), checks it, arms it and records it; not yet counted. The
  // slot, or -1 with #refusal set.
  #take(size: number, align: number, entry: unknown, depth: number): number {
    const alignArg = align === 16 ? undefined : align; // the backing's own default keeps its fast path
    let front = 0;
    let outer: unknown = null;
    if (this.safety) {
      front = frontOf(align);
      outer = this.#ask(front + size + CANARY, alignArg);
    }
    if (outer === null) {
      front = 0;
      outer = this.#ask(size, alignArg);
      if (outer === null) return -1;
    }
    const need = front === 0 ? size : front + size + CANARY;
    const problem = this.#check(outer, need, align);
    if (problem !== null) throw badBlockError(this.backing, need, align, problem);
    const host = this.#host!;
    const user = this.#offset + front;
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
    const id = this.#nextId++;
    blocks.ids[slot] = id;
    blocks.addresses[slot] = address;
    blocks.sizes[slot] = size;
    blocks.userOffsets[slot] = user;
    blocks.aligns[slot] = align;
    blocks.fronts[slot] = front;
    blocks.born[slot] = taskClock();
    blocks.outers[slot] = outer as Uint8Array;
    blocks.hosts[slot] = host;
    if (front === 0 || !armBlock(host, user, front, size, slot, id)) this.index.set(address, slot);
    if (this.records.kept !== 0) this.records.supersede(address); // an older generation lived here
    if (this.#poison) bytesOf(host).fill(FRESH_BYTE, user, user + size);
    if (this.tracer.frames > 0 && this.tracer.sampled(id)) blocks.traces[slot] = this.tracer.capture(entry, depth + 1);
    this.#top = slot;
    return slot;
  }

  // The backing's block of `n` bytes, or null when it cannot serve it (a
  // refusal, a size or alignment it never serves); its state errors go on.
  #ask(n: number, alignArg: number | undefined): unknown {
    try {
      const block = this.backing.tryAlloc(n, alignArg);
      if (block === null) this.#refuse(`the backing ${backingName(this.backing)} refused ${n} bytes`, undefined);
      return block;
    } catch (error) {
      if (error instanceof AllocationError) {
        if (error.category !== "out-of-memory" && error.category !== "limit-exceeded") throw error;
      } else if (!(error instanceof RangeError) && !(error instanceof TypeError)) throw error;
      this.#refuse(
        `the backing ${backingName(this.backing)} cannot serve ${n} bytes: ${(error as Error).message}`,
        error instanceof AllocationError ? error : undefined,
      );
      return null;
    }
  }

  #refuse(reason: string, cause: AllocationError | undefined): void {
    this.#refusal = reason;
    this.#cause = cause;
  }

  // What is wrong with a block the backing returned (rule 4), or null; sets #host and #offset.
  #check(outer: unknown, need: number, align: number): string | null {
    if (!(outer instanceof Uint8Array)) return `${describe(outer)} is not a Uint8Array view of memory`;
    const buffer = outer.buffer;
    const length = outer.byteLength;
    const offset = outer.byteOffset;
    if (length < need) {
      return (buffer as ArrayBuffer).detached === true
        ? "its buffer is detached (that memory was released)"
        : `it has ${length} bytes`;
    }
    // The last buffer seen, to skip the property lookup (most blocks come from a few chunks).
    let host = this.#lastHost;
    if (host === null || host.buffer !== buffer) this.#lastHost = host = wordsOf(buffer);
    if (offset + need > host.byteLength) return `it claims bytes past the end of its ${host.byteLength}-byte buffer`;
    if (!alignedAt(host, offset, align)) {
      return `its address 0x${(host.base + offset).toString(16)} is not a multiple of ${align}`;
    }
    this.#host = host;
    this.#offset = offset;
    return null;
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
  #dress(slot: number): Uint8Array {
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
    const buffer = view.buffer;
    if (this.detach) {
      const tag = tagOf(buffer);
      return tag !== undefined && tag.owner === this.owner && !tag.freed && view.byteOffset === 0 ? tag.slot : -1;
    }
    let host: BufferWords | undefined = this.#lastHost ?? undefined;
    if (host === undefined || host.buffer !== buffer) {
      host = cachedWordsOf(buffer);
      if (host === undefined) return -1;
    }
    const user = view.byteOffset;
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

  /**
   * A view that is not the one handed out for live `slot` (views of the
   * backing's memory): a stale view of an older block at the same address
   * is a double free, and the live block is left alone.
   */
  checkGeneration(view: ArrayBufferView, slot: number, op: "free" | "resize"): void {
    const stale = this.records.byView(view);
    if (stale !== null && stale.id !== this.blocks.ids[slot]) {
      throw goneError(op, describe(view), stale, this.tracer, false);
    }
  }

  /** The live slot at `address` for the C-style API, or -1. */
  slotAt(address: number): number {
    const blocks = this.blocks;
    if (this.index.size !== 0) {
      const slot = this.index.get(address);
      if (slot >= 0 && blocks.ids[slot] !== 0 && blocks.addresses[slot] === address) return slot;
    }
    return blocks.find(address);
  }

  /** The user bytes of live `slot`, as a view of the backing's buffer (for copies). */
  userBytes(slot: number): Uint8Array {
    const blocks = this.blocks;
    return new Uint8Array(blocks.hosts[slot]!.buffer, blocks.userOffsets[slot], blocks.sizes[slot]);
  }

  /** The damage to live `slot`'s canaries as an error, or null (always null for out-of-band blocks). */
  corruption(slot: number): AllocationError | null {
    const blocks = this.blocks;
    const front = blocks.fronts[slot];
    if (front === 0) return null;
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
   * and nothing has changed), then leases, the block's own view and its record.
   */
  freeBlock(slot: number, reason: string, entry: unknown, depth: number): void {
    const size = this.blocks.sizes[slot];
    this.#giveBack(slot);
    this.#forget(slot, reason, entry, depth + 1, false);
    this.ledger.freed(size);
  }

  // Returns the outer block to the backing, or to the quarantine. Poisoned
  // bytes are restored when the backing refuses.
  #giveBack(slot: number): void {
    const blocks = this.blocks;
    const outer = blocks.outers[slot]!;
    if (this.#quarantine !== null) {
      const host = blocks.hosts[slot]!;
      const user = blocks.userOffsets[slot];
      const size = blocks.sizes[slot];
      if (this.#poison) bytesOf(host).fill(FREED_BYTE, user, user + size);
      const front = blocks.fronts[slot];
      const evicted = this.#quarantine.add({
        outer,
        start: blocks.addresses[slot] - front,
        bytes: front === 0 ? size : front + size + CANARY,
        id: blocks.ids[slot],
      });
      for (const old of evicted) this.#freeQuietly(old.outer);
      return;
    }
    const bytes = this.#poison ? bytesOf(blocks.hosts[slot]!) : null;
    const user = blocks.userOffsets[slot];
    const end = user + blocks.sizes[slot];
    const saved = bytes?.slice(user, end);
    bytes?.fill(FREED_BYTE, user, end);
    this.#busy = slot;
    try {
      this.backing.free(outer);
    } catch (error) {
      if (saved !== undefined) bytes!.set(saved, user);
      throw error;
    } finally {
      this.#busy = -1;
    }
  }

  #freeQuietly(outer: Uint8Array): void {
    try {
      this.backing.free(outer);
    } catch {
      // The backing keeps it (or already let go of it): nothing left to return.
    }
  }

  // Drops the record of `slot` after its memory went back: leases, its own
  // buffer (detached, tagged freed), what is remembered of it.
  #forget(slot: number, reason: string, entry: unknown, depth: number, resized: boolean): void {
    const blocks = this.blocks;
    const address = blocks.addresses[slot];
    const id = blocks.ids[slot];
    const size = blocks.sizes[slot];
    const trace = blocks.traces[slot];
    const leases = this.leases;
    if (leases.count !== 0) leases.freed(address, reason);
    if (this.safety) {
      const freedTrace: Trace | null = trace !== null ? this.tracer.capture(entry, depth + 1) : null;
      if (this.detach) this.#detachOwn(slot, null, freedTrace, resized);
      this.records.noteFree(address, id, size, blocks.handed[slot], trace);
      if (this.#retainMetadata) this.records.keep({ id, address, size, trace, freedTrace, releasedBy: null });
    }
    if (this.index.size !== 0) this.index.delete(address);
    if (this.#top === slot) this.#top = -1;
    blocks.release(slot);
  }

  // Detaches the block's own buffer, tagging why.
  #detachOwn(slot: number, releasedBy: string | null, freedTrace: Trace | null, resized: boolean): void {
    const held = this.blocks.buffers[slot];
    const buffer = held instanceof WeakRef ? held.deref() : held;
    if (buffer === undefined) return;
    const tag = tagOf(buffer)!;
    tag.freed = true;
    tag.freedTrace = freedTrace;
    tag.releasedBy = releasedBy;
    tag.resized = resized;
    this.#registry?.unregister(tag);
    buffer.transfer(0);
  }

  // A block taken but never handed out: back to the backing, not counted.
  #discard(slot: number): void {
    const blocks = this.blocks;
    if (this.detach) this.#detachOwn(slot, null, null, false);
    this.#busy = slot;
    this.#freeQuietly(blocks.outers[slot]!);
    this.#busy = -1;
    if (this.index.size !== 0) this.index.delete(blocks.addresses[slot]);
    if (this.#top === slot) this.#top = -1;
    blocks.release(slot);
  }

  // ---------------------------------------------------------------- resize

  /**
   * Resizes live `slot` to `newSize` > 0 bytes and returns the block's slot
   * (a new one when it moved). Moving (new block, copy, free the old one)
   * catches stale pointers best, so it comes first, except for the top block
   * of a LIFO backing (a stack), which is resized in place by the backing;
   * when a move is impossible (the backing refuses the old block out of
   * order, or cannot give a new one) the backing's own resize is tried. A
   * failure leaves everything as it was. With `dress`, `lastView` is the new view.
   * @throws {AllocationError} "limit-exceeded", "out-of-memory", or what the backing threw.
   */
  resizeBlock(slot: number, newSize: number, dress: boolean, entry: unknown, depth: number): number {
    const blocks = this.blocks;
    const oldSize = blocks.sizes[slot];
    if (this.ledger.allocatedBytes - oldSize + newSize > this.#limit) {
      this.#failLimit();
      throw this.ledger.failure(newSize);
    }
    const inPlaceFirst = this.#lifo && slot === this.#top;
    if (inPlaceFirst && this.#resizeInPlace(slot, newSize, dress)) return slot;
    const top = this.#top;
    const fresh = this.#take(newSize, blocks.aligns[slot], entry, depth + 1);
    if (fresh >= 0) {
      this.userBytes(fresh).set(this.userBytes(slot).subarray(0, Math.min(oldSize, newSize)));
      let view: Uint8Array | null = null;
      try {
        if (dress) view = this.#dress(fresh);
        this.#giveBack(slot);
      } catch (error) {
        // A backing that frees only in LIFO order refuses the old block while
        // the new one is above it (or the new view could not be made): undo.
        this.#discard(fresh);
        this.#top = top;
        this.#inPlaceError = null;
        if (!inPlaceFirst && this.#resizeInPlace(slot, newSize, dress)) return slot;
        // The backing's own reason is the clearer one (a stack: "only the top block can change size").
        throw this.#inPlaceError ?? error;
      }
      this.#forget(slot, "DebugAllocator.resize() moved it", entry, depth + 1, true);
      this.ledger.allocated(newSize);
      this.ledger.freed(oldSize);
      this.lastView = view;
      return fresh;
    }
    if (!inPlaceFirst && this.#resizeInPlace(slot, newSize, dress)) return slot;
    this.ledger.fail("out-of-memory", this.#refusal, this.#cause);
    throw this.ledger.failure(newSize);
  }

  // The backing's own resize of the outer block; false (nothing changed)
  // when it throws. The old view reads as length 0 afterwards.
  #resizeInPlace(slot: number, newSize: number, dress: boolean): boolean {
    const blocks = this.blocks;
    const front = blocks.fronts[slot];
    const need = front === 0 ? newSize : front + newSize + CANARY;
    let outer: unknown;
    this.#busy = slot;
    try {
      outer = this.backing.resize(blocks.outers[slot]!, need);
    } catch (error) {
      if (error instanceof AllocationError) {
        this.#inPlaceError = error;
        this.#refuse(error.message, error);
      }
      return false;
    } finally {
      this.#busy = -1;
    }
    const problem = this.#check(outer, need, blocks.aligns[slot]);
    if (problem !== null) throw badBlockError(this.backing, need, blocks.aligns[slot], problem);
    const host = this.#host!;
    const user = this.#offset + front;
    const address = host.base + user;
    const oldAddress = blocks.addresses[slot];
    const oldSize = blocks.sizes[slot];
    if (address !== oldAddress && this.leases.count !== 0) {
      this.leases.freed(oldAddress, "DebugAllocator.resize() moved it");
    }
    if (this.detach) this.#detachOwn(slot, null, null, true);
    const indexed = this.index.size !== 0 && this.index.delete(oldAddress);
    blocks.outers[slot] = outer as Uint8Array;
    blocks.hosts[slot] = host;
    blocks.userOffsets[slot] = user;
    blocks.addresses[slot] = address;
    blocks.sizes[slot] = newSize;
    if (front === 0 || !armBlock(host, user, front, newSize, slot, blocks.ids[slot]) || indexed) {
      this.index.set(address, slot);
    }
    if (this.#poison && newSize > oldSize) bytesOf(host).fill(FRESH_BYTE, user + oldSize, user + newSize);
    this.ledger.resized(oldSize, newSize);
    this.lastView = dress ? this.#dress(slot) : null;
    return true;
  }

  // ---------------------------------------------------------------- the backing's releases

  /**
   * The backing released [lo, hi) by itself (a scope's end, `reset()`, a
   * shrink): every block whose outer block starts there is retired, not
   * freed again. Then the news goes on to this allocator's own lessees.
   */
  retireRange(lo: number, hi: number, reason: string): void {
    if (this.ledger.ended !== null) return;
    const blocks = this.blocks;
    let retired = 0;
    for (let slot = 0; slot < blocks.end; slot++) {
      if (blocks.ids[slot] === 0 || slot === this.#busy) continue;
      const start = blocks.addresses[slot] - blocks.fronts[slot];
      if (start >= lo && start < hi) {
        this.#retire(slot, reason);
        retired++;
      }
    }
    this.#quarantine?.takeRange(lo, hi);
    // Lessees and watchers of this allocator only have memory inside its live blocks.
    if (retired !== 0 && this.leases.count !== 0) this.leases.released(lo, hi, reason);
  }

  /** The backing released everything (it was disposed, or lost its own memory): this allocator ends. */
  retireAll(reason: string): void {
    if (!this.ledger.end(`lost its memory: ${reason}`)) return;
    this.#unwatch?.();
    if (this.leases.count !== 0) this.leases.releasedAll(`the DebugAllocator lost its memory (${reason})`);
    for (const slot of this.blocks.liveSlots()) this.#retire(slot, reason);
    this.#quarantine?.drain();
    this.ledger.freedAll();
  }

  // A block whose memory the backing took back: its views detached, its
  // record kept as released (a later free says so), counted as freed.
  #retire(slot: number, reason: string): void {
    const blocks = this.blocks;
    const record: FreedBlock = {
      id: blocks.ids[slot],
      address: blocks.addresses[slot],
      size: blocks.sizes[slot],
      trace: blocks.traces[slot],
      freedTrace: null,
      releasedBy: reason,
    };
    if (this.safety) {
      if (this.detach) this.#detachOwn(slot, reason, null, false);
      else if (blocks.handed[slot] !== undefined) this.records.keepView(blocks.handed[slot]!, record);
      this.records.keep(record);
    }
    if (this.index.size !== 0) this.index.delete(record.address);
    if (this.#top === slot) this.#top = -1;
    this.ledger.freed(record.size);
    blocks.release(slot);
  }

  // ---------------------------------------------------------------- the end

  /**
   * Ends the allocator (deinit or dispose): lessees first, then every block,
   * live or quarantined, back to the backing, newest first so a LIFO
   * backing takes them. Returns whether blocks were still live, or null when
   * it had already ended.
   */
  teardown(ended: string, released: string): boolean | null {
    if (!this.ledger.end(ended)) return null;
    this.#unwatch?.();
    if (this.leases.count !== 0) this.leases.releasedAll(released);
    const blocks = this.blocks;
    const leaked = blocks.live > 0;
    const outers: { outer: Uint8Array; id: number }[] = [];
    for (const slot of blocks.liveSlots()) {
      if (this.detach) this.#detachOwn(slot, released, null, false);
      outers.push({ outer: blocks.outers[slot]!, id: blocks.ids[slot] });
      blocks.release(slot);
    }
    for (const held of this.#quarantine?.drain() ?? []) outers.push(held);
    outers.sort((a, b) => b.id - a.id);
    for (const { outer } of outers) this.#freeQuietly(outer);
    this.ledger.freedAll();
    this.index = new OffsetTable();
    this.#top = -1;
    return leaked;
  }
}
