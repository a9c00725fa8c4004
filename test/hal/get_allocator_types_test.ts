// getAllocator(kind)'s types: each kind's documented methods type-check (Deno
// type-checks this file before running it: `deno test` fails with TS2339 if
// getAllocator("arena") is typed as a plain Allocator), what a guard does not
// offer does not (@ts-expect-error fails the check when the error is gone),
// and at run time each method works on the guard.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type Arena,
  type InterfaceAllocator,
  type InterfaceArena,
  type InterfaceBuddyAllocator,
  type InterfaceFreeListAllocator,
  type InterfaceStackAllocator,
  type InterfaceSystemAllocator,
  MemoryInterface,
} from "../../mod.ts";

test("getAllocator: each kind's own methods type-check and work", () => {
  using memory = new MemoryInterface({ pressure: false });

  const arena: InterfaceArena = memory.getAllocator("arena");
  {
    using scope = arena.scope();
    assert.equal(arena.alloc(100).length, 100);
    assert.equal(scope.depth, 1);
    assert.equal(arena.stats().kind, "arena");
  }
  arena.reset("retain-capacity");
  assert.equal(arena.dump().kind, "arena");

  const stack: InterfaceStackAllocator = memory.getAllocator("stack");
  const marker = stack.mark();
  stack.alloc(32);
  stack.rewind(marker);
  stack.reset();
  assert.equal(stack.stats().liveAllocations, 0);

  const heap: InterfaceFreeListAllocator = memory.getAllocator("free-list");
  const handle = heap.handle(100);
  assert.equal(handle.size, 100);
  assert.equal(typeof heap.defragment().movedBytes, "number");
  handle.free();

  const system: InterfaceSystemAllocator = memory.getAllocator("system");
  assert.equal(typeof system.trim(), "number");
  assert.equal(typeof system.retainedBytes, "number");

  const buddy: InterfaceBuddyAllocator = memory.getAllocator("buddy");
  assert.equal(buddy.dump().kind, "buddy");

  const pool: InterfaceAllocator = memory.getAllocator("pool");
  pool.free(pool.alloc(64));

  // A kind only known at run time gets the common type.
  const kind = memory.availableAllocators()[0];
  const any: InterfaceAllocator = memory.getAllocator(kind);
  assert.equal(any.kind, kind);
});

test("getAllocator: the types promise only what the guards offer", () => {
  using memory = new MemoryInterface({ pressure: false });
  const pool = memory.getAllocator("pool");
  // @ts-expect-error: the pool kind has no scope()
  assert.equal(typeof pool.scope, "undefined");
  const arena = memory.getAllocator("arena");
  // @ts-expect-error: the guard is not an Arena (no clone(), no observe())
  const asArena: Arena = arena;
  assert.equal(typeof (asArena as unknown as Record<string, unknown>).observe, "undefined");
  assert.equal(typeof (arena as unknown as Record<string, unknown>).clone, "undefined");
});
