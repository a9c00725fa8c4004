// A view kept from a deallocated allocation (issue 15 adversarial finding 1): once the slot is reused it
// starts at the new owner's first byte, and deallocate / getAllocationInfo / isValidPointer must tell it
// from the new owner's own `bytes` (before the fix, deallocate(staleView) freed the new owner, and the
// next allocation aliased it).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, MemoryInterface, type MemoryType } from "../../mod.ts";

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
// Each of these backings hands a freed 32-byte slot to the next 32-byte request.
const TYPES: MemoryType[] = ["pool", "network", "video", "stack", "temporary"];

for (const type of TYPES) {
  test(`${type}: a stale view never frees, names or validates the allocation that reused its slot`, () => {
    using memory = new MemoryInterface({ pressure: false });
    const first = memory.allocateTyped(32, type);
    const stale = first.bytes;
    memory.deallocate(first);
    const victim = memory.allocateTyped(32, type);
    assert.equal(victim.address, first.address, "the slot is reused");
    assert.equal(stale.byteLength, 32, "the stale view still reads (a chunk's view is not detached)");
    assert.throws(() => memory.deallocate(stale), isCategory("double-free"));
    assert.equal(memory.isValidPointer(stale), false);
    assert.equal(memory.getAllocationInfo(stale), null);
    // The victim is untouched: still valid, its memory not handed out again.
    assert.equal(memory.getAllocationInfo(victim.bytes), victim);
    assert.equal(memory.isValidPointer(victim.address), true);
    const next = memory.allocateTyped(32, type);
    assert.notEqual(next.address, victim.address, "the next allocation does not alias the victim");
    victim.bytes.fill(1);
    next.bytes.fill(2);
    assert.equal(victim.bytes[0], 1);
    if (type === "stack") memory.deallocate(next); // a stack frees in reverse order
    memory.deallocate(victim);
    if (type !== "stack") memory.deallocate(next);
    assert.equal(memory.getMemoryStats(type).usedBytes, 0);
  });
}

test("a view made by hand over a live allocation's first byte is refused; interior views still validate", () => {
  using memory = new MemoryInterface({ pressure: false });
  const a = memory.allocateTyped(64, "pool");
  const copy = new Uint8Array(a.bytes.buffer, a.bytes.byteOffset, 64);
  assert.throws(() => memory.deallocate(copy), isCategory("double-free"));
  assert.equal(memory.isValidPointer(copy), false);
  assert.equal(memory.getAllocationInfo(a.bytes.subarray(8)), a, "a view inside it");
  memory.deallocate(a.bytes);
  assert.equal(memory.isValidPointer(a.address), false);
});
