// The leak check's report at exit: the global allocator's live blocks, then
// every other owner of native memory memkit still holds (from the census),
// then what each Worker holds. Built from built-ins captured at load, since a
// program may replace them before it exits.
import { readEnv } from "../../ffi/native.ts";
import { censusEntries, type CensusEntry, type CensusOwner } from "../base/_native_census.ts";
import { gpuCensusEntries } from "../base/_gpu_census.ts";
import { WORKER_SLOTS, workersUncounted, workerTotals } from "../base/_thread_census.ts";
import type { DebugAllocator } from "./debug_allocator.ts";

/** The environment variable that turns on allocation sites without a code change. */
export const TRACE_FRAMES_VARIABLE = "MEMKIT_TRACE_FRAMES";

// console.error, join and Reflect.apply as they were when memkit loaded: a
// program may replace built-ins before exit, and the report must still be
// printed (or, when it cannot be built, the verdict still stands).
export const printError: (text: string) => void = console.error.bind(console);
const arrayJoin = Array.prototype.join;
const apply = Reflect.apply;

function add(list: string[], line: string): void {
  list[list.length] = line;
}

function joinLines(list: string[]): string {
  return apply(arrayJoin, list, ["\n"]) as string;
}

/**
 * The whole report printed at exit (without the verdict), or null when
 * nothing leaked: `global` is the global allocator (null when there is none),
 * `checked` whether its leaks are reported, `frames` the allocation-site depth.
 */
export function exitReport(global: DebugAllocator | null, checked: boolean, frames: number): string | null {
  const parts: string[] = [];
  if (global !== null && checked && global.leaks().length > 0) {
    add(
      parts,
      "memkit: the global allocator (getAllocator(), malloc()) still holds blocks " +
        "(free each with getAllocator().free(view), or cFree(address, size) for malloc's):\n" + global.report(),
    );
  }
  const held = censusReport(global, parts.length > 0);
  if (held !== null) add(parts, held);
  const gpu = gpuReport();
  if (gpu !== null) add(parts, gpu);
  const workers = workerTotals();
  if (workers.length > 0) {
    const lines = workers.map(({ name, blocks, bytes }) => `  ${name}: ${plural(blocks, "block")}, ${bytes} bytes`);
    add(
      parts,
      `memkit: native memory Workers still held at exit: ${plural(workers.length, "Worker")}\n${joinLines(lines)}\n` +
        (workersUncounted()
          ? `  (all ${WORKER_SLOTS} Worker slots are in use: more Workers may hold memory uncounted)\n`
          : "") +
        "  (bytes as taken from the system; to list a Worker's blocks and where they were taken, have it call " +
        "initAllocator({ stackTraceFrames: 8 }) and end itself with process.exit(): it prints its own report then)",
    );
  }
  if (parts.length === 0) return null;
  if (frames === 0) add(parts, traceHint());
  return joinLines(parts);
}

// How to get allocation sites, and why the environment variable did not give them when it is set.
function traceHint(): string {
  const value = readEnv(TRACE_FRAMES_VARIABLE);
  const set = value === undefined
    ? ""
    : ` (${TRACE_FRAMES_VARIABLE}=${JSON.stringify(value)} is not a number from 1 to 100)`;
  return `memkit: to see where each leak was allocated, run with ${TRACE_FRAMES_VARIABLE}=8 in the environment ` +
    `(Deno: with --allow-env) or call initAllocator({ stackTraceFrames: 8 }) first${set}.`;
}

const LISTED_PER_OWNER = 8;
const LISTED_OWNERS = 50;

/** Native memory memkit still holds outside the global allocator, by owner; null when there is none. */
function censusReport(globalDebug: object | null, globalListed: boolean): string | null {
  const byOwner = new Map<CensusOwner, CensusEntry[]>();
  for (const entry of censusEntries()) {
    if (globalDebug !== null && entry.owner.holder === globalDebug) continue; // in the global allocator's own report
    const list = byOwner.get(entry.owner);
    if (list === undefined) byOwner.set(entry.owner, [entry]);
    else list[list.length] = entry;
  }
  if (byOwner.size === 0) return null;
  const now = performance.now();
  let blocks = 0, bytes = 0;
  const lines: string[] = [];
  let listed = 0;
  for (const [owner, entries] of byOwner) {
    const total = entries.reduce((sum, e) => sum + e.size, 0);
    blocks += entries.length;
    bytes += total;
    if (++listed > LISTED_OWNERS) continue; // counted, not listed
    add(lines, `  ${owner.kind}: ${plural(entries.length, "block")}, ${total} bytes`);
    if (owner.site !== null) add(lines, `    created ${indent(owner.site, "      ")}`);
    for (const entry of entries.slice(0, LISTED_PER_OWNER)) {
      const age = ((now - entry.takenAt) / 1000).toFixed(2);
      add(lines, `    ${entry.size} bytes at 0x${entry.address.toString(16)}, taken ${age} s before exit`);
      if (entry.site !== null && entry.site !== owner.site) add(lines, `      ${indent(entry.site, "      ")}`);
    }
    if (entries.length > LISTED_PER_OWNER) add(lines, `    … and ${entries.length - LISTED_PER_OWNER} more`);
    // A program's own DebugAllocator: its memory above is its backing's chunks (canaries included); its own
    // list says which blocks the program left, in the sizes asked for, with where each was allocated.
    const blocksOf = debugBlocks(owner);
    if (blocksOf !== null) add(lines, `    its blocks: ${indent(blocksOf, "    ")}`);
  }
  if (byOwner.size > LISTED_OWNERS) add(lines, `  … and ${byOwner.size - LISTED_OWNERS} more owners`);
  const besides = globalListed ? " besides the global allocator's blocks above" : "";
  return `memkit: native memory still held at exit${besides}: ${plural(byOwner.size, "owner")}, ` +
    `${plural(blocks, "block")}, ${bytes} bytes (free, dispose or unmap each before exit)\n${joinLines(lines)}`;
}

/** The report of a DebugAllocator that owns census memory (not the global one), or null. */
function debugBlocks(owner: CensusOwner): string | null {
  if (owner.kind !== "DebugAllocator" || owner.holder === null) return null;
  try {
    const report = (owner.holder as DebugAllocator).report();
    return report.startsWith("memkit: ") ? report.slice("memkit: ".length) : report;
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
  for (const entry of entries) bytes += entry.size;
  for (const entry of entries.slice(0, LISTED_OWNERS)) {
    const label = entry.label === "" ? "unlabelled" : JSON.stringify(entry.label);
    add(lines, `  ${entry.device}: buffer ${label}, ${entry.size} bytes, ${entry.usage}`);
    if (entry.site !== null) add(lines, `    created ${indent(entry.site, "      ")}`);
  }
  if (entries.length > LISTED_OWNERS) add(lines, `  … and ${entries.length - LISTED_OWNERS} more`);
  return `memkit: GPU buffers never destroyed: ${plural(entries.length, "buffer")}, ${bytes} bytes ` +
    `(destroyBuffer, release to their pool, or dispose their GpuContext before exit)\n${joinLines(lines)}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function indent(site: string, by: string): string {
  return site.replaceAll("\n", `\n${by}`);
}
