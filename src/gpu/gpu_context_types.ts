/**
 * The shapes of {@linkcode GpuContext}: its options, a buffer's descriptor
 * and record, and the GPU memory it accounts for.
 *
 * @module
 */
import type { MemoryBudget } from "../budget/memory_budget.ts";
import type { GpuUsageCategory, GpuUsageStats } from "./_gpu_usage.ts";

/**
 * GPU memory a {@linkcode GpuContext} accounts for: live buffers created
 * through it (`bytes`, `buffers`, by usage category), the peak, and counts.
 *
 * @example
 * ```ts
 * import { type GpuMemoryStats } from "@memkit/memkit";
 *
 * function summary(stats: GpuMemoryStats): string {
 *   return `${stats.buffers} buffers, ${stats.bytes} bytes (${stats.byUsage.vertex.bytes} in vertex buffers)`;
 * }
 * ```
 */
export interface GpuMemoryStats {
  /** Bytes of the live buffers. */
  bytes: number;
  /** Live buffers. */
  buffers: number;
  /** The most `bytes` ever was. */
  peakBytes: number;
  /** `bytes` and `buffers` by usage category. */
  byUsage: Record<GpuUsageCategory, GpuUsageStats>;
  /** Buffers created since the context began. */
  created: number;
  /** Buffers destroyed since the context began. */
  destroyed: number;
  /** Buffers that were live when the device was lost (no longer counted in `bytes`). */
  lostBuffers: number;
  /** Whether the device was lost (or the context disposed). */
  lost: boolean;
}

/**
 * A live buffer as {@linkcode GpuContext.liveBuffers} lists it.
 *
 * @example
 * ```ts
 * import { type GpuBufferInfo } from "@memkit/memkit";
 *
 * const describe = (info: GpuBufferInfo) => `${info.label}: ${info.size} B ${info.usage}`;
 * ```
 */
export interface GpuBufferInfo {
  /** The label it was created with ("" for none). */
  label: string;
  /** Its size in bytes. */
  size: number;
  /** Usage flag names, e.g. "COPY_DST|VERTEX". */
  usage: string;
  /** Its accounting category. */
  category: GpuUsageCategory;
  /** Where it was created, when allocation sites are traced (`MEMKIT_TRACE_FRAMES` or initAllocator). */
  site: string | null;
}

/**
 * What {@linkcode GpuContext.createBuffer} takes: WebGPU's buffer descriptor.
 *
 * @example
 * ```ts
 * import { GpuBufferUsage, type GpuBufferDescriptor } from "@memkit/memkit";
 *
 * const vertices: GpuBufferDescriptor = { size: 4096, usage: GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST };
 * ```
 */
export interface GpuBufferDescriptor {
  /** Bytes (a multiple of 4 when mapped at creation), at most the device's maxBufferSize. */
  size: number;
  /** Usage flags, from {@linkcode GpuBufferUsage}. */
  usage: number;
  /** Names the buffer in stats and the leak report. */
  label?: string;
  /** Creates it mapped, to be filled through getMappedRange() before unmap(). */
  mappedAtCreation?: boolean;
}

/**
 * Options of {@linkcode requestGpu} and {@linkcode GpuContext.fromDevice}.
 *
 * @example
 * ```ts
 * import { MemoryBudget, type GpuContextOptions } from "@memkit/memkit";
 *
 * const budget = new MemoryBudget({ physicalBytes: 512 << 20, categories: ["gpu", "textures"] });
 * const options: GpuContextOptions = { label: "renderer", budget };
 * ```
 */
export interface GpuContextOptions {
  /** Names the device in stats and the leak report. */
  label?: string;
  /** Charges every buffer to this budget's "gpu" category; a refused request throws "limit-exceeded". */
  budget?: MemoryBudget;
  /** The priority of those budget requests (default BudgetPriority.Normal). */
  budgetPriority?: number;
  /** requestGpu only: the adapter's power preference. */
  powerPreference?: "low-power" | "high-performance";
  /** requestGpu only: features the device must have (each must be offered by the adapter). */
  requiredFeatures?: string[];
}
