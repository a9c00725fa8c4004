// The DebugAllocator and its backing (issue 11 items 8 and 9; the safety model's rules
// 4 and 5): it serves every request the backing can serve (out-of-band checks
// when the canaries do not fit), resizes over a backing that can only resize
// in place, changes nothing when the backing refuses, and checks what the
// backing returns before it carves it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import {
  addressOf,
  AllocationError,
  type Allocator,
  Arena,
  DebugAllocator,
  type DebugAllocatorOptions,
  FailingAllocator,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { outcome } from "../_helpers.ts";
import { cMalloc, cReallocIn } from "../../src/debug/_c_style.ts";
import { zeroStats } from "../../src/alloc/_zero_stats.ts";

const MODES = [{ detachFreed: true }, { detachFreed: false }];

/** What `fn` did, as the assertions below name it. */
const category = (fn: () => unknown): string => outcome(fn, "nothing thrown");

const pattern = (i: number) => (i * 37 + 11) & 255;
function fill(v: Uint8Array): void {
  for (let i = 0; i < v.length; i++) v[i] = pattern(i);
}
function same(v: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (v[i] !== pattern(i)) return false;
  return true;
}

// ------------------------------------------------------------------ item 8

for (const mode of MODES) {
  const label = mode.detachFreed ? "" : " (detachFreed: false)";
  test(`item 8: DebugAllocator${label} over a pool of 64-byte blocks serves alloc(64), checked out of band`, () => {
    const pool = new PoolAllocator({ blockSize: 64 });
    const debug = new DebugAllocator(pool, mode);
    const v = debug.alloc(64);
    assert.equal(v.length, 64);
    fill(v);
    const w = debug.tryAlloc(64);
    assert.ok(w !== null, "tryAlloc(64)");
    const small = debug.alloc(16); // its canaries fit: in band
    assert.equal(pool.stats().liveAllocations, 3);
    assert.ok(debug.owns(v) && debug.owns(w) && debug.owns(small));
    assert.equal(debug.leaks().length, 3);
    debug.check();
    assert.equal(category(() => debug.free(v.subarray(8))), "invalid-free", "an interior view");
    debug.free(v);
    assert.equal(category(() => debug.free(v)), "double-free");
    debug.free(w);
    debug.free(small);
    assert.equal(pool.stats().liveAllocations, 0, "every pool block back");
    assert.equal(debug.deinit(), "ok");
    pool.dispose();
  });
}

test("item 8: a request the backing can never serve is a refusal: AllocationError from alloc, null from tryAlloc", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  const debug = new DebugAllocator(pool);
  assert.equal(debug.tryAlloc(65), null);
  assert.equal(debug.tryAlloc(8, 32), null, "an alignment the pool cannot give");
  assert.throws(
    () => debug.alloc(100),
    (e: unknown) => e instanceof AllocationError && e.category === "out-of-memory" && /PoolAllocator/.test(e.message),
  );
  assert.equal(debug.stats().liveAllocations, 0);
  assert.equal(debug.stats().failedAllocations, 3);
  assert.equal(debug.deinit(), "ok");
  pool.dispose();
});

test("item 8: a backing that throws RangeError or TypeError for the padded size, or returns null, gets the plain size", () => {
  const system = new SystemAllocator();
  for (const refusal of ["null", "RangeError", "TypeError"] as const) {
    const asked: number[] = [];
    const small: Allocator = {
      kind: "system",
      alloc: (size, align) => system.alloc(size, align),
      tryAlloc: (size, align) => {
        asked.push(size);
        if (size <= 100) return system.tryAlloc(size, align);
        if (refusal === "null") return null;
        throw refusal === "RangeError" ? new RangeError("too big") : new TypeError("not like that");
      },
      array: (ctor, length, align) => system.array(ctor, length, align),
      free: (view) => system.free(view),
      resize: (view, size) => system.resize(view, size),
      owns: (view) => system.owns(view),
      stats: () => system.stats(),
    };
    const debug = new DebugAllocator(small);
    const v = debug.tryAlloc(100);
    assert.ok(v !== null && v.length === 100, `${refusal}: tryAlloc(100) served`);
    assert.deepEqual(asked, [132, 100], `${refusal}: padded size first, then the plain size`);
    assert.equal(debug.tryAlloc(101), null, `${refusal}: tryAlloc(101) is null, not a throw`);
    debug.free(v);
    assert.equal(debug.deinit(), "ok");
  }
  system.dispose();
});

// ------------------------------------------------------------------ item 9

for (const mode of MODES) {
  const label = mode.detachFreed ? "" : " (detachFreed: false)";
  test(`item 9: DebugAllocator${label} over a StackAllocator resizes the top block, with no leak and nothing stranded`, () => {
    const stack = new StackAllocator({ capacity: 1 << 20 });
    const debug = new DebugAllocator(stack, mode);
    const below = debug.alloc(100);
    let top = debug.alloc(100);
    let prev = 100;
    fill(top);
    for (const size of [5000, 300, 20_000, 50, 1, 4096]) {
      const next = debug.resize(top, size);
      assert.equal(next.length, size);
      assert.ok(same(next, Math.min(size, prev)), `contents kept by resize(top, ${size})`);
      prev = size;
      if (mode.detachFreed) assert.equal(top.length, 0, "the old view reads as length 0");
      fill(next);
      top = next;
      debug.check();
    }
    assert.equal(debug.stats().liveAllocations, 2);
    assert.equal(debug.stats().allocatedBytes, 100 + 4096);
    debug.free(top);
    debug.free(below);
    assert.equal(debug.deinit(), "ok");
    assert.equal(stack.stats().liveAllocations, 0, "nothing stranded in the stack");
    stack.dispose();
  });
}

test("item 9: a resize or free the stack refuses leaves the DebugAllocator exactly as it was", () => {
  for (const mode of MODES) {
    const stack = new StackAllocator({ capacity: 16 << 10 });
    const debug = new DebugAllocator(stack, { ...mode, poison: true });
    const a = debug.alloc(100);
    const b = debug.alloc(100);
    fill(a);
    const before = debug.stats();
    const stackBefore = stack.stats();
    assert.equal(category(() => debug.free(a)), "invalid-free", "a free out of LIFO order");
    assert.equal(a.length, 100, "the refused block's view is still usable");
    assert.ok(same(a, 100), "and its bytes are not poisoned");
    assert.notEqual(category(() => debug.resize(a, 200)), "nothing thrown", "a resize below the top");
    assert.equal(a.length, 100);
    assert.ok(same(a, 100));
    assert.equal(category(() => debug.resize(b, 64 << 10)), "out-of-memory", "a resize past the stack's capacity");
    assert.equal(b.length, 100);
    assert.deepEqual({ ...debug.stats(), failedAllocations: 0 }, { ...before, failedAllocations: 0 });
    assert.deepEqual(stack.stats().liveAllocations, stackBefore.liveAllocations);
    debug.check();
    debug.free(b);
    debug.free(a);
    assert.equal(debug.deinit(), "ok");
    assert.equal(stack.stats().liveAllocations, 0);
    stack.dispose();
  }
});

test("item 9: resizing the top block through two debug allocators over a stack (the generic fallback)", () => {
  const stack = new StackAllocator({ capacity: 1 << 20 });
  const inner = new DebugAllocator(stack);
  const outer = new DebugAllocator(inner);
  let v = outer.alloc(40);
  fill(v);
  for (const size of [400, 4000, 20]) {
    v = outer.resize(v, size);
    assert.ok(same(v, Math.min(size, 20)));
    fill(v);
  }
  outer.free(v);
  assert.equal(outer.deinit(), "ok");
  assert.equal(inner.deinit(), "ok");
  assert.equal(stack.stats().liveAllocations, 0);
  stack.dispose();
});

test("item 9: resize checks memoryLimit before asking the backing, and a damaged block is not resized", () => {
  const arena = new Arena({ capacity: 1 << 16 });
  const debug = new DebugAllocator(arena, { memoryLimit: 1000 });
  const v = debug.alloc(600);
  const before = arena.stats().totalAllocations;
  assert.equal(category(() => debug.resize(v, 2000)), "limit-exceeded");
  assert.equal(arena.stats().totalAllocations, before, "the backing was not asked");
  assert.equal(v.length, 600);
  // SAFETY: one byte past the block, inside its back canary.
  new Uint8Array(native.wrap(addressOf(v), 601))[600] = 1;
  const live = debug.stats();
  assert.equal(category(() => debug.resize(v, 700)), "corruption");
  assert.equal(v.length, 600, "a damaged block is left as it is");
  assert.deepEqual(debug.stats(), live);
  assert.equal(category(() => debug.free(v)), "corruption", "free still frees it, and reports the damage");
  assert.equal(debug.stats().liveAllocations, 0);
  assert.equal(debug.deinit(), "ok");
  arena.dispose();
});

// ------------------------------------------------------------------ rule 4: what the backing returns is checked

type Lie = "short" | "misaligned" | "detached" | "not-a-view" | "array-buffer" | "twice";

function lyingBacking(lie: Lie): Allocator {
  const system = new SystemAllocator();
  let first: Uint8Array | null = null;
  const give = (size: number, align?: number): unknown => {
    const real = system.alloc(size + 64, 64);
    switch (lie) {
      case "short":
        return real.subarray(0, size - 1);
      case "misaligned":
        return real.subarray(1, size + 1);
      case "detached": {
        const copy = new Uint8Array(new ArrayBuffer(size + 64));
        copy.buffer.transfer(0);
        return copy;
      }
      case "not-a-view":
        return { byteLength: size, buffer: real.buffer, byteOffset: 0 };
      case "array-buffer":
        return real.buffer;
      case "twice":
        first ??= real.subarray(0, size);
        return first.subarray(0, size);
    }
    void align;
  };
  return {
    kind: "system",
    alloc: (size, align) => give(size, align) as Uint8Array,
    tryAlloc: (size, align) => give(size, align) as Uint8Array,
    array: (ctor, length, align) => system.array(ctor, length, align),
    free: () => {},
    resize: (view) => view as Uint8Array,
    owns: () => true,
    stats: () => system.stats(),
  };
}

for (const lie of ["short", "misaligned", "detached", "not-a-view", "array-buffer", "twice"] as const) {
  test(`rule 4: a backing that returns ${lie === "twice" ? "the same memory twice" : `a ${lie} block`} is AllocationError("corruption") naming it`, () => {
    for (const mode of MODES) {
      const debug = new DebugAllocator(lyingBacking(lie), mode);
      let thrown: unknown = null;
      try {
        debug.alloc(40);
        debug.alloc(40);
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof AllocationError, `${lie}: got ${thrown}`);
      assert.equal(thrown.category, "corruption", thrown.message);
      assert.match(thrown.message, /backing/);
      assert.ok(debug.stats().liveAllocations <= 1, "the lie was not recorded as a block");
    }
  });
}

test("rule 4: blocks keep their alignment over a backing whose blocks start at odd offsets", () => {
  const arena = new Arena({ capacity: 1 << 16, safety: false });
  const debug = new DebugAllocator(arena);
  debug.alloc(3, 1);
  for (const align of [1, 2, 4, 8, 16, 32, 64, 256, 4096]) {
    const v = debug.alloc(5, align);
    assert.equal(addressOf(v) % align, 0, `alloc(5, ${align})`);
  }
  debug.check();
  debug.deinit();
  arena.dispose();
});

// ------------------------------------------------------------------ what a backing must have

test("a backing without a method the allocator calls (tryAlloc, free, resize, stats) is a TypeError at construction, naming it", () => {
  const system = new SystemAllocator();
  const whole: Record<string, unknown> = {
    kind: "system",
    alloc: (size: number, align?: number) => system.alloc(size, align),
    tryAlloc: (size: number, align?: number) => system.tryAlloc(size, align),
    array: (ctor: never, length: number, align?: number) => system.array(ctor, length, align),
    free: (view: ArrayBufferView) => system.free(view),
    resize: (view: ArrayBufferView, size: number) => system.resize(view, size),
    owns: (view: ArrayBufferView) => system.owns(view),
    stats: () => system.stats(),
  };
  const without = (...names: string[]) => {
    const partial = { ...whole };
    for (const name of names) delete partial[name];
    return partial as unknown as Allocator;
  };
  const refuses = (make: () => unknown, missing: string) =>
    assert.throws(
      make,
      (e: unknown) =>
        e instanceof TypeError && e.message.includes("must be an Allocator") && e.message.includes(`has no ${missing}`),
    );
  // A DebugAllocator calls tryAlloc, free, resize and stats of its backing.
  refuses(() => new DebugAllocator(without("tryAlloc")), "tryAlloc method");
  refuses(() => new DebugAllocator(without("resize", "stats")), "resize or stats method");
  refuses(() => new DebugAllocator(without("free"), { safety: false }), "free method");
  // A FailingAllocator passes every call on.
  refuses(() => new FailingAllocator(without("array"), { failAfter: 1 }), "array method");
  refuses(() => new FailingAllocator(without("owns"), { failAfter: 1 }), "owns method");
  // With each of them, both work (array and owns are not the DebugAllocator's to call).
  const debug = new DebugAllocator(without("array", "owns"));
  debug.free(debug.alloc(8));
  assert.equal(debug.deinit(), "ok");
  const failing = new FailingAllocator(without(), { failAfter: 1 });
  failing.free(failing.alloc(8));
  system.dispose();
});

// ------------------------------------------------------------------ a backing that cannot serve for its state

/** Backings that refuse every request for their own state, what they are called and what the state is. */
const GONE: Record<string, () => { backing: Allocator; called: string; state: string; end?(): void }> = {
  "a disposed Arena": () => {
    const arena = new Arena({ capacity: 1 << 16 });
    arena.dispose();
    return { backing: arena, called: "an Arena", state: "was disposed" };
  },
  "a disposed PoolAllocator": () => {
    const pool = new PoolAllocator({ blockSize: 256 });
    pool.dispose();
    return { backing: pool, called: "a PoolAllocator", state: "was disposed" };
  },
  "a disposed FreeListAllocator": () => {
    const heap = new FreeListAllocator({ capacity: 1 << 16 });
    heap.dispose();
    return { backing: heap, called: "a FreeListAllocator", state: "was disposed" };
  },
  "a disposed DebugAllocator": () => {
    const debug = new DebugAllocator();
    debug.dispose();
    return { backing: debug, called: "a DebugAllocator", state: "was disposed" };
  },
  "a PoolAllocator that lost its memory (its backing Arena was disposed)": () => {
    const arena = new Arena({ capacity: 1 << 16 });
    const pool = new PoolAllocator({ blockSize: 256, backing: arena });
    pool.free(pool.alloc(8)); // takes a chunk of the arena
    arena.dispose();
    return { backing: pool, called: "a PoolAllocator", state: "lost its memory: Arena.dispose() released it" };
  },
};

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const STATE_MODES: Record<string, DebugAllocatorOptions> = {
  "checks (the default)": {},
  "detachFreed": { detachFreed: true },
  "poison and retainMetadata": { poison: true, retainMetadata: true },
  "counters only": { safety: false },
};

test("a backing that cannot serve for its state: the DebugAllocator says so about its backing, the backing's error the cause", () => {
  for (const [name, make] of Object.entries(GONE)) {
    for (const [modeName, mode] of Object.entries(STATE_MODES)) {
      const { backing, called, state } = make();
      const debug = new DebugAllocator(backing, mode);
      const calls: Record<string, () => unknown> = {
        "alloc(8)": () => debug.alloc(8),
        "tryAlloc(8)": () => debug.tryAlloc(8),
        "alloc(8, 8)": () => debug.alloc(8, 8),
        "array(Float64Array, 2)": () => debug.array(Float64Array, 2),
        "resize(an empty view, 8)": () => debug.resize(new Uint8Array(0), 8),
        "malloc(8)": () => cMalloc(debug, 8, null, 0),
        "cRealloc(0, 0, 8)": () => cReallocIn(debug, 0, 0, 8, null, 0),
      };
      for (const [call, run] of Object.entries(calls)) {
        const label = `${name}, ${modeName}, ${call}`;
        let thrown: unknown;
        try {
          run();
        } catch (error) {
          thrown = error;
        }
        assert.ok(thrown instanceof AllocationError, `${label}: ${thrown}`);
        const cause = thrown.cause;
        assert.ok(cause instanceof AllocationError, `${label}: the cause is the backing's error (${cause})`);
        assert.equal(thrown.category, cause.category, `${label}: the backing's category is kept`);
        assert.match(
          thrown.message,
          new RegExp(`^The DebugAllocator cannot take a \\d+-byte block: its backing, ${called}, ${escaped(state)}$`),
          label,
        );
      }
      const stats = debug.stats();
      assert.equal(stats.liveAllocations, 0, name);
      assert.equal(stats.failedAllocations, 0, `${name}: a state error is no allocation failure`);
      assert.equal(debug.deinit(), "ok");
    }
  }
});

test("a backing's refusal to resize a block in place names the DebugAllocator's resize, the backing's error the cause", () => {
  for (const mode of MODES) {
    const stack = new StackAllocator({ capacity: 1 << 12 });
    const debug = new DebugAllocator(stack, mode);
    const below = debug.alloc(100);
    const top = debug.alloc(100);
    // No room for a new block, and the stack resizes only its top block in place.
    assert.throws(
      () => debug.resize(below, 3000),
      (e: unknown) =>
        e instanceof AllocationError && e.category === "unsupported" && e.cause instanceof AllocationError &&
        e.message.startsWith(
          "The DebugAllocator cannot resize a 100-byte block to 3000 bytes: its backing, a StackAllocator, ",
        ) &&
        e.message.includes(e.cause.message),
    );
    assert.equal(below.length, 100);
    debug.free(top);
    debug.free(below);
    assert.equal(debug.deinit(), "ok");
    stack.dispose();
  }
});

// ------------------------------------------------------------------ a backing that throws anything

// What a backing's tryAlloc throws may be anything: a Symbol, null, a revoked Proxy (every trap throws, `instanceof`
// included), an Error whose `message` getter throws. The DebugAllocator reads it without running its code, in the
// middle of its own allocation: no engine TypeError, no getter or trap of the program's run. A RangeError or TypeError
// is a refusal for want of room (null from tryAlloc); anything else is no answer an Allocator gives.
let thrownRan = 0;
class GetterBomb extends Error {
  // Made without a message, so `message` is this getter (an Error made with one has its own data property).
  override get message(): string {
    thrownRan++;
    throw new Error("getter bomb");
  }
}
const THROWN_BY_BACKING: [string, () => unknown, RegExp][] = [
  ["Symbol()", () => Symbol(), /threw Symbol\(\) \(the cause\)/],
  ["Symbol(keep)", () => Symbol("keep"), /threw Symbol\(keep\) \(the cause\)/],
  ["null", () => null, /threw null \(the cause\)/],
  ["5", () => 5, /threw 5 \(the cause\)/],
  ["a string", () => "nope", /threw "nope" \(the cause\)/],
  ["a revoked Proxy", () => {
    const { proxy, revoke } = Proxy.revocable(new Error("x"), {});
    revoke();
    return proxy;
  }, /threw a Proxy \(the cause\)/],
  ["a Proxy with traps", () =>
    new Proxy(new RangeError("x"), {
      get: () => (thrownRan++, "trapped"),
      getPrototypeOf: () => (thrownRan++, RangeError.prototype),
      getOwnPropertyDescriptor: () => (thrownRan++, undefined),
    }), /threw a Proxy \(the cause\)/],
  ["an Error subclass whose message getter throws", () => new GetterBomb(), /threw Error \(the cause\)/],
  ["a plain Error", () => new Error("the disk is gone"), /threw Error: the disk is gone \(the cause\)/],
  [
    "an AllocationError whose message getter throws",
    () =>
      Object.defineProperty(new AllocationError("use-after-free", "x"), "message", {
        get() {
          thrownRan++;
          throw new Error("getter bomb");
        },
      }),
    /threw AllocationError \(the cause\)/,
  ],
];

/** A backing written in JavaScript whose tryAlloc throws what `thrown` makes (the value in `last`). */
function throwingBacking(thrown: () => unknown): { backing: Allocator; last: { value: unknown } } {
  const last = { value: undefined as unknown };
  const backing = {
    kind: "system",
    alloc: () => {
      throw last.value = thrown();
    },
    tryAlloc: () => {
      throw last.value = thrown();
    },
    array: () => new Uint8Array(0),
    free: () => {},
    resize: () => {
      throw last.value = thrown();
    },
    owns: () => false,
    stats: () => zeroStats("system"),
  } as unknown as Allocator;
  return { backing, last };
}

test("a backing whose tryAlloc throws anything: an AllocationError describing it, the thrown value its cause, no code of it run", () => {
  for (const [what, thrown, described] of THROWN_BY_BACKING) {
    for (const [modeName, mode] of Object.entries(STATE_MODES)) {
      const { backing, last } = throwingBacking(thrown);
      const debug = new DebugAllocator(backing, mode);
      const calls: Record<string, () => unknown> = {
        "alloc(8)": () => debug.alloc(8),
        "tryAlloc(8)": () => debug.tryAlloc(8),
        "alloc(8, 8)": () => debug.alloc(8, 8),
        "array(Float64Array, 2)": () => debug.array(Float64Array, 2),
        "malloc(8)": () => cMalloc(debug, 8, null, 0),
        "cRealloc(0, 0, 8)": () => cReallocIn(debug, 0, 0, 8, null, 0),
      };
      for (const [call, run] of Object.entries(calls)) {
        const label = `${what}, ${modeName}, ${call}`;
        thrownRan = 0;
        last.value = undefined;
        let error: unknown = "nothing thrown";
        try {
          run();
        } catch (e) {
          error = e;
        }
        assert.equal(thrownRan, 0, `${label}: a getter or trap of the thrown value ran`);
        assert.ok(
          error instanceof AllocationError,
          `${label}: threw ${typeof error === "symbol" ? "a Symbol" : error}`,
        );
        assert.equal(error.category, "corruption", label);
        assert.equal(error.cause, last.value, `${label}: the thrown value is the cause`);
        assert.match(
          error.message,
          /^The DebugAllocator cannot take a \d+-byte block: its backing, an object, /,
          label,
        );
        assert.match(error.message, described, label);
        assert.match(error.message, /returns a block or null, or throws an AllocationError, RangeError or TypeError/);
      }
      const stats = debug.stats();
      assert.equal(stats.liveAllocations, 0, what);
      assert.equal(stats.failedAllocations, 0, `${what}: a broken backing is no allocation failure`);
      assert.equal(debug.deinit(), "ok");
    }
  }
});

test("a backing's RangeError or TypeError is a refusal however it is made: its message read as data, no getter run", () => {
  const bomb = (base: RangeError | TypeError) =>
    Object.defineProperty(base, "message", {
      get() {
        thrownRan++;
        throw new Error("getter bomb");
      },
    });
  const refusals: [string, () => unknown, string][] = [
    ["a RangeError", () => new RangeError("too big"), "too big"],
    ["a TypeError subclass", () => new (class Odd extends TypeError {})("not like that"), "not like that"],
    ["a RangeError whose message getter throws", () => bomb(new RangeError("x")), "RangeError"],
    ["a TypeError whose message getter throws", () => bomb(new TypeError("x")), "TypeError"],
  ];
  for (const [what, thrown, said] of refusals) {
    for (const [modeName, mode] of Object.entries(STATE_MODES)) {
      const label = `${what}, ${modeName}`;
      const { backing } = throwingBacking(thrown);
      const debug = new DebugAllocator(backing, mode);
      thrownRan = 0;
      assert.equal(debug.tryAlloc(8), null, label);
      assert.throws(() => debug.alloc(8), (e: unknown) => {
        assert.ok(e instanceof AllocationError && e.category === "out-of-memory", `${label}: ${e}`);
        assert.match(e.message, /: the backing, an object, cannot serve \d+ bytes: /, label);
        assert.ok(e.message.endsWith(`bytes: ${said}`), `${label}: ${e.message}`);
        return true;
      });
      assert.equal(thrownRan, 0, `${label}: a getter of the thrown value ran`);
      assert.equal(debug.deinit(), "ok");
    }
  }
});

test("the DebugAllocator's messages name its backing grammatically, however it is written", () => {
  // A backing written as an object literal, refusing with null, or returning what is no block.
  for (
    const [answer, expected] of [[null, /: the backing, an object, refused \d+ bytes$/], [
      new Uint8Array(new ArrayBuffer(4)),
      /^The DebugAllocator cannot use what its backing, an object, returned for a \d+-byte block/,
    ]] as const
  ) {
    const backing = {
      kind: "system",
      alloc: () => answer,
      tryAlloc: () => answer,
      array: () => new Uint8Array(0),
      free: () => {},
      resize: () => answer,
      owns: () => false,
      stats: () => zeroStats("system"),
    } as unknown as Allocator;
    for (const [modeName, mode] of Object.entries(STATE_MODES)) {
      const debug = new DebugAllocator(backing, mode);
      assert.throws(() => debug.alloc(8), (e: unknown) => {
        assert.ok(e instanceof AllocationError, `${modeName}: ${e}`);
        assert.match(e.message, expected, modeName);
        return true;
      });
      assert.equal(debug.deinit(), "ok");
    }
  }
});

// The same for a backing's resize (tried in place when a move is impossible, or first over a stack): what it
// throws is read without running its code, a refusal for want of room (a RangeError or TypeError, an out-of-memory
// AllocationError) is "out-of-memory", anything else is no answer an Allocator gives: "corruption", the thrown
// value its cause. The block stays as it was. Before, `instanceof` and `.message` ran on the thrown value: a revoked
// Proxy gave the engine's TypeError, a getter ran (its error reached the program).
test("a backing whose resize throws anything: an AllocationError describing it, the thrown value its cause, no code of it run", () => {
  for (const [what, thrown, described] of THROWN_BY_BACKING) {
    for (const [modeName, mode] of Object.entries(STATE_MODES)) {
      for (const kind of ["system", "stack"]) {
        for (const how of ["no room to move", "the old block refused"]) {
          // (A block held back from the backing is not freed through it: the move works.)
          if (how === "the old block refused" && mode.retainMetadata) continue;
          const label = `${what}, ${modeName}, kind ${kind}, ${how}`;
          const system = new SystemAllocator();
          const last = { value: undefined as unknown };
          let refuseFree = false;
          const backing = {
            kind,
            alloc: (size: number, align?: number) => system.alloc(size, align),
            // Room for the first block, none for the resized one when there is no room to move.
            tryAlloc: (size: number, align?: number) =>
              how === "no room to move" && size > 1000 ? null : system.tryAlloc(size, align),
            array: () => new Uint8Array(0),
            free: (view: Uint8Array) => {
              if (refuseFree) {
                refuseFree = false;
                throw new AllocationError("invalid-free", "only the top block can be freed");
              }
              system.free(view);
            },
            resize: () => {
              throw last.value = thrown();
            },
            owns: (view: Uint8Array) => system.owns(view),
            stats: () => system.stats(),
          } as unknown as Allocator;
          const debug = new DebugAllocator(backing, mode);
          const block = debug.alloc(64);
          block.fill(7);
          const before = debug.stats();
          refuseFree = how === "the old block refused";
          thrownRan = 0;
          let error: unknown = "nothing thrown";
          try {
            debug.resize(block, 4096);
          } catch (e) {
            error = e;
          }
          refuseFree = false;
          assert.equal(thrownRan, 0, `${label}: a getter or trap of the thrown value ran`);
          assert.ok(
            error instanceof AllocationError,
            `${label}: threw ${typeof error === "symbol" ? "a Symbol" : error}`,
          );
          assert.equal(error.category, "corruption", `${label}: ${error.message}`);
          assert.equal(error.cause, last.value, `${label}: the thrown value is the cause`);
          assert.match(
            error.message,
            /^The DebugAllocator cannot resize a 64-byte block to 4096 bytes: its backing, an object, /,
            label,
          );
          assert.match(error.message, described, label);
          assert.match(error.message, /resize returns a block or throws an AllocationError, RangeError or TypeError/);
          // The block stays as it was.
          assert.equal(block.length, 64, label);
          assert.ok(block.every((b) => b === 7), label);
          assert.deepEqual({ ...debug.stats(), failedAllocations: 0 }, { ...before, failedAllocations: 0 }, label);
          debug.free(block);
          assert.equal(debug.deinit(), "ok", label);
          assert.equal(system.stats().liveAllocations, 0, `${label}: nothing left in the backing`);
          system.dispose();
        }
      }
    }
  }
});

test("a backing whose resize refuses with a RangeError, TypeError or out-of-memory: out-of-memory naming it, no getter run", () => {
  const bomb = (base: Error) =>
    Object.defineProperty(base, "message", {
      get() {
        thrownRan++;
        throw new Error("getter bomb");
      },
    });
  const refusals: [string, () => unknown, RegExp][] = [
    ["a RangeError", () => new RangeError("too big to resize"), /too big to resize$/],
    ["a TypeError whose message getter throws", () => bomb(new TypeError("x")), /TypeError$/],
    ["an out-of-memory AllocationError", () => new AllocationError("out-of-memory", "no room"), /no room$/],
  ];
  for (const [what, thrown, said] of refusals) {
    for (const [modeName, mode] of Object.entries(STATE_MODES)) {
      const label = `${what}, ${modeName}`;
      const system = new SystemAllocator();
      const backing = {
        kind: "system",
        alloc: (size: number, align?: number) => system.alloc(size, align),
        tryAlloc: (size: number, align?: number) => size > 1000 ? null : system.tryAlloc(size, align),
        array: () => new Uint8Array(0),
        free: (view: Uint8Array) => system.free(view),
        resize: () => {
          throw thrown();
        },
        owns: (view: Uint8Array) => system.owns(view),
        stats: () => system.stats(),
      } as unknown as Allocator;
      const debug = new DebugAllocator(backing, mode);
      const block = debug.alloc(64);
      thrownRan = 0;
      assert.throws(() => debug.resize(block, 4096), (e: unknown) => {
        assert.ok(e instanceof AllocationError && e.category === "out-of-memory", `${label}: ${e}`);
        assert.match(e.message, said, `${label}: ${e.message}`);
        return true;
      });
      assert.equal(thrownRan, 0, `${label}: a getter of the thrown value ran`);
      assert.equal(block.length, 64, label);
      debug.free(block);
      assert.equal(debug.deinit(), "ok");
      system.dispose();
    }
  }
});
