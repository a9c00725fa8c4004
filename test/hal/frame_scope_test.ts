// frame() scopes end their own frame only (issue 15 adversarial finding 5), and frames nest to any depth
// with each endFrame() ending one frame (finding 8: the arena found a scope by a search from the outermost,
// so ending n nested frames cost O(n^2)).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryInterface } from "../../mod.ts";

const fresh = () => new MemoryInterface({ pressure: false });

test("a frame() scope whose frame was ended by hand ends nothing else when it is left", () => {
  using memory = fresh();
  memory.beginFrame(); // the caller's frame
  const callerScratch = memory.allocateTyped(64, "temporary");
  {
    using _scope = memory.frame();
    const inner = memory.allocateTyped(64, "temporary");
    memory.endFrame(); // the scope's own frame, by hand
    assert.equal(inner.bytes.length, 0);
  }
  assert.equal(callerScratch.bytes.length, 64, "the caller's frame is still open");
  assert.equal(memory.getMemoryStats("temporary").usedBytes, 64);
  memory.endFrame();
  assert.equal(callerScratch.bytes.length, 0);
  assert.equal(memory.getMemoryStats("temporary").usedBytes, 0);
});

test("a frame() scope ends frames still open inside it, and disposing it twice does nothing more", () => {
  using memory = fresh();
  memory.beginFrame();
  const outer = memory.allocateTyped(32, "temporary");
  const scope = memory.frame();
  memory.beginFrame(); // left open inside the scope
  const nested = memory.allocateTyped(32, "temporary");
  scope[Symbol.dispose]();
  assert.equal(nested.bytes.length, 0);
  assert.equal(outer.bytes.length, 32);
  scope[Symbol.dispose]();
  assert.equal(outer.bytes.length, 32, "a second dispose leaves the outer frame alone");
  memory.endFrame();
  assert.equal(outer.bytes.length, 0);
});

test("a frame() scope left after dispose() does nothing", () => {
  const memory = fresh();
  const scope = memory.frame();
  memory.dispose();
  scope[Symbol.dispose]();
});

test("100000 nested frames, each with a block, end one by one, innermost first", () => {
  using memory = fresh();
  const depth = 100_000;
  const blocks = [];
  for (let i = 0; i < depth; i++) {
    memory.beginFrame();
    if (i % 1000 === 0) blocks.push(memory.allocateTyped(16, "temporary"));
  }
  assert.equal(memory.getMemoryStats("temporary").allocationCount, blocks.length);
  for (let i = depth - 1; i >= 0; i--) {
    memory.endFrame();
    if (i % 1000 === 0) {
      assert.equal(blocks.pop()!.bytes.length, 0);
      assert.equal(blocks.at(-1)?.bytes.length ?? 16, 16, "the outer frames' blocks stay");
    }
  }
  assert.equal(memory.getMemoryStats("temporary").usedBytes, 0);
});
