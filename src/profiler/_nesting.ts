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
// A source's place never changes (an array keeps its allocator, an allocator
// its backing), so it is found once, at the first snapshot where the source
// holds memory; after that a snapshot pays one subtraction per nested source.
//
// Invariant: `#parent[i]` is undefined until source i's place is known, then
// the index of the nearest watched source holding its memory, or -1 when none
// does (it takes from the system, or from nothing watched). The parent links
// never form a cycle (a candidate still being placed, or placed inside the
// source being placed, is never its parent).
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
  readonly #parent: (number | undefined)[];
  // Per placing pass: each container's live blocks (null: it has no dump()), read once for every source placed.
  #blocks = new Map<number, Range[] | null>();
  readonly #placing = new Set<number>();

  constructor(probes: readonly Probe[]) {
    this.#probes = probes;
    this.#parent = probes.map((probe) => canNest(probe) ? undefined : ROOT);
  }

  /** The index of the watched source holding source `index`'s memory, or -1 (none, or not known yet). */
  parentOf(index: number): number {
    return this.#parent[index] ?? ROOT;
  }

  /**
   * Places every source not placed yet that now holds memory (`held[i] > 0`).
   * Runs the sources' own dump() and owns-like reads: call it where reading
   * the sources may run their code anyway (a snapshot).
   */
  place(held: readonly number[]): void {
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
    const range = footprintOf(probe);
    // An allocator with no dump() (a RegionAllocator's region), or one whose dump() throws (a Proxy of one),
    // shows no memory to place it by, ever: counted where it is, as before.
    if (range === UNREADABLE) return ROOT;
    if (range === null) return undefined;
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
      for (const block of blocks) {
        if (block.address <= range.address && range.address + range.size <= block.address + block.size) {
          return block.size;
        }
      }
      return null;
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

// Where a source's memory starts: a DynamicArray's storage block, an allocator's first chunk (its chunks all
// come from one backing). Null when it holds none now (placed at a later snapshot); UNREADABLE for an
// allocator with no dump(), or whose dump() throws.
function footprintOf(probe: Probe): Range | null | typeof UNREADABLE {
  if (probe.kind === "array") {
    try {
      const block = arrayInternals.storageOf(probe.source as never, false, "profile");
      const size = block.byteLength;
      return size === 0 ? null : { address: native.addressOf(block), size };
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
  return chunks.length === 0 ? null : chunks[0];
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

// A container's live blocks as native ranges (from its dump()), or null when it has no dump().
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
  return out;
}
