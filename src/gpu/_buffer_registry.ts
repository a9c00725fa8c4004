// The identity of the buffers made through GpuContexts: every buffer a
// GpuContext created, kept after it is destroyed (a WeakMap: it never keeps
// one alive), so a destroyed buffer is told apart from an object memkit never
// made. Only buffers found here reach WebGPU: a look-alike object handed to
// bun-webgpu's native side is a segfault, and an own `size` on a real buffer
// would fake the bounds checks.
import type { GpuCensusEntry } from "../base/_gpu_census.ts";
import { describe } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { BudgetToken } from "../budget/budget_token.ts";
import { type GpuUsageCategory, usageNames } from "./_gpu_usage.ts";
import type { GpuContext } from "./gpu_context.ts";
import { followDestroy } from "./_native_destroy.ts";

/** @internal memkit's own record of a buffer: sizes and usages are read from here, never from the object. */
export interface BufferRecord {
  readonly size: number;
  readonly usage: number;
  readonly category: GpuUsageCategory;
  readonly label: string;
  readonly census: GpuCensusEntry;
  readonly token: BudgetToken | null;
  /** "destroyed" through destroyBuffer or dispose; "lost" with its device. */
  state: "live" | "destroyed" | "lost";
}

/** A registered buffer: the context that made it and memkit's record of it. */
export interface RegisteredBuffer {
  readonly context: GpuContext;
  readonly record: BufferRecord;
}

const registry = new WeakMap<object, RegisteredBuffer>();

// The intrinsic GPUBuffer.prototype.mapState getter, captured from the first
// buffer created (an own property on a buffer cannot change what it reads).
let mapStateGetter: ((this: GPUBuffer) => GPUBufferMapState) | null = null;
function captureMapState(buffer: GPUBuffer): void {
  for (let p = Object.getPrototypeOf(buffer); p !== null && mapStateGetter === null; p = Object.getPrototypeOf(p)) {
    const getter = Object.getOwnPropertyDescriptor(p, "mapState")?.get;
    if (getter !== undefined) mapStateGetter = getter as (this: GPUBuffer) => GPUBufferMapState;
  }
}

/** Set by GpuContext: forgets a live buffer of `context` that WebGPU's own destroy() was called on. */
export const destroyedOutside: { forget(context: GpuContext, buffer: GPUBuffer): void } = { forget() {} };

function followed(buffer: object): void {
  const entry = registry.get(buffer);
  if (entry !== undefined && entry.record.state === "live") destroyedOutside.forget(entry.context, buffer as GPUBuffer);
}

/** Registers a buffer `context` just created; its WebGPU destroy() is followed from now on. */
export function registerBuffer(buffer: GPUBuffer, context: GpuContext, record: BufferRecord): void {
  if (mapStateGetter === null) captureMapState(buffer);
  registry.set(buffer, { context, record });
  followDestroy(buffer, followed);
}

/** The registration of `buffer`; a TypeError naming argument `name` when no GpuContext created it. */
export function registeredBuffer(buffer: unknown, op: string, name: string): RegisteredBuffer {
  const entry = typeof buffer === "object" && buffer !== null ? registry.get(buffer) : undefined;
  if (entry === undefined) {
    throw new TypeError(
      `Cannot ${op} as '${name}' must be a GPUBuffer created through a GpuContext (createBuffer, createGpuBufferFrom, ` +
        `a pool, ring or suballocator): current value is ${describe(buffer)}`,
    );
  }
  return entry;
}

/** How messages name a buffer: its label in quotes, or "(unlabelled)". */
export function bufferLabel(record: BufferRecord): string {
  return record.label === "" ? "(unlabelled)" : `"${record.label}"`;
}

/**
 * Checks a registered buffer for use by `op`: live ("use-after-free"), with the usage `flag` (TypeError) and
 * unmapped (TypeError). Nothing of the object itself is read but its intrinsic map state.
 */
export function checkUsable(
  buffer: GPUBuffer,
  record: BufferRecord,
  flag: number,
  flagName: string,
  op: string,
  name: string,
): void {
  const label = bufferLabel(record);
  if (record.state !== "live") {
    throw new AllocationError(
      "use-after-free",
      `Cannot ${op} as buffer ${label} was ${record.state === "lost" ? "lost with its device" : "destroyed"}`,
    );
  }
  if ((record.usage & flag) === 0) {
    throw new TypeError(
      `Cannot ${op} as '${name}' must have the usage ${flagName}: buffer ${label} has ${usageNames(record.usage)}`,
    );
  }
  const state = mapStateGetter === null ? "unmapped" : mapStateGetter.call(buffer);
  if (state !== "unmapped") {
    throw new TypeError(
      `Cannot ${op} as '${name}' must be unmapped: buffer ${label} is ${state} (call unmap() first)`,
    );
  }
}
