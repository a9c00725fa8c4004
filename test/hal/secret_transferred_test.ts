// A secret whose ArrayBuffer was transferred away (issue 15 adversarial finding 3): memkit keeps its pages
// mapped (another buffer reaches them), and before this fix it skipped the wipe too, so the transferred
// buffer read the key forever. free() (refused, "corruption") and dispose() now zero it through the address.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, MemoryInterface, SecretAllocator } from "../../mod.ts";

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;

/** Moves `view`'s buffer away (as a postMessage transfer list would) and views what arrived. */
function transferAway(view: Uint8Array): Uint8Array {
  const buffer = view.buffer as ArrayBuffer;
  return new Uint8Array(structuredClone(buffer, { transfer: [buffer] }));
}

test("SecretAllocator.free of a transferred key is refused (corruption) and the key is zeroed", () => {
  using secrets = new SecretAllocator();
  const key = secrets.alloc(32);
  key.fill(0x41);
  const away = transferAway(key);
  assert.equal(away[0], 0x41);
  assert.throws(() => secrets.free(key), (e) => isCategory("corruption")(e) && /zeroed/.test(String(e)));
  assert.deepEqual([...away], new Array(32).fill(0));
});

test("SecretAllocator.dispose zeroes a transferred key it keeps mapped", () => {
  const secrets = new SecretAllocator();
  const key = secrets.alloc(100);
  key.fill(0x5a);
  const other = secrets.alloc(16);
  const away = transferAway(key);
  secrets.dispose();
  assert.equal(away.length, 100);
  assert.ok(away.every((b) => b === 0), "every byte zeroed");
  assert.equal(other.length, 0, "the other block went as usual");
});

test("MemoryInterface secret flag: deallocate refuses and dispose zeroes a transferred secret", () => {
  const memory = new MemoryInterface({ pressure: false });
  const a = memory.allocate({ size: 32, flags: ["secret"] });
  a.bytes.fill(0x42);
  const away = transferAway(a.bytes);
  assert.throws(() => memory.deallocate(a), isCategory("corruption"));
  assert.equal(away[0], 0, "zeroed by the refused deallocate");
  const b = memory.allocate({ size: 32, flags: ["secret"] });
  b.bytes.fill(0x43);
  const awayB = transferAway(b.bytes);
  memory.dispose();
  assert.ok(awayB.every((x) => x === 0), "zeroed by dispose");
});
