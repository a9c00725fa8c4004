// A view kept from a deallocated allocation (issue 15 adversarial finding 1): once the slot is reused it
// starts at the new owner's first byte, and deallocate must tell it from the new owner's own `bytes`
// (before the fix, deallocate(staleView) freed the new owner, and the next allocation aliased it).
// isValidPointer / getAllocationInfo answer about memory instead: a view is valid when every byte it covers
// lies in one live allocation (a typed view or subarray from the first byte included; before, those were
// refused while a view starting inside was not), so a stale view over the slot's new owner names that owner.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, MemoryInterface, type MemoryType } from "../../mod.ts";

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
// Each of these backings hands a freed 32-byte slot to the next 32-byte request.
const TYPES: MemoryType[] = ["pool", "network", "video", "stack", "temporary"];

for (const type of TYPES) {
  test(`${type}: a stale view never frees the allocation that reused its slot; lookups name the new owner`, () => {
    using memory = new MemoryInterface({ pressure: false });
    const first = memory.allocateTyped(32, type);
    const stale = first.bytes;
    memory.deallocate(first);
    const victim = memory.allocateTyped(32, type);
    assert.equal(victim.address, first.address, "the slot is reused");
    assert.equal(stale.byteLength, 32, "the stale view still reads (a chunk's view is not detached)");
    assert.throws(() => memory.deallocate(stale), isCategory("double-free"));
    // The memory it covers is the victim's: that is what the lookups answer about.
    assert.equal(memory.isValidPointer(stale), true);
    assert.equal(memory.getAllocationInfo(stale), victim);
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

test("a view made by hand over a live allocation's first byte is refused by deallocate, valid for the lookups", () => {
  using memory = new MemoryInterface({ pressure: false });
  const a = memory.allocateTyped(64, "pool");
  const copy = new Uint8Array(a.bytes.buffer, a.bytes.byteOffset, 64);
  assert.throws(() => memory.deallocate(copy), isCategory("double-free"));
  assert.equal(memory.isValidPointer(copy), true);
  assert.equal(memory.getAllocationInfo(copy), a);
  assert.equal(memory.getAllocationInfo(a.bytes.subarray(8)), a, "a view inside it");
  memory.deallocate(a.bytes);
  assert.equal(memory.isValidPointer(a.address), false);
});

// isValidPointer / getAllocationInfo judge a view by the bytes it covers: all within one live allocation of
// the interface, its first byte included (finding 3 of the fourth new user: a typed view or subarray from an
// allocation's first byte was refused, one starting inside it was not).
for (const type of ["pool", "system", "temporary", "video", "stack", "network", "audio"] as const) {
  test(`${type}: a view is valid when every byte it covers lies in one live allocation`, () => {
    using memory = new MemoryInterface({ pressure: false });
    const a = memory.allocateTyped(64, type);
    const b = memory.allocateTyped(64, type);
    const { buffer, byteOffset } = a.bytes;
    const views: [string, ArrayBufferView][] = [
      ["its own bytes", a.bytes],
      ["subarray(0, 10)", a.bytes.subarray(0, 10)],
      ["a Float32Array over its first 16 bytes", new Float32Array(buffer, byteOffset, 4)],
      ["a DataView over all of it", new DataView(buffer, byteOffset, 64)],
      ["subarray(10)", a.bytes.subarray(10)],
      ["its last byte", a.bytes.subarray(63)],
      ["a Float64Array over its middle", new Float64Array(buffer, byteOffset + 16, 4)],
    ];
    for (const [name, view] of views) {
      assert.equal(memory.isValidPointer(view), true, name);
      assert.equal(memory.getAllocationInfo(view), a, name);
    }
    // One byte past its end (when its buffer has one): no longer within it.
    if (byteOffset + 65 <= buffer.byteLength) {
      const past = new Uint8Array(buffer, byteOffset, 65);
      assert.equal(memory.isValidPointer(past), false, "one byte past its end");
      assert.equal(memory.getAllocationInfo(past), null, "one byte past its end");
      assert.equal(memory.getAllocationInfo(new Uint8Array(buffer, byteOffset + 60, 8)), null, "its tail and beyond");
    }
    assert.equal(memory.getAllocationInfo(b.bytes.subarray(0, 4)), b, "the other one's first bytes");
    assert.equal(memory.isValidPointer(new Uint8Array(8)), false, "foreign memory");
    if (type === "stack") memory.deallocate(b); // a stack frees in reverse order
    const kept = a.bytes.subarray(0, 8);
    memory.deallocate(a);
    if (type !== "temporary" && type !== "stack") {
      // Its place is free now (no allocation took it): the kept view covers no live allocation.
      assert.equal(memory.isValidPointer(kept), false, "freed");
      assert.equal(memory.getAllocationInfo(kept), null, "freed");
    }
    // The allocation object is taken too (the signature names addresses and views): judged by itself.
    assert.equal(memory.isValidPointer(a as never), false, "the released allocation itself");
    assert.equal(memory.getAllocationInfo(a as never), null, "the released allocation itself");
    if (type !== "stack") memory.deallocate(b);
  });
}

test("a view spanning two live allocations is valid for neither", () => {
  using memory = new MemoryInterface({ pressure: false });
  const a = memory.allocateTyped(64, "pool");
  const b = memory.allocateTyped(64, "pool");
  const [first, second] = a.address < b.address ? [a, b] : [b, a];
  if (second.address !== first.address + 64 || first.bytes.buffer !== second.bytes.buffer) return; // not adjacent
  const across = new Uint8Array(first.bytes.buffer, first.bytes.byteOffset + 32, 64);
  assert.equal(memory.isValidPointer(across), false);
  assert.equal(memory.getAllocationInfo(across), null);
  memory.deallocate(a);
  memory.deallocate(b);
});

test("a released allocation object is never valid, even once another allocation took its place", () => {
  using memory = new MemoryInterface({ pressure: false });
  const first = memory.allocateTyped(32, "pool");
  assert.equal(memory.getAllocationInfo(first as never), first);
  const address = first.address;
  memory.deallocate(first);
  const next = memory.allocateTyped(32, "pool");
  assert.equal(next.address, address, "the slot is reused");
  assert.equal(memory.isValidPointer(first as never), false);
  assert.equal(memory.getAllocationInfo(first as never), null);
  assert.equal(memory.getAllocationInfo(next as never), next);
  memory.deallocate(next);
});

// Finding 4: deallocate of another view over a live allocation's first byte said "double-free ... (a view kept
// from an allocation released since, whose place was reused)" although the allocation there was live.
test("deallocate of another view over a live allocation says it is live, where it is, and what to pass", () => {
  using memory = new MemoryInterface({ pressure: false });
  const a = memory.allocateTyped(64, "pool");
  for (const view of [a.bytes.subarray(0, 8), new Float32Array(a.bytes.buffer, a.bytes.byteOffset, 16)]) {
    assert.throws(
      () => memory.deallocate(view),
      (e: unknown) => {
        assert.ok(isCategory("double-free")(e));
        const message = (e as Error).message;
        assert.ok(
          message.includes(`is another view over the live 64-byte pool allocation at 0x${a.address.toString(16)}`),
          message,
        );
        assert.match(message, /pass the allocation or its own bytes$/);
        assert.doesNotMatch(message, /released since/);
        return true;
      },
    );
  }
  assert.equal(memory.getMemoryStats("pool").allocationCount, 1, "refused: nothing changed");
  memory.deallocate(a);
});
