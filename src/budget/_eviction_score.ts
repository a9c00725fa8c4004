// A multi-factor eviction score, over entries the cache
// samples. A higher score is evicted first. A plain sum would add
// `recreationCost × 0.2`, which would evict the dearest entries first; here
// the cost factor is `1 − cost / dearest`, so a cheap entry goes before a
// dear one, as the intent of a recreation cost says.

/**
 * The weights of a {@linkcode ResourceCache}'s eviction score (non-negative, with a positive sum; only their
 * ratios matter).
 *
 * @example
 * ```ts
 * import type { EvictionWeights } from "@memkit/memkit";
 *
 * const design: EvictionWeights = { age: 0.3, size: 0.3, cost: 0.2, frequency: 0.2 };
 * ```
 */
export interface EvictionWeights {
  /** Idle time over the longest idle time among the candidates. */
  age: number;
  /** Size over the cache's limit (or the largest candidate, with `sizeScale: "largest"`). */
  size: number;
  /** 1 − cost over the dearest candidate's: cheap entries go first. */
  cost: number;
  /** 1 / accesses. */
  frequency: number;
}

/** What the score reads of an entry. */
export interface Scored {
  size: number;
  cost: number;
  /** Logical time of the last access (the cache's clock, one tick per get or set). */
  last: number;
  /** Accesses, the first set included. */
  count: number;
}

/**
 * The index in `candidates` of the entry to evict first. Age is the
 * entry's idle time over the longest idle time among the candidates (0..1),
 * size is over `sizeScale` (by default the memory limit), cost
 * is over the dearest candidate, frequency is 1 / accesses.
 */
export function pickVictim(
  candidates: readonly Scored[],
  clock: number,
  sizeScale: number,
  w: EvictionWeights,
): number {
  let oldest = clock, dearest = 0;
  for (const entry of candidates) {
    if (entry.last < oldest) oldest = entry.last;
    if (entry.cost > dearest) dearest = entry.cost;
  }
  const span = clock - oldest || 1;
  let best = -1, bestScore = -Infinity;
  for (let i = 0; i < candidates.length; i++) {
    const e = candidates[i];
    const score = w.age * ((clock - e.last) / span) +
      w.size * (e.size / sizeScale) +
      w.cost * (dearest > 0 ? 1 - e.cost / dearest : 0) +
      w.frequency / e.count;
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}
