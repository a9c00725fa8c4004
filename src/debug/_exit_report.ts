// The leak check's report at exit: the global allocator's live blocks, then
// every other owner of native memory memkit still holds (from the census),
// then what each Worker holds. Built from built-ins captured at load
// (_builtins.ts) and index loops, since a program may replace them before it
// exits. A DebugAllocator's memory held back for blocks the program freed
// (neverUnmap, retainMetadata: its quarantine) is no leak. Every other
// DebugAllocator of the program with blocks left lists them (as report()
// does) under the census owner whose memory holds them: itself when it took
// that memory from the system, else the owner its backing chain took it for
// (a pool, an arena); or under a heading of its own when no listed owner
// holds it (it is in the global allocator's blocks, or not memkit's memory).
// At most LISTED_DEBUG_HEAPS are listed under one owner, and as many under
// headings of their own: the rest are one line each time, with how many more
// DebugAllocators, blocks and bytes, so the report stays short and its counts whole.
import { readEnv } from "../../ffi/native.ts";
import { censusEntries, type CensusEntry, type CensusOwner } from "../base/_native_census.ts";
import { gpuCensusEntries } from "../base/_gpu_census.ts";
import { WORKER_SLOTS, workersUncounted, workerTotals } from "../base/_thread_census.ts";
import { describe } from "../base/_validate.ts";
import { allocatorName } from "../base/_allocator_name.ts";
import {
  endsWith,
  fixed,
  getIn,
  hex,
  join,
  monotonicNow,
  newMap,
  quote,
  replaceAll,
  setIn,
  slice,
  startsWith,
} from "./_builtins.ts";
import { everyDebugHeap, registeredHeap } from "./_c_style.ts";
import type { DebugHeap } from "./_debug_heap.ts";
import type { DebugAllocator } from "./debug_allocator.ts";

/** The environment variable that turns on allocation sites without a code change. */
export const TRACE_FRAMES_VARIABLE = "MEMKIT_TRACE_FRAMES";

// console.error as it was when memkit loaded: a program may replace it before exit, and the report must still be
// printed (or, when it cannot be built, the verdict still stands). Everything else comes from _builtins.ts.
export const printError: (text: string) => void = console.error.bind(console);

function add(list: string[], line: string): void {
  list[list.length] = line;
}

/**
 * The whole report printed at exit (without the verdict), or null when
 * nothing leaked: `global` is the global allocator (null when there is none),
 * `checked` whether its leaks are reported, `frames` the allocation-site depth.
 * Whether something leaked is read from memkit's own records, never through a
 * built-in the program may have replaced; a part that cannot be listed says
 * so (and counts as a leak: the check cannot tell it clean).
 */
export function exitReport(global: DebugAllocator | null, checked: boolean, frames: number): string | null {
  const parts: string[] = [];
  if (global !== null && checked) {
    const live = registeredHeap(global)?.blocks.live ?? 0;
    if (live > 0) {
      let list: string;
      try {
        list = global.report();
      } catch (error) {
        list = `memkit: ${plural(live, "block")} (they could not be listed: ${describeError(error)})`;
      }
      add(
        parts,
        "memkit: the global allocator (getAllocator(), malloc()) still holds blocks " +
          "(free each with getAllocator().free(view), or cFree(address, size) for malloc's):\n" + list,
      );
    }
  }
  const globalListed = parts.length > 0;
  // A program's DebugAllocators with blocks left over a backing that took their memory for them (a pool, an
  // arena): each is listed under the census owner holding that memory, or, when no listed owner holds it,
  // under a heading of its own.
  const placed: Placed = { heaps: newMap(), owners: [] };
  const unplaced: DebugHeap[] = [];
  addPart(parts, "the blocks of the program's DebugAllocators", () => {
    placeDebugHeaps(global, placed, unplaced);
    return null;
  });
  addPart(parts, "the native memory memkit holds", () => censusReport(global, globalListed, placed, unplaced));
  // Headings of their own for the first LISTED_DEBUG_HEAPS; the rest in one line, so a program with thousands of
  // DebugAllocators gets a report of bounded length whose totals still count every block.
  const listed = unplaced.length < LISTED_DEBUG_HEAPS ? unplaced.length : LISTED_DEBUG_HEAPS;
  for (let i = 0; i < listed; i++) {
    const heap = unplaced[i];
    addPart(parts, "the blocks of a DebugAllocator", () => {
      const list = debugBlocks(heap.owner);
      const over = heap.backing === global ? "the global allocator (getAllocator())" : allocatorName(heap.backing);
      return list === null ? null : `memkit: blocks a DebugAllocator over ${over} still ` +
        `holds at exit (free each, or deinit() it, before exit): ${list}`;
    });
  }
  if (unplaced.length > listed) {
    add(
      parts,
      `memkit: … and ${moreHeaps(unplaced, listed)} still hold blocks at exit ` +
        "(free each, or deinit() them, before exit)",
    );
  }
  addPart(parts, "the GPU buffers", gpuReport);
  addPart(parts, "what Workers hold", workersReport);
  if (parts.length === 0) return null;
  if (frames === 0) addPart(parts, "", traceHint);
  return join(parts, "\n");
}

// Adds `make()`'s part, when there is one; a part that throws is a line saying what could not be listed and why.
function addPart(parts: string[], what: string, make: () => string | null): void {
  let part: string | null;
  try {
    part = make();
  } catch (error) {
    if (what === "") return; // a hint, not a finding
    part = `memkit: the leak check at exit could not list ${what} (${describeError(error)})`;
  }
  if (part !== null) add(parts, part);
}

/** An error's message for a report (its getters may throw, or run the program's code). */
export function describeError(error: unknown): string {
  try {
    if (error instanceof Error && typeof error.message === "string") return error.message;
  } catch {
    // A getter or Proxy that throws: described below.
  }
  return describe(error);
}

// How to get allocation sites, and why the environment variable did not give them when it is set.
function traceHint(): string {
  const value = readEnv(TRACE_FRAMES_VARIABLE);
  const set = value === undefined ? "" : ` (${TRACE_FRAMES_VARIABLE}=${quote(value)} is not a number from 1 to 100)`;
  return `memkit: to see where each leak was allocated, run with ${TRACE_FRAMES_VARIABLE}=8 in the environment ` +
    `(Deno: with --allow-env) or call initAllocator({ stackTraceFrames: 8 }) first${set}.`;
}

const LISTED_PER_OWNER = 8;
const LISTED_OWNERS = 50;
// DebugAllocators whose blocks are listed under one census owner, and under headings of their own (in all).
const LISTED_DEBUG_HEAPS = 8;

/**
 * "N more DebugAllocators (M blocks, B bytes)" for `heaps` from index `from` on: their live blocks and the bytes
 * asked for, from their own records (no program code runs).
 */
function moreHeaps(heaps: DebugHeap[], from: number): string {
  let blocks = 0, bytes = 0;
  for (let i = from; i < heaps.length; i++) {
    blocks += heaps[i].blocks.live;
    bytes += heaps[i].ledger.allocatedBytes;
  }
  return `${heaps.length - from} more ${heaps.length - from === 1 ? "DebugAllocator" : "DebugAllocators"} ` +
    `(${plural(blocks, "block")}, ${bytes} bytes)`;
}

/**
 * Finds where the memory of each DebugAllocator with live blocks lies (not the global one, whose blocks have
 * their own list, nor one that owns its memory in the census: its list follows its own entry): the census
 * owner whose entry holds its first live block goes into `placed`; one whose memory no listed entry holds (it
 * lies in the global allocator, in memory kept for the thread's life, in an allocator written in JavaScript)
 * into `unplaced`.
 */
function placeDebugHeaps(globalDebug: object | null, placed: Placed, unplaced: DebugHeap[]): void {
  const heaps = everyDebugHeap();
  let entries: CensusEntry[] | null = null;
  for (let h = 0; h < heaps.length; h++) {
    const heap = heaps[h];
    if (heap.owner === globalDebug || heap.ledger.ended !== null) continue;
    const address = firstLiveAddress(heap);
    if (address === null) continue;
    entries ??= censusEntries();
    let holder: CensusOwner | null = null;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (entry.address <= address && address < entry.address + entry.size) {
        holder = entry.owner;
        break;
      }
    }
    if (holder === heap.census) continue; // its own entry: listed with it (debugBlocks)
    if (holder === null || (globalDebug !== null && holder.holder === globalDebug)) {
      unplaced[unplaced.length] = heap;
      continue;
    }
    const list = getIn(placed.heaps, holder);
    if (list === undefined) {
      setIn(placed.heaps, holder, [heap]);
      placed.owners[placed.owners.length] = holder;
    } else list[list.length] = heap;
  }
}

/** The DebugAllocators listed under census owners, and those owners in the order first found. */
interface Placed {
  readonly heaps: Map<CensusOwner, DebugHeap[]>;
  readonly owners: CensusOwner[];
}

/** The address of a live block of `heap` (user bytes, inside the memory its backing gave), or null for none. */
function firstLiveAddress(heap: DebugHeap): number | null {
  const blocks = heap.blocks;
  if (blocks.live === 0) return null;
  for (let slot = 0; slot < blocks.end; slot++) if (blocks.ids[slot] !== 0) return blocks.addresses[slot];
  return null;
}

/**
 * Native memory memkit still holds outside the global allocator, by owner; null when there is none. The
 * DebugAllocators `placed` under an owner are listed with it; those placed under an owner not listed (past the
 * first LISTED_OWNERS) go to `unplaced`.
 */
function censusReport(
  globalDebug: object | null,
  globalListed: boolean,
  placed: Placed,
  unplaced: DebugHeap[],
): string | null {
  const listedOwners = newMap<CensusOwner, true>();
  try {
    return censusLines(globalDebug, globalListed, placed.heaps, listedOwners);
  } finally {
    // A DebugAllocator placed under an owner that was not listed gets a heading of its own.
    for (let o = 0; o < placed.owners.length; o++) {
      const owner = placed.owners[o];
      if (getIn(listedOwners, owner) !== undefined) continue;
      const heaps = getIn(placed.heaps, owner)!;
      for (let i = 0; i < heaps.length; i++) unplaced[unplaced.length] = heaps[i];
    }
  }
}

function censusLines(
  globalDebug: object | null,
  globalListed: boolean,
  placed: Map<CensusOwner, DebugHeap[]>,
  listedOwners: Map<CensusOwner, true>,
): string | null {
  const entries = censusEntries();
  const owners: CensusOwner[] = [];
  const byOwner = newMap<CensusOwner, CensusEntry[]>();
  // Memory a DebugAllocator holds back for blocks the program freed (neverUnmap, retainMetadata), by owner.
  const heldBack = newMap<CensusOwner, Map<number, number> | null>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    const owner = entry.owner;
    if (globalDebug !== null && owner.holder === globalDebug) continue; // in the global allocator's own report
    let held = getIn(heldBack, owner);
    if (held === undefined) setIn(heldBack, owner, held = quarantineOf(owner));
    if (held !== null) {
      const bytes = getIn(held, entry.address);
      if (bytes !== undefined && entry.size <= bytes) continue; // a freed block's memory, held back by design
    }
    const list = getIn(byOwner, owner);
    if (list === undefined) {
      setIn(byOwner, owner, [entry]);
      owners[owners.length] = owner;
    } else list[list.length] = entry;
  }
  if (owners.length === 0) return null;
  const now = monotonicNow();
  let blocks = 0, bytes = 0;
  const lines: string[] = [];
  for (let o = 0; o < owners.length; o++) {
    const owner = owners[o];
    const list = getIn(byOwner, owner)!;
    let total = 0;
    for (let i = 0; i < list.length; i++) total += list[i].size;
    blocks += list.length;
    bytes += total;
    if (o >= LISTED_OWNERS) continue; // counted, not listed
    setIn(listedOwners, owner, true);
    add(lines, `  ${owner.kind}: ${plural(list.length, "block")}, ${total} bytes`);
    if (owner.site !== null) add(lines, `    created ${indent(owner.site, "      ")}`);
    const listed = list.length < LISTED_PER_OWNER ? list.length : LISTED_PER_OWNER;
    for (let i = 0; i < listed; i++) {
      const entry = list[i];
      const age = fixed((now - entry.takenAt) / 1000, 2);
      add(lines, `    ${entry.size} bytes at 0x${hex(entry.address)}, taken ${age} s before exit`);
      if (entry.site !== null && entry.site !== owner.site) add(lines, `      ${indent(entry.site, "      ")}`);
    }
    if (list.length > LISTED_PER_OWNER) add(lines, `    … and ${list.length - LISTED_PER_OWNER} more`);
    // A program's own DebugAllocator: its memory above is its backing's chunks (canaries included); its own
    // list says which blocks the program left, in the sizes asked for, with where each was allocated.
    const blocksOf = debugBlocksOf(owner);
    if (blocksOf !== null) add(lines, `    its blocks: ${indent(blocksOf, "    ")}`);
    // A program's DebugAllocator whose memory this owner took from the system for it (its backing, or its
    // backing's backing): its own list, as report() gives it, since the entries above are its backing's.
    const within = getIn(placed, owner);
    if (within !== undefined) {
      const shown = within.length < LISTED_DEBUG_HEAPS ? within.length : LISTED_DEBUG_HEAPS;
      for (let i = 0; i < shown; i++) {
        const list = debugBlocks(within[i].owner);
        if (list !== null) {
          add(
            lines,
            `    blocks of a DebugAllocator over ${allocatorName(within[i].backing)}: ${indent(list, "    ")}`,
          );
        }
      }
      if (within.length > shown) add(lines, `    … and ${moreHeaps(within, shown)}`);
    }
  }
  if (owners.length > LISTED_OWNERS) add(lines, `  … and ${owners.length - LISTED_OWNERS} more owners`);
  const besides = globalListed ? " besides the global allocator's blocks above" : "";
  return `memkit: native memory still held at exit${besides}: ${plural(owners.length, "owner")}, ` +
    `${plural(blocks, "block")}, ${bytes} bytes (free, dispose or unmap each before exit)\n${join(lines, "\n")}`;
}

/** The freed blocks a DebugAllocator owner holds back (bytes by address), or null. */
function quarantineOf(owner: CensusOwner): Map<number, number> | null {
  if (owner.kind !== "DebugAllocator" || owner.holder === null) return null;
  const quarantine = registeredHeap(owner.holder)?.quarantine ?? null;
  return quarantine === null || quarantine.size === 0 ? null : quarantine.heldByStart();
}

/** The report of a DebugAllocator that owns census memory (not the global one), or null. */
function debugBlocksOf(owner: CensusOwner): string | null {
  if (owner.kind !== "DebugAllocator" || owner.holder === null) return null;
  return debugBlocks(owner.holder);
}

/** The report of a DebugAllocator's blocks (without its "memkit: "), or null when it has none or cannot say. */
function debugBlocks(debug: object): string | null {
  try {
    const report = (debug as DebugAllocator).report();
    if (report === "memkit: no leaks") return null;
    return startsWith(report, "memkit: ") ? slice(report, "memkit: ".length) : report;
  } catch {
    return null; // an allocator that ended or cannot answer: its memory is listed above all the same
  }
}

/** GPU buffers created through a GpuContext and never destroyed; null when there are none. */
function gpuReport(): string | null {
  const entries = gpuCensusEntries();
  if (entries.length === 0) return null;
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) bytes += entries[i].size;
  const listed = entries.length < LISTED_OWNERS ? entries.length : LISTED_OWNERS;
  for (let i = 0; i < listed; i++) {
    const entry = entries[i];
    const label = entry.label === "" ? "unlabelled" : quote(entry.label);
    add(lines, `  ${entry.device}: buffer ${label}, ${entry.size} bytes, ${entry.usage}`);
    if (entry.site !== null) add(lines, `    created ${indent(entry.site, "      ")}`);
  }
  if (entries.length > LISTED_OWNERS) add(lines, `  … and ${entries.length - LISTED_OWNERS} more`);
  return `memkit: GPU buffers never destroyed: ${plural(entries.length, "buffer")}, ${bytes} bytes ` +
    `(destroyBuffer, release to their pool, or dispose their GpuContext before exit)\n${join(lines, "\n")}`;
}

/** What each Worker still holds (the main thread reads it from libmemkit's table); null when none holds any. */
function workersReport(): string | null {
  const workers = workerTotals();
  if (workers.length === 0) return null;
  const lines: string[] = [];
  for (let i = 0; i < workers.length; i++) {
    const { name, blocks, bytes } = workers[i];
    add(lines, `  ${workerName(name)}: ${plural(blocks, "block")}, ${bytes} bytes`);
  }
  return `memkit: native memory Workers still held at exit: ${plural(workers.length, "Worker")}\n${
    join(lines, "\n")
  }\n` +
    (workersUncounted()
      ? `  (all ${WORKER_SLOTS} Worker slots are in use: more Workers may hold memory uncounted)\n`
      : "") +
    "  (bytes as taken from the system; to list a Worker's blocks and where they were taken, have it call " +
    "initAllocator({ stackTraceFrames: 8 }) and end itself with process.exit(): it prints its own report then)";
}

/**
 * A Worker's name as the census table keeps it: a long one is cut at the
 * table's byte length, maybe inside a character (decoded as U+FFFD) and
 * without its closing quote. The cut is shown as "…" after the last whole character.
 */
function workerName(name: string): string {
  if (!startsWith(name, 'Worker "') || endsWith(name, '"')) return name;
  const whole = endsWith(name, "\uFFFD") ? slice(name, 0, name.length - 1) : name;
  return `${whole}…"`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function indent(site: string, by: string): string {
  return replaceAll(site, "\n", `\n${by}`);
}
