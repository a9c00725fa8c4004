// The allocation point of an Arena: its chunks, where the next block goes,
// how it grows, and the buffers views are made from. The Arena owns scopes,
// counters and policy; this owns memory.
import { native } from "../../ffi/native.ts";
import { anyTaken, detach, isDetached, keep, mayRelease } from "../base/_detach.ts";
import { type Chunk, type ChunkSource, roundToPage } from "./_chunks.ts";
import { capChunkSize, type GrowthPolicy, plannedChunkSize } from "./_growth.ts";
import type { Ledger } from "./_ledger.ts";

// Whether safety segments follow demand (where wrapping costs per byte) or
// are always the largest worth wrapping.
const ADAPTIVE = native.wrapStartBytes < native.wrapChunkBytes;

// The longest segment a scope's demand can make (a doubling's overshoot is bounded by it).
const MAX_SEGMENT_BYTES = 64 << 20;

// A segment length for `bytes`: the next power of two from wrapStartBytes up
// to wrapChunkBytes, then the next multiple of wrapChunkBytes (at most
// MAX_SEGMENT_BYTES). Past wrapChunkBytes a segment is not cut into pieces of
// that size: in Bun a wrap's cost is per byte and per buffer (measured in one
// process, a scope of 100 views over 8 MB: one 8 MiB segment 6.9 µs, eight of
// 1 MiB 9.9 µs, the views over a kept buffer 2.4 µs), so fewer buffers of the
// same total cost less.
function segmentFor(bytes: number): number {
  const step = native.wrapChunkBytes;
  if (bytes > step) return Math.min(MAX_SEGMENT_BYTES, Math.ceil(bytes / step) * step);
  const power = bytes <= 1 ? 1 : 2 ** (32 - Math.clz32(bytes - 1));
  return power < native.wrapStartBytes ? native.wrapStartBytes : power;
}

// Whether `chunk`'s own buffer is still there (not transferred away); when it is not, its memory is
// recorded as reachable elsewhere, never to be released or reused.
function intact(chunk: Chunk): boolean {
  if (!chunk.wrapped || !isDetached(chunk.buffer)) return true;
  keep(chunk.address, chunk.size);
  return false;
}

/** A safety segment: the buffer and the memory it covers. */
interface Segment {
  readonly buffer: ArrayBuffer;
  readonly address: number;
  readonly length: number;
}

/** Where the allocation point was; a scope restores it when it ends. */
export interface BumpPoint {
  readonly index: number;
  readonly cursor: number;
  readonly buffer: ArrayBuffer | null;
  readonly bufferBase: number;
  readonly limit: number;
  readonly oversized: number;
  readonly segments: number;
  readonly covering: number;
}

/** How the cursor grows. */
export interface BumpGrowth {
  readonly policy: GrowthPolicy;
  /** The first chunk's size, whole pages. */
  readonly capacity: number;
  readonly maxCapacity: number;
  /** False with `backing: null`: the first chunk is all there is. */
  readonly hasBacking: boolean;
}

/**
 * Invariants: `chunks` are the regular chunks, used in order: those before
 * `index` are full (or abandoned), `index` is current, later ones are retained
 * and empty. `oversized` holds chunks of one allocation each, newest last.
 * Every live block lies below the allocation point (`index`, `cursor`) or in
 * an oversized chunk. `buffer` covers chunk offsets [bufferBase, limit) of the
 * current chunk: the chunk's own buffer, or when `segmented` a safety segment
 * (or null, limit at most the cursor, until the next allocation opens one).
 * When `segmented`, regular chunks are never wrapped whole: every view of a
 * regular chunk is over a segment. A segment may start in an earlier one's
 * unused tail (from the granule of its first block); every buffer that
 * reaches free memory past the allocation point other than `buffer` is in
 * `covering`, checked before memory is handed out.
 */
export class BumpCursor {
  readonly chunks: Chunk[] = [];
  readonly oversized: Chunk[] = [];
  /** Safety segments: buffers over parts of chunks, detached when their scope ends. */
  readonly segments: Segment[] = [];
  /**
   * The buffers of enclosing scopes, which reach the free memory past the
   * allocation point too (a scope's segments start inside their range): each
   * allocation checks that none was transferred away.
   */
  readonly covering: ArrayBuffer[] = [];
  capacityBytes = 0;
  /**
   * Make views from segments (safety on), so a scope's end or a reset detaches
   * them, and no buffer covers more than the blocks need.
   */
  readonly segmented: boolean;

  index = -1;
  cursor = 0;
  chunkSize = -1;
  limit = -1;
  buffer: ArrayBuffer | null = null;
  bufferBase = 0;

  // The most recent block, which `free` rolls back: the view handed out for
  // it (set by the Arena once made), its buffer and offset there, its chunk
  // offset (regular chunks), its size, and its chunk when it has one of its own.
  // Only that view object rolls it back: a view kept from a block rolled back
  // before starts at the same byte of the same buffer once the place is reused.
  lastView: ArrayBufferView | null = null;
  lastBuffer: ArrayBuffer | null = null;
  lastOffset = 0;
  lastStart = 0;
  lastSize = 0;
  lastOversized: Chunk | null = null;
  /**
   * The most recent block's number, or 0 once it cannot be rolled back (a
   * rollback, a scope's start or end, a reset): blocks are numbered from 1 as
   * they are carved, so a number names one block for good. What the memory
   * interface rolls back by (its fast path keeps no view here: storing a new
   * view in this long-lived object costs a write barrier per allocation).
   */
  lastSerial = 0;
  #serials = 0;

  // The length of the next safety segment: what the last scope used (a frame
  // loop's scopes mostly use about the same), doubled for each further segment
  // a scope needs. In Bun each byte wrapped costs, so a scope's segments
  // should cover what it uses, not the chunk.
  #segmentBytes = native.wrapStartBytes;

  readonly #source: ChunkSource;
  readonly #ledger: Ledger;
  readonly #growth: BumpGrowth;
  readonly #mark: (buffer: ArrayBuffer) => ArrayBuffer;

  constructor(
    source: ChunkSource,
    ledger: Ledger,
    growth: BumpGrowth,
    mark: (buffer: ArrayBuffer) => ArrayBuffer,
    segmented: boolean,
  ) {
    this.#source = source;
    this.#ledger = ledger;
    this.#growth = growth;
    this.#mark = mark;
    this.segmented = segmented;
  }

  /** Where chunks come from. */
  get source(): ChunkSource {
    return this.#source;
  }

  /** A regular chunk of `size` bytes (wrapped whole unless `segmented`), or null (`source.refusal` says why). */
  takeChunk(size: number): Chunk | null {
    return this.#source.take(size, native.pageSize, !this.segmented);
  }

  /**
   * Reserves `size` bytes aligned to `align`: the block is `lastBuffer` at
   * `lastOffset` (the owner sets `lastView` to the view it makes). False (the
   * failure recorded in the ledger, nothing else changed: the most recent
   * block can still be rolled back) when it cannot be had.
   */
  bump(size: number, align: number): boolean {
    if (this.bumpInPlace(size, align)) return true;
    const rem = this.cursor % align;
    const start = this.#grow(rem === 0 ? this.cursor : this.cursor + align - rem, size);
    if (start === -1) return false;
    if (start === -2) {
      this.lastView = null; // until the owner makes the new block's view
      this.lastSerial = ++this.#serials;
      this.lastSize = size; // an oversized chunk: #grow set the rest of the last block
    } else this.#place(start, size);
    return true;
  }

  /**
   * `bump` without growing: false (nothing changed, nothing recorded) when the
   * block does not fit before `limit` (the current chunk's, or its segment's).
   */
  bumpInPlace(size: number, align: number): boolean {
    // Chunks start page-aligned, so aligning the offset aligns the address.
    const rem = this.cursor % align;
    const start = rem === 0 ? this.cursor : this.cursor + align - rem;
    if (start + size > this.limit) return false;
    this.#place(start, size);
    return true;
  }

  // The most recent block is `size` bytes at `start` of the current chunk.
  #place(start: number, size: number): void {
    this.lastView = null; // until the owner makes the new block's view
    this.lastSerial = ++this.#serials;
    this.cursor = start + size;
    this.lastBuffer = this.buffer;
    this.lastOffset = start - this.bufferBase;
    this.lastStart = start;
    this.lastSize = size;
    this.lastOversized = null;
  }

  /**
   * What alloc(0) returns: an empty view over a buffer of its own, so no empty
   * view of the arena's buffers is ever memkit's (and one at the most recent
   * block's start is that block's, as free() takes it).
   */
  empty(): Uint8Array<ArrayBuffer> {
    return new Uint8Array(0);
  }

  /**
   * Whether `address` is in memory no live block holds: past the allocation
   * point of the current chunk, or in a retained chunk after it. (Tails of
   * chunks moved on from are not known, so they count as held.)
   */
  isFree(address: number): boolean {
    const chunks = this.chunks;
    for (let i = Math.max(this.index, 0); i < chunks.length; i++) {
      const chunk = chunks[i];
      const from = i === this.index ? this.cursor : 0;
      if (address >= chunk.address + from && address < chunk.address + chunk.size) return true;
    }
    return false;
  }

  /** The address of the most recent block. */
  lastAddress(): number {
    const oversized = this.lastOversized;
    return oversized !== null ? oversized.address : this.chunks[this.index].address + this.lastStart;
  }

  /** Undoes the most recent block (an oversized one's chunk goes back). */
  rollBack(): void {
    const oversized = this.lastOversized;
    if (oversized !== null) {
      this.oversized.pop();
      this.capacityBytes -= oversized.size;
      // Forgotten first: a backing that throws as the chunk goes back keeps it, and the block is gone all the same.
      this.forgetLast();
      this.#source.give(oversized);
    } else {
      this.cursor = this.lastStart;
      this.forgetLast();
    }
  }

  /** Whether `resizeLast(newSize)` would succeed (nothing changes). */
  fitsLast(newSize: number): boolean {
    const oversized = this.lastOversized;
    if (oversized !== null) return newSize <= oversized.size;
    return this.lastStart + newSize <= (this.segmented ? this.chunkSize : this.limit);
  }

  /**
   * Grows or shrinks the most recent block in place (its view is then
   * `lastBuffer` at `lastOffset`); false when it does not fit in its chunk.
   * With safety, a block that outgrows its segment gets a new segment from
   * its start over the rest of the chunk (as `bump` does for a new block).
   */
  resizeLast(newSize: number): boolean {
    const oversized = this.lastOversized;
    if (oversized !== null) {
      if (newSize > oversized.size) return false;
    } else if (this.lastStart + newSize > this.limit) {
      if (!this.segmented || this.lastStart + newSize > this.chunkSize) return false;
      this.#segmentFrom(this.lastStart, newSize);
      this.lastBuffer = this.buffer;
      this.lastOffset = this.lastStart - this.bufferBase;
    }
    if (oversized === null) this.cursor = this.lastStart + newSize;
    this.lastSize = newSize;
    return true;
  }

  /** No block can be rolled back (a scope began or ended). */
  forgetLast(): void {
    this.lastView = null;
    this.lastSerial = 0;

    this.lastBuffer = null;
    this.lastOversized = null;
  }

  /** Adds a regular chunk at the end. */
  adopt(chunk: Chunk): void {
    this.#mark(chunk.buffer);
    this.chunks.push(chunk);
    this.capacityBytes += chunk.size;
  }

  /** Makes chunk `index` current, from its start (with a segment for `atLeast` bytes, when `segmented`). */
  enter(index: number, atLeast = 0): void {
    const chunk = this.chunks[index];
    this.index = index;
    this.cursor = 0;
    this.chunkSize = chunk.size;
    if (this.segmented) {
      if (atLeast > 0) this.openSegment(chunk, 0, atLeast);
      else this.#closed(0);
    } else {
      this.buffer = chunk.buffer;
      this.bufferBase = 0;
      this.limit = chunk.size;
    }
  }

  /** No chunk is current (every chunk was returned). */
  clear(): void {
    this.index = -1;
    this.chunkSize = -1;
    this.limit = -1;
    this.cursor = 0;
    this.buffer = null;
    this.forgetLast();
  }

  /**
   * Ends the current buffer at the allocation point (a scope begins with
   * safety on): the scope's first allocation opens a segment of its own, so
   * a scope that allocates nothing wraps nothing.
   */
  closeBufferHere(): void {
    if (this.index < 0) return;
    if (this.buffer !== null && this.limit > this.cursor) this.covering.push(this.buffer);
    this.#closed(this.cursor);
  }

  /** Bytes free for allocation: the rest of the current chunk and the retained chunks after it. */
  freeBytes(): number {
    let free = this.index >= 0 ? this.chunkSize - this.cursor : 0;
    for (let i = this.index + 1; i < this.chunks.length; i++) free += this.chunks[i].size;
    return free;
  }

  /** Whether an enclosing scope's buffer was transferred away (its free memory must not be handed out). */
  coveringTaken(): boolean {
    for (const buffer of this.covering) if (isDetached(buffer)) return true;
    return false;
  }

  // No buffer until the next allocation opens a segment at or after `at`.
  #closed(at: number): void {
    this.buffer = null;
    this.bufferBase = at;
    this.limit = at;
  }

  /**
   * Calls `released(lo, hi)` for every address range allocated since `point`
   * (up to the end of each chunk touched): what a scope's end releases.
   */
  rangesSince(point: BumpPoint, released: (lo: number, hi: number) => void): void {
    for (let i = Math.max(point.index, 0); i <= this.index && i < this.chunks.length; i++) {
      const chunk = this.chunks[i];
      const from = i === point.index ? point.cursor : 0;
      released(chunk.address + from, chunk.address + chunk.size);
    }
    for (let i = point.oversized; i < this.oversized.length; i++) {
      released(this.oversized[i].address, this.oversized[i].address + this.oversized[i].size);
    }
  }

  /**
   * Returns to `point`: later oversized chunks go back and later segments are
   * detached. False when memory it makes available again may be reached by a
   * buffer that was transferred away (the owner must not hand it out again).
   */
  restore(point: BumpPoint, detachViews: boolean): boolean {
    let clean = true;
    if (ADAPTIVE && this.segments.length > point.segments) this.#segmentBytes = segmentFor(this.#usedSince(point));
    this.covering.length = point.covering;
    while (this.segments.length > point.segments) {
      const segment = this.segments.pop()!;
      clean = detach(segment.buffer, segment.address, segment.length) && clean;
    }
    // Oversized chunks taken since the point stay as retained chunks (a frame
    // that needs a large block every time reuses one instead of mapping it
    // anew); with `detachViews` their views are detached, and they are used
    // through segments from now on.
    const retained: Chunk[] = [];
    while (this.oversized.length > point.oversized) {
      const chunk = this.oversized.pop()!;
      if (detachViews) clean = this.#source.unwrap(chunk) && clean;
      else if (!intact(chunk)) clean = false;
      retained.push(chunk);
    }
    // Without segments, views of a regular chunk are over its own buffer: one the scope used that was
    // transferred away reaches the memory the scope gives back.
    if (!this.segmented) {
      for (let i = Math.max(point.index, 0); i <= this.index && i < this.chunks.length; i++) {
        if (!intact(this.chunks[i])) clean = false;
      }
    }
    if (clean && anyTaken()) {
      this.rangesSince(point, (lo, hi) => {
        if (!mayRelease(lo, hi - lo)) clean = false;
      });
      for (const chunk of retained) if (!mayRelease(chunk.address, chunk.size)) clean = false;
    }
    for (let i = retained.length - 1; i >= 0; i--) this.chunks.push(retained[i]);
    if (point.index >= 0 && point.index < this.chunks.length) {
      this.index = point.index;
      this.cursor = point.cursor;
      this.chunkSize = this.chunks[point.index].size;
      this.buffer = point.buffer;
      this.bufferBase = point.bufferBase;
      this.limit = point.limit;
    } else if (this.chunks.length) {
      this.enter(0);
    }
    this.forgetLast();
    return clean;
  }

  /** Whether a chunk holds memory a transferred buffer may reach (so it must not be reused). */
  reusesTaken(): boolean {
    if (!anyTaken()) return false;
    for (const chunk of this.chunks) if (!mayRelease(chunk.address, chunk.size)) return true;
    return false;
  }

  /**
   * Oversized chunks join the regular ones (a reset: the next cycle reuses
   * them), and all of them are put in the order they were taken (a scope's
   * end leaves its oversized chunks after the regular ones too): what
   * `releaseChunks` gives back is then always the newest, newest first, and
   * what it keeps the oldest, as a stack backing needs. Every chunk is empty
   * here, so their order is free to change.
   */
  absorbOversized(): void {
    for (const chunk of this.oversized.splice(0)) this.chunks.push(chunk);
    this.chunks.sort((a, b) => a.serial - b.serial);
  }

  /** Returns every regular chunk after the first `keep` to the backing (call `absorbOversized` first). */
  releaseChunks(keep: number): void {
    while (this.chunks.length > keep) {
      const chunk = this.chunks.pop()!;
      this.capacityBytes -= chunk.size;
      // Rule 1: the buffer is detached before the chunk goes back. Safety
      // segments over it died with their scopes (reset ends them first).
      this.#source.give(chunk);
    }
  }

  /**
   * Detaches every segment and every chunk's own buffer (`segmented`: then
   * every view into the arena reads as length 0); chunks stay, unwrapped.
   */
  detachAll(): void {
    this.detachSegments();
    this.covering.length = 0; // no scope is open, and no segment is left to reach free memory
    for (const chunk of this.chunks) this.#source.unwrap(chunk);
    for (const chunk of this.oversized) this.#source.unwrap(chunk);
  }

  /** Whether one of the arena's buffers (chunk or segment) was detached by someone else (transferred away). */
  anyTransferred(): boolean {
    if (this.#source.anyTransferred()) return true;
    for (const segment of this.segments) if (isDetached(segment.buffer)) return true;
    return false;
  }

  /** Detaches every segment. */
  detachSegments(): void {
    for (const segment of this.segments.splice(0)) detach(segment.buffer, segment.address, segment.length);
  }

  /** Forgets every chunk: the arena is ending (its ChunkSource gives them back). */
  drain(): void {
    this.covering.length = 0;
    this.chunks.length = 0;
    this.oversized.length = 0;
    this.capacityBytes = 0;
    this.clear();
  }

  // Makes room for `size` bytes: at `start` in a new safety segment of this
  // chunk, at offset 0 of another chunk (returns that offset), or in an
  // oversized chunk of its own (returns -2); -1 when none can be had, with
  // nothing changed (the allocation point stays where it was, so a refused
  // allocation neither gives up the chunks it looked at nor the most recent
  // block's rollback).
  #grow(start: number, size: number): number {
    if (this.limit < this.chunkSize && start + size <= this.chunkSize) {
      this.#segmentFrom(start, size);
      return start;
    }
    // Move on to the first retained chunk that fits (the ones before it are
    // given up until the next reset); chunks start aligned to the page.
    for (let i = this.index + 1; i < this.chunks.length; i++) {
      if (size <= this.chunks[i].size) {
        this.enter(i, size);
        return 0;
      }
    }
    const growth = this.#growth;
    const needed = roundToPage(Math.max(size, 1));
    // No chunk (after reset("free-all")): the next one is a first chunk again,
    // `capacity` bytes, also for an arena that does not grow.
    const first = this.chunks.length === 0;
    if ((!growth.hasBacking || growth.policy === "fixed") && (!first || needed > growth.capacity)) {
      // The figures stats() reports: what is allocated, and what is free after the allocation point.
      const figures = first
        ? `its capacity is ${growth.capacity} bytes, too few for this block`
        : `${this.#ledger.allocatedBytes} of its ${this.capacityBytes} bytes are allocated and ` +
          `${this.freeBytes()} are free, too few for this block`;
      const reason = growth.hasBacking
        ? `${figures}, and its growth policy is fixed`
        : `${figures}, and it has no backing to grow from`;
      return this.#refuse("out-of-memory", reason);
    }
    const last = first ? 0 : this.chunks[this.chunks.length - 1].size;
    const wanted = first ? growth.capacity : plannedChunkSize(growth.policy, growth.capacity, last, this.capacityBytes);
    // Larger than the next chunk would be: a chunk of its own, and the current
    // chunk stays current (so the space left in it is not abandoned).
    const oversized = needed > wanted && !first;
    const planned = oversized ? needed : Math.max(wanted, needed);
    const chunkSize = capChunkSize(planned, needed, this.capacityBytes, growth.maxCapacity);
    if (chunkSize < 0) {
      return this.#refuse(
        "limit-exceeded",
        `a ${needed}-byte chunk would exceed maxCapacity (${growth.maxCapacity} bytes, ${this.capacityBytes} held)`,
      );
    }
    // An oversized chunk's one block is a view over the whole chunk.
    const chunk = oversized ? this.#source.take(chunkSize) : this.takeChunk(chunkSize);
    if (chunk === null) return this.#refuse("out-of-memory", this.#source.refusal);
    if (oversized) {
      this.#mark(chunk.buffer);
      this.oversized.push(chunk);
      this.capacityBytes += chunk.size;
      this.lastBuffer = chunk.buffer;
      this.lastOffset = 0;
      this.lastStart = 0;
      this.lastOversized = chunk;
      return -2;
    }
    this.adopt(chunk);
    this.enter(this.chunks.length - 1, size);
    return 0;
  }

  #refuse(category: "out-of-memory" | "limit-exceeded", reason: string): -1 {
    this.#ledger.fail(category, reason);
    return -1;
  }

  // Bytes allocated in regular chunks since `point`.
  #usedSince(point: BumpPoint): number {
    let used = 0;
    for (let i = Math.max(point.index, 0); i <= this.index && i < this.chunks.length; i++) {
      used += (i === this.index ? this.cursor : this.chunks[i].size) - (i === point.index ? point.cursor : 0);
    }
    return used;
  }

  // A new segment of the current chunk from `start`, for at least `size`
  // bytes. It starts in the current segment's unused tail when the block does
  // not fit there (the tail is used, not skipped: a fixed arena holds what
  // its capacity says). That tail is free memory two live buffers reach, so
  // the old one joins `covering`: every later allocation checks that it was
  // not transferred away (the memory a transfer reaches is never handed out).
  #segmentFrom(start: number, size: number): void {
    if (this.buffer !== null && start < this.limit) this.covering.push(this.buffer);
    this.openSegment(this.chunks[this.index], start, size);
  }

  // A fresh ArrayBuffer over part of a chunk, detached when the scope ends:
  // #segmentBytes long (or what one allocation needs), at most what is left
  // of the chunk. Bun's cost of wrapping native memory grows with its size.
  openSegment(chunk: Chunk, at: number, atLeast: number): void {
    // Start on the granule, so a view's offset in the segment is a multiple of
    // every element size (a typed array cannot start between elements). The
    // few bytes before `at` belong to earlier blocks, whose views are not
    // made from this segment.
    const from = at - (at % 16);
    const length = Math.min(chunk.size - from, Math.max(this.#segmentBytes, atLeast + at - from));
    // A scope that needs another segment gets a larger one.
    if (ADAPTIVE) this.#segmentBytes = segmentFor(2 * Math.max(this.#segmentBytes, length));
    // SAFETY: [from, from + length) lies in a chunk the arena holds; scope end,
    // reset and dispose detach the segment before that memory is reused or returned.
    const buffer = length > 0 ? native.wrap(chunk.address + from, length) : new ArrayBuffer(0);
    this.segments.push({ buffer: this.#mark(buffer), address: chunk.address + from, length });
    this.buffer = buffer;
    this.bufferBase = from;
    this.limit = from + length;
  }
}
