// The allocator chunks come from when an allocator is given no `backing`: one
// SystemAllocator for the whole thread, created on first use.
import type { Allocator } from "../base/allocator.ts";
import { createUnnamedOwner } from "../base/_native_census.ts";
import { SystemAllocator } from "./system_allocator.ts";

let shared: SystemAllocator | null = null;

/** The thread's shared SystemAllocator. */
export function defaultBacking(): Allocator {
  // (Made outside any name pending for the allocator that first needs it: a RegionAllocator's heap, a ResourceHeap.)
  shared ??= createUnnamedOwner(() => new SystemAllocator());
  return shared;
}
