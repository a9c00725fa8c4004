// A StackAllocator, BuddyAllocator or FreeListAllocator views its first chunk as one ArrayBuffer, so a capacity
// above what one ArrayBuffer holds in this runtime (nativeInfo().maxViewBytes: 4 GiB in Bun) can never be used.
// The constructor refuses it at once with AllocationError("unsupported") naming that limit and what to do, before
// its backing is asked and before any native call (nothing is mapped, however large the capacity). Before, in Bun,
// the default backing refused the chunk and the constructor said "out-of-memory", as if a smaller machine were the
// problem. In Deno one ArrayBuffer holds any size memkit maps: the same capacities go to the backing as before.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  BuddyAllocator,
  FreeListAllocator,
  nativeInfo,
  StackAllocator,
} from "../../mod.ts";
import { MAX_BLOCK_SIZE } from "../../src/base/_validate.ts";
import { zeroStats } from "../../src/alloc/_zero_stats.ts";
import { spyOnNativeCalls } from "../_native_hooks.ts";
import { native } from "../../ffi/native.ts";

const { maxViewBytes, pageSize } = nativeInfo();
/** One page above the limit (a whole number of pages, so no rounding hides it). */
const over = maxViewBytes + pageSize;
const NO_LIMIT = over > MAX_BLOCK_SIZE && "this runtime views any size memkit maps in one ArrayBuffer";
const RUNTIME = nativeInfo().runtime === "deno" ? "Deno" : "Bun";

/** A backing that counts the chunks it is asked for and refuses each (it never maps anything). */
function countingBacking(): { backing: Allocator; asked: number[] } {
  const asked: number[] = [];
  const backing = {
    kind: "system",
    alloc: () => {
      throw new AllocationError("out-of-memory", "refused");
    },
    tryAlloc: (size: number) => (asked.push(size), null),
    array: () => new Uint8Array(0),
    free: () => {},
    resize: () => null,
    owns: () => false,
    stats: () => zeroStats("system"),
  } as unknown as Allocator;
  return { backing, asked };
}

/**
 * Records every call that reaches libc (spyOnNativeCalls), the native heap (malloc, posix_memalign: a
 * SystemAllocator's blocks below its mmap threshold) or an ArrayBuffer over native memory, during `fn`.
 */
function nativeCallsOf(fn: () => void): string[] {
  const spy = spyOnNativeCalls();
  const heap = native.heap as unknown as Record<string, unknown>;
  const original = { ...heap };
  const wrap = native.wrap;
  for (const key of ["malloc", "realloc", "memalign", "free", "madvise"]) {
    const f = original[key] as (...args: unknown[]) => unknown;
    heap[key] = (...args: unknown[]) => (spy.calls.push(`heap.${key}`), f(...args));
  }
  (native as { wrap: typeof wrap }).wrap = (address, byteLength) => (spy.calls.push("wrap"), wrap(address, byteLength));
  try {
    fn();
  } finally {
    spy.restore();
    Object.assign(heap, original);
    (native as { wrap: typeof wrap }).wrap = wrap;
  }
  return spy.calls;
}

type Make = (capacity: number, backing?: Allocator) => unknown;
// A BuddyAllocator's capacity is rounded up to a power of two, with at most 2^22 smallest blocks: 1 MiB ones.
const MAKERS: [string, Make, number][] = [
  ["StackAllocator", (capacity, backing) => new StackAllocator({ capacity, backing }), 2 ** 46],
  ["BuddyAllocator", (capacity, backing) => new BuddyAllocator({ capacity, minBlockSize: 1 << 20, backing }), 2 ** 40],
  ["FreeListAllocator", (capacity, backing) => new FreeListAllocator({ capacity, backing }), 2 ** 46],
];

const viewLimit = (name: string) => (e: unknown) => {
  assert.ok(e instanceof AllocationError, `${name}: an AllocationError, not ${e}`);
  assert.equal(e.category, "unsupported", e.message);
  assert.match(
    e.message,
    new RegExp(
      `^Cannot create ${name} as its (first )?chunk( \\(its capacity rounded up to a power of two\\))? needs \\d+ bytes in one view: ${RUNTIME} allows at most ${maxViewBytes} ` +
        `bytes per ArrayBuffer \\(nativeInfo\\(\\)\\.maxViewBytes\\); pass a 'capacity' of at most ${maxViewBytes}`,
    ),
  );
  return true;
};

for (const [name, make, huge] of MAKERS) {
  test(
    `${name}: a capacity one page above one ArrayBuffer is unsupported, before its backing is asked or any native call`,
    {
      skip: NO_LIMIT,
    },
    () => {
      for (const capacity of [over, huge]) {
        // The default backing: nothing reaches libc (a mapping of that size would take minutes or fail).
        const spy = spyOnNativeCalls();
        try {
          assert.throws(() => make(capacity), viewLimit(name), `${name}({ capacity: ${capacity} })`);
        } finally {
          spy.restore();
        }
        assert.deepEqual(spy.calls, [], `${name}({ capacity: ${capacity} }): no native call`);
        // A backing of the program's: never asked.
        const { backing, asked } = countingBacking();
        assert.throws(() => make(capacity, backing), viewLimit(name));
        assert.deepEqual(asked, [], `${name}({ capacity: ${capacity} }): the backing was not asked`);
      }
    },
  );

  test(`${name}: the native calls a capacity that fits makes are seen (the check above can fail)`, () => {
    let made: unknown = null;
    const calls = nativeCallsOf(() => made = make(1 << 20));
    (made as Disposable)[Symbol.dispose]();
    assert.ok(calls.includes("wrap"), `${name}: ${calls.join(", ")}`);
  });

  test(`${name}: a capacity above Bun's 4 GiB view still goes to the backing where one ArrayBuffer holds it`, {
    skip: !NO_LIMIT && "this runtime's ArrayBuffers hold at most nativeInfo().maxViewBytes",
  }, () => {
    // The backing refuses (nothing is mapped): the refusal is its own, "out-of-memory", as before.
    const { backing, asked } = countingBacking();
    assert.throws(
      () => make(2 ** 33 + pageSize, backing),
      (e: unknown) => e instanceof AllocationError && e.category === "out-of-memory" && /refused/.test(e.message),
    );
    assert.equal(asked.length, 1, "the backing was asked for the chunk");
  });
}
