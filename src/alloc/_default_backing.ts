// The allocator chunks come from when an allocator is given no `backing`: one
// SystemAllocator for the whole thread, created on first use.
import type { Allocator } from "../base/allocator.ts";
import { SystemAllocator } from "./system_allocator.ts";

let shared: SystemAllocator | null = null;

/** The thread's shared SystemAllocator. */
export function defaultBacking(): Allocator {
  shared ??= new SystemAllocator();
  return shared;
}
