// What an allocator's constructor says about an option it refuses: the range the option really has. A number of
// 2^53 or more was "must be an integer" (it is one; zod's int() also refuses integers past 2^53 and its message
// hid the real limit, 2^47), and a wrong Arena `alignment` printed zod's own "Invalid input".
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Arena,
  BuddyAllocator,
  FreeListAllocator,
  nativeInfo,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { parseOptions, z } from "../../src/base/_validate.ts";

const MAX = 2 ** 47;
const page = nativeInfo().pageSize;

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;
const escape = (value: unknown): string => String(value).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Every integer option of every allocator: how to make one with `value` for it, and its range. */
const INTEGER_OPTIONS: { option: string; make: (value: number) => unknown; min: number; max: number }[] = [
  { option: "capacity", make: (v) => new Arena({ capacity: v }), min: 1, max: MAX },
  { option: "maxCapacity", make: (v) => new Arena({ maxCapacity: v }), min: 1, max: MAX },
  { option: "capacity", make: (v) => new FreeListAllocator({ capacity: v }), min: 1, max: MAX },
  { option: "maxCapacity", make: (v) => new FreeListAllocator({ maxCapacity: v }), min: 1, max: MAX },
  { option: "blockSize", make: (v) => new PoolAllocator({ blockSize: v }), min: 1, max: MAX },
  {
    option: "blocksPerChunk",
    make: (v) => new PoolAllocator({ blockSize: 8, blocksPerChunk: v }),
    min: 1,
    max: 2 ** 24,
  },
  { option: "maxBlocks", make: (v) => new PoolAllocator({ blockSize: 8, maxBlocks: v }), min: 1, max: 2 ** 31 },
  { option: "capacity", make: (v) => new StackAllocator({ capacity: v }), min: 1, max: MAX },
  { option: "capacity", make: (v) => new BuddyAllocator({ capacity: v }), min: 1, max: 2 ** 40 },
  { option: "retainBytes", make: (v) => new SystemAllocator({ retainBytes: v }), min: 0, max: MAX },
  { option: "mmapThreshold", make: (v) => new SystemAllocator({ mmapThreshold: v }), min: 1, max: MAX },
];

test("every integer option of every allocator names its whole range for any number out of it", () => {
  for (const { option, make, min, max } of INTEGER_OPTIONS) {
    for (const value of [2 ** 53, 2 ** 60, -(2 ** 53), Number.MAX_VALUE, max + 1, min - 1, 1.5, NaN, Infinity]) {
      assert.throws(() => make(value), (e: unknown) => {
        assert.ok(e instanceof RangeError, `${option} = ${value}: ${e}`);
        assert.match(
          e.message,
          new RegExp(`'${option}' must be an integer from ${min} to ${max}: current value is ${escape(value)}$`),
        );
        return true;
      });
    }
  }
});

test("a wrong Arena alignment says what is expected, never zod's 'Invalid input'", () => {
  const expected = `'alignment' must be "natural", "cache-line", "page" or a power of two from 1 to ${page}`;
  const cases: [unknown, typeof TypeError | typeof RangeError][] = [
    ["Page", TypeError],
    ["cacheline", TypeError],
    [true, TypeError],
    [{}, TypeError],
    [null, TypeError],
    [16n, TypeError],
    [NaN, RangeError],
    [Infinity, RangeError],
    [1.5, RangeError],
    [-16, RangeError],
    [0, RangeError],
    [3, RangeError],
    [page * 2, RangeError],
    [2 ** 53, RangeError],
  ];
  for (const [alignment, kind] of cases) {
    assert.throws(() => new Arena({ alignment: any(alignment) }), (e: unknown) => {
      assert.ok(e instanceof kind && e.constructor === kind, `${String(alignment)}: ${e}`);
      assert.ok(e.message.startsWith(`Cannot create Arena as ${expected}: current value is `), e.message);
      assert.doesNotMatch(e.message, /Invalid input|must be an integer/);
      return true;
    });
  }
  // What it accepts still works.
  for (const alignment of ["natural", "cache-line", "page", 1, 64, page] as const) new Arena({ alignment }).dispose();
});

test("a power-of-two option (Pool align, Buddy minBlockSize) names its range for any number out of it", () => {
  for (const value of [2 ** 53, 3, 0, -8, 1.5, NaN, page * 2]) {
    assert.throws(
      () => new PoolAllocator({ blockSize: 8, align: value }),
      new RegExp(`^RangeError: Cannot create PoolAllocator as 'align' must be a power of two from 1 to ${page}: `),
    );
  }
  for (const value of [2 ** 53, 24, 8, 0, 1.5, NaN, 2 ** 31]) {
    assert.throws(
      () => new BuddyAllocator({ capacity: 1 << 16, minBlockSize: value }),
      /^RangeError: Cannot create BuddyAllocator as 'minBlockSize' must be a power of two from 16 to 1073741824: /,
    );
  }
});

test("parseOptions: a number past 2^53 is refused naming the option's own bound, in any family's schema", () => {
  // The shared helper, for schemas written as int() then min/max (as other families write them).
  const schema = z.object({
    bounded: z.number().int("must be an integer").min(1, "must be at least 1").max(100, "must be at most 100")
      .optional(),
    unbounded: z.number().int("must be an integer").min(0, "must be at least 0").optional(),
    choice: z.union([z.enum(["on", "off"]), z.number()]).optional(),
  }).strict();
  assert.throws(
    () => parseOptions(schema, { bounded: 2 ** 53 }, "test"),
    /^RangeError: Cannot test as 'bounded' must be at most 100: current value is 9007199254740992$/,
  );
  assert.throws(
    () => parseOptions(schema, { bounded: -(2 ** 53) }, "test"),
    /^RangeError: Cannot test as 'bounded' must be at least 1: current value is -9007199254740992$/,
  );
  assert.throws(
    () => parseOptions(schema, { unbounded: 2 ** 53 }, "test"),
    /^RangeError: Cannot test as 'unbounded' must be at most 9007199254740991 \(2\^53 - 1\): current value is 9007199254740992$/,
  );
  assert.throws(() => parseOptions(schema, { bounded: 1.5 }, "test"), /'bounded' must be an integer: current value/);
  // A union without a message of its own lists what each of its members takes.
  assert.throws(
    () => parseOptions(schema, { choice: "maybe" }, "test"),
    /^TypeError: Cannot test as 'choice' must be "on", "off" or a number: current value is "maybe"$/,
  );
  assert.throws(
    () => parseOptions(schema, { choice: NaN }, "test"),
    /^RangeError: Cannot test as 'choice' must be "on", "off" or a number: current value is NaN$/,
  );
});

// Arena.reset()'s { retainLimit } object is an options object: an unknown or mistyped key is a TypeError naming it,
// as any other options object's. Before, the valid retainLimit was blamed: "RangeError Cannot reset as
// 'retainLimit' must be an integer from 0 to 140737488355328: current value is 1".
test("Arena.reset({ retainLimit, <unknown key> }) is a TypeError naming the key, not a RangeError about retainLimit", () => {
  const arena = new Arena({ capacity: 4096 });
  for (
    const [mode, key] of [[{ retainLimit: 1, extra: 1 }, "extra"], [
      { retainLimit: 4096, retainlimit: 0 },
      "retainlimit",
    ], [
      { retainlimit: 4096 },
      "retainlimit",
    ]] as const
  ) {
    assert.throws(
      () => arena.reset(any(mode)),
      (e: unknown) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(e.message, new RegExp(`^Cannot reset as option '${key}' is not known: expected only retainLimit`));
        return true;
      },
    );
  }
  assert.throws(() => arena.reset(any({ retainLimit: -1 })), /^RangeError: Cannot reset as 'retainLimit' must be/);
  assert.throws(() => arena.reset(any({ retainLimit: 1.5 })), /^RangeError: Cannot reset as 'retainLimit' must be/);
  assert.throws(
    () => arena.reset(any({ retainLimit: "x" })),
    /^TypeError: Cannot reset as 'retainLimit' must be a number/,
  );
  assert.throws(() => arena.reset(any({})), /^TypeError: Cannot reset as option 'retainLimit' is required and missing/);
  assert.throws(() => arena.reset(any("bogus")), /^TypeError: Cannot reset as 'mode' must be "free-all"/);
  assert.throws(() => arena.reset(any([])), /^TypeError: Cannot reset as 'mode' must be "free-all"/);
  arena.reset({ retainLimit: 4096 }); // what it accepts still works
  arena.dispose();
});

// A BuddyAllocator smaller than its smallest block: the message names 'capacity' (what the program passed) and
// the smallest capacity it takes, not 'minBlockSize', which it never passed. Before: "'minBlockSize' must be at
// most 'capacity' (3): current value is 16".
test("BuddyAllocator({ capacity }) below the default minBlockSize names capacity and its minimum", () => {
  for (const capacity of [1, 3, 15]) {
    assert.throws(
      () => new BuddyAllocator({ capacity }),
      (e: unknown) => {
        assert.ok(e instanceof RangeError, String(e));
        assert.match(
          e.message,
          new RegExp(
            `^Cannot create BuddyAllocator as 'capacity' must be at least 16, the default 'minBlockSize' .*` +
              `: current value is ${capacity}$`,
          ),
        );
        assert.doesNotMatch(e.message, /'minBlockSize' must/);
        return true;
      },
    );
  }
  // With minBlockSize given, a capacity below it names both, as the program passed both.
  assert.throws(
    () => new BuddyAllocator({ capacity: 64, minBlockSize: 128 }),
    /^RangeError: Cannot create BuddyAllocator as 'capacity' must be at least 'minBlockSize' \(128\)/,
  );
  new BuddyAllocator({ capacity: 16 }).dispose(); // the smallest it takes
});
