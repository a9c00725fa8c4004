// The ResourceCache hit-ratio study (issue 16 item 2): seeded Zipf traces
// with mixed sizes and recreation costs, replayed through memkit's
// ResourceCache (default policy), lru-cache (npm, maxSize + sizeCalculation)
// and Belady's furthest-next-use rule (offline, the ceiling). No timing: the
// figures are counts, the same on every machine and runtime.
// `npx deno run -A bench/cache_bench.ts` (or `npx bun run bench/cache_bench.ts`) prints the table;
// bench/mod.ts --full calls cacheReport().
import { LRUCache } from "lru-cache";
import { ResourceCache, type ResourceCacheOptions } from "../mod.ts";

const KiB = 1024, MiB = 1024 * KiB;

/** One request of a trace. */
interface Trace {
  name: string;
  alpha: number;
  /** Object id per request. */
  ids: Int32Array;
  /** Per object. */
  sizes: Float64Array;
  costs: Float64Array;
  capacity: number;
}

/** A policy's result on a trace. */
export interface CacheResult {
  trace: string;
  alpha: number;
  policy: string;
  hitRatio: number;
  byteHitRatio: number;
  /** Recreation cost of the hits over the cost of every request. */
  costSaved: number;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Ranks 0..n-1 drawn with P(rank k) ∝ 1/(k+1)^alpha, by binary search in the CDF.
function zipf(n: number, alpha: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, alpha);
  for (let k = 0; k < n; k++) cdf[k] /= sum;
  return () => {
    const u = random();
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function shuffled(n: number, random: () => number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const logUniform = (random: () => number, low: number, high: number) =>
  Math.exp(Math.log(low) + random() * (Math.log(high) - Math.log(low)));

/** The kinds of trace: how sizes and costs are drawn, and whether popularity shifts. */
export type TraceKind = "uniform" | "sizes" | "sizes+costs" | "shifting";

/**
 * A seeded trace: `objects` objects, `requests` requests by Zipf(alpha) over
 * a random permutation of the objects (popularity independent of size and
 * cost), a cache of `capacityShare` of all objects' bytes.
 * - uniform: every object 64 KiB, cost 1 (the plain trace);
 * - sizes: 4 KiB–4 MiB log-uniform, cost proportional to size (decode time per byte);
 * - sizes+costs: 4 KiB–4 MiB and cost 1–100, both log-uniform and independent (the cost-weighted trace);
 * - shifting: uniform, and the popularity order is re-drawn every requests/10 (a moving working set: LRU's case).
 */
export function makeTrace(
  kind: TraceKind,
  alpha: number,
  { objects = 20_000, requests = 200_000, capacityShare = 0.05, seed = 16 } = {},
): Trace {
  const random = mulberry32(seed * 1000 + Math.round(alpha * 100));
  const sizes = new Float64Array(objects), costs = new Float64Array(objects);
  for (let i = 0; i < objects; i++) {
    if (kind === "uniform" || kind === "shifting") {
      sizes[i] = 64 * KiB;
      costs[i] = 1;
    } else {
      sizes[i] = Math.round(logUniform(random, 4 * KiB, 4 * MiB));
      costs[i] = kind === "sizes" ? sizes[i] / (64 * KiB) : logUniform(random, 1, 100);
    }
  }
  const draw = zipf(objects, alpha, random);
  let order = shuffled(objects, random);
  const ids = new Int32Array(requests);
  for (let r = 0; r < requests; r++) {
    if (kind === "shifting" && r > 0 && r % (requests / 10) === 0) order = shuffled(objects, random);
    ids[r] = order[draw()];
  }
  let total = 0;
  for (const size of sizes) total += size;
  return { name: kind, alpha, ids, sizes, costs, capacity: Math.floor(total * capacityShare) };
}

/** A cache under test: `lookup` says whether the id was a hit, and inserts it on a miss. */
type Policy = (trace: Trace) => (id: number) => boolean;

function score(trace: Trace, policy: string, make: Policy): CacheResult {
  const lookup = make(trace);
  let hits = 0, bytes = 0, hitBytes = 0, cost = 0, hitCost = 0;
  for (const id of trace.ids) {
    const size = trace.sizes[id], c = trace.costs[id];
    bytes += size;
    cost += c;
    if (lookup(id)) {
      hits++;
      hitBytes += size;
      hitCost += c;
    }
  }
  return {
    trace: trace.name,
    alpha: trace.alpha,
    policy,
    hitRatio: hits / trace.ids.length,
    byteHitRatio: hitBytes / bytes,
    costSaved: hitCost / cost,
  };
}

/** memkit's ResourceCache with the given options (the default policy without any). */
export function memkitPolicy(options: Partial<ResourceCacheOptions<number, number>> = {}): Policy {
  return (trace) => {
    const cache = new ResourceCache<number, number>({ ...options, maxBytes: trace.capacity });
    return (id) => {
      if (cache.get(id) !== undefined) return true;
      cache.set(id, id, { size: trace.sizes[id], cost: trace.costs[id] });
      return false;
    };
  };
}

const lruPolicy: Policy = (trace) => {
  const cache = new LRUCache<number, number>({ maxSize: trace.capacity, sizeCalculation: (id) => trace.sizes[id] });
  return (id) => {
    if (cache.get(id) !== undefined) return true;
    cache.set(id, id);
    return false;
  };
};

// Belady's rule with sizes: admit, then evict the cached objects used furthest in the future (the newcomer
// included) until the bytes fit. With variable sizes this is the usual offline reference, not a strict bound.
const beladyPolicy: Policy = (trace) => {
  const n = trace.ids.length;
  const nextUse = new Float64Array(n);
  const seen = new Map<number, number>();
  for (let r = n - 1; r >= 0; r--) {
    nextUse[r] = seen.get(trace.ids[r]) ?? Infinity;
    seen.set(trace.ids[r], r);
  }
  const cached = new Map<number, number>(); // id → its next use
  const heap: [number, number][] = []; // max-heap of [next use, id], stale entries skipped when popped
  const push = (item: [number, number]) => {
    let i = heap.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent][0] >= heap[i][0]) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  };
  const pop = (): [number, number] => {
    const top = heap[0], last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && heap[l][0] > heap[m][0]) m = l;
        if (r < heap.length && heap[r][0] > heap[m][0]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  };
  let bytes = 0, r = 0;
  return (id) => {
    const next = nextUse[r++];
    const hit = cached.has(id);
    if (!hit) {
      if (trace.sizes[id] > trace.capacity) return false;
      bytes += trace.sizes[id];
    }
    cached.set(id, next);
    push([next, id]);
    while (bytes > trace.capacity) {
      const [use, victim] = pop();
      if (cached.get(victim) !== use) continue; // stale
      cached.delete(victim);
      bytes -= trace.sizes[victim];
    }
    return hit;
  };
};

/** The traces of the study: four kinds × Zipf 0.8, 1.0, 1.2. */
export const STUDY: [TraceKind, number][] = (["uniform", "shifting", "sizes", "sizes+costs"] as TraceKind[])
  .flatMap((kind) => [0.8, 1.0, 1.2].map((alpha): [TraceKind, number] => [kind, alpha]));

/** Runs every policy on every trace of the study. */
export function cacheStudy(
  traces: [TraceKind, number][] = STUDY,
  policies: [string, Policy][] = [
    ["memkit ResourceCache (default)", memkitPolicy()],
    ["lru-cache", lruPolicy],
    ["Belady (offline)", beladyPolicy],
  ],
  traceOptions?: Parameters<typeof makeTrace>[2],
): CacheResult[] {
  const results: CacheResult[] = [];
  for (const [kind, alpha] of traces) {
    const trace = makeTrace(kind, alpha, traceOptions);
    for (const [name, policy] of policies) results.push(score(trace, name, policy));
  }
  return results;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** The study as a Markdown table, with memkit's figures over lru-cache's as ratios. */
export function cacheTable(results: CacheResult[] = cacheStudy()): string {
  const lines = [
    "| trace | Zipf α | policy | hit ratio | byte hit ratio | cost saved |",
    "|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.trace} | ${r.alpha.toFixed(1)} | ${r.policy} | ${pct(r.hitRatio)} | ${pct(r.byteHitRatio)} | ${
        pct(r.costSaved)
      } |`,
    );
  }
  lines.push(
    "",
    "| trace | Zipf α | memkit / lru-cache: hit ratio | byte hit ratio | cost saved |",
    "|---|---|---|---|---|",
  );
  for (let i = 0; i < results.length; i++) {
    const ours = results[i],
      lru = results.find((r) => r.trace === ours.trace && r.alpha === ours.alpha && r.policy === "lru-cache");
    if (!ours.policy.startsWith("memkit") || lru === undefined) continue;
    const ratio = (a: number, b: number) => (b === 0 ? "—" : `${(a / b).toFixed(2)}×`);
    lines.push(
      `| ${ours.trace} | ${ours.alpha.toFixed(1)} | ${ratio(ours.hitRatio, lru.hitRatio)} | ${
        ratio(ours.byteHitRatio, lru.byteHitRatio)
      } | ${ratio(ours.costSaved, lru.costSaved)} |`,
    );
  }
  return lines.join("\n");
}

/** Prints the study (for bench/mod.ts --full). */
export function cacheReport(): void {
  console.log(
    "\nResourceCache hit-ratio study: 20,000 objects, 200,000 requests per trace, cache = 5 % of all objects' bytes " +
      "(seeded; counts, not timings)\n",
  );
  console.log(cacheTable());
}

if (import.meta.main) cacheReport();
