// What a GPU buffer is for, as memkit accounts GPU memory: the category of a
// usage mask (its first matching flag, in a fixed order) and the flag names
// messages quote.
import { Usage } from "./_webgpu.ts";

/** What a buffer is for, as GPU memory is accounted (its first matching usage flag, in this order). */
export type GpuUsageCategory =
  | "readback"
  | "upload"
  | "uniform"
  | "vertex"
  | "index"
  | "storage"
  | "indirect"
  | "other";

/** Every category, in the order of {@linkcode usageCategory}. */
export const CATEGORIES: readonly GpuUsageCategory[] = [
  "readback",
  "upload",
  "uniform",
  "vertex",
  "index",
  "storage",
  "indirect",
  "other",
];

/** The accounting category of a usage mask. */
export function usageCategory(usage: number): GpuUsageCategory {
  if (usage & Usage.MAP_READ) return "readback";
  if (usage & Usage.MAP_WRITE) return "upload";
  if (usage & Usage.UNIFORM) return "uniform";
  if (usage & Usage.VERTEX) return "vertex";
  if (usage & Usage.INDEX) return "index";
  if (usage & Usage.STORAGE) return "storage";
  if (usage & Usage.INDIRECT) return "indirect";
  return "other";
}

const USAGE_NAMES = Object.entries(Usage) as [string, number][];

/** The names of the flags of a usage mask, e.g. "COPY_DST|VERTEX". */
export function usageNames(usage: number): string {
  return USAGE_NAMES.filter(([, bit]) => usage & bit).map(([name]) => name).join("|");
}

/**
 * Refuses usage flags WebGPU forbids together: MAP_READ combines only with COPY_DST, MAP_WRITE only with COPY_SRC.
 *
 * @throws {TypeError} Naming argument `name` of `op` and the flags it has.
 */
export function checkUsageCombination(usage: number, op: string, name = "usage"): void {
  if ((usage & Usage.MAP_READ) && (usage & ~(Usage.MAP_READ | Usage.COPY_DST))) {
    throw new TypeError(
      `Cannot ${op} as '${name}' may combine MAP_READ only with COPY_DST: current value is ${usageNames(usage)}`,
    );
  }
  if ((usage & Usage.MAP_WRITE) && (usage & ~(Usage.MAP_WRITE | Usage.COPY_SRC))) {
    throw new TypeError(
      `Cannot ${op} as '${name}' may combine MAP_WRITE only with COPY_SRC: current value is ${usageNames(usage)}`,
    );
  }
}

/** Bytes and buffers of one usage category. */
export interface GpuUsageStats {
  /** Bytes of the live buffers of this category. */
  bytes: number;
  /** Live buffers of this category. */
  buffers: number;
}
