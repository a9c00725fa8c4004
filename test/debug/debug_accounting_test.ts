// What the DebugAllocator counts and remembers (issue 11 items 10, 11, 12),
// its lifetime (dispose, deinit, `using`), its stack traces, and the testing
// helpers (FailingAllocator's dispose and leases, leakCheck).
import assert from "node:assert/strict";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import {
  addressOf,
  AllocationError,
  Arena,
  cFree,
  checkForLeaks,
  cRealloc,
  DebugAllocator,
  deinit,
  FailingAllocator,
  getAllocator,
  getMemStats,
  initAllocator,
  leakCheck,
  malloc,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { outcome } from "../_helpers.ts";
import { leaseBlock, type LeaseHolder, leaseTableOf } from "../../src/alloc/_lease.ts";

/** What `fn` did, as the assertions below name it. */
const category = (fn: () => unknown): string => outcome(fn, "nothing thrown");

function raw(address: number, length: number): Uint8Array {
  // SAFETY: only live blocks of the global allocator are touched.
  return new Uint8Array(native.wrap(address, length));
}

// ------------------------------------------------------------------ item 10

test("item 10: a C-style double free after the address was reused is reported, and the block at the address lives on", () => {
  initAllocator({ enableLeakDetection: true, retainMetadata: true, leakCheckAtExit: "off" });
  try {
    const p = malloc(16);
    cFree(p, 16);
    const q = malloc(16);
    assert.notEqual(q, p, "retainMetadata keeps a freed address out of use while its record is kept");
    raw(q, 16).fill(7);
    let thrown: unknown = null;
    try {
      cFree(p, 16);
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof AllocationError && thrown.category === "double-free", `got ${thrown}`);
    assert.match(thrown.message, /16-byte block/);
    assert.equal(raw(q, 16)[15], 7, "q is untouched");
    assert.equal(getMemStats().currentAllocations, 1);
    cFree(q, 16); // the correct free is not the one reported
    assert.equal(checkForLeaks(), false);
    // cRealloc of a freed address is a use after free.
    assert.equal(category(() => cRealloc(p, 16, 32)), "use-after-free");
  } finally {
    deinit();
  }
});

test("item 10: a stale view of a freed block whose address was reused (detachFreed: false) is a double free; the new block lives on", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  const debug = new DebugAllocator(pool, { detachFreed: false, stackTraceFrames: 4 });
  const p = debug.alloc(16);
  debug.free(p);
  const q = debug.alloc(16);
  assert.equal(addressOf(q), addressOf(p), "the pool reuses the block (the case this is about)");
  q.fill(9);
  let thrown: unknown = null;
  try {
    debug.free(p);
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof AllocationError && thrown.category === "double-free", `got ${thrown}`);
  assert.match(thrown.message, /allocated at/, "names where the freed block was allocated");
  assert.equal(q[15], 9);
  assert.equal(debug.stats().liveAllocations, 1);
  assert.equal(debug.owns(p), false, "the stale view is not the live block's");
  assert.equal(debug.owns(q), true);
  assert.equal(category(() => debug.resize(p, 32)), "use-after-free");
  // Views derived from the live block are still accepted.
  debug.free(new Uint8Array(q.buffer, q.byteOffset, 4));
  assert.equal(debug.deinit(), "ok");
  pool.dispose();
});

test("item 10: retainMetadata holds freed memory back (a bounded quarantine) and deinit returns it", () => {
  const system = new SystemAllocator();
  const debug = new DebugAllocator(system, { retainMetadata: true, detachFreed: false });
  const addresses = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const v = debug.alloc(32);
    assert.ok(!addresses.has(addressOf(v)), "no address is handed out twice while its record is kept");
    addresses.add(addressOf(v));
    debug.free(v);
  }
  assert.equal(debug.stats().liveAllocations, 0);
  assert.equal(system.stats().liveAllocations, 50, "the quarantine holds the freed blocks");
  assert.equal(debug.deinit(), "ok");
  assert.equal(system.stats().liveAllocations, 0, "deinit gives them back");
  system.dispose();
});

// ------------------------------------------------------------------ item 11

test("item 11: with safety: false, a free through a prefix view counts the block's real size", () => {
  const debug = new DebugAllocator(new SystemAllocator(), { safety: false, memoryLimit: 1000 });
  for (let i = 0; i < 50; i++) {
    const v = debug.alloc(100);
    debug.free(v.subarray(0, 4));
  }
  assert.equal(debug.stats().allocatedBytes, 0, "no bytes left counted");
  assert.equal(debug.stats().liveAllocations, 0);
  const big = debug.alloc(900); // no spurious limit-exceeded
  debug.free(big);
  debug.dispose();
});

test("item 11: with safety: false, resize checks memoryLimit first and counts the real old size", () => {
  const system = new SystemAllocator();
  const debug = new DebugAllocator(system, { safety: false, memoryLimit: 1000 });
  const v = debug.alloc(100);
  const before = system.stats().totalAllocations;
  assert.equal(category(() => debug.resize(v, 5000)), "limit-exceeded");
  assert.equal(system.stats().totalAllocations, before, "the backing was not asked");
  assert.equal(debug.stats().allocatedBytes, 100);
  const r = debug.resize(v.subarray(0, 10), 200); // a prefix view names the whole block
  assert.equal(debug.stats().allocatedBytes, 200);
  assert.equal(debug.stats().liveAllocations, 1);
  debug.free(r);
  assert.equal(debug.stats().allocatedBytes, 0);
  assert.equal(debug.deinit(), "ok");
  system.dispose();
});

test("item 11: with safety: false, leaks() and deinit() still see every block", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  const debug = new DebugAllocator(pool, { safety: false });
  debug.alloc(10);
  debug.alloc(20);
  assert.deepEqual(debug.leaks().map((l) => l.size), [10, 20]);
  assert.equal(debug.deinit(), "leak");
  assert.equal(pool.stats().liveAllocations, 0, "deinit returned them");
  pool.dispose();
});

// ------------------------------------------------------------------ item 12

test("item 12: zero-size blocks are not counted anywhere: DebugAllocator, the global allocator, leakCheck", async () => {
  for (const options of [{}, { detachFreed: false }, { safety: false }]) {
    const debug = new DebugAllocator(undefined, options);
    const empties = [debug.alloc(0), debug.tryAlloc(0)!, debug.array(Float64Array, 0), debug.resize(debug.alloc(8), 0)];
    for (const e of empties) assert.equal(e.byteLength, 0);
    const s = debug.stats();
    assert.equal(s.liveAllocations, 0, JSON.stringify(options));
    assert.equal(s.allocatedBytes, 0);
    assert.equal(s.totalAllocations, 1, "only the 8-byte block was a block");
    assert.deepEqual(debug.leaks(), []);
    assert.equal(debug.report(), "memkit: no leaks");
    for (const e of empties) debug.free(e);
    const grown = debug.resize(empties[0], 8); // an empty view resized is a new block
    assert.equal(grown.length, 8);
    debug.free(grown);
    assert.equal(debug.deinit(), "ok");
  }
  initAllocator({ leakCheckAtExit: "off" });
  try {
    const before = getMemStats();
    const a = getAllocator();
    a.alloc(0);
    a.resize(a.alloc(8), 0);
    assert.equal(malloc(0), 0);
    assert.equal(cRealloc(malloc(8), 8, 0), 0);
    assert.equal(getMemStats().currentAllocations, before.currentAllocations);
    assert.equal(getMemStats().currentBytes, before.currentBytes);
    assert.equal(checkForLeaks(), false);
  } finally {
    deinit();
  }
  await leakCheck((a) => {
    a.alloc(0);
    a.resize(a.alloc(8), 0);
  });
});

// ------------------------------------------------------------------ lifetime

for (const options of [{}, { detachFreed: false }, { safety: false }]) {
  test(`DebugAllocator(${JSON.stringify(options)}): dispose() and deinit() end it: views read as length 0, every call throws use-after-free, twice is a no-op`, () => {
    for (const end of ["dispose", "deinit", "using"] as const) {
      const pool = new PoolAllocator({ blockSize: 256, detachFreed: true });
      let debug: DebugAllocator;
      let views: ArrayBufferView[];
      {
        using scoped = new DebugAllocator(pool, options);
        debug = scoped;
        views = [debug.alloc(64), debug.array(Float32Array, 4), debug.resize(debug.alloc(8), 100)];
        if (end === "dispose") debug.dispose();
        if (end === "deinit") assert.equal(debug.deinit(), "leak");
      }
      for (const [i, v] of views.entries()) assert.equal(v.byteLength, 0, `${end}: view ${i}`);
      for (
        const [what, fn] of [
          ["alloc", () => debug.alloc(1)],
          ["tryAlloc", () => debug.tryAlloc(1)],
          ["array", () => debug.array(Uint8Array, 1)],
          ["free", () => debug.free(views[0])],
          ["resize", () => debug.resize(views[0], 1)],
          ["check", () => debug.check()],
        ] as const
      ) assert.equal(category(fn), "use-after-free", `${end}: ${what}`);
      assert.match(
        (() => {
          try {
            debug.alloc(1);
          } catch (error) {
            return (error as Error).message;
          }
          return "";
        })(),
        /DebugAllocator (was disposed|was deinitialized)/,
      );
      assert.equal(debug.owns(views[0]), false);
      assert.equal(debug.stats().liveAllocations, 0);
      assert.equal(pool.stats().liveAllocations, 0, `${end}: every block back in the pool`);
      debug.dispose();
      assert.equal(debug.deinit(), "ok");
      pool.dispose();
    }
  });
}

test("deinit over a stack returns live blocks newest first, so the stack takes them all", () => {
  const stack = new StackAllocator({ capacity: 1 << 16 });
  const debug = new DebugAllocator(stack, { neverUnmap: true });
  const a = debug.alloc(10);
  debug.alloc(20);
  debug.alloc(30);
  debug.free(a); // kept by neverUnmap, below the others
  assert.equal(debug.deinit(), "leak");
  assert.equal(stack.stats().liveAllocations, 0);
  stack.dispose();
});

// ------------------------------------------------------------------ stack traces

function mallocHere(): number {
  const moved = cRealloc(malloc(8), 8, 32);
  if (moved === 0) throw new Error("no address");
  return moved;
}

test("traces start at the caller: memkit's own frames are never recorded (alloc, tryAlloc, array, resize, malloc, cRealloc)", () => {
  function allocateHere(debug: DebugAllocator): Uint8Array[] {
    const out = [debug.alloc(8), debug.tryAlloc(8)!];
    out.push(new Uint8Array(debug.array(Float64Array, 2).buffer));
    out.push(debug.resize(debug.alloc(8), 16));
    return out;
  }
  for (const options of [{}, { detachFreed: false }, { safety: false }]) {
    const debug = new DebugAllocator(undefined, { stackTraceFrames: 3, ...options });
    allocateHere(debug);
    const leaks = debug.leaks();
    assert.equal(leaks.length, 4);
    for (const leak of leaks) {
      const frames = (leak.stack ?? "").split("\n");
      assert.ok(frames.length >= 1 && frames.length <= 3, `${frames.length} frames: ${leak.stack}`);
      assert.match(frames[0], /allocateHere/, `the first frame is the caller's: ${leak.stack}`);
      assert.doesNotMatch(leak.stack ?? "", /src\/debug\/|src\/alloc\//, "no memkit frame");
    }
    debug.deinit();
  }
  initAllocator({ stackTraceFrames: 2, leakCheckAtExit: "off" });
  try {
    const address = mallocHere();
    const [leak] = getAllocator() instanceof DebugAllocator ? (getAllocator() as DebugAllocator).leaks() : [];
    assert.match(leak.stack ?? "", /mallocHere/);
    assert.doesNotMatch(leak.stack ?? "", /src\/debug\//);
    cFree(address, 32);
  } finally {
    deinit();
  }
});

test("a double free names where the block was allocated and first freed", () => {
  const debug = new DebugAllocator(undefined, { stackTraceFrames: 4 });
  const v = debug.alloc(24);
  function freeHere(): void {
    debug.free(v);
  }
  freeHere();
  let message = "";
  try {
    debug.free(v);
  } catch (error) {
    message = (error as Error).message;
  }
  assert.match(message, /allocated at:[\s\S]*debug_accounting_test/);
  assert.match(message, /first freed at:\n\s+at freeHere/);
  debug.deinit();
});

test("sampleEvery traces one allocation in n", () => {
  const debug = new DebugAllocator(undefined, { stackTraceFrames: 2, sampleEvery: 4 });
  for (let i = 0; i < 8; i++) debug.alloc(4);
  assert.equal(debug.leaks().filter((l) => l.stack !== undefined).length, 2);
  debug.deinit();
});

// ------------------------------------------------------------------ FailingAllocator (item 5)

test("FailingAllocator.dispose() frees what it handed out (newest first), then every call throws use-after-free", () => {
  const stack = new StackAllocator({ capacity: 1 << 16 });
  const failing = new FailingAllocator(stack, { failAfter: 10 });
  const a = failing.alloc(10);
  failing.alloc(20);
  const c = failing.array(Float32Array, 4);
  failing.free(c); // already freed: not freed again
  failing.resize(failing.alloc(8), 16);
  assert.equal(stack.stats().liveAllocations, 3);
  failing.dispose();
  assert.equal(stack.stats().liveAllocations, 0, "the stack took every block back");
  assert.equal(category(() => failing.alloc(1)), "use-after-free");
  assert.equal(category(() => failing.tryAlloc(1)), "use-after-free");
  assert.equal(category(() => failing.free(a)), "use-after-free");
  assert.equal(failing.owns(a), false);
  failing.dispose();
  stack.dispose();
  {
    using scoped = new FailingAllocator(new SystemAllocator(), { failAfter: 1 });
    const v = scoped.alloc(8);
    assert.equal(scoped.tryAlloc(8), null);
    void v;
  }
});

test("FailingAllocator's blocks are leased from its backing (its lease table is the backing's)", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  const failing = new FailingAllocator(pool, { failAfter: 100 });
  assert.equal(leaseTableOf(failing), leaseTableOf(pool));
  const revoked: string[] = [];
  const holder: LeaseHolder = { revoke: (reason) => revoked.push(reason) };
  const v = failing.alloc(64);
  assert.ok(leaseBlock(failing, v, holder) !== null);
  pool.free(v);
  assert.equal(revoked.length, 1);
  pool.dispose();
  // An arena over a FailingAllocator ends when the memory goes.
  const system = new SystemAllocator();
  const between = new FailingAllocator(system, { failAfter: 100 });
  const arena = new Arena({ backing: between, capacity: 4096 });
  const inner = arena.alloc(32);
  between.dispose();
  assert.equal(inner.byteLength, 0, "the arena's view reads as length 0 once its chunk went back");
  assert.equal(category(() => arena.alloc(8)), "use-after-free");
  system.dispose();
});
