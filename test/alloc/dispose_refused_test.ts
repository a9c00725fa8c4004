// dispose() of an allocator whose backing refuses to take a chunk back (a
// StackAllocator with a block of the program's on top of the chunks, or an
// Allocator written in JavaScript whose free throws): the allocator is
// disposed all the same, every view it handed out reads as length 0 (rule 1:
// none outlives memory the backing hands out again or returns to the OS),
// every chunk the backing takes is given back, and dispose() then throws an
// AllocationError saying which chunks the backing kept (its error is the
// cause). Before, dispose() stopped at the first refusal: the older chunks
// were neither detached nor given back, their views kept reading memory the
// stack later handed out again, and after the stack's dispose() a read
// through them crashed the process.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  Arena,
  BuddyAllocator,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { outcome } from "../_helpers.ts";

type Client = Allocator & { dispose(): void };

// Each client takes two chunks or more from `backing` where it can (one where it has only one), with views in each.
const CLIENTS: [string, (backing: Allocator) => { client: Client; views: Uint8Array[] }][] = [
  ["PoolAllocator", (backing) => {
    const client = new PoolAllocator({ blockSize: 4096, blocksPerChunk: 16, backing });
    return { client, views: Array.from({ length: 20 }, () => client.alloc(4096)) };
  }],
  ["Arena", (backing) => {
    const client = new Arena({ capacity: 4096, growth: "linear", backing });
    return { client, views: [client.alloc(100), client.alloc(64 << 10), client.alloc(6000)] };
  }],
  ["Arena (safety)", (backing) => {
    const client = new Arena({ capacity: 4096, growth: "linear", backing, safety: true });
    return { client, views: [client.alloc(100), client.alloc(64 << 10), client.alloc(6000)] };
  }],
  ["FreeListAllocator", (backing) => {
    const client = new FreeListAllocator({ capacity: 4096, growth: "linear", backing });
    return { client, views: [client.alloc(3000), client.alloc(3000), client.alloc(3000)] };
  }],
  ["BuddyAllocator", (backing) => {
    const client = new BuddyAllocator({ capacity: 64 << 10, backing });
    return { client, views: [client.alloc(100), client.alloc(4096)] };
  }],
  ["StackAllocator", (backing) => {
    const client = new StackAllocator({ capacity: 64 << 10, backing });
    return { client, views: [client.alloc(100), client.alloc(4096)] };
  }],
];

function disposeError(client: Client): AllocationError {
  try {
    client.dispose();
  } catch (error) {
    assert.ok(error instanceof AllocationError, `not an AllocationError: ${error}`);
    return error;
  }
  assert.fail("dispose() did not say that the backing refused a chunk");
}

for (const [name, make] of CLIENTS) {
  test(`${name} over a StackAllocator with a block on top of its chunks: dispose() detaches every view, then reports the refusal`, () => {
    const system = new SystemAllocator({ retainBytes: 0 }); // freed blocks go straight back to the OS
    const stack = new StackAllocator({ capacity: 1 << 20, backing: system });
    const { client, views } = make(stack);
    const onTop = stack.alloc(64); // the program's own block, above the client's chunks
    const error = disposeError(client);
    assert.equal(error.category, "invalid-free");
    assert.match(error.message, /was disposed .*but its backing, a StackAllocator, refused to take back/);
    assert.ok(error.cause instanceof AllocationError, "the stack's own error is the cause");
    views.forEach((view, i) => assert.equal(view.length, 0, `view ${i} still reads the chunk the stack kept`));
    assert.equal(outcome(() => client.alloc(16)), "use-after-free");
    client.dispose(); // a second call does nothing
    // The chunks the stack kept are its own now: it frees them as any of its blocks, and hands the memory out again.
    stack.free(onTop);
    stack.reset();
    assert.equal(stack.stats().liveAllocations, 0);
    stack.alloc(128 << 10).fill(0x22);
    stack.dispose(); // its chunk goes back to the OS
    views.forEach((view, i) => assert.equal(view.length, 0, `view ${i} outlives the stack's memory`));
    system.dispose();
  });
}

test("a backing in JavaScript that refuses one chunk: dispose() still gives back every other chunk, and says which it kept", () => {
  const system = new SystemAllocator();
  const given: Uint8Array[] = [];
  const refusal = new Error("the backing keeps this one");
  const backing = {
    kind: "system",
    alloc: (size: number, align?: number) => given[given.push(system.alloc(size, align)) - 1],
    tryAlloc: (size: number, align?: number) => given[given.push(system.alloc(size, align)) - 1],
    array: system.array.bind(system),
    free: (view: Uint8Array) => {
      if (view === given[1]) throw refusal; // the middle chunk of three
      system.free(view);
    },
    resize: system.resize.bind(system),
    owns: system.owns.bind(system),
    stats: system.stats.bind(system),
  } as unknown as Allocator;
  const pool = new PoolAllocator({ blockSize: 4096, blocksPerChunk: 4, backing });
  const views = Array.from({ length: 12 }, () => pool.alloc(4096)); // three chunks
  assert.equal(given.length, 3);
  const error = disposeError(pool);
  assert.equal(error.category, "invalid-free");
  assert.equal(error.cause, refusal);
  assert.match(error.message, /refused to take back 1 of its 3 chunks \(16384 bytes\)/);
  views.forEach((view, i) => assert.equal(view.length, 0, `view ${i} is still attached`));
  assert.equal(system.stats().liveAllocations, 1, "only the refused chunk is still allocated in the backing");
  system.dispose();
});

// What a backing's free throws may be anything: a Symbol, a revoked Proxy, an object whose `message` is a getter
// that throws. dispose() still throws one AllocationError with that value as its cause, its message built without
// running any of the program's code. Before, the message was built with the value's `message` and `instanceof`:
// a Symbol gave "TypeError: Cannot convert a Symbol value to a string", a revoked Proxy "TypeError: Cannot perform
// 'getPrototypeOf' on a proxy that has been revoked", and the getter's error replaced the AllocationError.
{
  let ran = 0; // traps and getters of the thrown values that ran
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const THROWN: [string, () => unknown, RegExp][] = [
    ["a Symbol", () => Symbol("keep"), /Symbol\(keep\)/],
    ["a revoked Proxy", () => revoked.proxy, /a Proxy/],
    [
      "a Proxy with traps",
      () =>
        new Proxy(new Error("x"), {
          get: () => (ran++, "trapped"),
          getPrototypeOf: () => (ran++, AllocationError.prototype),
          getOwnPropertyDescriptor: () => (ran++, undefined),
        }),
      /a Proxy/,
    ],
    [
      "an object whose message getter throws",
      () => ({
        get message() {
          ran++;
          throw new Error("getter bomb");
        },
      }),
      /an object/,
    ],
    [
      "an Error whose message getter throws",
      () =>
        Object.defineProperty(new RangeError("x"), "message", {
          get() {
            ran++;
            throw new Error("getter bomb");
          },
        }),
      /RangeError/,
    ],
    ["a string", () => "nope", /"nope"/],
    ["undefined", () => undefined, /undefined/],
    ["null", () => null, /null/],
    ["a number", () => 42, /42/],
    ["a RangeError", () => new RangeError("the backing keeps it"), /RangeError: the backing keeps it/],
  ];
  for (const [name, make] of CLIENTS) {
    test(`${name} over a backing whose free throws anything: dispose() throws one AllocationError, the thrown value its cause, no code of it run`, () => {
      for (const [what, thrown, described] of THROWN) {
        const system = new SystemAllocator();
        let value: unknown = undefined;
        let refuse = false;
        const backing = {
          kind: "system",
          alloc: (size: number, align?: number) => system.alloc(size, align),
          tryAlloc: (size: number, align?: number) => system.tryAlloc(size, align),
          array: system.array.bind(system),
          free: (view: Uint8Array) => {
            if (refuse) {
              refuse = false; // the newest chunk only
              throw value = thrown();
            }
            system.free(view);
          },
          resize: system.resize.bind(system),
          owns: system.owns.bind(system),
          stats: system.stats.bind(system),
        } as unknown as Allocator;
        const { client, views } = make(backing);
        refuse = true;
        ran = 0;
        let error: unknown = null;
        try {
          client.dispose();
        } catch (e) {
          error = e;
        }
        assert.ok(error instanceof AllocationError, `${what}: dispose() threw ${String(error)}`);
        assert.equal(error.category, "invalid-free", what);
        assert.equal(error.cause, value, `${what}: the thrown value is the cause`);
        assert.match(error.message, /^The \w+ was disposed .*The backing's error \(the cause\): /, what);
        assert.match(error.message, described, what);
        assert.equal(ran, 0, `${what}: a getter or trap of the thrown value ran`);
        views.forEach((view, i) => assert.equal(view.length, 0, `${what}: view ${i} is still attached`));
        assert.equal(system.stats().liveAllocations, 1, `${what}: only the refused chunk is left in the backing`);
        system.dispose();
      }
    });
  }

  test("a backing whose tryAlloc throws anything: the allocator says its backing is not usable, the value its cause, no code of it run", () => {
    for (const [what, thrown] of THROWN) {
      // A RangeError is a refusal for want of memory: the allocation fails with "out-of-memory" (no getter run).
      if (what === "a RangeError" || what === "an Error whose message getter throws") continue;
      let value: unknown = undefined;
      const backing = {
        kind: "system",
        alloc: () => {
          throw value = thrown();
        },
        tryAlloc: () => {
          throw value = thrown();
        },
        array: () => new Uint8Array(0),
        free: () => {},
        resize: () => new Uint8Array(0),
        owns: () => false,
        stats: () => ({}),
      } as unknown as Allocator;
      ran = 0;
      assert.throws(() => new Arena({ capacity: 4096, backing }), (e: unknown) => {
        assert.ok(e instanceof TypeError, `${what}: ${String(e)}`);
        assert.match(e.message, /^The Arena's backing, an object, is not a usable Allocator/, what);
        assert.equal(e.cause, value, `${what}: the thrown value is the cause`);
        return true;
      });
      assert.equal(ran, 0, `${what}: a getter or trap of the thrown value ran`);
    }
  });
}

// A backing's refusal for its own state (an AllocationError of a category other than out-of-memory) is said about
// the backing, with its category, call and errno kept: all read as data. An AllocationError whose message, call or
// errno is a getter (or a Proxy of one) runs none of that code in the middle of the allocator's take, and the
// allocator's error still has the thrown value as its cause. Before, the getters ran (and their own error reached
// the program instead of memkit's).
test("a backing whose tryAlloc throws a state AllocationError with getters: said about the backing, no getter run, the value its cause", () => {
  let ran = 0;
  const getter = (value: unknown) => ({
    get() {
      ran++;
      if (value === "throw") throw new Error("getter bomb");
      return value;
    },
  });
  const revoked = Proxy.revocable(new AllocationError("use-after-free", "x"), {});
  revoked.revoke();
  const THROWN: [string, () => unknown, RegExp][] = [
    [
      "a message getter that throws",
      () => Object.defineProperty(new AllocationError("use-after-free", "x"), "message", getter("throw")),
      /its backing, an object, refused it: AllocationError$/,
    ],
    [
      "a message getter that returns a memkit-like message",
      () =>
        Object.defineProperty(
          new AllocationError("use-after-free", "x"),
          "message",
          getter("Cannot allocate: the Arena was disposed"),
        ),
      /its backing, an object, refused it: AllocationError$/,
    ],
    [
      "call and errno getters",
      () =>
        Object.defineProperty(
          Object.defineProperty(
            new AllocationError("use-after-free", "gone", { call: "mmap", errno: 12 }),
            "call",
            getter("throw"),
          ),
          "errno",
          getter("throw"),
        ),
      /its backing, an object, refused it: gone$/,
    ],
    [
      "a plain one (for comparison)",
      () => new AllocationError("use-after-free", "the backing was disposed", { call: "munmap", errno: 22 }),
      /its backing, an object, refused it: the backing was disposed$/,
    ],
    // A revoked Proxy is no AllocationError (its prototype cannot be read): not a usable Allocator (TypeError).
    ["a revoked Proxy of one", () => revoked.proxy, /is not a usable Allocator: its tryAlloc threw a Proxy/],
  ];
  const FIRST_USE: [string, (backing: Allocator) => unknown][] = [
    ["PoolAllocator", (backing) => new PoolAllocator({ blockSize: 64, backing }).alloc(64)],
    ["Arena", (backing) => new Arena({ capacity: 4096, backing }).alloc(64)],
    ["FreeListAllocator", (backing) => new FreeListAllocator({ capacity: 4096, backing }).alloc(64)],
    ["BuddyAllocator", (backing) => new BuddyAllocator({ capacity: 64 << 10, backing }).alloc(64)],
    ["StackAllocator", (backing) => new StackAllocator({ capacity: 4096, backing }).alloc(64)],
  ];
  for (const [what, thrown, described] of THROWN) {
    for (const [name, use] of FIRST_USE) {
      const label = `${name}, ${what}`;
      let value: unknown = undefined;
      const backing = {
        kind: "system",
        alloc: () => {
          throw value = thrown();
        },
        tryAlloc: () => {
          throw value = thrown();
        },
        array: () => new Uint8Array(0),
        free: () => {},
        resize: () => new Uint8Array(0),
        owns: () => false,
        stats: () => ({}),
      } as unknown as Allocator;
      ran = 0;
      let error: unknown = "nothing thrown";
      try {
        use(backing);
      } catch (e) {
        error = e;
      }
      assert.equal(ran, 0, `${label}: a getter of the thrown value ran`);
      assert.ok(error instanceof Error, `${label}: threw ${String(error)}`);
      assert.equal(error.cause, value, `${label}: the thrown value is the cause`);
      assert.match(error.message, described, `${label}: ${error.message}`);
      if (error instanceof AllocationError) {
        assert.equal(error.category, "use-after-free", label);
        const plain = what.startsWith("a plain");
        assert.equal(error.call, plain ? "munmap" : undefined, `${label}: call`);
        assert.equal(error.errno, plain ? 22 : undefined, `${label}: errno`);
      } else {
        assert.ok(error instanceof TypeError, label);
        assert.ok(what.startsWith("a revoked"), `${label}: ${error.message}`);
      }
    }
  }
});
