// Temporary blocks given back out of order: the arena keeps them (only its
// most recent block rolls back), so the temporary budget counts them
// (`unreclaimedBytes`) until the memory really comes back: at their frame's
// end, or, outside frames, as soon as no temporary allocation of the
// interface is live (the interface then resets its arena at once, unless
// blocks of the caller's own from getAllocator("arena") are live in it).
// Before, the budget counted them as freed: a program that allocated two
// temporaries and freed the older first grew the arena without bound while
// its budget said "used 0", and allocateAsync's waiters were served past the
// budget.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type MemoryAllocation, MemoryInterface } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const MiB = 1 << 20;
const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

function temporary(memory: MemoryInterface): { used: number; unreclaimed: number; free: number } {
  const s = memory.getMemoryStats("temporary");
  return { used: s.usedBytes, unreclaimed: s.unreclaimedBytes, free: s.freeBytes };
}

test("in a frame, a temporary block given back out of order counts against the budget until the frame ends", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 2 * MiB } });
  memory.beginFrame();
  const a = memory.allocateTyped(MiB, "temporary");
  const b = memory.allocateTyped(MiB, "temporary");
  memory.deallocate(a); // not the arena's most recent block: it keeps it until the frame ends
  assert.deepEqual(temporary(memory), { used: MiB, unreclaimed: MiB, free: 0 });
  assert.equal(memory.getMemoryStats("temporary").largestFreeBlock, 0);
  assert.equal(memory.getMemoryStats().unreclaimedBytes, MiB, "the overall figures too");
  assert.throws(
    () => memory.allocateTyped(MiB, "temporary"),
    (e: unknown) =>
      isCategory("limit-exceeded")(e) &&
      /has 0 left: 1048576 bytes of it are held for temporary blocks deallocated out of order/.test(
        (e as Error).message,
      ),
  );
  memory.deallocate(b); // the most recent: rolled back, its bytes are room again
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: MiB, free: MiB });
  memory.endFrame();
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 2 * MiB });
  assert.equal(memory.getMemoryStats().unreclaimedBytes, 0);
});

test("outside frames, the arena's blocks come back once no temporary allocation is live: the arena stays bounded", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 2 * MiB } });
  const arena = memory.getAllocator("arena");
  let capacity = 0;
  for (let i = 0; i < 200; i++) {
    const a = memory.allocateTyped(MiB, "temporary");
    const b = memory.allocateTyped(MiB, "temporary");
    const kept = a.bytes;
    memory.deallocate(a); // out of order: held while b lives
    assert.deepEqual(temporary(memory), { used: MiB, unreclaimed: MiB, free: 0 }, `round ${i}`);
    memory.deallocate(b); // nothing temporary is live now: the arena gives everything back at once
    assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 2 * MiB }, `round ${i}`);
    assert.equal(kept.length, 0, "the released block's view reads as length 0 (its memory is reused)");
    capacity = Math.max(capacity, arena.stats().capacityBytes);
  }
  assert.ok(capacity <= 4 * MiB, `the arena held ${capacity} bytes at most`);
  assert.equal(arena.stats().allocatedBytes, 0);
});

test("blocks of the caller's own in the arena are never released with the interface's: they hold its blocks back", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 4096 } });
  const arena = memory.getAllocator("arena");
  const a = memory.allocateTyped(1024, "temporary");
  const b = memory.allocateTyped(1024, "temporary");
  const mine = arena.alloc(256);
  mine.fill(7);
  memory.deallocate(a);
  memory.deallocate(b); // no temporary allocation is live, but the caller's block is
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 2048, free: 2048 });
  assert.equal(mine.length, 256);
  assert.ok(mine.every((x) => x === 7), "the caller's block is untouched");
  arena.free(mine); // the arena's most recent block: rolled back, and now nothing but released blocks is left
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 4096 });
  assert.equal(arena.stats().allocatedBytes, 0);
});

test("blocks of the caller's own freed out of order hold the interface's blocks back no longer", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 8192 } });
  const arena = memory.getAllocator("arena");
  const mine1 = arena.alloc(64), mine2 = arena.alloc(64);
  arena.free(mine1); // not the arena's most recent block: it keeps it (counted in ignoredFrees)
  arena.free(mine1); // a second free of the same block counts once
  const grown = arena.resize(mine2, 4096); // moved: the old block is kept too
  arena.free(grown); // the most recent block: rolled back
  for (let i = 0; i < 20; i++) {
    const a = memory.allocateTyped(1000, "temporary");
    const b = memory.allocateTyped(1000, "temporary");
    memory.deallocate(a); // out of order
    memory.deallocate(b); // nothing temporary and nothing of the caller's is live: the arena is reset
    assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 8192 }, `round ${i}`);
    assert.equal(a.bytes.length, 0, "the released block's view reads as length 0");
  }
  // A live block of the caller's own still holds them back, though blocks of theirs were freed before.
  const freed = arena.alloc(32);
  const live = arena.alloc(32);
  live.fill(5);
  arena.free(freed);
  const a = memory.allocateTyped(1000, "temporary");
  const b = memory.allocateTyped(1000, "temporary");
  memory.deallocate(a);
  memory.deallocate(b);
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 1000, free: 7192 });
  assert.equal(live.length, 32);
  assert.ok(live.every((x) => x === 5), "the caller's live block is untouched");
  arena.free(live); // out of order now (b is the most recent): nothing live is left
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 8192 });
  assert.equal(arena.stats().allocatedBytes, 0);
});

test("a freed block of the caller's own released by a scope's end counts no more: a new live one holds back", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 8192 } });
  const arena = memory.getAllocator("arena");
  {
    using _scope = arena.scope();
    const x = arena.alloc(64);
    arena.alloc(64);
    arena.free(x); // kept until the scope ends
  }
  const y = arena.alloc(128); // live, maybe where x was
  y.fill(3);
  const a = memory.allocateTyped(1000, "temporary");
  const b = memory.allocateTyped(1000, "temporary");
  memory.deallocate(a);
  memory.deallocate(b);
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 1000, free: 7192 });
  assert.equal(y.length, 128);
  assert.ok(y.every((v) => v === 3), "the caller's live block is untouched");
});

test("a scope of the caller's own on the arena gives back the released blocks made inside it", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 4096 } });
  const arena = memory.getAllocator("arena");
  const before = memory.allocateTyped(512, "temporary"); // live throughout: nothing is reclaimed by the interface
  {
    using _scope = arena.scope();
    const a = memory.allocateTyped(1024, "temporary");
    const b = memory.allocateTyped(1024, "temporary");
    memory.deallocate(a);
    memory.deallocate(b);
    assert.deepEqual(temporary(memory), { used: 512, unreclaimed: 1024, free: 2560 });
  }
  assert.deepEqual(temporary(memory), { used: 512, unreclaimed: 0, free: 3584 }, "the scope's end released a");
  const outside = memory.allocateTyped(256, "temporary");
  memory.deallocate(before); // out of order
  assert.deepEqual(temporary(memory), { used: 256, unreclaimed: 512, free: 3328 });
  memory.deallocate(outside);
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 4096 });
  assert.equal(arena.stats().allocatedBytes, 0);
});

test("a frame open keeps the time outside frames' released blocks until it ends; then they come back", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 4096 } });
  const a = memory.allocateTyped(1024, "temporary");
  const b = memory.allocateTyped(1024, "temporary");
  memory.deallocate(a);
  memory.beginFrame();
  memory.deallocate(b); // a frame began after it: not rolled back, held
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 2048, free: 2048 });
  const inner = memory.allocateTyped(2048, "temporary");
  assert.throws(() => memory.allocateTyped(1, "temporary"), isCategory("limit-exceeded"));
  memory.deallocate(inner);
  memory.endFrame(); // the frame's blocks go, and nothing temporary is live outside frames: those too
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 4096 });
});

test("allocateAsync waits for memory that really came back, never past the budget", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 2 * MiB } });
  const arena = memory.getAllocator("arena");
  const a = memory.allocateTyped(MiB, "temporary");
  const b = memory.allocateTyped(MiB, "temporary");
  let served: MemoryAllocation | null = null;
  const waiting = memory.allocateAsync({ size: MiB, type: "temporary", timeoutMs: 5000 }).then((x) => served = x);
  memory.deallocate(a); // held: no room came back
  await tick();
  assert.equal(served, null, "not served from a block the arena still holds");
  assert.ok(arena.stats().allocatedBytes <= 2 * MiB);
  memory.deallocate(b); // everything comes back
  await waiting;
  assert.equal(served!.size, MiB);
  assert.ok(arena.stats().allocatedBytes <= 2 * MiB);
  memory.deallocate(served!);
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 2 * MiB });
});

test("three decodes sharing a 2 MiB budget without frames (the web pattern): all served, the arena bounded", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: 2 * MiB } });
  const arena = memory.getAllocator("arena");
  let most = 0;
  const decode = async (i: number) => {
    const scratch = await memory.allocateAsync({ size: MiB, type: "temporary", timeoutMs: 5000 });
    scratch.bytes.fill(i);
    most = Math.max(most, arena.stats().allocatedBytes);
    await tick();
    const sum = scratch.bytes[0] + scratch.bytes[scratch.size - 1];
    memory.deallocate(scratch);
    return sum;
  };
  for (let round = 0; round < 20; round++) {
    assert.deepEqual(await Promise.all([decode(1), decode(2), decode(3)]), [2, 4, 6]);
  }
  assert.ok(most <= 2 * MiB, `the arena held ${most} bytes of blocks at most`);
  assert.deepEqual(temporary(memory), { used: 0, unreclaimed: 0, free: 2 * MiB });
});

test("model: the arena's bytes are the temporary type's used plus unreclaimed bytes, within the budget", () => {
  const budget = 64 << 10;
  using memory = new MemoryInterface({ pressure: false, budgets: { temporary: budget } });
  const arena = memory.getAllocator("arena");
  const next = xorshift32(4242);
  const live: MemoryAllocation[] = [];
  let depth = 0;
  for (let step = 0; step < 4000; step++) {
    const op = below(next, 10);
    if (op < 5) {
      const size = 1 + below(next, 4096);
      try {
        live.push(memory.allocateTyped(size, "temporary"));
      } catch (error) {
        assert.ok(isCategory("limit-exceeded")(error), `step ${step}: ${error}`);
      }
    } else if (op < 8 && live.length > 0) {
      memory.deallocate(live.splice(below(next, live.length), 1)[0]);
    } else if (op === 8 && depth < 3) {
      memory.beginFrame();
      depth++;
    } else if (op === 9) {
      memory.endFrame();
      if (depth > 0) depth--;
      for (let i = live.length - 1; i >= 0; i--) if (live[i].bytes.length === 0) live.splice(i, 1);
    }
    const s = memory.getMemoryStats("temporary");
    const where = `step ${step}`;
    assert.equal(arena.stats().allocatedBytes, s.usedBytes + s.unreclaimedBytes, where);
    assert.ok(s.usedBytes + s.unreclaimedBytes <= budget, where);
    assert.equal(s.freeBytes, budget - s.usedBytes - s.unreclaimedBytes, where);
    assert.equal(s.usedBytes, live.reduce((sum, a) => sum + a.size, 0), where);
    if (depth === 0 && live.length === 0) assert.equal(s.unreclaimedBytes, 0, `${where}: nothing live, no frame`);
  }
});
