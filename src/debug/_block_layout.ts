// How a DebugAllocator lays out a block inside the block its backing gives
// ("the outer block"), and how it arms and checks the canaries around it.
//
// An in-band block, from the outer block's first byte:
//
//   [ front canary (front - 16 bytes, 0xFD) | header (16) | user bytes (size) | back canary (16, 0xFD) ]
//
// where `front = max(align, 16)`, so the user bytes keep the alignment the
// outer block has. The header is four Int32 words: the block's slot in the
// BlockTable, the low 32 bits of its allocation id, and two canary words. A
// free finds its slot by reading the header through the buffer's cached
// Int32Array, with no hash lookup, and an underflow that destroys the header
// is caught like any other canary damage.
//
// A block whose user bytes do not start at a multiple of 4 in their buffer
// has no Int32 header (its front is all canary bytes); it is found by address.
//
// An out-of-band block has no canaries and no header at all: the user bytes
// are the whole outer block. The DebugAllocator falls back to it when the
// backing cannot serve the padded size (a pool whose block size is the
// request, a stack or arena that is nearly full); such a block is found by
// address and checked for double, interior and foreign frees, but not for
// overflow. With `safety: false` every block is out-of-band.
import { createStamp } from "../base/_stamp.ts";
import { native } from "../../ffi/native.ts";
import { intrinsic } from "../../ffi/boundary.ts";
import type { Trace } from "./_traces.ts";

/** Bytes of canary after a block, and of header + canary before it. */
export const CANARY = 16;
export const CANARY_BYTE = 0xfd;
export const CANARY_WORD: number = 0xfdfdfdfd | 0;
/** What `poison` fills fresh bytes with. */
export const FRESH_BYTE = 0xaa;
/** What `poison` fills freed bytes with. */
export const FREED_BYTE = 0xdd;
const FREED_WORD = 0xdddddddd | 0;

/**
 * What memkit caches on an ArrayBuffer that holds debug blocks (a backing's
 * chunk buffer, or a backing block's own buffer): its address and its words.
 * Not a chunk: a chunk is a block of a backing that an allocator carves.
 */
export interface BufferWords {
  /** The buffer itself (typed as an ArrayBuffer: a SharedArrayBuffer is marked `shared`, and refused). */
  readonly buffer: ArrayBuffer;
  /** Whether it is a SharedArrayBuffer (the intake refuses its blocks: the user's views are ArrayBuffer memory). */
  readonly shared: boolean;
  /** Address of the buffer's first byte (0 for an empty buffer). */
  readonly base: number;
  /** `base` modulo 65536, for alignment checks with a bit mask (alignments are at most 64 KiB). */
  readonly baseLow: number;
  /** The buffer's real byte length when first seen (0 once detached). */
  readonly byteLength: number;
  /** The buffer as Int32 words (at most 2^30), for headers and canaries. */
  readonly words: Int32Array;
  /** The buffer as bytes, made on first use (poison, unaligned canaries). */
  bytes: Uint8Array<ArrayBuffer> | null;
}

const WORDS = new WeakMap<ArrayBufferLike, BufferWords>(); // module-private: no caller can edit a base address

/** The cached words of `buffer`, made on first use. */
export function wordsOf(buffer: ArrayBufferLike): BufferWords {
  let info = WORDS.get(buffer);
  if (info === undefined) {
    const byteLength = intrinsic.bufferByteLength(buffer);
    const base = byteLength > 0 ? native.addressOf(new Uint8Array(buffer, 0, 1)) : 0;
    info = {
      buffer: buffer as ArrayBuffer,
      shared: intrinsic.isShared(buffer),
      base,
      baseLow: base % 65536,
      byteLength,
      words: new Int32Array(buffer, 0, Math.min(Math.floor(byteLength / 4), 2 ** 30)),
      bytes: null,
    };
    WORDS.set(buffer, info);
  }
  return info;
}

/** Whether `offset` bytes into `info`'s buffer is a multiple of `align` (a power of two up to 64 KiB). */
export function alignedAt(info: BufferWords, offset: number, align: number): boolean {
  const low = offset < 2147483648 ? offset & 0xffff : offset % 65536;
  return ((info.baseLow + low) & (align - 1)) === 0;
}

/** The cached words of `buffer` if it ever held a debug block, else undefined. */
export function cachedWordsOf(buffer: ArrayBufferLike): BufferWords | undefined {
  return WORDS.get(buffer);
}

/**
 * The bytes of `info`'s buffer, as far as it reaches now: a resizable buffer
 * its backing shrank is viewed to its new end (a view over the old length
 * would be out of bounds: the engine throws on a fill, reads give nothing), so
 * fills stop there and the bytes past it read as damaged canaries.
 */
export function bytesOf(info: BufferWords): Uint8Array<ArrayBuffer> {
  let bytes = info.bytes;
  if (bytes === null || intrinsic.typedArrayByteLength(bytes) < info.byteLength) {
    const now = intrinsic.bufferByteLength(info.buffer);
    // (A detached buffer, length 0, takes no new view: an empty array of its own.)
    bytes = now === 0
      ? new Uint8Array(0)
      : new Uint8Array(info.buffer, 0, now < info.byteLength ? now : info.byteLength);
    info.bytes = bytes;
  }
  return bytes;
}

/** Bytes before the user bytes of an in-band block aligned to `align`. */
export function frontOf(align: number): number {
  return align > CANARY ? align : CANARY;
}

/** Whether user bytes starting at `user` in their buffer have an Int32 header (else the block is found by address). */
export function hasHeader(user: number, info: BufferWords): boolean {
  return (user & 3) === 0 && user >= CANARY && user <= info.words.length * 4;
}

/**
 * The slot the header before `user` names, or -1 when there is no header.
 * The caller checks that the slot names this block back (a header is only a hint).
 */
export function headerSlot(user: number, info: BufferWords): number {
  if (!hasHeader(user, info)) return -1;
  return info.words[(user - CANARY) >>> 2];
}

/** The allocation id (low 32 bits) the header before `user` holds. */
export function headerId(user: number, info: BufferWords): number {
  return info.words[((user - CANARY) >>> 2) + 1];
}

/**
 * Writes the front canary, the header (when the block can have one) and the
 * back canary of an in-band block whose user bytes are [user, user + size)
 * of `info`'s buffer. Returns whether it has a header.
 */
export function armBlock(
  info: BufferWords,
  user: number,
  front: number,
  size: number,
  slot: number,
  id: number,
): boolean {
  const words = info.words;
  const header = hasHeader(user, info);
  if (header) {
    const h = (user - CANARY) >>> 2;
    words[h] = slot;
    words[h + 1] = id | 0;
    words[h + 2] = CANARY_WORD;
    words[h + 3] = CANARY_WORD;
    if (front > CANARY) intrinsic.fill(bytesOf(info), CANARY_BYTE, user - front, user - CANARY);
  } else {
    intrinsic.fill(bytesOf(info), CANARY_BYTE, user - front, user);
  }
  armBack(info, user + size);
  return header;
}

/** Writes the back canary that starts at `end`. */
export function armBack(info: BufferWords, end: number): void {
  const words = info.words;
  if (end + CANARY > words.length * 4) {
    intrinsic.fill(bytesOf(info), CANARY_BYTE, end, end + CANARY); // past the last whole word: rare
    return;
  }
  const head = (4 - (end & 3)) & 3; // bytes before the first whole word of the canary
  const e = (end + head) >>> 2;
  words[e] = CANARY_WORD;
  words[e + 1] = CANARY_WORD;
  words[e + 2] = CANARY_WORD;
  if (head === 0) words[e + 3] = CANARY_WORD;
  else {
    // Most sizes are not multiples of 4: three words and four single bytes, rather than sixteen bytes or a `fill` call.
    const bytes = bytesOf(info);
    for (let i = end; i < end + head; i++) bytes[i] = CANARY_BYTE;
    for (let i = end + head + 12; i < end + CANARY; i++) bytes[i] = CANARY_BYTE;
  }
}

/** Whether the back canary that starts at `end` is intact (the same words and bytes `armBack` wrote). */
export function backIntact(info: BufferWords, end: number): boolean {
  const words = info.words;
  if (end + CANARY > words.length * 4) {
    const bytes = bytesOf(info);
    for (let i = end; i < end + CANARY; i++) if (bytes[i] !== CANARY_BYTE) return false;
    return true;
  }
  const head = (4 - (end & 3)) & 3;
  const e = (end + head) >>> 2;
  if (words[e] !== CANARY_WORD || words[e + 1] !== CANARY_WORD || words[e + 2] !== CANARY_WORD) return false;
  if (head === 0) return words[e + 3] === CANARY_WORD;
  const bytes = bytesOf(info);
  for (let i = end; i < end + head; i++) if (bytes[i] !== CANARY_BYTE) return false;
  for (let i = end + head + 12; i < end + CANARY; i++) if (bytes[i] !== CANARY_BYTE) return false;
  return true;
}

/**
 * The first of the `size` bytes at `user` of `info`'s buffer that no longer
 * holds FREED_BYTE (a write after free into a poisoned block), as an offset
 * from `user`, or -1 when none was written. Compares whole words where it can.
 */
export function firstWritten(info: BufferWords, user: number, size: number): number {
  const bytes = bytesOf(info);
  const end = user + size;
  let i = user;
  for (; i < end && (i & 3) !== 0; i++) if (bytes[i] !== FREED_BYTE) return i - user;
  const words = info.words;
  const wordsEnd = Math.min(end, words.length * 4);
  for (; i + 4 <= wordsEnd; i += 4) if (words[i >>> 2] !== FREED_WORD) break; // the byte loop finds which byte
  for (; i < end; i++) if (bytes[i] !== FREED_BYTE) return i - user;
  return -1;
}

/** Where a block's canaries were damaged: which side and how far from the user bytes. */
export interface Damage {
  readonly kind: "overflow" | "underflow";
  /** Bytes from the block's edge to the farthest damaged byte. */
  readonly distance: number;
}

/**
 * The damage to an in-band block's canaries (and header), or null when they
 * are intact. The fast check compares Int32 words; only a damaged block is
 * read byte by byte.
 */
export function damageOf(
  info: BufferWords,
  user: number,
  front: number,
  size: number,
  slot: number,
  id: number,
): Damage | null {
  const words = info.words;
  const end = user + size;
  const header = hasHeader(user, info);
  let intact = true;
  if (header) {
    const h = (user - CANARY) >>> 2;
    intact = words[h] === slot && words[h + 1] === (id | 0) && words[h + 2] === CANARY_WORD &&
      words[h + 3] === CANARY_WORD;
  }
  if (intact) intact = backIntact(info, end);
  const canaryBytesBefore = header ? front - CANARY : front;
  if (intact && canaryBytesBefore > 0) {
    const bytes = bytesOf(info);
    for (let i = user - front; i < user - front + canaryBytesBefore; i++) if (bytes[i] !== CANARY_BYTE) intact = false;
  }
  if (intact) return null;
  // Byte by byte: the farthest damaged byte on each side.
  const bytes = bytesOf(info);
  const expected = new Uint8Array(front).fill(CANARY_BYTE);
  if (header) new Int32Array(expected.buffer, front - CANARY, 2).set([slot, id | 0]);
  for (let i = 0; i < front; i++) {
    if (bytes[user - front + i] !== expected[i]) return { kind: "underflow", distance: front - i };
  }
  for (let i = end + CANARY - 1; i >= end; i--) {
    if (bytes[i] !== CANARY_BYTE) return { kind: "overflow", distance: i - end + 1 };
  }
  return null;
}

/**
 * The record a block's own ArrayBuffer carries when views are detached on
 * free: it outlives the block, so a free through a stale view can say whose
 * block it was, where it was allocated and first freed, or what released it.
 */
export interface BlockTag {
  readonly owner: object;
  readonly slot: number;
  readonly id: number;
  address: number;
  size: number;
  readonly trace: Trace | null;
  freedTrace: Trace | null;
  /** True once the block was freed, resized away or released. */
  freed: boolean;
  /** What released it when its backing did (a reset, a scope's end), else null. */
  releasedBy: string | null;
  /** True when a resize replaced this buffer (the block lives on in another). */
  resized: boolean;
}

const TAGS = createStamp<BlockTag>(); // a private slot on the block's own buffer: no caller can flip `freed`

/** The tag of a block's own buffer, if `buffer` is one. */
export function tagOf(buffer: ArrayBufferLike): BlockTag | undefined {
  return TAGS.get(buffer);
}

/** Tags `buffer` as the own buffer of a debug block. */
export function setTag(buffer: ArrayBuffer, tag: BlockTag): void {
  TAGS.set(buffer, tag);
}
