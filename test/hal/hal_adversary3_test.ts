// Hostile uses of MemoryInterface's frames and dispose after the temporary
// fast path and the frame accounting changes (748b781, a4c7075): a frame's
// end or the interface's dispose that the arena refuses must change nothing.
//
// The arena refuses to release memory in bulk (a scope's end, reset(),
// dispose()) while an Arena observer is told of a block another allocator is
// taking from an Arena (a chain: the child has not claimed its chunk yet), so
// endFrame(), a frame() scope's end and dispose() called from such an
// observer throw "unsupported". They used to throw after the frame was
// marked ended (its blocks no longer live, deallocate "double-free", their
// bytes still counted and never given back; the next endFrame() then ended
// the frame around it) or after the interface was marked disposed (its
// allocators never disposed: every block's memory kept for good).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Arena, type MemoryAllocation, MemoryInterface } from "../../mod.ts";
import { outcome } from "../_helpers.ts";

function temporary(memory: MemoryInterface): [number, number] {
  const s = memory.getMemoryStats("temporary");
  return [s.usedBytes, s.allocationCount];
}

/** Runs `fn` from an Arena observer while a child arena takes its chunk (a claim under way); its outcome. */
function duringClaim(fn: () => void): string {
  using parent = new Arena({ capacity: 1 << 16 });
  let result = "not run";
  parent.observe({
    onAlloc() {
      result = outcome(fn);
    },
  });
  using _child = new Arena({ capacity: 4096, backing: parent });
  return result;
}

test("endFrame() refused during a claim changes nothing: the frame's blocks stay live and counted", () => {
  using memory = new MemoryInterface({ pressure: false });
  const outside = memory.allocateTyped(32, "temporary");
  memory.beginFrame();
  const inside = memory.allocateTyped(64, "temporary");
  assert.equal(duringClaim(() => memory.endFrame()), "unsupported");
  assert.deepEqual(temporary(memory), [96, 2]);
  assert.equal(memory.isValidPointer(inside.bytes), true);
  memory.deallocate(inside); // still live: its frame did not end
  assert.deepEqual(temporary(memory), [32, 1]);
  const again = memory.allocateTyped(16, "temporary");
  memory.endFrame(); // the frame the refused call left open, not the time outside frames
  assert.equal(outcome(() => memory.deallocate(again)), "double-free");
  assert.equal(memory.isValidPointer(outside.bytes), true);
  assert.deepEqual(temporary(memory), [32, 1]);
  memory.deallocate(outside);
  assert.deepEqual(temporary(memory), [0, 0]);
});

test("endFrame() outside frames refused during a claim changes nothing", () => {
  using memory = new MemoryInterface({ pressure: false });
  const block = memory.allocateTyped(64, "temporary");
  const system = memory.allocate({ size: 48, type: "system", preferredAllocator: "arena" });
  assert.equal(duringClaim(() => memory.endFrame()), "unsupported");
  assert.deepEqual(temporary(memory), [64, 1]);
  assert.deepEqual([memory.getMemoryStats().usedBytes, memory.getMemoryStats().allocationCount], [112, 2]);
  memory.deallocate(block);
  memory.deallocate(system);
  assert.deepEqual([memory.getMemoryStats().usedBytes, memory.getMemoryStats().allocationCount], [0, 0]);
});

test("a frame() scope whose end is refused during a claim ends none of its frames", () => {
  using memory = new MemoryInterface({ pressure: false });
  const scope = memory.frame();
  const outer = memory.allocateTyped(64, "temporary");
  let inner: MemoryAllocation | undefined;
  const result = duringClaim(() => {
    memory.beginFrame(); // opened inside the observer: on its own it could end
    inner = memory.allocateTyped(32, "temporary");
    scope[Symbol.dispose](); // but the scope's own frame began before the claim
  });
  assert.equal(result, "unsupported");
  assert.deepEqual(temporary(memory), [96, 2]);
  memory.deallocate(inner!); // the inner frame is still open
  memory.deallocate(outer);
  assert.deepEqual(temporary(memory), [0, 0]);
  scope[Symbol.dispose]();
  assert.equal(outcome(() => memory.deallocate(memory.allocateTyped(8, "temporary"))), "ok");
  memory.endFrame(); // outside frames: nothing left open by the scope
  assert.deepEqual(temporary(memory), [0, 0]);
});

test("dispose() refused during a claim changes nothing: the interface stays usable and disposes later", () => {
  const memory = new MemoryInterface({ pressure: false });
  const block = memory.allocateTyped(64, "temporary");
  const sprite = memory.allocateTyped(64, "pool");
  assert.equal(duringClaim(() => memory.dispose()), "unsupported");
  assert.equal(block.bytes.length, 64);
  assert.deepEqual([memory.getMemoryStats().usedBytes, memory.getMemoryStats().allocationCount], [128, 2]);
  memory.deallocate(sprite);
  memory.dispose();
  assert.equal(block.bytes.length, 0, "disposed: every view reads as length 0");
  assert.equal(outcome(() => memory.getMemoryStats()), "use-after-free");
});

test("endFrame() outside frames after the arena ended (a transferred buffer) ends the frame and its counts", () => {
  using memory = new MemoryInterface({ pressure: false });
  const outside = memory.allocateTyped(64, "temporary");
  memory.beginFrame();
  const inside = memory.allocateTyped(64, "temporary");
  (inside.bytes.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer(); // the frame's end finds it
  memory.endFrame();
  assert.deepEqual(temporary(memory), [64, 1]);
  memory.endFrame(); // used to throw after ending the time outside frames, leaving `outside` counted for good
  assert.deepEqual(temporary(memory), [0, 0]);
  assert.equal(outcome(() => memory.deallocate(outside)), "double-free");
  assert.deepEqual([memory.getMemoryStats().usedBytes, memory.getMemoryStats().allocationCount], [0, 0]);
});
