// An arena with safety makes each scope's views over ArrayBuffers of the
// scope's own (safety segments), detached when the scope ends. In Bun every
// byte wrapped costs (JavaScriptCore counts it as heap allocation, which paces
// its collections), so a scope must wrap about what it uses, not the arena's
// capacity; these tests count the wraps instead of timing them.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { addressOf, Arena } from "../../mod.ts";
import { native, requestGC } from "../../ffi/native.ts";

// Records the length of every ArrayBuffer memkit makes over native memory until restore().
function spyOnWraps(): { lengths: number[]; restore(): void } {
  const layer = native as { wrap: typeof native.wrap };
  const original = layer.wrap;
  const lengths: number[] = [];
  layer.wrap = (address, byteLength) => {
    lengths.push(byteLength);
    return original(address, byteLength);
  };
  return { lengths, restore: () => void (layer.wrap = original) };
}

const adaptive = native.wrapStartBytes < native.wrapChunkBytes;

for (const capacity of [64 << 10, 1 << 20, 16 << 20, 64 << 20]) {
  test(`Arena (safety) of ${capacity >> 10} KiB: a scope wraps what it allocates, not the capacity; an empty one nothing`, () => {
    const arena = new Arena({ capacity });
    const example = () => {
      using _scope = arena.scope();
      const a = arena.array(Float64Array, 1000);
      const b = arena.clone(a);
      b.fill(1);
      return [a, b];
    };
    example(); // the first scope learns how much a scope uses
    const spy = spyOnWraps();
    try {
      {
        using _empty = arena.scope();
      }
      assert.deepEqual(spy.lengths, [], "an empty scope makes no buffer");
      for (let i = 0; i < 10; i++) {
        const views = example();
        for (const view of views) assert.equal(view.length, 0, "views of an ended scope read as length 0");
      }
    } finally {
      spy.restore();
    }
    assert.equal(spy.lengths.length, 10, "one buffer per scope");
    // 16,000 bytes a scope: Bun wraps the next power of two; Deno, where a wrap's cost does not grow with its
    // size, the largest worth wrapping (bounded by the chunk).
    const most = adaptive ? 16 << 10 : Math.min(native.wrapChunkBytes, capacity);
    for (const length of spy.lengths) assert.ok(length <= most, `${length} bytes wrapped for 16,000 used`);
    assert.equal(arena.stats().allocatedBytes, 0);
    arena.dispose();
  });
}

test("Arena (safety): scopes of changing sizes get segments that fit; every view of an ended scope reads as length 0", () => {
  const arena = new Arena({ capacity: 64 << 20 });
  const kept = arena.alloc(100).fill(7); // outside any scope: lives on
  // Bytes per allocation, one list per scope: small after large, large after small, many segments in one scope.
  const plans = [[100], Array(40).fill(8000), [10], [5 << 20, 3], Array(300).fill(100), [1 << 20, 1 << 20, 1 << 20], [
    1,
  ]];
  for (let round = 0; round < 2; round++) {
    for (const [i, plan] of plans.entries()) {
      const views: Uint8Array[] = [];
      let inner: Uint8Array[] = [];
      {
        using _scope = arena.scope();
        for (const [j, size] of plan.entries()) {
          views.push(arena.alloc(size, 1 << (j % 7)).fill((i * 31 + j) & 255));
          if (j === 1) {
            using _inner = arena.scope();
            inner = [arena.alloc(3000).fill(1), arena.alloc(70_000).fill(2)];
          }
        }
        for (const view of inner) assert.equal(view.length, 0, "an inner scope's views end with it");
        for (const [j, view] of views.entries()) {
          assert.equal(view.length, plan[j]);
          const byte = (i * 31 + j) & 255;
          assert.ok(view[0] === byte && view[view.length - 1] === byte, `plan ${i}, block ${j} intact`);
        }
        const ranges = views.map((v) => [addressOf(v), v.length]).sort((a, b) => a[0] - b[0]);
        for (let k = 1; k < ranges.length; k++) assert.ok(ranges[k - 1][0] + ranges[k - 1][1] <= ranges[k][0]);
      }
      for (const view of views) assert.equal(view.length, 0, `plan ${i}: views of the ended scope read as length 0`);
    }
  }
  assert.equal(kept.length, 100);
  assert.equal(kept[99], 7);
  assert.equal(arena.stats().allocatedBytes, 100);
  arena.dispose();
  assert.equal(kept.length, 0);
});

test("Arena (safety): its capacity is counted as JavaScript heap once (the backing's block), not again for its chunk", () => {
  requestGC();
  const before = process.memoryUsage().external;
  const arena = new Arena({ capacity: 64 << 20 });
  for (let i = 0; i < 100; i++) {
    using _scope = arena.scope();
    arena.alloc(1000).fill(1);
  }
  requestGC();
  const counted = process.memoryUsage().external - before;
  assert.ok(counted <= (64 << 20) + (1 << 20), `${counted} bytes counted for a 64 MiB arena`);
  arena.dispose();
});

test("Arena (safety): a scope of several MB wraps one buffer for it, not pieces of wrapChunkBytes", () => {
  const arena = new Arena({ capacity: 16 << 20 });
  const used = 40 * 80_000; // 3.2 MB a scope, more than Bun's 1 MiB wrapChunkBytes
  const frame = () => {
    using _scope = arena.scope();
    const views: Float64Array[] = [];
    for (let i = 0; i < 40; i++) views.push(arena.array(Float64Array, 10_000).fill(i));
    for (const [i, view] of views.entries()) assert.ok(view[0] === i && view[9_999] === i, `array ${i} intact`);
    return views;
  };
  frame(); // the first scope learns how much a scope uses
  const spy = spyOnWraps();
  try {
    for (let i = 0; i < 5; i++) {
      for (const view of frame()) assert.equal(view.length, 0, "views of an ended scope read as length 0");
    }
  } finally {
    spy.restore();
  }
  assert.equal(spy.lengths.length, 5, `one buffer per scope (wrapped: ${spy.lengths.join(", ")})`);
  for (const length of spy.lengths) {
    assert.ok(length >= used, `${length} bytes wrapped cover the ${used} used`);
    // Bun: what the last scope used, rounded up to whole wrapChunkBytes; Deno: the largest worth wrapping.
    const most = adaptive ? Math.ceil(used / native.wrapChunkBytes) * native.wrapChunkBytes : 16 << 20;
    assert.ok(length <= most, `${length} bytes wrapped for ${used} used`);
  }
  assert.equal(arena.stats().allocatedBytes, 0);
  arena.dispose();
});
