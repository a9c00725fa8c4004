/**
 * memkit gives Deno and Bun programs memory that the garbage collector does
 * not own, through one API that runs unchanged on both runtimes. Every block
 * is a plain typed array over native memory, and every view is detached
 * (length 0) when its memory goes back, so no view can reach freed memory.
 *
 * Run Deno with `--allow-ffi` (plus `--allow-read --allow-write --allow-run
 * --allow-env` so memkit can build and cache its C library on first use;
 * without them the kernels fall back to TypeScript). Bun needs nothing.
 *
 * The families, in the order below:
 *
 * - **Runtime and pages**: {@linkcode nativeInfo}, {@linkcode nativeReady}, {@linkcode addressOf},
 *   page and file mappings ({@linkcode mapPages}, {@linkcode mapFile}) with
 *   `protect`, `advise` and `lock`.
 * - **Allocators**: one {@linkcode Allocator} interface and its
 *   implementations: {@linkcode SystemAllocator} (malloc / mmap per block),
 *   {@linkcode Arena} (bump allocation with `using` scopes),
 *   {@linkcode StackAllocator}, {@linkcode PoolAllocator},
 *   {@linkcode BuddyAllocator} and {@linkcode FreeListAllocator} (TLSF, with
 *   relocatable handles and `defragment()`). They chain: each takes its chunks
 *   from a `backing` allocator, and when any allocator in a chain releases
 *   memory, every view below it reads as length 0.
 * - **Leak tracking**: {@linkcode DebugAllocator}, the global allocator
 *   ({@linkcode initAllocator}, {@linkcode malloc}, ...) with its leak check
 *   at exit, testing helpers ({@linkcode leakCheck},
 *   {@linkcode FailingAllocator}) and GC hooks.
 * - **Memory pressure**: {@linkcode readMemoryStatus}, {@linkcode PressureLevel},
 *   {@linkcode PressureMonitor}, PSI triggers and thermal state.
 * - **Arrays and SIMD**: records laid out as C or as WGSL's GPU buffers
 *   ({@linkcode struct}, with C and WGSL declarations), growable
 *   arrays of them ({@linkcode DynamicArray}, {@linkcode SharedDynamicArray}
 *   across Workers), {@linkcode SIMDArray} and the byte kernels of
 *   {@linkcode simd}.
 * - **HAL memory**: pages locked in RAM ({@linkcode LockedPageAllocator}),
 *   guarded, wiped memory for secrets ({@linkcode SecretAllocator}) and named
 *   memory shared with other Workers and processes ({@linkcode openSharedMemory});
 *   one {@linkcode MemoryInterface} over all of them (typed memory with budgets,
 *   requests with fallback and timeouts, statistics, pressure callbacks, pointer
 *   validation) and the {@linkcode RegionAllocator} (vertex, uniform, audio and
 *   texture regions).
 *
 * Errors follow one rule: a wrong type is a `TypeError`, a size, alignment or
 * count out of range a `RangeError`, anything about the state of memory an
 * {@linkcode AllocationError} with a `category`.
 *
 * @example A quick tour
 * ```ts
 * import { Arena, mapPages, nativeInfo, PoolAllocator, simd, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * console.log(nativeInfo().simd); // "avx2", "neon", ... or "js"
 *
 * using system = new SystemAllocator();
 * const samples = system.array(Float64Array, 1024, 64); // 64-byte aligned
 * samples.fill(1.5);
 * system.free(samples); // samples.length is now 0: no dangling view
 *
 * // Chains: a pool draws its chunks from an arena; the arena's reset reaches the pool's views.
 * const arena = new Arena({ capacity: 1 << 20 });
 * const pool = new PoolAllocator({ blockSize: 64, backing: arena });
 * const node = pool.alloc(64);
 * arena.reset();
 * assert.equal(node.length, 0);
 * arena.dispose();
 *
 * using pages = mapPages(1 << 20); // unmapped at the end of the scope
 * simd.fill(pages.bytes, 0xff);
 * assert.equal(simd.compare(pages.bytes, pages.bytes), -1);
 * ```
 *
 * @module
 */

// Errors and the allocator interface.
export { AllocationError } from "./src/base/errors.ts";
export type { AllocationErrorCategory, AllocationErrorOptions } from "./src/base/errors.ts";
export type {
  Allocator,
  AllocatorKind,
  AllocatorStats,
  TypedArray,
  TypedArrayConstructor,
} from "./src/base/allocator.ts";

// Runtime and pages.
export { addressOf, nativeInfo, nativeReady } from "./src/base/native_info.ts";
export type { NativeInfo } from "./src/base/native_info.ts";
export { mapFile, mapPages } from "./src/pages/mapping.ts";
export type {
  Advice,
  MapFileOptions,
  MapPagesOptions,
  Mapping,
  MappingWindow,
  Protection,
} from "./src/pages/mapping.ts";

// Allocators.
export { fragmentation } from "./src/alloc/fragmentation.ts";
export { SystemAllocator } from "./src/alloc/system_allocator.ts";
export type { SystemAllocatorOptions } from "./src/alloc/system_allocator.ts";
export { Arena } from "./src/alloc/arena.ts";
export { workerArena } from "./src/alloc/worker_arena.ts";
export type {
  ArenaAlignment,
  ArenaGrowth,
  ArenaObserver,
  ArenaOptions,
  ArenaResetMode,
  ArenaScope,
  ArenaScopeStats,
  ArenaStats,
} from "./src/alloc/arena_types.ts";
export { StackAllocator } from "./src/alloc/stack_allocator.ts";
export type { StackAllocatorOptions, StackMarker } from "./src/alloc/stack_allocator.ts";
export { PoolAllocator } from "./src/alloc/pool_allocator.ts";
export type { PoolAllocatorOptions } from "./src/alloc/pool_allocator.ts";
export { BuddyAllocator } from "./src/alloc/buddy_allocator.ts";
export type { BuddyAllocatorOptions } from "./src/alloc/buddy_allocator.ts";
export { FreeListAllocator } from "./src/alloc/free_list_allocator.ts";
export type { DefragReport, FreeListAllocatorOptions, Handle } from "./src/alloc/free_list_types.ts";

// Leak tracking.
export { DebugAllocator } from "./src/debug/debug_allocator.ts";
export type { DebugAllocatorOptions, LeakRecord } from "./src/debug/debug_allocator.ts";
export {
  cFree,
  checkForLeaks,
  cRealloc,
  deinit,
  getAllocator,
  getMemStats,
  initAllocator,
  malloc,
  printMemStats,
} from "./src/debug/global_allocator.ts";
export type { GlobalAllocatorConfig, MemStats } from "./src/debug/global_allocator.ts";
export { FailingAllocator, leakCheck } from "./src/debug/testing.ts";
export type { FailingAllocatorOptions } from "./src/debug/testing.ts";
export { gcHint, onGC } from "./src/debug/gc_hooks.ts";

// Memory pressure.
export { readMemoryStatus } from "./src/pressure/memory_status.ts";
export type { MemoryStatus, PsiAverages } from "./src/pressure/memory_status.ts";
export { PressureLevel, pressureLevel } from "./src/pressure/pressure_level.ts";
export type { PressureLevelValue, PressureThresholds } from "./src/pressure/pressure_level.ts";
export { PressureMonitor } from "./src/pressure/pressure_monitor.ts";
export type { PressureListener, PressureMonitorOptions } from "./src/pressure/pressure_monitor.ts";
export { PsiTrigger } from "./src/pressure/psi_trigger.ts";
export type { PsiTriggerOptions } from "./src/pressure/psi_trigger.ts";
export { readThermalState } from "./src/pressure/thermal_state.ts";
export type { ThermalState } from "./src/pressure/thermal_state.ts";

// Arrays and SIMD.
export { struct } from "./src/arrays/struct.ts";
export type {
  FieldType,
  FieldValueOf,
  LayoutRules,
  RecordOf,
  StructField,
  StructFieldType,
  StructLayout,
  StructOptions,
} from "./src/arrays/struct.ts";
export { DynamicArray } from "./src/arrays/dynamic_array.ts";
export type {
  DynamicArrayMetrics,
  DynamicArrayOptions,
  FieldValue,
  ScalarType,
} from "./src/arrays/dynamic_array_types.ts";
export { SIMDArray } from "./src/arrays/simd_array.ts";
export type { SIMDType } from "./src/arrays/simd_array.ts";
export { SharedDynamicArray } from "./src/arrays/shared_dynamic_array.ts";
export type { SharedArrayHold, SharedDynamicArrayOptions } from "./src/arrays/shared_dynamic_array.ts";
export { audioArray, uniformArray, vertexArray } from "./src/arrays/array_factories.ts";
export { simd } from "./src/arrays/simd.ts";
export type { Simd } from "./src/arrays/simd.ts";

// HAL memory: the native kinds (pages locked in RAM, secrets, named shared memory).
export { LockedPageAllocator } from "./src/hal/locked_page_allocator.ts";
export type { LockedPageAllocatorOptions } from "./src/hal/locked_page_allocator.ts";
export { SecretAllocator } from "./src/hal/secret_allocator.ts";
export { openSharedMemory } from "./src/hal/shared_memory.ts";
export type { OpenSharedMemoryOptions, SharedMemory } from "./src/hal/shared_memory.ts";

// HAL memory: the memory interface (typed memory, budgets, pressure) and the region allocator.
export { MemoryInterface } from "./src/hal/memory_interface.ts";
export { MemoryAlignment } from "./src/hal/memory_types.ts";
export type {
  AllocationRequest,
  MemoryAllocation,
  MemoryFlag,
  MemoryInterfaceOptions,
  MemoryPressureCallback,
  MemoryPressureInfo,
  MemoryStats,
  MemoryType,
  PlatformMemory,
} from "./src/hal/memory_types.ts";
export type {
  InterfaceAllocator,
  InterfaceArena,
  InterfaceBuddyAllocator,
  InterfaceFreeListAllocator,
  InterfaceStackAllocator,
  InterfaceSystemAllocator,
} from "./src/hal/interface_allocators.ts";
export { RegionAllocator } from "./src/hal/region_allocator.ts";
export type { MemoryReport, RegionAllocatorOptions, RegionName, RegionReport } from "./src/hal/region_allocator.ts";

// Budgets and caches that respond to memory pressure (as iOS apps respond to it).
export { BudgetPriority, MemoryBudget } from "./src/budget/memory_budget.ts";
export type {
  BudgetCategoryStats,
  MemoryBudgetOptions,
  MemoryBudgetStats,
  Reclaimer,
} from "./src/budget/memory_budget.ts";
export { BudgetToken } from "./src/budget/budget_token.ts";
export { ResourceCache } from "./src/budget/resource_cache.ts";
export type {
  DisposeReason,
  Generated,
  Prediction,
  PrefetchReport,
  ResourceCacheOptions,
  ResourceCacheStats,
} from "./src/budget/resource_cache.ts";
export type { EvictionWeights } from "./src/budget/_eviction_score.ts";
export { respondToPressure } from "./src/budget/respond_to_pressure.ts";
export type { PressureResponse, PressureResponseStats, PressureTargets } from "./src/budget/respond_to_pressure.ts";

// Reclaimable memory, frame pools and resource heaps.
export { PurgeableBuffer } from "./src/budget/purgeable_buffer.ts";
export type { PurgeableBufferOptions, PurgeableState } from "./src/budget/purgeable_buffer.ts";
export { FramePool } from "./src/budget/frame_pool.ts";
export type {
  FormatPoolStats,
  Frame,
  FrameFormat,
  FramePoolOptions,
  FramePoolStats,
  FrameSet,
} from "./src/budget/frame_pool.ts";
export { ResourceHeap } from "./src/budget/resource_heap.ts";

// GPU memory through WebGPU (Deno's own; Bun through bun-webgpu).
export { GpuBufferUsage, GpuContext, requestGpu } from "./src/gpu/gpu_context.ts";
export type {
  GpuBufferDescriptor,
  GpuBufferInfo,
  GpuContextOptions,
  GpuMemoryStats,
  GpuUsageCategory,
  GpuUsageStats,
} from "./src/gpu/gpu_context.ts";
export { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "./src/gpu/gpu_transfer.ts";
export type { GpuElementRange, GpuUploadSource, GpuWriteOptions } from "./src/gpu/gpu_transfer.ts";
export { GpuBufferPool } from "./src/gpu/gpu_buffer_pool.ts";
export type { GpuBufferPoolOptions, GpuBufferPoolStats } from "./src/gpu/gpu_buffer_pool.ts";
export { GpuStagingRing } from "./src/gpu/gpu_staging_ring.ts";
export type { GpuStagingRingOptions, GpuStagingRingStats } from "./src/gpu/gpu_staging_ring.ts";
export { VirtualAllocator } from "./src/gpu/virtual_allocator.ts";
export type {
  VirtualAllocation,
  VirtualAllocatorOptions,
  VirtualAllocatorStats,
  VirtualStrategy,
} from "./src/gpu/virtual_allocator.ts";
export { GpuSuballocator } from "./src/gpu/gpu_suballocator.ts";
export type { GpuSlice, GpuSuballocatorOptions, GpuSuballocatorStats } from "./src/gpu/gpu_suballocator.ts";
export { GpuUniformRing } from "./src/gpu/gpu_uniform_ring.ts";
export type { GpuUniformRingOptions } from "./src/gpu/gpu_uniform_ring.ts";
export type {
  HeapResource,
  ResourceHeapOptions,
  ResourceHeapStats,
  ResourceOptions,
} from "./src/budget/resource_heap.ts";

// The memory profiler: snapshots, leak suspicion, allocator dumps.
export { MemoryProfiler } from "./src/profiler/memory_profiler.ts";
export type { MemoryProfilerOptions } from "./src/profiler/memory_profiler.ts";
export type { MemorySnapshot } from "./src/profiler/snapshot.ts";
export type {
  BudgetSource,
  MemoryStatsSource,
  MetricsSource,
  ProfilerSource,
  SharedArraySource,
} from "./src/profiler/_sources.ts";
export { leakSuspicion } from "./src/profiler/leak_suspicion.ts";
export type { LeakSuspect, LeakSuspicion, LeakSuspicionOptions } from "./src/profiler/leak_suspicion.ts";
export type { AllocatorDump, DumpBlock, DumpChunk } from "./src/alloc/dump.ts";
export { heatmap } from "./src/profiler/heatmap.ts";
export type { HeatmapOptions } from "./src/profiler/heatmap.ts";
export { blockMap } from "./src/profiler/block_map.ts";
export type { BlockMapOptions } from "./src/profiler/block_map.ts";
export { serveLiveView } from "./src/profiler/live_view.ts";
export type { LiveView, LiveViewOptions } from "./src/profiler/live_view.ts";
