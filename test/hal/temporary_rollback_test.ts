// The temporary type's fast path gives a block back to the arena by the
// block's number, not by its view: only the arena's most recent block rolls
// back (its bytes are handed out next), any other is left to its frame's end,
// and a number kept from a block released before never rolls back the block
// now in its place: not after a frame's end, not after endFrame() outside
// frames (a reset), not across a scope of the caller's own or a block the
// caller took from the arena in between.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type MemoryAllocation, MemoryInterface } from "../../mod.ts";
import { outcome } from "../_helpers.ts";

// The arena's first block in a scope or segment comes the full way (by view); warm it so the blocks a test
// looks at come by the fast path.
function warm(memory: MemoryInterface): void {
  memory.deallocate(memory.allocateTyped(8, "temporary"));
}

function temporary(memory: MemoryInterface): [number, number] {
  const s = memory.getMemoryStats("temporary");
  return [s.usedBytes, s.allocationCount];
}

test("the most recent temporary block rolls back: the next one starts at its address", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  const arena = memory.getAllocator("arena");
  const first = memory.allocateTyped(64, "temporary");
  const at = first.address;
  memory.deallocate(first);
  const second = memory.allocateTyped(64, "temporary");
  assert.equal(second.address, at, "rolled back: its bytes were handed out again");
  assert.equal(arena.stats().ignoredFrees, 0);
  memory.deallocate(second);
  assert.deepEqual(temporary(memory), [0, 0]);
  assert.equal(arena.stats().allocatedBytes, 0);
});

test("a temporary block that is not the most recent is left to its frame's end, and its neighbours keep their bytes", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  const arena = memory.getAllocator("arena");
  const a = memory.allocateTyped(64, "temporary");
  const b = memory.allocateTyped(64, "temporary");
  b.bytes.fill(7);
  memory.deallocate(a); // not the most recent: ignored by the arena, gone from the interface's books
  assert.equal(arena.stats().ignoredFrees, 1);
  assert.deepEqual(temporary(memory), [64, 1]);
  const c = memory.allocateTyped(64, "temporary");
  assert.notEqual(c.address, a.address, "a's bytes are not handed out again before the frame's end");
  assert.ok(b.bytes.every((x) => x === 7));
  memory.deallocate(c); // the most recent: rolled back
  const d = memory.allocateTyped(64, "temporary");
  assert.equal(d.address, c.address);
  memory.deallocate(d);
  memory.deallocate(b);
  assert.equal(outcome(() => memory.deallocate(a)), "double-free");
  assert.deepEqual(temporary(memory), [0, 0]);
});

test("a block kept from an ended frame never rolls back the block now in its place", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  memory.beginFrame();
  warm(memory);
  const old = memory.allocateTyped(64, "temporary");
  const oldAddress = old.address;
  memory.endFrame();
  memory.beginFrame();
  warm(memory);
  const now = memory.allocateTyped(64, "temporary");
  now.bytes.fill(9);
  assert.equal(now.address, oldAddress, "the place was reused (what makes this case matter)");
  assert.equal(outcome(() => memory.deallocate(old)), "double-free");
  assert.deepEqual(temporary(memory), [64, 1], "nothing changed");
  const next = memory.allocateTyped(64, "temporary");
  assert.notEqual(next.address, now.address, "the live block was not rolled back");
  assert.ok(now.bytes.every((x) => x === 9));
  memory.deallocate(next);
  memory.deallocate(now);
  memory.endFrame();
  assert.deepEqual(temporary(memory), [0, 0]);
});

test("outside frames: a block kept from before endFrame() (a reset) never rolls back the new block", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  const old = memory.allocateTyped(64, "temporary");
  const oldAddress = old.address;
  memory.endFrame(); // outside frames: every temporary allocation made outside one goes
  const now = memory.allocateTyped(64, "temporary");
  assert.equal(now.address, oldAddress);
  assert.equal(outcome(() => memory.deallocate(old)), "double-free");
  assert.equal(outcome(() => memory.deallocate(old.bytes)), "double-free");
  assert.deepEqual(temporary(memory), [64, 1]);
  memory.deallocate(now);
  assert.deepEqual(temporary(memory), [0, 0]);
});

test("a frame opened after a block stops it rolling back; it still goes back to the books", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  const arena = memory.getAllocator("arena");
  const outer = memory.allocateTyped(64, "temporary");
  memory.beginFrame();
  memory.deallocate(outer); // its frame (the time outside frames) is open; the arena cannot roll it back now
  assert.equal(arena.stats().ignoredFrees, 1);
  assert.deepEqual(temporary(memory), [0, 0]);
  const inner = memory.allocateTyped(64, "temporary");
  memory.deallocate(inner);
  assert.equal(arena.stats().ignoredFrees, 1, "the frame's own most recent block rolled back");
  memory.endFrame();
  assert.equal(outcome(() => memory.deallocate(outer)), "double-free");
});

test("a block the caller takes from the arena in between: the interface's is not the most recent any more", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  const arena = memory.getAllocator("arena");
  const mine = memory.allocateTyped(64, "temporary");
  const theirs = arena.alloc(64);
  theirs.fill(5);
  memory.deallocate(mine);
  assert.equal(arena.stats().ignoredFrees, 1);
  assert.ok(theirs.every((x) => x === 5));
  arena.free(theirs); // the caller's own most recent block rolls back through its view
  assert.equal(arena.stats().ignoredFrees, 1);
  const next = memory.allocateTyped(64, "temporary");
  memory.deallocate(next);
  assert.deepEqual(temporary(memory), [0, 0]);
});

test("the caller's scope on the arena: blocks from before it do not roll back inside it or after it", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  const arena = memory.getAllocator("arena");
  const before = memory.allocateTyped(64, "temporary");
  let inside: MemoryAllocation;
  {
    using _scope = arena.scope();
    inside = memory.allocateTyped(64, "temporary");
    memory.deallocate(inside); // the most recent, in the scope: rolled back
  }
  const after = memory.allocateTyped(64, "temporary");
  after.bytes.fill(3);
  memory.deallocate(before); // not the most recent
  assert.ok(after.bytes.every((x) => x === 3));
  assert.equal(outcome(() => memory.deallocate(inside)), "double-free");
  memory.deallocate(after);
  assert.deepEqual(temporary(memory), [0, 0]);
});

test("many pairs and interleavings keep the arena's books equal to the interface's", () => {
  using memory = new MemoryInterface({ pressure: false });
  warm(memory);
  const arena = memory.getAllocator("arena");
  const live: MemoryAllocation[] = [];
  for (let i = 0; i < 2000; i++) {
    const a = memory.allocateTyped(1 + (i * 37) % 300, "temporary");
    if (i % 3 === 0) live.push(a);
    else memory.deallocate(a);
    if (i % 7 === 0 && live.length > 0) memory.deallocate(live.splice((i * 13) % live.length, 1)[0]);
    if (i % 500 === 499) {
      for (const x of live.splice(0)) memory.deallocate(x);
      memory.endFrame();
    }
  }
  for (const x of live.splice(0)) memory.deallocate(x);
  assert.deepEqual(temporary(memory), [0, 0]);
  assert.equal(arena.stats().allocatedBytes, 0);
});
