// Scopes of an Arena: the handle users hold, and what the arena records when
// one begins so that ending it can roll everything back.
import type { BumpPoint } from "./_bump_cursor.ts";
import type { ArenaScope, ArenaScopeStats } from "./arena_types.ts";

/**
 * The allocation point and counters when a scope began. Ending the scope
 * restores the point (everything after it is released) and the counters.
 */
export interface ScopeRecord extends BumpPoint {
  readonly handle: ScopeHandle;
  readonly live: number;
  readonly allocatedBytes: number;
  readonly totalAllocations: number;
  readonly totalBytes: number;
  readonly startedAt: number;
  /** When it was opened among all arenas' scopes (see Arena's `claimFloor`). */
  readonly serial: number;
}

/** What a user holds: ends the scope once, reports its statistics. */
export class ScopeHandle implements ArenaScope {
  readonly #end: (handle: ScopeHandle) => void;
  readonly #stats: (handle: ScopeHandle) => ArenaScopeStats;
  readonly depth: number;
  active = true;
  /** The statistics frozen when the scope ended. */
  final: ArenaScopeStats | null = null;

  constructor(
    depth: number,
    end: (handle: ScopeHandle) => void,
    stats: (handle: ScopeHandle) => ArenaScopeStats,
  ) {
    this.depth = depth;
    this.#end = end;
    this.#stats = stats;
  }

  stats(): ArenaScopeStats {
    return this.final ?? this.#stats(this);
  }

  end(): void {
    if (this.active) this.#end(this);
  }

  [Symbol.dispose](): void {
    this.end();
  }
}
