// Bad input and misuse of PurgeableBuffer, FramePool and ResourceHeap: each
// row gets its documented error without a native call (checked before any)
// and leaves memkit usable.
import assert from "node:assert/strict";
import { PurgeableBuffer } from "../../src/budget/purgeable_buffer.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const purgeableRows: BadInputRow<PurgeableBuffer | undefined>[] = [
  { name: "new PurgeableBuffer('8')", act: () => new PurgeableBuffer(any("8")), expect: TypeError },
  { name: "new PurgeableBuffer(-1)", act: () => new PurgeableBuffer(-1), expect: RangeError },
  { name: "new PurgeableBuffer(NaN)", act: () => new PurgeableBuffer(NaN), expect: RangeError },
  { name: "new PurgeableBuffer(1.5)", act: () => new PurgeableBuffer(1.5), expect: RangeError },
  { name: "new PurgeableBuffer(0)", act: () => new PurgeableBuffer(0), expect: RangeError },
  { name: "new PurgeableBuffer(2**48)", act: () => new PurgeableBuffer(2 ** 48), expect: RangeError },
  {
    name: "new PurgeableBuffer(8, { restore: 1 })",
    act: () => new PurgeableBuffer(8, any({ restore: 1 })),
    expect: TypeError,
  },
  {
    name: "new PurgeableBuffer(8, { bogus: 1 })",
    act: () => new PurgeableBuffer(8, any({ bogus: 1 })),
    expect: TypeError,
  },
  { name: "new PurgeableBuffer(8, 'x')", act: () => new PurgeableBuffer(8, any("x")), expect: TypeError },
  {
    name: "bytes of a volatile PurgeableBuffer",
    arrange: () => {
      const buffer = new PurgeableBuffer(8);
      buffer.makeVolatile();
      return buffer;
    },
    act: (buffer) => buffer!.bytes,
    expect: "unsupported",
    after: (buffer) => {
      buffer!.makeNonVolatile();
      buffer!.bytes[7] = 1;
      assert.equal(buffer!.bytes[7], 1);
      buffer!.dispose();
    },
  },
  ...(["bytes", "makeVolatile", "makeNonVolatile"] as const).map((op): BadInputRow<PurgeableBuffer | undefined> => ({
    name: `${op} of a disposed PurgeableBuffer`,
    arrange: () => {
      const buffer = new PurgeableBuffer(8);
      buffer.dispose();
      return buffer;
    },
    act: (buffer) => op === "bytes" ? buffer!.bytes : buffer![op](),
    expect: "use-after-free",
    after: () => new PurgeableBuffer(8).dispose(),
  })),
];
badInputTable("PurgeableBuffer", purgeableRows);
