// Who holds memkit's native memory, for the leak check at exit. Every block a
// SystemAllocator takes from libc and every page mapping is counted here with
// its owner: the memkit object it was taken for (an Arena's chunk, a
// DynamicArray's storage, a block a program took from its own
// SystemAllocator), whatever allocators sit in between. Only the roots are
// counted (memory taken from the system), so nothing is counted twice, and
// each entry is added and removed where the memory is taken and given back:
// the cost is one Set operation per system allocation, none per arena or
// pool allocation.
//
// Invariants: `live` holds exactly the entries whose memory has not gone back
// to the system; an entry's owner never changes (a moving resize keeps it);
// `requester` is non-null only while an owner's own call into its backing
// runs (beginTake/endTake), and is restored on every exit from that call.
import { valuesOf } from "./_captured_set.ts";
import { captureSite } from "./_call_site.ts";
import { publishThreadTotals } from "./_thread_census.ts";

/** A memkit object that takes native memory for itself. */
export interface CensusOwner {
  /** What it is, as a reader knows it: "Arena", "DynamicArray", "mapPages", ... */
  readonly kind: string;
  /** Where it was created (the first frame outside memkit), when allocation sites are traced. */
  readonly site: string | null;
  /** The memkit object itself, when a report must recognise it (the global allocator's own blocks). */
  readonly holder: object | null;
  /** Memory memkit keeps for the thread's life by design (the thread's `workerArena()`): never a leak, not counted. */
  readonly lifetime: boolean;
}

/** Memory taken from the system and not yet given back. */
export interface CensusEntry {
  readonly owner: CensusOwner;
  readonly address: number;
  readonly size: number;
  /** `performance.now()` when it was taken. */
  readonly takenAt: number;
  /** Where it was taken (the first frame outside memkit), when traced. */
  readonly site: string | null;
}

const live = new Set<CensusEntry>();
// True while memkit creates an owner whose memory lives as long as the thread (see `lifetime`).
let creatingLifetimeOwner = false;
// The kind the next owner made takes instead of its own (see createOwnerNamed).
let pendingKind: string | null = null;
let liveBytes = 0;
let requester: CensusOwner | null = null;

/** Frames of each allocation site to keep (0: none), set by the global allocator's configuration. */
export const census = { frames: 0 };

/** Where an owner is being created, when allocation sites are traced. */
export function censusSite(): string | null {
  return census.frames > 0 ? captureSite(census.frames) : null;
}

/** A new owner; its creation site is captured when allocation sites are traced. */
export function censusOwner(kind: string, holder: object | null = null): CensusOwner {
  const named = pendingKind ?? kind;
  pendingKind = null; // only the first owner made: not one a backing's code makes meanwhile
  return { kind: named, site: censusSite(), holder, lifetime: creatingLifetimeOwner };
}

/**
 * Creates, with `create`, an allocator that is a part of another (a
 * RegionAllocator's heap): the first census owner it makes is called `kind`,
 * so the report at exit names what the program made, not memkit's part.
 */
export function createOwnerNamed<T>(kind: string, create: () => T): T {
  return withPendingKind(kind, create);
}

/**
 * Creates, with `create`, an owner that is nobody's part (the thread's shared
 * SystemAllocator, made on first use wherever that happens): a name pending
 * from {@linkcode createOwnerNamed} is left for the owner it was meant for.
 */
export function createUnnamedOwner<T>(create: () => T): T {
  return withPendingKind(null, create);
}

// Runs `create` with `kind` as the name the first census owner it makes takes (null: its own), then restores it.
function withPendingKind<T>(kind: string | null, create: () => T): T {
  const outer = pendingKind;
  pendingKind = kind;
  try {
    return create();
  } finally {
    pendingKind = outer;
  }
}

/** Creates, with `create`, an owner whose memory is kept for the thread's life (not counted by the census). */
export function createLifetimeOwner<T>(create: () => T): T {
  const outer = creatingLifetimeOwner;
  creatingLifetimeOwner = true;
  try {
    return create();
  } finally {
    creatingLifetimeOwner = outer;
  }
}

/**
 * Makes `owner` the one memory taken from now on is for, until endTake()
 * with what this returns (call it in a `finally`): brackets an owner's call
 * into its backing, without a closure per call on the debug allocator's path.
 */
export function beginTake(owner: CensusOwner): CensusOwner | null {
  const outer = requester;
  requester = owner;
  return outer;
}

/**
 * Whether an owner's call into its backing is running: what the backing
 * hands out now is that owner's, though it registers its claim (a lease)
 * only once the call returns.
 */
export function taking(): boolean {
  return requester !== null;
}

/** Ends the bracket beginTake() opened. */
export function endTake(outer: CensusOwner | null): void {
  requester = outer;
}

/**
 * Counts memory just taken from the system: for the owner whose call into
 * its backing is running, else for `fallback` (the SystemAllocator or mapping
 * itself), or for `keep` when a resize moved memory that already had one.
 */
export function enterCensus(
  address: number,
  size: number,
  fallback: CensusOwner,
  keep: CensusOwner | null = null,
): CensusEntry {
  const entry: CensusEntry = {
    owner: keep ?? requester ?? fallback,
    address,
    size,
    takenAt: performance.now(),
    site: census.frames > 0 ? captureSite(census.frames) : null,
  };
  if (entry.owner.lifetime) return entry; // kept for the thread's life: never in the census
  live.add(entry);
  liveBytes += size;
  publishThreadTotals(live.size, liveBytes);
  return entry;
}

/** The memory went back to the system. */
export function leaveCensus(entry: CensusEntry): void {
  if (!live.delete(entry)) return;
  liveBytes -= entry.size;
  publishThreadTotals(live.size, liveBytes);
}

/** Everything still held, oldest first (read with built-ins captured at load: see _captured_set.ts). */
export function censusEntries(): CensusEntry[] {
  return valuesOf(live);
}
