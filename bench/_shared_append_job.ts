// What bench/shared_array_bench.ts and its Worker (_shared_append_worker.ts) agree on.
import { struct } from "../mod.ts";

/** One round: what to write, into which buffer, and the word the main thread raises to start it. */
export interface AppendJob {
  element: "struct" | "f64";
  /**
   * "literal-keys" (records only): the hand-written append of the record literals push takes, each one's
   * keys checked as push must (for-in) and nothing else: the scorecard's ceiling for push in Bun.
   * "claim-publish" (f64 only): the hand-written append made safe for several writers, the least a push that
   * any thread may call does: each value claimed with one compareExchange and published with one store.
   * "literal-keys-claim" (records only): both, the least a push of a record any thread may call does.
   */
  writer: "hand-written" | "literal-keys" | "literal-keys-claim" | "claim-publish" | "push" | "push-held" | "pushMany";
  /** Records per pushMany call (pushMany only): `count` for one call with everything. */
  batch: number;
  count: number;
  buffer: SharedArrayBuffer;
  start: SharedArrayBuffer;
}

/** The record: 12 bytes, the same layout memkit's struct() and the hand-written append use. */
export const Particle = struct({ id: "u32", x: "f32", y: "f32" });
export type ParticleRecord = { id: number; x: number; y: number };

/** The hand-written append's length word (Int32 index), and where its records start (as a SharedDynamicArray's). */
export const LENGTH_WORD = 1;
export const RECORDS_AT = 16;
