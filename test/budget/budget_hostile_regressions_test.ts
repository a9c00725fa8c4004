// Regressions found by the hostile-argument suite (test/hostile_test.ts) in
// the budget family: each failed before its fix.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FramePool } from "../../src/budget/frame_pool.ts";
import { ResourceCache } from "../../src/budget/resource_cache.ts";

test("no method a frame exposes ends it behind its pool's back", () => {
  using pool = new FramePool({ maxFrames: 6 });
  const set = pool.acquireFrameSet({ width: 16, height: 4, bytesPerPixel: 4 })!;
  const frame = set.current;
  const proto = Object.getPrototypeOf(frame);
  // Before: end(), slot() and stolen() were public methods; frame.end() detached the frame's bytes while its
  // set stayed in use, and releasing the set then failed inside the pool.
  for (const key of Object.getOwnPropertyNames(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, key)!;
    if (key === "constructor" || typeof d.value !== "function") continue;
    try {
      d.value.call(frame);
    } catch {
      // a refusal is fine; ending the frame is not
    }
    assert.equal(frame.released, false, `${key}() ended the frame`);
    frame.bytes[0] = 1;
  }
  for (const name of ["end", "slot", "stolen"]) assert.equal(name in frame, false, `frame.${name} is reachable`);
  set.release();
  assert.equal(pool.stats().formats[0].inUse, 0);
});

test("ResourceCache.prefetch refuses typed arrays (detached, out of bounds or in a Proxy) with its own TypeError", async () => {
  using cache = new ResourceCache<string, number>({ maxBytes: 1024 });
  const detached = new Uint8Array(8);
  detached.buffer.transfer(0);
  const resizable = new ArrayBuffer(64, { maxByteLength: 128 });
  const outOfBounds = new Uint8Array(resizable, 16, 32);
  resizable.resize(8);
  const generated: string[] = [];
  const generate = (key: string) => {
    generated.push(key);
    return { value: 1, size: 8 };
  };
  // Before: the engine's "Cannot perform %TypedArray%.prototype.values on a detached ..." (JSC: "Receiver
  // should be a typed array view" for the Proxy).
  for (const predictions of [detached, outOfBounds, new Proxy(new Uint8Array(4), {}), new Uint8Array(4)]) {
    assert.throws(() => cache.prefetch(predictions as never, generate), {
      name: "TypeError",
      message: /'predictions' must be an iterable of \{ key, probability \}/,
    });
  }
  assert.deepEqual(generated, []);
  const report = await cache.prefetch([{ key: "a", probability: 0.9 }], generate);
  assert.deepEqual(report.loaded, ["a"]);
});
