/**
 * One call that wires budgets, caches, frame pools and heaps to a pressure
 * monitor with the responses iOS apps give.
 *
 * @module
 */
import { describe, isArrayOrRevoked, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { gcHint } from "../debug/gc_hooks.ts";
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import { isPressureMonitor, type PressureMonitor } from "../pressure/pressure_monitor.ts";
import { type DesignPressure, designPressure, followLevels } from "./_follow_levels.ts";
import { type FramePool, isFramePool } from "./frame_pool.ts";
import { isMemoryBudget, type MemoryBudget } from "./memory_budget.ts";
import { isResourceCache, type ResourceCache } from "./resource_cache.ts";
import { isResourceHeap, type ResourceHeap } from "./resource_heap.ts";

/**
 * What {@linkcode respondToPressure} acts on (every part optional).
 *
 * @example
 * ```ts
 * import { FramePool, MemoryBudget, type PressureTargets, ResourceCache } from "@memkit/memkit";
 *
 * const budget = new MemoryBudget({ physicalBytes: 1 << 30 });
 * const targets: PressureTargets = {
 *   budget,
 *   caches: [new ResourceCache<string, Uint8Array>({ maxBytes: 64 << 20, budget })],
 *   framePools: [new FramePool()],
 * };
 * ```
 */
export interface PressureTargets {
  /** Its total follows every level change ({@linkcode MemoryBudget.adaptToPressure}). */
  budget?: MemoryBudget;
  /** Trimmed by 30 % on entering warning, purged on entering critical. */
  // deno-lint-ignore no-explicit-any
  caches?: ResourceCache<any, any>[];
  /** Their limits follow every level change (`adaptToPressure`: smaller at warning, one set at critical). */
  framePools?: FramePool[];
  /** Compacted (free pages given back) on entering critical. */
  heaps?: ResourceHeap[];
  /**
   * Ask the runtime for a garbage collection on entering critical ({@linkcode gcHint}).
   * @default {true}
   */
  gc?: boolean;
  /**
   * Also re-read the thermal state into the budget at each level change.
   * @default {false}
   */
  thermal?: boolean;
}

/**
 * What the responses did so far ({@linkcode PressureResponse.stats}).
 *
 * @example
 * ```ts
 * import type { PressureResponseStats } from "@memkit/memkit";
 *
 * const log = (s: PressureResponseStats) => console.log(`${s.purgedBytes} cache bytes purged`);
 * ```
 */
export interface PressureResponseStats {
  /** The state now, as iOS names it. */
  state: "normal" | "warning" | "critical";
  /** Times warning was entered (from normal). */
  warnings: number;
  /** Times critical was entered. */
  criticals: number;
  /** Cache bytes freed by the 30 % trims. */
  trimmedBytes: number;
  /** Cache bytes freed by purges. */
  purgedBytes: number;
  /** Frame bytes the pools unmapped. */
  unmappedFrameBytes: number;
  /** Heap bytes compaction gave back. */
  compactedBytes: number;
  /** Collections asked for (and allowed by the runtime). */
  collections: number;
}

/**
 * The link made by {@linkcode respondToPressure}; `stop()` (or `using`) ends it.
 *
 * @example
 * ```ts
 * import { PressureMonitor, respondToPressure } from "@memkit/memkit";
 *
 * using monitor = new PressureMonitor();
 * using response = respondToPressure(monitor, {});
 * console.log(response.stats().state);
 * ```
 */
export interface PressureResponse extends Disposable {
  /** What the responses did so far. */
  stats(): PressureResponseStats;
  /** Stops responding (the targets keep their current limits). A second call does nothing. */
  stop(): void;
  /** Same as `stop()`, named as every other memkit object that ends names it. */
  dispose(): void;
}

// Brand checks, not instanceof: a Proxy of a target (or an object made from its class's prototype) passes
// instanceof, and the response would then fail on its private fields at the first warning, in a microtask.
const instances = <T>(is: (value: unknown) => value is T, name: string) =>
  typeCheck<unknown[]>(Array.isArray, "must be an array").pipe(
    z.array(typeCheck<T>(is, `must hold only ${name} objects made by new ${name} (not Proxies of them)`)),
  ).optional();

const TargetsSchema = z.object({
  budget: typeCheck<MemoryBudget>(
    isMemoryBudget,
    "must be a MemoryBudget made by new MemoryBudget (not a Proxy of one)",
  )
    .optional(),
  caches: instances(isResourceCache, "ResourceCache"),
  framePools: instances(isFramePool, "FramePool"),
  heaps: instances(isResourceHeap, "ResourceHeap"),
  gc: z.boolean().optional(),
  thermal: z.boolean().optional(),
}).strict();

/**
 * Applies the pressure responses iOS apps give whenever `monitor`'s
 * level changes (rises and falls; the monitor must be started, or refreshed
 * by hand). iOS's states map from PressureLevel: None and Low are
 * normal, Medium and High warning, Critical critical.
 * - every change: the budget's total follows the level (1/2, 1/3, 1/4 of the
 *   real limit by default) and each frame pool's limits too;
 * - entering warning: every cache is trimmed by 30 %;
 * - entering critical: every cache is purged, every heap compacted, and a
 *   garbage collection is asked for (`gc: false` skips it).
 *
 * Falling back restores the budget's total and the frame pools' limits;
 * caches refill as they are used. A target that was disposed is skipped;
 * another error thrown by a target is rethrown in a microtask after the
 * others have responded. If the monitor is already above normal, the
 * response for its level runs at once.
 *
 * @param monitor The pressure monitor to follow.
 * @param targets The budget, caches, frame pools and heaps to act on.
 * @returns A handle with the responses' counts; `stop()` ends the link.
 * @throws {TypeError} For a monitor that is not a PressureMonitor, targets that are not an object, targets of the
 *   wrong kind (a Proxy of a memkit object included) or unknown keys.
 *
 * @example A video pipeline that gives way under pressure
 * ```ts
 * import {
 *   FramePool, MemoryBudget, type MemoryStatus, PressureLevel, PressureMonitor, ResourceCache, respondToPressure,
 * } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * // A monitor fed by hand: 1000 bytes of memory, `available` of them free.
 * let available = 900;
 * const status = (): MemoryStatus => ({
 *   totalBytes: 1000, availableBytes: available, limitBytes: null, usedBytes: 1000 - available,
 *   rssBytes: 0, psi: null, source: "linux-meminfo", events: null,
 * });
 * const monitor = new PressureMonitor({ read: status, hysteresis: 1 });
 * const budget = new MemoryBudget({ physicalBytes: 64 << 20, categories: ["thumbnails"] });
 * const thumbnails = new ResourceCache<number, Uint8Array>({ maxBytes: 8 << 20, budget, category: "thumbnails" });
 * for (let i = 0; i < 10; i++) thumbnails.set(i, new Uint8Array(1024), { size: 1024 });
 * using response = respondToPressure(monitor, { budget, caches: [thumbnails], framePools: [new FramePool()] });
 *
 * available = 20; // under 5 % free: Critical
 * monitor.refresh();
 * await new Promise((resolve) => setTimeout(resolve, 0)); // responses run after the change is announced
 * assert.equal(thumbnails.size, 0);
 * assert.equal(budget.totalBytes, 16 << 20); // a quarter of 64 MiB
 * assert.equal(response.stats().criticals, 1);
 * ```
 */
export function respondToPressure(monitor: PressureMonitor, targets: PressureTargets): PressureResponse {
  const op = "respond to pressure";
  if (!isPressureMonitor(monitor)) {
    throw new TypeError(
      `Cannot ${op} as 'monitor' must be a PressureMonitor made by new PressureMonitor (not a Proxy of one): ` +
        `current value is ${describe(monitor)}`,
    );
  }
  if (targets !== undefined && (typeof targets !== "object" || targets === null || isArrayOrRevoked(targets))) {
    throw new TypeError(
      `Cannot ${op} as 'targets' must be an object ({ budget?, caches?, framePools?, heaps?, gc?, thermal? }): ` +
        `current value is ${describe(targets)}`,
    );
  }
  const parsed = parseOptions(TargetsSchema, targets, op);
  const budget = parsed.budget ?? null;
  const caches = [...(parsed.caches ?? [])];
  const pools = [...(parsed.framePools ?? [])];
  const heaps = [...(parsed.heaps ?? [])];
  const gc = parsed.gc ?? true;
  const thermal = parsed.thermal ?? false;
  const stats: PressureResponseStats = {
    state: "normal",
    warnings: 0,
    criticals: 0,
    trimmedBytes: 0,
    purgedBytes: 0,
    unmappedFrameBytes: 0,
    compactedBytes: 0,
    collections: 0,
  };
  const errors: unknown[] = [];
  // One target's failure does not stop the others; a disposed target is skipped.
  const each = <T>(list: T[], act: (target: T) => void) => {
    for (const target of list) {
      try {
        act(target);
      } catch (error) {
        if (!(error instanceof AllocationError && error.category === "use-after-free")) errors.push(error);
      }
    }
  };

  const respond = (level: PressureLevelValue) => {
    const before: DesignPressure = stats.state;
    const now = designPressure(level);
    stats.state = now;
    if (budget !== null) {
      each([budget], (b) => {
        if (thermal) b.adaptToThermalState();
        b.adaptToPressure(level);
      });
    }
    each(pools, (pool) => (stats.unmappedFrameBytes += pool.adaptToPressure(level)));
    if (now === "warning" && before === "normal") {
      stats.warnings++;
      each(caches, (cache) => (stats.trimmedBytes += cache.trim(0.3)));
    }
    if (now === "critical" && before !== "critical") {
      stats.criticals++;
      each(caches, (cache) => (stats.purgedBytes += cache.purge()));
      each(heaps, (heap) => (stats.compactedBytes += heap.compact().releasedBytes));
      if (gc && gcHint()) stats.collections++;
    }
    for (const error of errors.splice(0)) {
      queueMicrotask(() => {
        throw error;
      });
    }
  };

  if (monitor.level > PressureLevel.None) respond(monitor.level);
  let unfollow: (() => void) | null = followLevels(monitor, respond);
  const stop = () => {
    unfollow?.();
    unfollow = null;
  };
  return {
    stats: () => ({ ...stats }),
    stop,
    dispose: stop,
    [Symbol.dispose]: stop,
  };
}
