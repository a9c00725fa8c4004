// Adversarial tests of MemoryInterface after its fast paths (stats cache keyed
// by version and count, per-frame counts through the origin) and the
// allocateAsync / pressure monitor / interface registry rework.
//
// - getMemoryStats never answers with figures something the program did has
//   made stale: a frame's end (even with nothing counted left in it), a
//   defragmentation, a block of the caller's own through getAllocator, or
//   (within 100 ms, however few the calls) a heap handle's own free().
// - A randomized model of three interfaces sharing the system allocator's
//   addresses: every figure after every step, frees through the wrong
//   interface and of stale targets refused with their category and changing
//   nothing, no live block ever lost.
// - Waiters of every timeout settle at dispose, and the process exits.
// - A monitor started by an interface that was collected without dispose()
//   does not stay started on its behalf.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type MemoryAllocation,
  MemoryInterface,
  type MemoryStats,
  type MemoryStatus,
  type MemoryType,
  PressureMonitor,
} from "../../mod.ts";
import { below, fixture, runChild, xorshift32 } from "../_helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A full collection (Deno with --expose-gc, Bun), or null where the runtime gives none. */
function collector(): (() => void) | null {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun !== undefined) return () => g.Bun!.gc(true);
  return typeof g.gc === "function" ? g.gc : null;
}

/** What the figures of a type served by one allocator must be, from that allocator's own statistics. */
function fromAllocator(stats: { capacityBytes: number; allocatedBytes: number; fragmentation: number }) {
  const held = stats.capacityBytes;
  return {
    fragmentation: held > 0 ? stats.fragmentation : 0,
    allocationEfficiency: held > 0 ? Math.min(1, stats.allocatedBytes / held) : 1,
  };
}

const figures = (s: MemoryStats) => ({ fragmentation: s.fragmentation, allocationEfficiency: s.allocationEfficiency });

/** The two figures equal up to rounding (the stats weigh fragmentation by capacity and divide it back out). */
function sameFigures(actual: ReturnType<typeof figures>, expected: ReturnType<typeof figures>, message?: string) {
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12;
  assert.ok(
    close(actual.fragmentation, expected.fragmentation) &&
      close(actual.allocationEfficiency, expected.allocationEfficiency),
    `${message ?? "figures"}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`,
  );
}

test("getMemoryStats after endFrame() of a frame whose temporaries were all deallocated: the arena's figures now", () => {
  using memory = new MemoryInterface({ pressure: false });
  const arena = memory.getAllocator("arena");
  memory.beginFrame();
  const a = memory.allocateTyped(1000, "temporary");
  const b = memory.allocateTyped(1000, "temporary");
  memory.deallocate(a); // not the arena's last block: its bytes stay taken until the frame ends
  memory.deallocate(b);
  sameFigures(figures(memory.getMemoryStats("temporary")), fromAllocator(arena.stats()));
  memory.endFrame(); // nothing counted left in the frame, but the arena gives its bytes back
  assert.equal(arena.stats().allocatedBytes, 0);
  sameFigures(figures(memory.getMemoryStats("temporary")), fromAllocator(arena.stats()));
  assert.equal(memory.getMemoryStats().allocationEfficiency, 0, "overall: nothing allocated anywhere");
});

test("getMemoryStats after defragment(): the heap's fragmentation after the move, not before", () => {
  using memory = new MemoryInterface({ pressure: false });
  const heap = memory.getAllocator("free-list");
  const handles = Array.from({ length: 8 }, () => heap.handle(4096));
  for (let i = 0; i < 8; i += 2) handles[i].free();
  const before = memory.getMemoryStats("video");
  assert.ok(before.fragmentation > 0, "holes between the handles");
  const report = memory.defragment();
  assert.ok(report.movedBlocks > 0);
  assert.equal(heap.stats().fragmentation, 0);
  sameFigures(figures(memory.getMemoryStats("video")), fromAllocator(heap.stats()));
  // The guard's own defragment() and defragmentAllocator() too.
  const more = Array.from({ length: 4 }, () => heap.handle(4096));
  more[0].free();
  more[2].free();
  memory.getMemoryStats("video");
  heap.defragment();
  sameFigures(figures(memory.getMemoryStats("video")), fromAllocator(heap.stats()));
  for (const h of [...handles, ...more]) if (!h.freed) h.free();
});

test("getMemoryStats after blocks of the caller's own through getAllocator: the allocators' figures now", () => {
  using memory = new MemoryInterface({ pressure: false });
  const sprite = memory.allocateTyped(64, "pool");
  const pool = memory.getAllocator("pool");
  const stack = memory.getAllocator("stack");
  memory.getMemoryStats("pool");
  memory.getMemoryStats("stack");
  const mine = pool.alloc(4000); // another class pool: a chunk of its own
  sameFigures(figures(memory.getMemoryStats("pool")), fromAllocator(pool.stats()));
  pool.free(mine);
  sameFigures(figures(memory.getMemoryStats("pool")), fromAllocator(pool.stats()));
  const mark = stack.mark();
  stack.alloc(100_000);
  const s = memory.getMemoryStats("stack");
  assert.equal(s.largestFreeBlock, stack.stats().largestFreeBlock, "the stack's room above its top");
  stack.rewind(mark);
  assert.equal(memory.getMemoryStats("stack").largestFreeBlock, stack.stats().largestFreeBlock);
  assert.equal(memory.getMemoryStats("pool").allocationCount, 1, "the caller's blocks are not counted");
  memory.deallocate(sprite);
});

test("getMemoryStats after a heap handle's own free(): within 100 ms, however few the calls", async () => {
  using memory = new MemoryInterface({ pressure: false });
  const heap = memory.getAllocator("free-list");
  const handles = Array.from({ length: 4 }, () => heap.handle(8192));
  const before = memory.getMemoryStats("video");
  handles[1].free(); // the heap hears of it; the interface cannot
  await sleep(120);
  assert.notDeepEqual(figures(before), fromAllocator(heap.stats()), "the free changed the heap's figures");
  sameFigures(figures(memory.getMemoryStats("video")), fromAllocator(heap.stats()));
  for (const h of handles) if (!h.freed) h.free();
});

// Three interfaces with small budgets (so temporary requests fall back to system memory); every step checked.
const TYPES: MemoryType[] = ["system", "video", "audio", "network", "shared", "temporary", "stack", "pool"];

interface Live {
  a: MemoryAllocation;
  owner: number;
  type: MemoryType;
  size: number;
  frame: object;
  byte: number;
  address: number;
  view: Uint8Array;
}

function model(seed: number, steps: number): void {
  const next = xorshift32(seed);
  const budgets = { temporary: 8192, pool: 16384, system: 1 << 20 };
  const interfaces = [0, 1, 2].map(() => new MemoryInterface({ budgets, pressure: false }));
  const arenas = interfaces.map((m) => m.getAllocator("arena"));
  const live: Live[] = [];
  const gone: Live[] = [];
  const frames: object[][] = interfaces.map(() => [{}]); // what is allocated outside frames, then each open frame
  const peaks = interfaces.map(() => new Map<string, number>());
  const used = (i: number, t?: MemoryType) =>
    live.filter((l) => l.owner === i && (t === undefined || l.type === t)).reduce((s, l) => s + l.size, 0);
  const count = (i: number, t?: MemoryType) =>
    live.filter((l) => l.owner === i && (t === undefined || l.type === t)).length;
  const notePeaks = (i: number) => {
    for (const t of [...TYPES, undefined]) {
      const u = used(i, t), key = t ?? "all";
      if (u > (peaks[i].get(key) ?? 0)) peaks[i].set(key, u);
    }
  };
  const release = (l: Live) => {
    live.splice(live.indexOf(l), 1);
    gone.push(l);
  };
  const endFrame = (i: number) => {
    const f = frames[i].length > 1 ? frames[i].pop()! : frames[i][0];
    if (f === frames[i][0]) frames[i][0] = {};
    for (const l of live.filter((x) => x.owner === i && x.frame === f)) release(l);
  };
  const check = (where: string) => {
    for (let i = 0; i < 3; i++) {
      for (const t of [...TYPES, undefined]) {
        const s = interfaces[i].getMemoryStats(t);
        const at = `${where}: interface ${i}, ${t ?? "overall"}`;
        assert.equal(s.usedBytes, used(i, t), `${at}: usedBytes`);
        assert.equal(s.allocationCount, count(i, t), `${at}: allocationCount`);
        assert.equal(s.peakUsedBytes, peaks[i].get(t ?? "all") ?? 0, `${at}: peakUsedBytes`);
        // Released blocks the arena still holds count against the budget (see temporary_held_test.ts).
        assert.equal(s.freeBytes, Math.max(0, s.totalBytes - s.usedBytes - s.unreclaimedBytes), `${at}: freeBytes`);
      }
      // What the arena holds is the interface's live arena blocks and its released ones it has not given back.
      const inArena = live.filter((l) => l.owner === i && l.a.allocator === "arena").reduce((s, l) => s + l.size, 0);
      assert.equal(
        arenas[i].stats().allocatedBytes,
        inArena + interfaces[i].getMemoryStats().unreclaimedBytes,
        `${where}: interface ${i}, the arena's bytes`,
      );
      const temporary = figures(interfaces[i].getMemoryStats("temporary"));
      sameFigures(temporary, fromAllocator(arenas[i].stats()), `${where}: interface ${i}, the arena's figures`);
    }
    for (const l of live) {
      assert.equal(l.a.bytes.length, l.size, `${where}: a live ${l.type} block's length`);
      assert.equal(l.a.bytes[0], l.byte, `${where}: a live ${l.type} block's contents`);
      assert.equal(l.a.bytes[l.size - 1], l.byte, `${where}: a live ${l.type} block's contents`);
    }
  };
  const snapshot = () => interfaces.map((m) => TYPES.map((t) => m.getMemoryStats(t)));
  const refused = (error: unknown, categories: string[], where: string) =>
    assert.ok(error instanceof AllocationError && categories.includes(error.category), `${where}: ${error}`);

  for (let step = 0; step < steps; step++) {
    const i = below(next, 3), memory = interfaces[i];
    const op = below(next, 100);
    let where = `seed ${seed} step ${step}`;
    if (op < 40) {
      const kind = below(next, 5);
      const size = 1 + below(next, kind === 1 ? 4096 : 3000);
      where += ` allocate ${["system", "pool", "temporary", "temporary with fallback", "system from the arena"][kind]}`;
      let a: MemoryAllocation | null = null;
      try {
        if (kind === 0) a = memory.allocate(size);
        else if (kind === 1) a = memory.allocateTyped(size, "pool");
        else if (kind === 2) a = memory.allocateTyped(size, "temporary");
        else if (kind === 3) a = memory.allocate({ size, type: "temporary", allowFallback: true });
        else a = memory.allocate({ size, preferredAllocator: "arena" });
      } catch (error) {
        refused(error, ["limit-exceeded"], where);
      }
      if (a !== null) {
        const byte = 1 + below(next, 255);
        a.bytes.fill(byte);
        const frame = a.allocator === "arena" ? frames[i].at(-1)! : {};
        live.push({ a, owner: i, type: a.type, size, frame, byte, address: a.address, view: a.bytes });
        notePeaks(i);
      }
    } else if (op < 70 && live.length > 0) {
      const l = live[below(next, live.length)];
      const how = below(next, 3);
      const by = below(next, 4) === 0 ? (l.owner + 1) % 3 : l.owner;
      where += ` deallocate interface ${l.owner}'s ${l.type} by ${
        ["allocation", "view", "address"][how]
      } through ${by}`;
      const before = snapshot();
      try {
        interfaces[by].deallocate(how === 0 ? l.a : how === 1 ? l.a.bytes : l.address);
        assert.equal(by, l.owner, `${where}: deallocated through another interface`);
        release(l);
      } catch (error) {
        assert.notEqual(by, l.owner, `${where}: ${error}`);
        refused(error, ["mismatched-allocator"], where);
        assert.deepEqual(snapshot(), before, `${where}: a refusal changes nothing`);
      }
    } else if (op < 78 && gone.length > 0) {
      // A target kept from a released block, whose place another block (of any interface) may hold now.
      const l = gone[below(next, gone.length)];
      const how = below(next, 3);
      const by = below(next, 3);
      where += ` deallocate a released ${l.type} by ${["allocation", "view", "address"][how]} through ${by}`;
      // An address is only a number: a live block of that interface starting there now is what it names.
      const there = how === 2 ? live.find((x) => x.owner === by && x.address === l.address) : undefined;
      if (there !== undefined) {
        interfaces[by].deallocate(l.address);
        release(there);
        check(`${where}, which a live block starts at now`);
        continue;
      }
      const before = snapshot();
      assert.throws(
        () => interfaces[by].deallocate(how === 0 ? l.a : how === 1 ? l.view : l.address),
        (error) => (refused(error, ["double-free", "invalid-free", "mismatched-allocator"], where), true),
        `${where}: a released block's target freed something`,
      );
      assert.deepEqual(snapshot(), before, `${where}: a refusal changes nothing`);
    } else if (op < 86) {
      memory.beginFrame();
      frames[i].push({});
      where += " beginFrame";
    } else if (op < 96) {
      memory.endFrame();
      endFrame(i);
      where += " endFrame";
    } else {
      where += " frame() scope";
      try {
        using _scope = memory.frame();
        frames[i].push({});
        const a = memory.allocateTyped(100, "temporary");
        a.bytes.fill(9);
        live.push({
          a,
          owner: i,
          type: "temporary",
          size: 100,
          frame: frames[i].at(-1)!,
          byte: 9,
          address: a.address,
          view: a.bytes,
        });
        notePeaks(i);
        check(`${where}, inside`);
        throw new Error("leaves the scope");
      } catch (error) {
        if (!(error instanceof Error && error.message === "leaves the scope")) {
          refused(error, ["limit-exceeded"], where);
        }
      }
      endFrame(i); // the scope's frame ended with it, the exception notwithstanding
    }
    check(where);
  }
  for (const m of interfaces) m.dispose();
}

test("model: three interfaces sharing addresses, every figure after every step, refusals change nothing", () => {
  for (let seed = 1; seed <= 6; seed++) model(seed, 600);
});

test("allocateAsync: waiters of every timeout settle at dispose and leave no timer behind (child)", () => {
  const child = runChild(fixture("hal_adversary2_waiters.ts"), {}, [], 60_000);
  assert.equal(child.signal, null, `the child hung or crashed: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout.trim().split("\n").at(-1)!), {
    first: "timeout",
    rest: ["served", "use-after-free", "use-after-free", "use-after-free"],
    critical: true,
    heldBack: "use-after-free",
    monitorRunning: false,
  });
});

/** A monitor over a 1000-byte machine with 900 bytes available, sampling every 10 ms. */
function quietMonitor(): PressureMonitor {
  const read = (): MemoryStatus => ({
    totalBytes: 1000,
    availableBytes: 900,
    limitBytes: null,
    usedBytes: 100,
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events: null,
  });
  return new PressureMonitor({ read, intervalMs: 10, hysteresis: 1 });
}

test("a shared monitor: disposed in either order, twice, it stops with the last interface that started it", () => {
  for (const order of [[0, 1], [1, 0]]) {
    const monitor = quietMonitor();
    const both = [new MemoryInterface({ pressure: monitor }), new MemoryInterface({ pressure: monitor })];
    both[order[0]].dispose();
    both[order[0]].dispose();
    assert.equal(monitor.running, true, "the other interface still uses it");
    both[order[1]].dispose();
    assert.equal(monitor.running, false);
  }
  // Stopped by the caller while an interface runs, started again by a second interface.
  const monitor = quietMonitor();
  const first = new MemoryInterface({ pressure: monitor });
  monitor.stop();
  const second = new MemoryInterface({ pressure: monitor });
  assert.equal(monitor.running, true);
  first.dispose();
  assert.equal(monitor.running, true, "the second interface started it and is live");
  second.dispose();
  assert.equal(monitor.running, false);
});

test("a monitor started by an interface collected without dispose() stops with the last live one", async () => {
  const gc = collector();
  if (gc === null) return; // Deno without --expose-gc
  const monitor = quietMonitor();
  const dropped = (() => new WeakRef(new MemoryInterface({ pressure: monitor })))(); // started it, never disposed
  // Until it is collected (JavaScriptCore scans the stack conservatively: a few collections may not be enough
  // under load), then a turn for its finalizer.
  for (let i = 0; i < 100 && dropped.deref() !== undefined; i++) {
    gc();
    await sleep(10);
  }
  if (dropped.deref() !== undefined) return; // never collected here: nothing to see
  await sleep(10);
  const live = new MemoryInterface({ pressure: monitor });
  assert.equal(monitor.running, true);
  live.dispose();
  assert.equal(monitor.running, false, "no live interface that started it is left");

  // The last interface that started it collected: the monitor stops by itself (no timer sampling forever).
  const lone = quietMonitor();
  (() => {
    new MemoryInterface({ pressure: lone });
  })();
  for (let i = 0; i < 100 && lone.running; i++) {
    gc();
    await sleep(20);
  }
  assert.equal(lone.running, false);
});

test("another interface's collected allocation, by view or address, is refused and frees nothing", async () => {
  const gc = collector();
  if (gc === null) return;
  using memory = new MemoryInterface({ pressure: false });
  const mine = memory.allocate(64);
  mine.bytes.fill(5);
  let view: Uint8Array = new Uint8Array(0), address = 0;
  (() => {
    const other = new MemoryInterface({ pressure: false });
    const a = other.allocate(64);
    view = a.bytes;
    address = a.address;
  })();
  for (let i = 0; i < 5; i++) {
    gc();
    await sleep(10);
  }
  for (const target of [view, address]) {
    // "invalid-free" once the other interface is collected ("mismatched-allocator" while a conservative
    // collector still keeps it): refused either way, and nothing of this interface's freed.
    assert.throws(
      () => memory.deallocate(target),
      (e) => e instanceof AllocationError && ["invalid-free", "mismatched-allocator"].includes(e.category),
    );
  }
  assert.equal(memory.getMemoryStats().allocationCount, 1);
  assert.equal(mine.bytes[63], 5);
  memory.deallocate(mine);
});
