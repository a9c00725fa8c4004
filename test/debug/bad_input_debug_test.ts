// Bad input for the DebugAllocator, the global allocator's C-style functions
// and FailingAllocator (the rows test/bad_input_test.ts does not have): each
// gets its documented error, makes no native call, and leaves memkit usable.
import assert from "node:assert/strict";
import { test } from "node:test";
import { badInputTable } from "../_bad_input.ts";
import {
  cFree,
  cRealloc,
  DebugAllocator,
  deinit,
  FailingAllocator,
  initAllocator,
  malloc,
  PoolAllocator,
  SystemAllocator,
} from "../../mod.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

interface Arranged {
  debug: DebugAllocator;
  block: Uint8Array;
  extra?: unknown;
}

function arrange(options = {}): Arranged {
  const debug = new DebugAllocator(undefined, options);
  return { debug, block: debug.alloc(32) };
}

function stillWorks({ debug, block }: Arranged): void {
  assert.equal(block.length, 32);
  debug.free(block);
  debug.free(debug.alloc(8));
  assert.equal(debug.deinit(), "ok");
}

badInputTable<Arranged>("DebugAllocator", [
  {
    name: "new DebugAllocator(undefined, { memoryLimit: -1 })",
    act: () => new DebugAllocator(undefined, { memoryLimit: -1 }),
    expect: RangeError,
  },
  {
    name: "new DebugAllocator(undefined, { sampleEvery: 0 })",
    act: () => new DebugAllocator(undefined, { sampleEvery: 0 }),
    expect: RangeError,
  },
  {
    name: "new DebugAllocator(undefined, { retainMetadata: 1 })",
    act: () => new DebugAllocator(undefined, { retainMetadata: any(1) }),
    expect: TypeError,
  },
  {
    name: "new DebugAllocator(undefined, { unknown: true })",
    act: () => new DebugAllocator(undefined, any({ unknown: true })),
    expect: TypeError,
  },
  {
    // Unreachable blocks are found through each block's own buffer, which only detachFreed gives.
    name: "new DebugAllocator(undefined, { reportUnreachable: true, detachFreed: false })",
    act: () => new DebugAllocator(undefined, { reportUnreachable: true, detachFreed: false }),
    expect: TypeError,
  },
  { name: "alloc(-1)", arrange, act: ({ debug }) => debug.alloc(-1), expect: RangeError, after: stillWorks },
  { name: "alloc(NaN)", arrange, act: ({ debug }) => debug.alloc(NaN), expect: RangeError, after: stillWorks },
  { name: "alloc('8')", arrange, act: ({ debug }) => debug.alloc(any("8")), expect: TypeError, after: stillWorks },
  { name: "alloc(8, 3)", arrange, act: ({ debug }) => debug.alloc(8, 3), expect: RangeError, after: stillWorks },
  {
    name: "tryAlloc(2 ** 48)",
    arrange,
    act: ({ debug }) => debug.tryAlloc(2 ** 48),
    expect: RangeError,
    after: stillWorks,
  },
  {
    name: "array(Array, 4)",
    arrange,
    act: ({ debug }) => debug.array(any(Array), 4),
    expect: TypeError,
    after: stillWorks,
  },
  { name: "free({})", arrange, act: ({ debug }) => debug.free(any({})), expect: TypeError, after: stillWorks },
  {
    name: "free(a foreign Uint8Array)",
    arrange,
    act: ({ debug }) => debug.free(new Uint8Array(8)),
    expect: "invalid-free",
    after: stillWorks,
  },
  {
    name: "free(a foreign Uint8Array) (detachFreed: true)",
    arrange: () => arrange({ detachFreed: true }),
    act: ({ debug }) => debug.free(new Uint8Array(8)),
    expect: "invalid-free",
    after: stillWorks,
  },
  {
    name: "free(an interior view)",
    arrange,
    act: ({ debug, block }) => debug.free(block.subarray(4)),
    expect: "invalid-free",
    after: stillWorks,
  },
  {
    name: "resize(block, -1)",
    arrange,
    act: ({ debug, block }) => debug.resize(block, -1),
    expect: RangeError,
    after: stillWorks,
  },
  {
    name: "resize(block, 1.5)",
    arrange,
    act: ({ debug, block }) => debug.resize(block, 1.5),
    expect: RangeError,
    after: stillWorks,
  },
  {
    name: "resize('x', 8)",
    arrange,
    act: ({ debug }) => debug.resize(any("x"), 8),
    expect: TypeError,
    after: stillWorks,
  },
  {
    name: "owns(null)",
    arrange,
    act: ({ debug }) => debug.owns(any(null)),
    expect: TypeError,
    after: stillWorks,
  },
  {
    name: "alloc past memoryLimit",
    arrange: () => arrange({ memoryLimit: 40 }),
    act: ({ debug }) => debug.alloc(16),
    expect: "limit-exceeded",
    after: stillWorks,
  },
  {
    name: "free(the view of a freed block)",
    arrange: () => {
      const arranged = arrange();
      const gone = arranged.debug.alloc(8);
      arranged.debug.free(gone);
      return { ...arranged, extra: gone };
    },
    act: ({ debug, extra }) => debug.free(extra as Uint8Array),
    expect: "double-free",
    after: stillWorks,
  },
  {
    name: "resize past memoryLimit",
    arrange: () => arrange({ memoryLimit: 40 }),
    act: ({ debug, block }) => debug.resize(block, 41),
    expect: "limit-exceeded",
    after: stillWorks,
  },
  {
    name: "free(the view of a freed block) (detachFreed: true)",
    arrange: () => {
      const arranged = arrange({ detachFreed: true });
      const gone = arranged.debug.alloc(8);
      arranged.debug.free(gone);
      return { ...arranged, extra: gone };
    },
    act: ({ debug, extra }) => debug.free(extra as Uint8Array),
    expect: "double-free",
    after: stillWorks,
  },
  {
    name: "alloc after deinit()",
    arrange: () => {
      const debug = new DebugAllocator();
      debug.deinit();
      return { debug, block: new Uint8Array(32) };
    },
    act: ({ debug }) => debug.alloc(8),
    expect: "use-after-free",
  },
  {
    name: "free into a pool of a DebugAllocator's block",
    arrange: () => ({ ...arrange(), extra: new PoolAllocator({ blockSize: 64 }) }),
    act: ({ block, extra }) => (extra as PoolAllocator).free(block),
    expect: "mismatched-allocator",
    after: (arranged) => {
      (arranged.extra as PoolAllocator).dispose();
      stillWorks(arranged);
    },
  },
]);

badInputTable<number>("C-style API", [
  { name: "malloc(-1)", act: () => malloc(-1), expect: RangeError },
  { name: "malloc('8')", act: () => malloc(any("8")), expect: TypeError },
  { name: "cRealloc(0.5, 8, 8)", act: () => cRealloc(0.5, 8, 8), expect: RangeError },
  { name: "cRealloc(address, 8, -8)", act: () => cRealloc(4096, 8, -8), expect: RangeError },
  { name: "cFree('x', 8)", act: () => cFree(any("x"), 8), expect: TypeError },
  {
    name: "cFree(address, wrong size)",
    arrange: () => {
      initAllocator({ leakCheckAtExit: "off" });
      return malloc(24);
    },
    act: (address) => cFree(address, 25),
    expect: "invalid-free",
    after: (address) => {
      cFree(address, 24);
      deinit();
    },
  },
  {
    name: "cFree(an address no block starts at)",
    arrange: () => {
      initAllocator({ leakCheckAtExit: "off" });
      return malloc(24);
    },
    act: (address) => cFree(address + 8, 16),
    expect: "invalid-free",
    after: (address) => {
      cFree(address, 24);
      deinit();
    },
  },
  {
    name: "cFree twice (retainMetadata)",
    arrange: () => {
      initAllocator({ leakCheckAtExit: "off", retainMetadata: true });
      const address = malloc(24);
      cFree(address, 24);
      return address;
    },
    act: (address) => cFree(address, 24),
    expect: "double-free",
    after: () => deinit(),
  },
]);

badInputTable<FailingAllocator>("FailingAllocator", [
  {
    name: "new FailingAllocator(system, {})",
    act: () => new FailingAllocator(new SystemAllocator(), any({})),
    expect: TypeError,
  },
  {
    name: "alloc after dispose()",
    arrange: () => {
      const failing = new FailingAllocator(new SystemAllocator(), { failAfter: 4 });
      failing.dispose();
      return failing;
    },
    act: (failing) => failing.alloc(8),
    expect: "use-after-free",
  },
  {
    name: "free({})",
    arrange: () => new FailingAllocator(new SystemAllocator(), { failAfter: 4 }),
    act: (failing) => failing.free(any({})),
    expect: TypeError,
    after: (failing) => failing.free(failing.alloc(8)),
  },
]);

test("a number past 2^53 is refused naming the real limit, not as a fractional number", () => {
  const refusal = (make: () => unknown, name: string, limit: string) =>
    assert.throws(
      make,
      (e: unknown) =>
        e instanceof RangeError && e.message.includes(`'${name}' must be at most ${limit}`) &&
        !e.message.includes("must be an integer"),
    );
  const system = new SystemAllocator();
  refusal(() => new FailingAllocator(system, { failAfter: 2 ** 60 }), "failAfter", "2^53 - 1");
  refusal(() => new DebugAllocator(undefined, { sampleEvery: 2 ** 60 }), "sampleEvery", "2^53 - 1");
  refusal(() => new DebugAllocator(undefined, { stackTraceFrames: 2 ** 60 }), "stackTraceFrames", "100");
  refusal(() => new DebugAllocator(undefined, { memoryLimit: 2 ** 60 }), "memoryLimit", "2^47");
  refusal(() => initAllocator({ stackTraceFrames: 2 ** 60, leakCheckAtExit: "off" }), "stackTraceFrames", "100");
  // The largest safe integer is an integer: accepted where there is no smaller limit.
  new FailingAllocator(system, { failAfter: Number.MAX_SAFE_INTEGER }).dispose();
  new DebugAllocator(undefined, { sampleEvery: Number.MAX_SAFE_INTEGER }).deinit();
  assert.throws(() => new FailingAllocator(system, { failAfter: 1.5 }), /must be an integer/);
  system.dispose();
});
