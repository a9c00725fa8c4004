// Messages and categories a new user meets first: a budget typo names
// `budgets.<key>` and the memory types; isValidPointer / getAllocationInfo
// name themselves and what they accept; another interface's live allocation,
// given as its bytes or its address, is "mismatched-allocator" (as the
// allocation object itself is), and memory of no interface stays "invalid-free".
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, MemoryInterface, SystemAllocator } from "../../mod.ts";

const any = (v: unknown) => v as never;

test("a budget for an unknown type names budgets.<key> and lists the memory types", () => {
  assert.throws(() => new MemoryInterface({ budgets: any({ gpu: 1 }) }), (error: Error) => {
    assert.ok(error instanceof TypeError);
    assert.equal(
      error.message,
      "Cannot create MemoryInterface as option 'budgets.gpu' is not known: expected only system, video, audio, " +
        "network, shared, temporary, stack, pool in 'budgets'",
    );
    return true;
  });
  assert.throws(
    () => new MemoryInterface(any({ budget: 1 })),
    /option 'budget' is not known: expected only budgets, pressure$/,
  );
});

test("isValidPointer and getAllocationInfo name themselves and what they accept", () => {
  using memory = new MemoryInterface({ pressure: false });
  for (
    const [call, name] of [[() => memory.isValidPointer(any("1")), "isValidPointer"], [
      () => memory.getAllocationInfo(any("1")),
      "getAllocationInfo",
    ]] as const
  ) {
    assert.throws(call, (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, new RegExp(`with ${name} as 'target' must be an address \\(a number\\) or a view`));
      assert.match(error.message, /current value is "1"/);
      return true;
    });
  }
});

test("another interface's live allocation, by bytes or address, is mismatched-allocator", () => {
  using m1 = new MemoryInterface({ pressure: false });
  using m2 = new MemoryInterface({ pressure: false });
  for (const type of ["system", "pool", "temporary"] as const) {
    const a = m1.allocateTyped(64, type);
    m2.allocateTyped(64, type); // m2 has allocations of its own
    for (const target of [a, a.bytes, a.address]) {
      assert.throws(
        () => m2.deallocate(target),
        (e: unknown) => e instanceof AllocationError && e.category === "mismatched-allocator",
        `${type} ${typeof target}`,
      );
    }
    assert.equal(m1.isValidPointer(a.bytes), true, "refused, so nothing changed");
    m1.deallocate(a.bytes);
  }
  const foreign = new SystemAllocator();
  const mine = foreign.alloc(64);
  assert.throws(
    () => m2.deallocate(mine),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
    "memory of no interface",
  );
  foreign.free(mine);
  foreign.dispose();
});

test("after the other interface is disposed its views are released memory, not mismatched", () => {
  const m1 = new MemoryInterface({ pressure: false });
  using m2 = new MemoryInterface({ pressure: false });
  const a = m1.allocateTyped(64, "system");
  const address = a.address;
  m1.dispose();
  assert.throws(
    () => m2.deallocate(a.bytes),
    (e: unknown) => e instanceof AllocationError && e.category === "double-free",
  );
  assert.throws(
    () => m2.deallocate(address),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
  );
});
