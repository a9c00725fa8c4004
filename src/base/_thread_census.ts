// Each Worker's totals in libmemkit's process-wide census table (see
// memkit.h), so the main thread's leak check at exit sees what Workers still
// hold, also Workers that were terminated (their JavaScript is gone, their
// native memory is not). A Worker claims a slot while it holds memory and
// frees the slot when it holds none; the main thread never claims one.
//
// Invariants: `slot` is -1 or a slot this thread claimed (state 1) and owns;
// its counts are written only by this thread, as plain doubles (a reader in
// another thread sees each value whole: aligned 8-byte stores).
import { native, workerLabel } from "../../ffi/native.ts";

const SLOTS = 64;
/** How many Workers can hold memory at once and be counted. */
export const WORKER_SLOTS = SLOTS;
// Captured at load: a program may replace built-ins before the exit check reads the table.
const atomicsLoad = Atomics.load;
const atomicsStore = Atomics.store;
const SLOT_BYTES = 128;
const NAME_BYTES = SLOT_BYTES - 24;

interface Table {
  readonly states: Int32Array;
  readonly counts: Float64Array;
  readonly bytes: Uint8Array;
}

let table: Table | null | undefined; // undefined: not looked up yet; null: no libmemkit
let slot = -1;
const label = workerLabel();

function tableOf(): Table | null {
  if (table !== undefined) return table;
  table = null;
  try {
    const library = native.memkit;
    if (library !== null) {
      // SAFETY: the table is a static array of SLOTS * SLOT_BYTES bytes in libmemkit, loaded for the process's life.
      const buffer = native.wrap(library.mk_census_table(), SLOTS * SLOT_BYTES);
      table = { states: new Int32Array(buffer), counts: new Float64Array(buffer), bytes: new Uint8Array(buffer) };
    }
  } catch {
    table = null; // no FFI permission, or no library: Workers go unreported (README says so)
  }
  return table;
}

/** Records this thread's totals; only Workers publish them. */
export function publishThreadTotals(blocks: number, bytes: number): void {
  if (label === null) return;
  const t = tableOf();
  if (t === null) return;
  if (slot < 0) {
    if (blocks === 0) return;
    const claimed = native.memkit!.mk_census_claim();
    if (claimed < 0) return; // all slots taken: this Worker goes unreported
    slot = claimed;
    // encodeInto stops before a character that does not fit whole: the stored name never ends mid-UTF-8.
    const room = new Uint8Array(NAME_BYTES - 1);
    const name = room.subarray(0, new TextEncoder().encodeInto(label, room).written);
    const at = slot * SLOT_BYTES + 24;
    t.bytes.fill(0, at, at + NAME_BYTES);
    t.bytes.set(name, at);
  }
  const base = slot * (SLOT_BYTES / 8);
  t.counts[base + 1] = blocks;
  t.counts[base + 2] = bytes;
  if (blocks === 0) {
    atomicsStore(t.states, slot * (SLOT_BYTES / 4), 0); // free for the next Worker
    slot = -1;
  }
}

/** Whether every slot is claimed (a Worker may then have gone uncounted). */
export function workersUncounted(): boolean {
  const t = tableOf();
  if (t === null) return false;
  for (let i = 0; i < SLOTS; i++) if (atomicsLoad(t.states, i * (SLOT_BYTES / 4)) !== 1) return false;
  return true;
}

/** What each Worker still holds (on the main thread; empty elsewhere or without libmemkit). */
export function workerTotals(): { name: string; blocks: number; bytes: number }[] {
  if (label !== null) return [];
  const t = tableOf();
  if (t === null) return [];
  const out: { name: string; blocks: number; bytes: number }[] = [];
  for (let i = 0; i < SLOTS; i++) {
    if (atomicsLoad(t.states, i * (SLOT_BYTES / 4)) !== 1) continue;
    const blocks = t.counts[i * (SLOT_BYTES / 8) + 1], bytes = t.counts[i * (SLOT_BYTES / 8) + 2];
    if (!(blocks > 0)) continue;
    const at = i * SLOT_BYTES + 24;
    const end = t.bytes.indexOf(0, at);
    const name = new TextDecoder().decode(t.bytes.slice(at, end < 0 || end > at + NAME_BYTES ? at + NAME_BYTES : end));
    out[out.length] = { name, blocks, bytes };
  }
  return out;
}
