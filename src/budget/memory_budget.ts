/**
 * A memory budget split into categories, whose total follows memory pressure
 * and thermal state (a budget manager as iOS apps keep one).
 *
 * @module
 */
import { checkSize, describe, MAX_BLOCK_SIZE, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { readMemoryStatus } from "../pressure/memory_status.ts";
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import { isPressureMonitor, type PressureMonitor } from "../pressure/pressure_monitor.ts";
import { readThermalState, type ThermalState } from "../pressure/thermal_state.ts";
import { type BudgetToken, grantToken } from "./budget_token.ts";
import { type DesignPressure, designPressure, followLevels } from "./_follow_levels.ts";

/**
 * Named priorities for {@linkcode MemoryBudget.request} and
 * {@linkcode MemoryBudget.addReclaimer}: any integer from 0 to 100 works.
 *
 * @example
 * ```ts
 * import { BudgetPriority, MemoryBudget } from "@memkit/memkit";
 *
 * const budget = new MemoryBudget({ physicalBytes: 1 << 20 });
 * budget.request(1024, "ui", BudgetPriority.High)?.release();
 * ```
 */
export const BudgetPriority = { Background: 0, Low: 25, Normal: 50, High: 75, Critical: 100 } as const;

/**
 * Options of {@linkcode MemoryBudget}.
 *
 * @example
 * ```ts
 * import { MemoryBudget, type MemoryBudgetOptions } from "@memkit/memkit";
 *
 * // A fixed 256 MiB budget that drops to 2/3 at warning and 1/2 at critical.
 * const options: MemoryBudgetOptions = {
 *   physicalBytes: 256 * 2 ** 20,
 *   fractions: { normal: 1, warning: 2 / 3, critical: 1 / 2 },
 *   categories: ["videoFrames", "cacheTextures"],
 * };
 * const budget = new MemoryBudget(options);
 * console.log(budget.totalBytes); // 268435456
 * ```
 */
export interface MemoryBudgetOptions {
  /**
   * The memory the fractions apply to. Without it, the real limit the process runs under: the cgroup limit
   * (`readMemoryStatus().limitBytes`) when there is one and it is below physical memory, else physical memory.
   * @default {the real limit the process runs under}
   */
  physicalBytes?: number;
  /**
   * Share of `physicalBytes` the total may use at each pressure state.
   * @default { normal: 1/2, warning: 1/3, critical: 1/4 }
   */
  fractions?: { normal?: number; warning?: number; critical?: number };
  /**
   * How much thermal state takes off the total (thermal `critical` goes to `minimumBytes`).
   * @default { fair: 0.1, serious: 0.3 }
   */
  thermalReductions?: { fair?: number; serious?: number };
  /**
   * The total never goes below this (and thermal `critical` sets it); at most the normal total
   * (`physicalBytes × fractions.normal`).
   * @default {physicalBytes / 8, at most the normal total}
   */
  minimumBytes?: number;
  /** The categories `request` accepts; without them any non-empty name is a category. */
  categories?: string[];
  /** Follow this monitor: every level change (falls too) calls {@linkcode MemoryBudget.adaptToPressure}. */
  pressure?: PressureMonitor;
}

/**
 * Frees memory for the budget when a request does not fit: it is asked for
 * `bytesWanted` and returns what it freed (information only: the budget sees
 * what was freed through released tokens).
 *
 * @example
 * ```ts
 * import type { Reclaimer } from "@memkit/memkit";
 *
 * const dropNothing: Reclaimer = (_bytesWanted) => 0;
 * ```
 */
export type Reclaimer = (bytesWanted: number) => number;

/**
 * Per-category counts of {@linkcode MemoryBudgetStats}.
 *
 * @example
 * ```ts
 * import { MemoryBudget, type BudgetCategoryStats } from "@memkit/memkit";
 *
 * const budget = new MemoryBudget({ physicalBytes: 1 << 20 });
 * budget.request(100, "ui");
 * const ui: BudgetCategoryStats = budget.stats().categories.ui;
 * console.log(ui.usedBytes); // 100
 * ```
 */
export interface BudgetCategoryStats {
  /** Bytes held by live tokens. */
  usedBytes: number;
  /** The most `usedBytes` ever was. */
  peakBytes: number;
  /** Live tokens. */
  tokens: number;
  /** Requests granted. */
  granted: number;
  /** Requests refused (null returned). */
  refused: number;
}

/**
 * What {@linkcode MemoryBudget.stats} returns.
 *
 * @example
 * ```ts
 * import { MemoryBudget, type MemoryBudgetStats } from "@memkit/memkit";
 *
 * const stats: MemoryBudgetStats = new MemoryBudget({ physicalBytes: 1 << 20 }).stats();
 * console.log(stats.totalBytes, stats.pressure, stats.thermal);
 * ```
 */
export interface MemoryBudgetStats {
  /** The memory the fractions apply to. */
  physicalBytes: number;
  /** The total now (after pressure and thermal state). */
  totalBytes: number;
  /** Bytes held by live tokens. */
  usedBytes: number;
  /** `totalBytes − usedBytes` (0 when the total fell below what is used). */
  availableBytes: number;
  /** The most `usedBytes` ever was. */
  peakBytes: number;
  /** The pressure state the total follows (iOS's three: PressureLevel Medium and High are "warning"). */
  pressure: "normal" | "warning" | "critical";
  /** The thermal state the total follows. */
  thermal: ThermalState;
  /** Calls made to reclaimers. */
  reclaimCalls: number;
  /** Bytes that went back while reclaimers ran (measured, not what they said). */
  reclaimedBytes: number;
  /** Per category. */
  categories: Record<string, BudgetCategoryStats>;
}

const fraction = z.number().gt(0, "must be above 0").max(1, "must be at most 1");
const reduction = z.number().min(0, "must be at least 0").lt(1, "must be below 1");
// One schema per option, each with its own real bounds: a second min() chained onto a shared schema kept the
// first one too, and -1 was then told "at least 0" while 0 was told "at least 1".
const byteCount = (min: number) =>
  z.number().int("must be an integer").min(min, `must be at least ${min}`).max(
    MAX_BLOCK_SIZE,
    `must be at most ${MAX_BLOCK_SIZE}`,
  );
const OptionsSchema = z.object({
  physicalBytes: byteCount(1).optional(),
  fractions: z.object({ normal: fraction.optional(), warning: fraction.optional(), critical: fraction.optional() })
    .strict().optional(),
  thermalReductions: z.object({ fair: reduction.optional(), serious: reduction.optional() }).strict().optional(),
  // Its maximum is the normal total, checked in the constructor (it depends on the other options).
  minimumBytes: z.number().int("must be an integer").min(0, "must be at least 0").optional(),
  categories: z.array(z.string().min(1, "must not be empty")).min(1, "must name at least one category")
    .refine((names) => new Set(names).size === names.length, "must not repeat a name").optional(),
  // A brand check: a Proxy of a monitor passes instanceof, then fails on its private fields.
  pressure: typeCheck<PressureMonitor>(
    isPressureMonitor,
    "must be a PressureMonitor made by new PressureMonitor (not a Proxy of one)",
  ).optional(),
}).strict();

interface ReclaimerEntry {
  reclaim: Reclaimer;
  priority: number;
  order: number;
}

/** The memory the process may use: its cgroup limit when one binds, else physical memory. */
function realLimit(): number {
  let status;
  try {
    status = readMemoryStatus();
  } catch (error) {
    if (!(error instanceof AllocationError)) throw error;
    throw new AllocationError(
      error.category,
      `${error.message}; or give the budget its total: new MemoryBudget({ physicalBytes })`,
      { cause: error, call: error.call, errno: error.errno },
    );
  }
  return status.limitBytes !== null && status.limitBytes < status.totalBytes ? status.limitBytes : status.totalBytes;
}

function checkPriority(value: unknown, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as 'priority' must be a number: current value is ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 0 || value > 100) {
    throw new RangeError(
      `Cannot ${op} as 'priority' must be an integer from 0 to 100: current value is ${describe(value)}`,
    );
  }
  return value;
}

let isMemoryBudgetBrand: (value: unknown) => boolean;

/**
 * Whether `value` is a MemoryBudget made by its constructor: a brand check, so a Proxy of one or an object
 * made from its prototype (which pass `instanceof`) is not. memkit checks its options with it; not exported
 * from mod.ts.
 */
export function isMemoryBudget(value: unknown): value is MemoryBudget {
  return isMemoryBudgetBrand(value);
}

/**
 * A memory budget in user-defined categories. {@linkcode MemoryBudget.request}
 * grants bytes as a {@linkcode BudgetToken} or returns `null`; before refusing,
 * it asks the reclaimers registered below the request's priority (lowest
 * first) to free the difference, and tries again. The budget does not
 * allocate: it is the book the allocating code consults, so caches, frame
 * pools and heaps can give way to more important work.
 *
 * The total is a share of the real limit the process runs under (its cgroup
 * limit, else physical memory): 1/2 at normal pressure, 1/3 at warning
 * (PressureLevel Medium and High), 1/4 at critical; thermal state takes 10 %
 * off at `fair`, 30 % at `serious`, and `critical` drops it to the minimum.
 * When the total falls below what is in use, reclaimers are asked (all of
 * them, lowest priority first) to free the excess.
 *
 * @example A decoder gives way to the UI
 * ```ts
 * import { BudgetPriority, MemoryBudget } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const budget = new MemoryBudget({ physicalBytes: 2000, fractions: { normal: 0.5 }, minimumBytes: 0 });
 * const thumbnails = [budget.request(400, "cache", BudgetPriority.Low)!, budget.request(400, "cache", BudgetPriority.Low)!];
 * budget.addReclaimer((wanted) => {
 *   let freed = 0;
 *   while (freed < wanted && thumbnails.length > 0) {
 *     const token = thumbnails.pop()!;
 *     freed += token.size;
 *     token.release();
 *   }
 *   return freed;
 * }, { priority: BudgetPriority.Low });
 * const ui = budget.request(600, "ui", BudgetPriority.High); // 1000 total, 800 used: the cache gives 400
 * assert.ok(ui !== null);
 * assert.equal(thumbnails.length, 1);
 * assert.equal(budget.request(600, "cache", BudgetPriority.Low), null); // no one below Low to ask
 * ```
 */
export class MemoryBudget implements Disposable {
  readonly #physical: number;
  readonly #fractions: Record<DesignPressure, number>;
  readonly #reductions: { fair: number; serious: number };
  readonly #minimum: number;
  readonly #declared: ReadonlySet<string> | null;
  readonly #categories = new Map<string, BudgetCategoryStats>();
  readonly #reclaimers: ReclaimerEntry[] = [];
  #order = 0;
  #pressure: DesignPressure = "normal";
  #thermal: ThermalState = "nominal";
  #total: number;
  #used = 0;
  #peak = 0;
  #reclaimCalls = 0;
  #reclaimedBytes = 0;
  #reclaiming = false;
  // The total was lowered while reclaimers ran (see #reclaim).
  #lowered = false;
  #unfollow: (() => void) | null = null;

  /**
   * Creates a budget at normal pressure and nominal thermal state (or the
   * level of the `pressure` monitor given).
   *
   * @param options Physical size, fractions, thermal reductions, minimum, categories, a monitor to follow.
   * @throws {TypeError} For mistyped or unknown options.
   * @throws {RangeError} For out-of-range numbers, or a minimum above the normal total.
   * @throws {AllocationError} "platform" without `physicalBytes` where no memory status can be read.
   */
  constructor(options?: MemoryBudgetOptions) {
    const op = "create MemoryBudget";
    const parsed = parseOptions(OptionsSchema, options, op);
    this.#physical = parsed.physicalBytes ?? realLimit();
    this.#fractions = {
      normal: parsed.fractions?.normal ?? 1 / 2,
      warning: parsed.fractions?.warning ?? 1 / 3,
      critical: parsed.fractions?.critical ?? 1 / 4,
    };
    const f = this.#fractions;
    if (!(f.normal >= f.warning && f.warning >= f.critical)) {
      throw new RangeError(
        `Cannot ${op} as 'fractions' must not grow with pressure (normal ≥ warning ≥ critical): current value is ` +
          `${f.normal}, ${f.warning}, ${f.critical}`,
      );
    }
    this.#reductions = {
      fair: parsed.thermalReductions?.fair ?? 0.1,
      serious: parsed.thermalReductions?.serious ?? 0.3,
    };
    const normalTotal = Math.floor(this.#physical * f.normal);
    if (parsed.minimumBytes !== undefined && parsed.minimumBytes > normalTotal) {
      throw new RangeError(
        `Cannot ${op} as 'minimumBytes' must be at most the normal total (${normalTotal} bytes): current value is ` +
          `${parsed.minimumBytes}`,
      );
    }
    this.#minimum = parsed.minimumBytes ?? Math.min(normalTotal, Math.floor(this.#physical / 8));
    this.#declared = parsed.categories ? new Set(parsed.categories) : null;
    for (const name of parsed.categories ?? []) this.#category(name);
    this.#total = this.#computeTotal();
    if (parsed.pressure) {
      const monitor = parsed.pressure;
      this.adaptToPressure(monitor.level);
      this.#unfollow = followLevels(monitor, (level) => this.adaptToPressure(level));
    }
  }

  /** The total now, in bytes. */
  get totalBytes(): number {
    return this.#total;
  }

  /** Bytes held by live tokens. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Bytes a request may still get without reclaiming (0 when the total fell below what is used). */
  get availableBytes(): number {
    return Math.max(0, this.#total - this.#used);
  }

  /**
   * Grants `size` bytes in `category`, or returns null. When they do not fit,
   * the reclaimers registered strictly below `priority` are asked, lowest
   * priority first, for what is missing, until the request fits; a request
   * larger than the whole total is refused without asking anyone. A
   * reclaimer that throws is skipped (its error is rethrown in a microtask);
   * one removed by an earlier reclaimer is not asked. A request made by a
   * reclaimer while it runs is answered without asking reclaimers again.
   *
   * @param size Bytes, an integer from 0 to 2^47.
   * @param category A non-empty name; one of `categories` when they were declared.
   * @param priority An integer from 0 to 100 ({@linkcode BudgetPriority}); `BudgetPriority.Normal` when left out.
   * @returns A token holding the bytes until released, or null.
   * @throws {TypeError} For a size or priority that is not a number, a category that is not a string or not declared.
   * @throws {RangeError} For a negative, fractional, NaN or too large size, or a priority outside 0..100.
   *
   * @example
   * ```ts
   * import { MemoryBudget } from "@memkit/memkit";
   *
   * const budget = new MemoryBudget({ physicalBytes: 1 << 20, categories: ["effects"] });
   * const token = budget.request(256 * 1024, "effects");
   * if (token === null) console.log("skip the effect this frame");
   * token?.release();
   * ```
   */
  request(size: number, category: string, priority: number = BudgetPriority.Normal): BudgetToken | null {
    const op = "request budget";
    checkSize(size, op);
    this.#checkCategory(category, op);
    checkPriority(priority, op);
    const stats = this.#category(category);
    if (size > this.#total) {
      stats.refused++;
      return null;
    }
    if (this.#used + size > this.#total && !this.#reclaiming) {
      this.#reclaim(() => this.#used + size - this.#total, (entry) => entry.priority < priority);
    }
    if (this.#used + size > this.#total) {
      stats.refused++;
      return null;
    }
    this.#used += size;
    this.#peak = Math.max(this.#peak, this.#used);
    stats.usedBytes += size;
    stats.peakBytes = Math.max(stats.peakBytes, stats.usedBytes);
    stats.tokens++;
    stats.granted++;
    // The budget takes back what it granted, from its own record, never from the token's properties.
    return grantToken(size, category, priority, () => this.#release(size, stats));
  }

  /**
   * Whether {@linkcode MemoryBudget.request} accepts `category`: any non-empty
   * string without declared categories, else one of them.
   *
   * @example
   * ```ts
   * import { MemoryBudget } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const budget = new MemoryBudget({ physicalBytes: 1 << 20, categories: ["ui"] });
   * assert.deepEqual([budget.accepts("ui"), budget.accepts("effects")], [true, false]);
   * ```
   */
  accepts(category: string): boolean {
    return typeof category === "string" && category.length > 0 &&
      (this.#declared === null || this.#declared.has(category));
  }

  /**
   * Registers a function that frees memory when a request of a higher
   * priority does not fit, or when the total falls below what is used.
   *
   * @param reclaim Called with the bytes wanted; returns the bytes it freed.
   * @param options `priority` (0..100, default {@linkcode BudgetPriority.Low}): asked only by requests above it.
   * @returns A function that unregisters it.
   * @throws {TypeError} For a `reclaim` that is not a function or mistyped options.
   * @throws {RangeError} For a priority outside 0..100.
   *
   * @example
   * ```ts
   * import { BudgetPriority, MemoryBudget } from "@memkit/memkit";
   *
   * const budget = new MemoryBudget({ physicalBytes: 1 << 20 });
   * const remove = budget.addReclaimer((wanted) => 0, { priority: BudgetPriority.Background });
   * remove();
   * ```
   */
  addReclaimer(reclaim: Reclaimer, options?: { priority?: number }): () => void {
    const op = "add a reclaimer";
    if (typeof reclaim !== "function") {
      throw new TypeError(`Cannot ${op} as 'reclaim' must be a function: current value is ${describe(reclaim)}`);
    }
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      throw new TypeError(`Cannot ${op} as 'options' must be an object: current value is ${describe(options)}`);
    }
    const priority = checkPriority(options?.priority ?? BudgetPriority.Low, op);
    const entry: ReclaimerEntry = { reclaim, priority, order: this.#order++ };
    this.#reclaimers.push(entry);
    this.#reclaimers.sort((a, b) => a.priority - b.priority || a.order - b.order);
    return () => {
      const at = this.#reclaimers.indexOf(entry);
      if (at >= 0) this.#reclaimers.splice(at, 1);
    };
  }

  /**
   * Sets the total for a memory pressure level: None and Low → the normal
   * fraction, Medium and High → warning, Critical → critical. When the total
   * falls below what is used, every reclaimer is asked for the excess (when
   * called from a reclaimer's code, once the reclaimers being asked are done).
   *
   * @param level A PressureLevel (0..4).
   * @returns The new total.
   * @throws {TypeError} For a level that is not a number.
   * @throws {RangeError} For a level that is not one of PressureLevel's.
   *
   * @example
   * ```ts
   * import { MemoryBudget, PressureLevel } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const budget = new MemoryBudget({ physicalBytes: 1200 });
   * assert.equal(budget.adaptToPressure(PressureLevel.High), 400); // 1/3
   * assert.equal(budget.adaptToPressure(PressureLevel.None), 600); // 1/2
   * ```
   */
  adaptToPressure(level: PressureLevelValue): number {
    const op = "adapt the budget to pressure";
    if (typeof level !== "number") {
      throw new TypeError(
        `Cannot ${op} as 'level' must be a PressureLevel number: current value is ${describe(level)}`,
      );
    }
    if (!Number.isInteger(level) || level < PressureLevel.None || level > PressureLevel.Critical) {
      throw new RangeError(
        `Cannot ${op} as 'level' must be a PressureLevel from None (0) to Critical (4): current value is ${
          describe(level)
        }`,
      );
    }
    this.#pressure = designPressure(level);
    return this.#retotal();
  }

  /**
   * Sets the total for a thermal state: `fair` takes 10 % off, `serious` 30 %,
   * `critical` drops to the minimum; `nominal` and `unknown` take nothing off.
   * Without an argument, reads the state ({@linkcode readThermalState}).
   *
   * @param state A thermal state; read with `readThermalState()` when left out.
   * @returns The new total.
   * @throws {TypeError} For a state that is not one of ThermalState's.
   *
   * @example
   * ```ts
   * import { MemoryBudget } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const budget = new MemoryBudget({ physicalBytes: 2000, minimumBytes: 100 });
   * assert.equal(budget.adaptToThermalState("serious"), 700); // 1000 − 30 %
   * assert.equal(budget.adaptToThermalState("critical"), 100);
   * ```
   */
  adaptToThermalState(state: ThermalState = readThermalState()): number {
    if (!["nominal", "fair", "serious", "critical", "unknown"].includes(state as string)) {
      throw new TypeError(
        `Cannot adapt the budget to a thermal state as 'state' must be "nominal", "fair", "serious", "critical" or ` +
          `"unknown": current value is ${describe(state)}`,
      );
    }
    this.#thermal = state;
    return this.#retotal();
  }

  /**
   * The memory limit recommended for this device: 40 % of the
   * physical size from 6 GB up, 30 % from 4 GB, else 25 % (decimal GB, as
   * device sizes are quoted).
   *
   * @returns Bytes.
   *
   * @example
   * ```ts
   * import { MemoryBudget } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new MemoryBudget({ physicalBytes: 8e9 }).recommendedLimit(), 3.2e9);
   * assert.equal(new MemoryBudget({ physicalBytes: 2e9 }).recommendedLimit(), 5e8);
   * ```
   */
  recommendedLimit(): number {
    const share = this.#physical >= 6e9 ? 0.4 : this.#physical >= 4e9 ? 0.3 : 0.25;
    return Math.floor(this.#physical * share);
  }

  /**
   * The budget's numbers, per category too.
   *
   * @returns A fresh object.
   *
   * @example
   * ```ts
   * import { MemoryBudget } from "@memkit/memkit";
   *
   * const budget = new MemoryBudget({ physicalBytes: 1 << 20, categories: ["ui"] });
   * console.log(budget.stats().categories.ui.usedBytes); // 0
   * ```
   */
  stats(): MemoryBudgetStats {
    const categories: Record<string, BudgetCategoryStats> = {};
    // Defined, not assigned: a category named "__proto__" is an entry like any other, not the prototype.
    for (const [name, stats] of this.#categories) {
      Object.defineProperty(categories, name, {
        value: { ...stats },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return {
      physicalBytes: this.#physical,
      totalBytes: this.#total,
      usedBytes: this.#used,
      availableBytes: this.availableBytes,
      peakBytes: this.#peak,
      pressure: this.#pressure,
      thermal: this.#thermal,
      reclaimCalls: this.#reclaimCalls,
      reclaimedBytes: this.#reclaimedBytes,
      categories,
    };
  }

  /** Stops following the `pressure` monitor (tokens stay valid). */
  [Symbol.dispose](): void {
    this.#unfollow?.();
    this.#unfollow = null;
  }

  /** "MemoryBudget", so a message naming this object (`Object.prototype.toString`) says what it is. */
  get [Symbol.toStringTag](): string {
    return "MemoryBudget";
  }

  static {
    isMemoryBudgetBrand = (value) => typeof value === "object" && value !== null && #physical in value;
  }

  #computeTotal(): number {
    if (this.#thermal === "critical") return this.#minimum;
    let total = this.#physical * this.#fractions[this.#pressure];
    if (this.#thermal === "fair") total *= 1 - this.#reductions.fair;
    else if (this.#thermal === "serious") total *= 1 - this.#reductions.serious;
    return Math.max(this.#minimum, Math.floor(total));
  }

  #retotal(): number {
    const before = this.#total;
    this.#total = this.#computeTotal();
    if (this.#reclaiming) {
      // Lowered by a reclaimer's code during a pass: the excess is asked for when the pass ends (#reclaim).
      if (this.#total < before) this.#lowered = true;
    } else if (this.#used > this.#total) this.#reclaim(() => this.#used - this.#total, () => true);
    return this.#total;
  }

  // Asks the chosen reclaimers, lowest priority first, until nothing is missing. A reclaimer removed by an
  // earlier one of the same pass is not called. When a reclaimer lowered the total meanwhile (adaptToPressure
  // from its code), every reclaimer is asked for the excess once the pass ends, as a lowered total otherwise
  // does; that follow-up pass is made once (a total lowered again during it waits for the next change).
  #reclaim(missing: () => number, chosen: (entry: ReclaimerEntry) => boolean): void {
    this.#pass(missing, chosen);
    if (this.#lowered) {
      if (this.#used > this.#total) this.#pass(() => this.#used - this.#total, () => true);
      this.#lowered = false;
    }
  }

  #pass(missing: () => number, chosen: (entry: ReclaimerEntry) => boolean): void {
    this.#reclaiming = true;
    this.#lowered = false;
    try {
      for (const entry of [...this.#reclaimers]) {
        const wanted = missing();
        if (wanted <= 0) break;
        if (!chosen(entry) || !this.#reclaimers.includes(entry)) continue;
        const before = this.#used;
        this.#reclaimCalls++;
        try {
          entry.reclaim(wanted);
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
        this.#reclaimedBytes += Math.max(0, before - this.#used);
      }
    } finally {
      this.#reclaiming = false;
    }
  }

  #release(size: number, stats: BudgetCategoryStats): void {
    this.#used -= size;
    stats.usedBytes -= size;
    stats.tokens--;
  }

  #checkCategory(category: unknown, op: string): void {
    if (typeof category !== "string" || category.length === 0) {
      throw new TypeError(
        `Cannot ${op} as 'category' must be a non-empty string: current value is ${describe(category)}`,
      );
    }
    if (this.#declared !== null && !this.#declared.has(category)) {
      throw new TypeError(
        `Cannot ${op} as 'category' must be one of the declared categories (${[...this.#declared].join(", ")}): ` +
          `current value is ${describe(category)}`,
      );
    }
  }

  #category(name: string): BudgetCategoryStats {
    let stats = this.#categories.get(name);
    if (stats === undefined) {
      stats = { usedBytes: 0, peakBytes: 0, tokens: 0, granted: 0, refused: 0 };
      this.#categories.set(name, stats);
    }
    return stats;
  }
}
