import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import {
  addressOf,
  AllocationError,
  type AllocationErrorCategory,
  type Allocator,
  Arena,
  cFree,
  checkForLeaks,
  cRealloc,
  DebugAllocator,
  deinit,
  FailingAllocator,
  FreeListAllocator,
  gcHint,
  getAllocator,
  getMemStats,
  initAllocator,
  leakCheck,
  malloc,
  nativeInfo,
  onGC,
  PoolAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { below, fixture, runChild, xorshift32 } from "../_helpers.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

// The class of what `fn` threw ("ok" when it returned).
function outcomeOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

function raw(address: number, length: number): Uint8Array {
  // SAFETY: the tests only touch bytes inside live (or never-unmapped) debug blocks and their canaries.
  return new Uint8Array(native.wrap(address, length));
}

interface BugRow {
  name: string;
  expect: AllocationErrorCategory;
  /** Sets up and commits the bug; returns what the report must mention. */
  run: (debug: DebugAllocator) => string;
}

const BUGS: BugRow[] = [
  {
    name: "double free",
    expect: "double-free",
    run: (d) => {
      const v = d.alloc(24);
      d.free(v);
      d.free(v);
      return "24-byte block";
    },
  },
  {
    name: "double free after the memory was reused",
    expect: "double-free",
    run: (d) => {
      const p = d.alloc(40);
      d.free(p);
      const q = d.alloc(40); // likely the same memory
      try {
        d.free(p);
      } finally {
        d.free(q);
      }
      return "40-byte block";
    },
  },
  {
    name: "C-style double free after the address would be reused (neverUnmap + retainMetadata)",
    expect: "double-free",
    run: () => {
      initAllocator({ neverUnmap: true, retainMetadata: true, leakCheckAtExit: "off" });
      const a = malloc(48);
      cFree(a, 48);
      const b = malloc(48);
      try {
        cFree(a, 48);
      } finally {
        cFree(b, 48);
        deinit();
      }
      return "48-byte block";
    },
  },
  {
    name: "invalid free of a foreign view",
    expect: "invalid-free",
    run: (d) => {
      d.free(new Uint8Array(16));
      return "Uint8Array(16 bytes)";
    },
  },
  {
    name: "invalid free of an interior view",
    expect: "invalid-free",
    run: (d) => {
      const v = d.alloc(64);
      try {
        d.free(v.subarray(8));
      } finally {
        d.free(v);
      }
      return "offset 8 of the 64-byte block";
    },
  },
  {
    name: "free into the wrong allocator (another DebugAllocator)",
    expect: "mismatched-allocator",
    run: (d) => {
      const other = new DebugAllocator();
      const v = other.alloc(16);
      try {
        d.free(v);
      } finally {
        other.free(v);
        other.deinit();
      }
      return "another debug allocator";
    },
  },
  {
    name: "free of a pool's block",
    expect: "mismatched-allocator",
    run: (d) => {
      using pool = new PoolAllocator({ blockSize: 16 });
      const v = pool.alloc(16);
      d.free(v);
      return "pool";
    },
  },
  {
    name: "C-style free with the wrong size",
    expect: "invalid-free",
    run: () => {
      initAllocator({ leakCheckAtExit: "off" });
      const a = malloc(32);
      try {
        cFree(a, 33);
      } finally {
        cFree(a, 32);
        deinit();
      }
      return "allocated with size 32";
    },
  },
  {
    name: "overflow past the end, caught on free",
    expect: "corruption",
    run: (d) => {
      const v = d.alloc(30);
      raw(addressOf(v), 31)[30] = 1; // one byte past the end, through a raw pointer
      d.free(v);
      return "overflow";
    },
  },
  {
    name: "overflow past a word-aligned end, caught on free",
    expect: "corruption",
    run: (d) => {
      const v = d.alloc(32);
      raw(addressOf(v), 48)[47] = 0; // the last byte of the canary
      d.free(v);
      return "written 16 bytes past its end";
    },
  },
  {
    name: "underflow that overwrote the block's header, caught on free",
    expect: "corruption",
    run: (d) => {
      const v = d.alloc(40);
      raw(addressOf(v) - 16, 8).fill(0); // where the header names the block
      d.free(v);
      return "underflow";
    },
  },
  {
    name: "underflow before the start, caught by check()",
    expect: "corruption",
    run: (d) => {
      const v = d.alloc(30);
      raw(addressOf(v) - 1, 1)[0] = 1;
      try {
        d.check();
      } finally {
        raw(addressOf(v) - 1, 1)[0] = 0xfd; // repair so the block can be freed
        d.free(v);
      }
      return "underflow";
    },
  },
  {
    name: "memory limit",
    expect: "limit-exceeded",
    run: () => {
      const limited = new DebugAllocator(undefined, { memoryLimit: 1010 });
      const a = limited.alloc(4);
      const b = limited.alloc(1000);
      try {
        limited.alloc(8);
      } finally {
        limited.free(a);
        limited.alloc(8); // headroom is back
        limited.free(b);
        limited.deinit();
      }
      return "1010-byte memory limit";
    },
  },
  {
    name: "use after deinit",
    expect: "use-after-free",
    run: () => {
      const gone = new DebugAllocator();
      gone.deinit();
      gone.alloc(1);
      return "deinitialized";
    },
  },
  {
    name: "resize of a freed block",
    expect: "use-after-free",
    run: (d) => {
      const v = d.alloc(12);
      d.free(v);
      d.resize(v, 24);
      return "already freed";
    },
  },
];

for (const [row, detachFreed] of BUGS.flatMap((r) => [[r, true], [r, false]] as const)) {
  test(`DebugAllocator${detachFreed ? "" : " (detachFreed: false)"} catches ${row.name}: AllocationError("${row.expect}"), and keeps working`, () => {
    const debug = new DebugAllocator(undefined, { stackTraceFrames: 6, detachFreed });
    let thrown: unknown = null;
    let mention = "";
    try {
      mention = row.run(debug);
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof AllocationError, `expected an AllocationError, got ${thrown}`);
    assert.equal(thrown.category, row.expect, thrown.message);
    if (mention) assert.ok(thrown.message.includes(mention) || thrown.message.includes(row.expect), thrown.message);
    const v = debug.alloc(100);
    v.fill(1);
    debug.free(v);
    debug.check();
    assert.equal(debug.deinit(), "ok");
  });
}

test("DebugAllocator reports leaks at deinit with size, address and allocation site", () => {
  const debug = new DebugAllocator(undefined, { stackTraceFrames: 6 });
  const blocks = [debug.alloc(10), debug.alloc(20), debug.alloc(30)];
  debug.free(blocks[0]);
  debug.free(blocks[2]);
  const leaks = debug.leaks();
  assert.equal(leaks.length, 1);
  assert.equal(leaks[0].size, 20);
  assert.equal(leaks[0].address, addressOf(blocks[1]));
  assert.match(leaks[0].stack ?? "", /debug_allocator_test\.ts/);
  const report = debug.report();
  assert.match(report, /1 leaked block, 20 bytes/);
  assert.match(report, new RegExp(`0x${leaks[0].address.toString(16)}`));
  assert.equal(debug.deinit(), "leak");
  assert.equal(blocks[1].length, 0, "deinit detaches leaked blocks too");
});

test("DebugAllocator with detachFreed: true detaches freed views and poisons memory", () => {
  const debug = new DebugAllocator(undefined, { poison: true, neverUnmap: true, detachFreed: true });
  const v = debug.alloc(64);
  assert.ok(v.every((b) => b === 0xaa), "fresh bytes are 0xAA");
  const address = addressOf(v);
  const sub = v.subarray(10);
  debug.free(v);
  assert.equal(v.length, 0);
  assert.equal(sub.length, 0);
  assert.ok(raw(address, 64).every((b) => b === 0xdd), "freed bytes are 0xDD (kept by neverUnmap)");
  debug.deinit();
});

test("DebugAllocator.resize() always moves and detaches the old view", () => {
  const debug = new DebugAllocator();
  const v = debug.alloc(8).fill(3);
  const bigger = debug.resize(v, 16);
  assert.equal(v.length, 0);
  assert.equal(bigger[7], 3);
  debug.free(bigger);
  assert.equal(debug.deinit(), "ok");
});

test("DebugAllocator over an arena and with safety off (counters only)", () => {
  const arena = new Arena({ capacity: 1 << 16 });
  const debug = new DebugAllocator(arena);
  debug.free(debug.alloc(32));
  assert.equal(debug.deinit(), "ok");
  const counting = new DebugAllocator(new SystemAllocator(), { safety: false });
  const v = counting.alloc(10);
  assert.equal(counting.stats().liveAllocations, 1);
  counting.free(v);
  assert.equal(counting.stats().liveAllocations, 0);
  arena.reset("free-all");
});

test("the global allocator counts, checks for leaks, and serves C-style calls", () => {
  initAllocator({ leakCheckAtExit: "off" });
  const before = getMemStats();
  let address = malloc(16);
  raw(address, 16).fill(7);
  address = cRealloc(address, 16, 64);
  assert.equal(raw(address, 64)[15], 7);
  assert.equal(getMemStats().currentBytes - before.currentBytes, 64);
  assert.equal(checkForLeaks(), true);
  cFree(address, 64);
  const block = getAllocator().alloc(8);
  getAllocator().free(block);
  assert.equal(checkForLeaks(), false);
  assert.throws(() => cFree(12345, 8), (e: unknown) => e instanceof AllocationError && e.category === "invalid-free");
  assert.throws(() => malloc(-1), RangeError);
  assert.throws(() => cFree("1" as unknown as number, 8), TypeError);
  deinit();
});

test("leakCheck() passes clean code and fails leaking code with the blocks listed", async () => {
  assert.equal(
    await leakCheck((a) => {
      a.free(a.alloc(10));
      return 42;
    }),
    42,
  );
  await assert.rejects(
    leakCheck(async (a) => {
      await Promise.resolve();
      a.alloc(77);
    }),
    (e: unknown) => e instanceof AllocationError && e.category === "leak" && /77 bytes/.test(e.message),
  );
});

test("FailingAllocator fails the k-th allocation, so every out-of-memory path can be walked", () => {
  // Zig's checkAllAllocationFailures: a function that allocates 3 blocks and frees
  // what it got when one fails must never leak, whichever allocation fails.
  function build(allocator: FailingAllocator): void {
    const got: Uint8Array[] = [];
    try {
      for (let i = 0; i < 3; i++) got.push(allocator.alloc(16));
    } finally {
      for (const b of got) allocator.free(b);
    }
  }
  for (let k = 0; k <= 3; k++) {
    const debug = new DebugAllocator();
    const failing = new FailingAllocator(debug, { failAfter: k });
    if (k < 3) {
      assert.throws(
        () => build(failing),
        (e: unknown) => e instanceof AllocationError && e.category === "out-of-memory",
      );
    } else build(failing);
    assert.equal(debug.deinit(), "ok", `failAfter ${k} leaked`);
  }
  assert.throws(() => new FailingAllocator(new SystemAllocator(), { failAfter: -1 }), RangeError);
});

for (const realm of ["frozen", "prepare", "accessor"] as const) {
  const hostility = {
    frozen: "Object.freeze(Error)",
    prepare: "a throwing Error.prepareStackTrace under Object.freeze(Error)",
    accessor: "an Error.stackTraceLimit accessor that throws",
  }[realm];
  test(`traced allocations after ${hostility}: each call works (or changes nothing), leaks() and report() never throw`, () => {
    const child = runChild(fixture("debug_hostile_realm.ts"), {}, [realm]);
    assert.equal(child.status, 0, child.stderr);
    const steps = child.stdout.trim().split("\n").map((line) =>
      JSON.parse(line) as { step: string; outcome: string; live: number; leaks: number | string }
    );
    assert.equal(steps.length, 30, child.stdout);
    for (const { step, outcome, live, leaks } of steps) {
      // The counters and the list of live blocks agree after every call (no block recorded but not handed out,
      // none freed but still listed), and every call did what it does in a realm left alone.
      assert.equal(leaks, live, `${step}: leaks() says ${leaks}, the counters ${live}`);
      if (step.endsWith("report")) {
        // Under a frozen Error the site is captured at the program's own stackTraceLimit; a hostile
        // prepareStackTrace or stackTraceLimit may cost it (the engines differ), never the report.
        if (realm === "frozen" && !step.startsWith("early")) assert.equal(outcome, "sited", step);
        else assert.ok(outcome === "sited" || outcome === "ok", `${step}: ${outcome}`);
      } else {assert.equal(
          outcome,
          step.endsWith("second free") || step === "second cFree" ? "double-free" : "ok",
          step,
        );}
      const expectedLive = /alloc$|resize$|report$|leaks$|^malloc$/.test(step) ? 1 : 0;
      assert.equal(live, expectedLive, step);
    }
  });
}

test("FailingAllocator counts only allocations: calls refused for their arguments use up nothing, and keep their error once allocations fail", () => {
  const system = new SystemAllocator();
  const counting = new FailingAllocator(system, { failAfter: 2 });
  assert.throws(() => counting.alloc(-1), RangeError);
  assert.throws(() => counting.alloc(NaN), RangeError);
  assert.throws(() => counting.alloc(8, 3), RangeError);
  assert.throws(() => counting.tryAlloc(any("8")), TypeError);
  assert.throws(() => counting.array(any(Object), 3), TypeError);
  assert.throws(() => counting.array(Float64Array, -1), RangeError);
  assert.equal(counting.allocations, 0, "no argument error counts as an allocation");
  const first = counting.alloc(8), second = counting.array(Float64Array, 2);
  assert.equal(counting.allocations, 2);
  assert.equal(counting.failures, 0);
  counting.free(first);
  counting.free(second);
  // Failing from the first allocation on: a bad call is still its own error (not out-of-memory, not null).
  const failing = new FailingAllocator(system, { failAfter: 0 });
  assert.throws(() => failing.alloc(any("8")), TypeError);
  assert.throws(() => failing.tryAlloc(-5), RangeError);
  assert.throws(() => failing.array(any(Object), 3), TypeError);
  assert.throws(() => failing.alloc(8, 2 ** 40), RangeError);
  assert.equal(failing.allocations, 0);
  assert.equal(failing.failures, 0);
  assert.equal(failing.tryAlloc(8), null);
  assert.equal(failing.failures, 1);
  // A backing's own refusal of an argument (its stricter limit) made no allocation either.
  const pool = new PoolAllocator({ blockSize: 64 });
  const overPool = new FailingAllocator(pool, { failAfter: 1 });
  const refused = outcomeOf(() => overPool.alloc(1000));
  if (refused === "RangeError" || refused === "TypeError") assert.equal(overPool.allocations, 0, refused);
  overPool.free(overPool.alloc(64));
  assert.equal(overPool.allocations, 1);
  pool.dispose();
  system.dispose();
});

test("FailingAllocator passes on whatever its backing's allocation throws, without running its code (a revoked Proxy, getters)", () => {
  let ran = 0;
  const revoked = Proxy.revocable(new RangeError("x"), {});
  revoked.revoke();
  const trapped = new Proxy(new TypeError("x"), {
    get: () => (ran++, "trapped"),
    getPrototypeOf: () => (ran++, TypeError.prototype),
    getOwnPropertyDescriptor: () => (ran++, undefined),
  });
  const bomb = Object.defineProperty(new RangeError("x"), "message", {
    get() {
      ran++;
      throw new Error("getter bomb");
    },
  });
  for (
    const [what, thrown, counted] of [
      ["a revoked Proxy", revoked.proxy, 1],
      ["a Proxy with traps", trapped, 1],
      ["a Symbol", Symbol("keep"), 1],
      ["null", null, 1],
      ["a RangeError whose message getter throws", bomb, 0],
    ] as const
  ) {
    const system = new SystemAllocator();
    const backing = {
      kind: "system",
      alloc: () => {
        throw thrown;
      },
      tryAlloc: () => {
        throw thrown;
      },
      array: () => {
        throw thrown;
      },
      free: (view: Uint8Array) => system.free(view),
      resize: (view: Uint8Array, size: number) => system.resize(view, size),
      owns: (view: Uint8Array) => system.owns(view),
      stats: () => system.stats(),
    } as unknown as Allocator;
    const failing = new FailingAllocator(backing, { failAfter: 10 });
    ran = 0;
    for (const call of [() => failing.alloc(8), () => failing.tryAlloc(8), () => failing.array(Uint8Array, 8)]) {
      let error: unknown = "nothing thrown";
      try {
        call();
      } catch (e) {
        error = e;
      }
      if (error !== thrown) assert.fail(`${what}: threw ${error instanceof Error ? error.message : typeof error}`);
    }
    assert.equal(ran, 0, `${what}: a getter or trap of the thrown value ran`);
    // A RangeError or TypeError refuses the arguments: no allocation. Anything else counts as one.
    assert.equal(failing.allocations, 3 * counted, what);
    system.dispose();
  }
});

test("onGC(): a watcher another watcher stops during the same collection's calls is not called after its stop returned", async (t) => {
  if (!gcHint()) {
    t.skip("the runtime refuses collections on request (Deno without --expose-gc)");
    return;
  }
  const calls: string[] = [];
  let stopB: () => void = () => {};
  let stopped = false;
  const stopA = onGC(() => {
    calls.push("A");
    if (!stopped) {
      stopB();
      stopped = true;
    }
  });
  stopB = onGC(() => calls.push(stopped ? "B after its stop" : "B"));
  for (let i = 0; i < 20 && !stopped; i++) {
    gcHint();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  stopA();
  assert.ok(stopped, "a collection was observed");
  assert.ok(!calls.includes("B after its stop"), calls.join(", "));
});

test("onGC() calls back after collections that gcHint() asks for", async () => {
  let calls = 0;
  const stop = onGC(() => calls++);
  const allowed = gcHint();
  for (let i = 0; i < 20 && calls === 0 && allowed; i++) {
    gcHint();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  stop();
  if (allowed) assert.ok(calls > 0);
  else assert.equal(nativeInfo().runtime, "deno", "only Deno without --expose-gc refuses");
});

for (const mode of ["warn", "fail"] as const) {
  test(`a leaking script prints the exit report and, with "${mode}", exits ${mode === "fail" ? "non-zero" : "0"}`, () => {
    const child = runChild(fixture("leak_exit.ts"), {}, [mode, "leak"]);
    assert.match(child.stdout, /done/);
    assert.match(child.stderr, /memkit: 2 leaked blocks, 128 bytes/);
    assert.match(child.stderr, /100 bytes at 0x[0-9a-f]+/);
    assert.match(child.stderr, /28 bytes at 0x[0-9a-f]+/);
    assert.equal(child.status, mode === "fail" ? 1 : 0, child.stderr);
  });
}

test('a leaking script with "fail" exits non-zero even after process.exit(0)', () => {
  const child = runChild(fixture("leak_exit.ts"), {}, ["fail", "leak", "exit0"]);
  assert.match(child.stderr, /2 leaked blocks/);
  assert.equal(child.status, 1);
});

test("a clean script prints nothing and exits 0", () => {
  const child = runChild(fixture("leak_exit.ts"), {}, ["fail", "clean"]);
  assert.equal(child.stderr.trim(), "");
  assert.equal(child.stdout.trim(), "done");
  assert.equal(child.status, 0);
});

test("unreachable blocks (every view collected, never freed) are reported", () => {
  const runtime = nativeInfo().runtime;
  const args = runtime === "deno"
    ? [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
      fixture("unreachable.ts"),
    ]
    : ["run", fixture("unreachable.ts")];
  const child = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(out.leaks, [{ size: 32, unreachable: false }, { size: 64, unreachable: true }]);
  assert.equal(out.kept, 32);
});

test("DebugAllocator checks blocks whose offsets cannot hold an Int32 header (found by address)", () => {
  // Alignment 1 over an arena: after a 3-byte block, the next outer block
  // starts at an odd offset, so its header cannot be read as Int32 words.
  for (const detachFreed of [true, false]) {
    const arena = new Arena({ capacity: 1 << 16, safety: false });
    const debug = new DebugAllocator(arena, { detachFreed });
    const pad = debug.alloc(3, 1);
    const a = debug.alloc(10, 1);
    const b = debug.alloc(64, 1);
    assert.notEqual(addressOf(a) % 4, 0, "the test needs an unaligned block");
    assert.ok(debug.owns(a) && debug.owns(b));
    raw(addressOf(b), 65)[64] = 1;
    assert.throws(() => debug.free(b), (e: unknown) => e instanceof AllocationError && e.category === "corruption");
    debug.free(a);
    assert.throws(() => debug.free(a), (e: unknown) => e instanceof AllocationError && e.category === "double-free");
    debug.free(pad);
    assert.equal(debug.deinit(), "ok");
    arena.dispose();
  }
});

test("C-style malloc(0) returns 0 and leaves nothing to free", () => {
  initAllocator({ leakCheckAtExit: "off" });
  assert.equal(malloc(0), 0);
  cFree(0, 0);
  assert.equal(checkForLeaks(), false);
  deinit();
});

const MODEL_BACKINGS: [string, () => Allocator][] = [
  ["a SystemAllocator", () => new SystemAllocator()],
  ["a FreeListAllocator", () => new FreeListAllocator({ capacity: 1 << 20 })],
  ["an Arena", () => new Arena({ capacity: 1 << 20, growth: "exponential" })],
];

for (const [backingName, makeBacking] of MODEL_BACKINGS) {
  for (const detachFreed of [true, false]) {
    test(
      `DebugAllocator over ${backingName}${
        detachFreed ? "" : " (detachFreed: false)"
      } matches a model over 20,000 seeded steps`,
      () => {
        const seed = 0x5eed + (detachFreed ? 1 : 0);
        const next = xorshift32(seed);
        const debug = new DebugAllocator(makeBacking(), { detachFreed, poison: below(next, 2) === 0 });
        const live: { view: Uint8Array; size: number; byte: number; address: number }[] = [];
        let allocations = 0, frees = 0;
        for (let step = 0; step < 20_000; step++) {
          const where = `seed ${seed} step ${step}`;
          const op = below(next, 100);
          if (op < 45 || live.length === 0) {
            const size = below(next, below(next, 10) === 0 ? 5000 : 200);
            const align = 1 << below(next, 8);
            const view = debug.alloc(size, align);
            assert.equal(view.length, size, where);
            if (size > 0) assert.equal(addressOf(view) % align, 0, `${where}: alignment ${align}`);
            const byte = below(next, 256);
            view.fill(byte);
            live.push({ view, size, byte, address: size > 0 ? addressOf(view) : 0 });
            if (size > 0) allocations++; // a zero-size block is an empty view, not a block
          } else if (op < 85) {
            const [block] = live.splice(below(next, live.length), 1);
            assert.equal(debug.owns(block.view), block.size > 0, where);
            assert.ok(block.view.every((b) => b === block.byte), `${where}: contents kept`);
            debug.free(block.view);
            if (block.size > 0) frees++;
            if (detachFreed) assert.equal(block.view.length, 0, `${where}: freed view detached`);
            else assert.equal(debug.owns(block.view), false, `${where}: freed view no longer owned`);
          } else if (op < 95) {
            const block = live[below(next, live.length)];
            const newSize = below(next, 400);
            const fresh = debug.resize(block.view, newSize);
            assert.ok(fresh.subarray(0, Math.min(newSize, block.size)).every((b) => b === block.byte), where);
            fresh.fill(block.byte);
            if (newSize > 0) allocations++;
            if (block.size > 0) frees++;
            Object.assign(block, { view: fresh, size: newSize, address: newSize > 0 ? addressOf(fresh) : 0 });
          } else {
            debug.check();
            const leaks = debug.leaks();
            const blocks = live.filter((b) => b.size > 0);
            assert.equal(leaks.length, blocks.length, where);
            const sizes = (xs: number[]) => xs.sort((a, b) => a - b).join();
            assert.equal(sizes(leaks.map((l) => l.size)), sizes(blocks.map((b) => b.size)), where);
          }
          if (step % 500 === 0) {
            const stats = debug.stats();
            assert.equal(stats.liveAllocations, live.filter((b) => b.size > 0).length, where);
            assert.equal(stats.allocatedBytes, live.reduce((sum, b) => sum + b.size, 0), where);
            assert.equal(stats.totalAllocations, allocations, where);
            assert.equal(stats.totalFrees, frees, where);
            // No two live blocks overlap.
            const spans = live.filter((b) => b.size > 0).map((b) => [b.address, b.address + b.size]).sort((a, b) =>
              a[0] - b[0]
            );
            for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], `${where}: overlap`);
          }
        }
        for (const block of live.splice(0)) debug.free(block.view);
        assert.equal(debug.deinit(), "ok");
      },
    );
  }
}
