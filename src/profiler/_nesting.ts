// Which watched sources live inside another watched source: an array in a
// watched arena, a DebugAllocator over a watched pool, an allocator whose
// backing (or its backing's backing) is watched, an array in a RegionAllocator
// region. The same native bytes are then in both sources' figures, and a
// snapshot counts them once: as the exit census does (src/base/_native_census.ts,
// where only memory taken from the system is counted, so nothing is counted
// twice), the total is what the outermost watched level of each chain holds;
// inside that, each source keeps its own bytes, and the source that handed them
// out keeps only the rest (its other blocks, a DebugAllocator's canaries, the
// room an inner allocator has not handed out yet).
//
// The census itself cannot say it: it records who took memory from the
// system, not which memkit object a block was carved for. So a source's place
// is found from memkit's own records of its memory: where its storage or
// first chunk lies (a DynamicArray's storage block, an allocator's dump()
// chunks), and whether a watched allocator's live blocks (its dump()) or its
// lease table hold that memory; a DebugAllocator names its backing itself.
//
// A place can change: an array's storage moves when it grows or shrinks (to
// another allocator, when its allocator routes requests by size), an
// allocator's chunks go back and come again from elsewhere, a source stops
// holding memory, or starts. So at every snapshot each source's "mark" is read
// from memkit's own state, without running the program's code: whether it
// holds memory, an array's storage block (which object, where, how large), a
// DebugAllocator's first live block, another allocator's capacity (a chunk
// taken or returned changes it). While no mark changes, a snapshot pays those
// reads and one subtraction per nested source; when one does, every place is
// found again (the dumps read once for the pass).
//
// An allocator's chunks usually all lie in one source. When its backing
// routes them to several (an allocator written in JavaScript sending
// requests to heaps by size), it is "split": each chunk's holder is kept, and
// at every snapshot its bytes are shared out over them in proportion to what
// was asked for in each chunk (its dump(), read then), so each holder keeps
// only the rest of its own figure; it is nestedIn the one holding most. (An
// allocator that gives a chunk back and takes one of the same size from
// elsewhere, its capacity unchanged, is seen when a snapshot found it holding
// nothing in between, or when its capacity next changes.)
//
// Two arrays may hold the same storage (an array and its snapshot(), until
// either writes): that memory is counted once, for the source listed first in
// `sources`; the others are "shared" with it and count nothing.
//
// Invariants: `#parent[i]` is undefined until source i's place is known, then
// the index of the nearest watched source holding its memory, or -1 when none
// does (it takes from the system, or from nothing watched); it is only known
// while the marks are those it was found from. The parent links never form a
// cycle (a candidate still being placed, or placed inside the source being
// placed, is never its parent). `#shared[i]` is -1, or the index (below i) of
// the first array source holding the same storage as array source i.
import { intrinsic } from "../../ffi/boundary.ts";
import { native } from "../../ffi/native.ts";
import { leaseTableOf } from "../alloc/_lease.ts";
import { arrayInternals } from "../arrays/dynamic_array.ts";
import { registeredHeap } from "../debug/_c_style.ts";
import { getAllocator } from "../debug/global_allocator.ts";
import type { Probe } from "./_sources.ts";

/** A range of native memory: `[address, address + size)`. */
interface Range {
  readonly address: number;
  readonly size: number;
}

/** A watched source that holds a range, and how tightly (the size of its block around it; smaller is nearer). */
interface Holder {
  readonly index: number;
  readonly span: number;
}

const ROOT = -1;

const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

/** The places of one profiler's sources (see the file's comment). */
export class Nesting {
  readonly #probes: readonly Probe[];
  readonly #nests: readonly boolean[];
  readonly #parent: (number | undefined)[];
  readonly #shared: number[];
  // Each source's mark at the last snapshot (see the file's comment and #markOf): whether it held memory, and
  // for a source that may nest, two numbers and (arrays) the storage block that say where its memory is.
  readonly #held: boolean[];
  readonly #address: number[];
  readonly #size: number[];
  readonly #block: (WeakRef<object> | null)[];
  // Whether source i is a DebugAllocator whose backing is watched (undefined: not looked at yet).
  readonly #byBacking: (boolean | undefined)[];
  // An allocator whose chunks lie in more than one watched source (its backing routes them): the source holding
  // each chunk, by the chunk's address; null for every other source (all its memory is in `#parent[i]`).
  readonly #split: (Map<number, number> | null)[];
  // This snapshot's share of a split source's bytes in each source holding its chunks ([index, bytes]).
  readonly #portions: ([number, number][] | null)[];
  // Per placing pass: each container's live blocks (null: it has no dump()), read once for every source placed.
  #blocks = new Map<number, Range[] | null>();
  readonly #placing = new Set<number>();

  constructor(probes: readonly Probe[]) {
    this.#probes = probes;
    this.#nests = probes.map(canNest);
    this.#parent = probes.map((_, i) => this.#nests[i] ? undefined : ROOT);
    this.#shared = probes.map(() => ROOT);
    this.#held = probes.map(() => false);
    this.#address = probes.map(() => 0);
    this.#size = probes.map(() => 0);
    this.#block = probes.map(() => null);
    this.#byBacking = probes.map(() => undefined);
    this.#split = probes.map(() => null);
    this.#portions = probes.map(() => null);
  }

  /** The index of the watched source holding source `index`'s memory, or -1 (none, or not known yet). */
  parentOf(index: number): number {
    return this.#parent[index] ?? ROOT;
  }

  /**
   * Where source `index`'s bytes (`held`, as place() was given them) lie when its chunks lie in more than one
   * watched source: `[source index, bytes]` pairs adding up to `held` (-1 for memory no watched source holds);
   * null when they all lie in `parentOf(index)`.
   */
  portionsOf(index: number): readonly (readonly [number, number])[] | null {
    return this.#portions[index];
  }

  /**
   * The index of the source listed first whose storage source `index` holds too (an array and its
   * snapshot()), or -1: that memory is counted for that source only.
   */
  sharedWith(index: number): number {
    return this.#shared[index];
  }

  /**
   * Places every source that now holds memory (`held[i] > 0`) and is not placed yet, or all of them again when
   * a mark changed since the last call (see the file's comment); `capacity[i]` is source i's capacity as its
   * reading said. Runs the sources' own dump() and owns-like reads: call it where reading the sources may run
   * their code anyway (a snapshot).
   */
  place(held: readonly number[], capacity: readonly number[]): void {
    if (this.#remark(held, capacity)) {
      for (let i = 0; i < held.length; i++) {
        if (this.#nests[i]) this.#parent[i] = undefined;
        this.#shared[i] = ROOT;
        this.#split[i] = null;
      }
      this.#share(held);
    }
    this.#pass(held);
    // A split source's bytes move between its chunks at every allocation: shared out anew at every snapshot.
    for (let i = 0; i < held.length; i++) {
      this.#portions[i] = null;
      if (this.#split[i] === null || held[i] === 0) continue;
      let portions = this.#portion(i, held[i]);
      if (portions === null) {
        // A chunk taken since it was placed (a mark that did not change): placed again, with its chunks.
        this.#parent[i] = undefined;
        this.#split[i] = null;
        this.#pass(held);
        portions = this.#split[i] === null ? null : this.#portion(i, held[i]);
      }
      this.#portions[i] = portions;
    }
  }

  // Places every source holding memory that is not placed yet (dumps read once for the pass).
  #pass(held: readonly number[]): void {
    let pending = false;
    for (let i = 0; i < held.length; i++) if (this.#parent[i] === undefined && held[i] > 0) pending = true;
    if (!pending) return; // the usual case once every source holding memory was placed: nothing read
    this.#blocks = new Map();
    try {
      for (let i = 0; i < held.length; i++) if (this.#parent[i] === undefined && held[i] > 0) this.#place(i);
    } finally {
      this.#blocks = new Map(); // the dumps read for this pass are not kept
    }
  }

  // Split source i's `held` bytes shared out over the sources holding its chunks, in proportion to the bytes
  // each chunk's live blocks were asked for (their size where none says): null when a chunk is not known.
  #portion(i: number, held: number): [number, number][] | null {
    const split = this.#split[i]!;
    let chunks;
    try {
      chunks = dumpOf(this.#probes[i].source);
    } catch {
      chunks = null;
    }
    const main = this.#parent[i] ?? ROOT;
    if (chunks === null) return [[main, held]]; // nothing to share out by: all where most of it was
    const weights = new Map<number, number>();
    let total = 0;
    for (const chunk of chunks) {
      const holder = split.get(chunk.address);
      if (holder === undefined) return null;
      const weight = usedBytes(chunk.blocks);
      weights.set(holder, (weights.get(holder) ?? 0) + weight);
      total += weight;
    }
    if (total === 0) return [[main, held]];
    const portions: [number, number][] = [];
    let given = 0;
    for (const [holder, weight] of weights) {
      const bytes = Math.floor(held * weight / total);
      portions.push([holder, bytes]);
      given += bytes;
    }
    // What rounding left goes to the source holding most (the sum stays `held`).
    let most = 0;
    for (let k = 1; k < portions.length; k++) if (portions[k][1] > portions[most][1]) most = k;
    portions[most][1] += held - given;
    return portions;
  }

  // Reads every source's mark; true when one that matters differs from the last snapshot's: that of a source
  // that may nest, or whether a source that may hold others holds memory. A source that may nest and holds
  // memory is read through memkit's own state only (no program code runs).
  #remark(held: readonly number[], capacity: readonly number[]): boolean {
    let changed = false;
    for (let i = 0; i < held.length; i++) {
      const holds = held[i] > 0;
      if (!this.#nests[i]) {
        if (holds !== this.#held[i] && canHold(this.#probes[i])) changed = true;
        this.#held[i] = holds;
        continue;
      }
      let address = 0, size = 0, block: object | null = null;
      if (holds) [address, size, block] = this.#markOf(i, capacity[i]);
      const known = this.#block[i]?.deref() ?? null;
      if (holds !== this.#held[i] || address !== this.#address[i] || size !== this.#size[i] || block !== known) {
        changed = true;
        this.#held[i] = holds;
        this.#address[i] = address;
        this.#size[i] = size;
        // A WeakRef: the profiler keeps no freed block's view alive (a block collected and another at the same
        // address and size reads as changed: placed again, harmlessly).
        this.#block[i] = block === null ? null : new WeakRef(block);
      }
    }
    return changed;
  }

  // What source i's place is found from, read from memkit's own state (no program code runs): an array's
  // storage block (its address, its size and the block itself); a DebugAllocator's allocation count and bytes
  // (nothing when its backing is watched: it is placed by that, for good); another allocator's capacity (a
  // chunk taken or returned changes it).
  #markOf(i: number, capacity: number): [number, number, object | null] {
    const probe = this.#probes[i];
    if (probe.kind === "array") {
      try {
        const block = arrayInternals.storageOf(probe.source as never, false, "profile");
        return [native.addressOf(block), intrinsic.typedArrayByteLength(block), block];
      } catch {
        return [0, 0, null]; // its storage is gone, or busy while its allocator runs
      }
    }
    const heap = registeredHeap(probe.source as object);
    if (heap === undefined) return [0, capacity, null];
    // (A DebugAllocator keeps its backing: whether that is watched is found once.)
    this.#byBacking[i] ??= this.#indexOf(heap.backing) !== ROOT;
    if (this.#byBacking[i]) return [0, 0, null];
    // Each block is a chunk of its backing's: any new one (or one resized) may lie elsewhere.
    return [heap.ledger.totalAllocations, heap.ledger.allocatedBytes, null];
  }

  // Array sources holding the same storage block: every one after the first listed is shared with it.
  #share(held: readonly number[]): void {
    const first = new Map<object, number>();
    for (let i = 0; i < held.length; i++) {
      if (held[i] === 0 || this.#probes[i].kind !== "array") continue;
      const block = this.#block[i]?.deref();
      if (block === undefined) continue;
      const earlier = first.get(block);
      if (earlier === undefined) first.set(block, i);
      else this.#shared[i] = earlier;
    }
  }

  #place(i: number): number {
    const known = this.#parent[i];
    if (known !== undefined) return known;
    this.#placing.add(i);
    try {
      const parent = this.#find(i);
      // Unknown (no memory to look at right now): left for a later snapshot.
      if (parent !== undefined) this.#parent[i] = parent;
      return parent ?? ROOT;
    } finally {
      this.#placing.delete(i);
    }
  }

  // The nearest watched source holding source i's memory, ROOT for none, undefined when i holds nothing now.
  #find(i: number): number | undefined {
    const probe = this.#probes[i];
    const source = probe.source as object;
    if (probe.kind === "allocator") {
      // A DebugAllocator names its backing (it watches it rather than leasing its blocks).
      const backing = registeredHeap(source)?.backing;
      if (backing !== undefined) {
        const j = this.#indexOf(backing);
        if (j !== ROOT && this.#eligible(j, i)) return j;
      }
    }
    const ranges = footprintOf(probe);
    // An allocator with no dump() (a RegionAllocator's region), or one whose dump() throws (a Proxy of one),
    // shows no memory to place it by, ever: counted where it is, as before.
    if (ranges === UNREADABLE) return ROOT;
    if (ranges === null) return undefined;
    if (ranges.length === 1) return this.#nearest(i, ranges[0]);
    // An allocator's chunks: usually all in one source; when its backing routes them to several (by size), the
    // source holding most of them is its place, and each chunk's holder is kept to share out its bytes.
    const byChunk = new Map<number, number>();
    const bytes = new Map<number, number>();
    for (const range of ranges) {
      const holder = this.#nearest(i, range);
      byChunk.set(range.address, holder);
      bytes.set(holder, (bytes.get(holder) ?? 0) + range.size);
    }
    let main = ROOT, most = 0;
    for (const [holder, size] of bytes) {
      if (holder !== ROOT && size > most) [main, most] = [holder, size];
    }
    if (bytes.size > 1) this.#split[i] = byChunk;
    return main;
  }

  // The nearest watched source (not i) holding `range` of source i's memory, ROOT for none.
  #nearest(i: number, range: Range): number {
    const holders: Holder[] = [];
    for (let j = 0; j < this.#probes.length; j++) {
      if (j === i || !canHold(this.#probes[j])) continue;
      const span = this.#spanAround(j, range);
      if (span !== null) holders.push({ index: j, span });
    }
    if (holders.length === 0) return ROOT;
    // Every holder is on the chain above i: the nearest is the one the others hold (placed first, recursively),
    // else the one with the tightest block around i's memory.
    const eligible: Holder[] = [];
    for (const holder of holders) if (this.#eligible(holder.index, i)) eligible.push(holder);
    let best: Holder | null = null;
    for (const holder of eligible) {
      if (best === null) best = holder;
      else if (this.#above(best.index, holder.index)) best = holder;
      else if (!this.#above(holder.index, best.index) && holder.span < best.span) best = holder;
    }
    return best === null ? ROOT : best.index;
  }

  // Whether j may be i's parent: not being placed now (above i in this search) and not placed inside i.
  #eligible(j: number, i: number): boolean {
    if (this.#placing.has(j)) return false;
    this.#place(j);
    return !this.#above(i, j);
  }

  // Whether `upper` is an ancestor of `lower` through the links placed so far.
  #above(upper: number, lower: number): boolean {
    for (let at = this.#parent[lower] ?? ROOT, steps = 0; at !== ROOT && steps < this.#probes.length; steps++) {
      if (at === upper) return true;
      at = this.#parent[at] ?? ROOT;
    }
    return false;
  }

  #indexOf(source: unknown): number {
    for (let j = 0; j < this.#probes.length; j++) {
      if (canHold(this.#probes[j]) && containerOf(this.#probes[j]) === source) return j;
    }
    return ROOT;
  }

  // The size of container j's live block around `range`, or null when j does not hold it.
  #spanAround(j: number, range: Range): number | null {
    const container = containerOf(this.#probes[j]);
    if (container === null) return null;
    let blocks = this.#blocks.get(j);
    if (blocks === undefined) this.#blocks.set(j, blocks = liveBlocks(container));
    if (blocks !== null) {
      // Sorted by address, never overlapping: the last block starting at or before the range is the only one
      // that may hold it.
      let low = 0, high = blocks.length - 1, at = -1;
      while (low <= high) {
        const middle = (low + high) >>> 1;
        if (blocks[middle].address <= range.address) [at, low] = [middle, middle + 1];
        else high = middle - 1;
      }
      const block = at < 0 ? null : blocks[at];
      return block !== null && range.address + range.size <= block.address + block.size ? block.size : null;
    }
    // No dump() (a RegionAllocator's region): its lease table, which records a block at the start of each
    // array's storage and each chained allocator's chunk carved from it. A block as large as the container
    // itself could be the container's own memory seen from outside (it lives inside that source): not taken.
    let capacity: unknown;
    try {
      if (leaseTableOf(container)?.holds(range.address, range.size) !== true) return null;
      capacity = (container as { stats(): { capacityBytes?: unknown } }).stats().capacityBytes;
    } catch {
      return null;
    }
    return isNumber(capacity) && range.size < capacity ? capacity : null;
  }
}

// Sources whose memory may come from another watched source: arrays and allocators (not the system's own).
function canNest(probe: Probe): boolean {
  if (probe.kind === "array") return arrayInternals.isArray(probe.source);
  return probe.kind === "allocator" && (probe.source as { kind?: unknown }).kind !== "system";
}

// Sources that hand out memory other sources may keep: allocators, and the global allocator.
function canHold(probe: Probe): boolean {
  return probe.kind === "allocator" || probe.kind === "global";
}

function containerOf(probe: Probe): object | null {
  if (probe.kind === "global") return getAllocator();
  return typeof probe.source === "object" && probe.source !== null ? probe.source : null;
}

const UNREADABLE = Symbol("unreadable");

// Where a source's memory lies: a DynamicArray's storage block, an allocator's chunks. Null when it holds none
// now (placed at a later snapshot); UNREADABLE for an allocator with no dump(), or whose dump() throws.
function footprintOf(probe: Probe): Range[] | null | typeof UNREADABLE {
  if (probe.kind === "array") {
    try {
      const block = arrayInternals.storageOf(probe.source as never, false, "profile");
      const size = intrinsic.typedArrayByteLength(block);
      return size === 0 ? null : [{ address: native.addressOf(block), size }];
    } catch {
      return null; // its storage is gone, or busy while its allocator runs: not now
    }
  }
  let chunks;
  try {
    chunks = dumpOf(probe.source);
  } catch {
    return UNREADABLE;
  }
  if (chunks === null) return UNREADABLE;
  return chunks.length === 0 ? null : chunks;
}

// Whether a source has a dump() (a getter or Proxy trap that throws: none).
function hasDump(source: unknown): boolean {
  try {
    return typeof (source as { dump?: unknown }).dump === "function";
  } catch {
    return false;
  }
}

// A source's dump() chunks, checked: null when it has no dump() or answers something else.
function dumpOf(source: unknown): (Range & { blocks: unknown })[] | null {
  if (!hasDump(source)) return null;
  const chunks = ((source as { dump(): unknown }).dump() as { chunks?: unknown } | null)?.chunks;
  if (!Array.isArray(chunks)) return null;
  const out: (Range & { blocks: unknown })[] = [];
  for (const chunk of chunks) {
    const { address, size, blocks } = (chunk ?? {}) as { address?: unknown; size?: unknown; blocks?: unknown };
    if (isNumber(address) && isNumber(size) && size > 0) out.push({ address, size, blocks });
  }
  return out;
}

// The bytes a chunk's live blocks were asked for (a block that says none, as an Arena's run: its size).
function usedBytes(blocks: unknown): number {
  let bytes = 0;
  if (!Array.isArray(blocks)) return bytes;
  for (const block of blocks) {
    const { size, free, requested, owner } = (block ?? {}) as {
      size?: unknown;
      free?: unknown;
      requested?: unknown;
      owner?: unknown;
    };
    if (free !== false || owner === "canary") continue;
    if (isNumber(requested) && requested > 0) bytes += requested;
    else if (isNumber(size) && size > 0) bytes += size;
  }
  return bytes;
}

// A container's live blocks as native ranges (from its dump()), sorted by address, or null when it has no dump().
function liveBlocks(container: object): Range[] | null {
  let chunks;
  try {
    chunks = dumpOf(container);
  } catch {
    return []; // a dump() that throws: it holds nothing the profiler can see
  }
  if (chunks === null) return null;
  const out: Range[] = [];
  for (const chunk of chunks) {
    if (!Array.isArray(chunk.blocks)) continue;
    for (const block of chunk.blocks) {
      const { offset, size, free } = (block ?? {}) as { offset?: unknown; size?: unknown; free?: unknown };
      if (free === false && isNumber(offset) && isNumber(size)) out.push({ address: chunk.address + offset, size });
    }
  }
  return out.sort((a, b) => a.address - b.address);
}
