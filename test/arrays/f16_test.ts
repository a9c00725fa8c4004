// memkit's own half-float conversion (used where a runtime has no
// DataView.setFloat16) against the runtime's Float16Array, where there is one:
// every one of the 65,536 bit patterns, every tie between neighbours, and
// random doubles across the whole range.
import assert from "node:assert/strict";
import { test } from "node:test";
import { f16Bits, f16Value } from "../../src/arrays/_f16.ts";
import { xorshift32 } from "../_helpers.ts";

const Native = (globalThis as { Float16Array?: Float16ArrayConstructor }).Float16Array;
const skip = Native === undefined ? "this runtime has no Float16Array to compare with" : false;

function nativeBits(x: number): number {
  const halves = new Native!(1);
  halves[0] = x;
  return new Uint16Array(halves.buffer)[0];
}

test("f16Value() reads every bit pattern as Float16Array does", { skip }, () => {
  const all = new Native!(new Uint16Array(Array.from({ length: 65536 }, (_, i) => i)).buffer);
  for (let bits = 0; bits < 65536; bits++) {
    const expected = all[bits];
    const got = f16Value(bits);
    if (!Object.is(got, expected) && !(Number.isNaN(got) && Number.isNaN(expected))) {
      assert.fail(`bits 0x${bits.toString(16)}: ${got}, Float16Array reads ${expected}`);
    }
  }
});

test("f16Bits() rounds as Float16Array does: exact values, ties to even, overflow, subnormals", { skip }, () => {
  const values: number[] = [0, -0, Infinity, -Infinity, 65504, 65519.99, 65520, 1e10, -1e10, 2 ** -24, 2 ** -25];
  // (NaN is checked apart: which NaN bits a runtime stores is not specified.)
  for (let bits = 0; bits < 0x7bff; bits++) {
    const x = f16Value(bits);
    const next = f16Value(bits + 1);
    // The value itself, the tie with its (finite) neighbour, and just either side of the tie.
    const tie = (x + next) / 2;
    values.push(x, -x, tie, -tie, tie + (next - x) / 1024, tie - (next - x) / 1024);
  }
  const next = xorshift32(0x5eed16);
  for (let i = 0; i < 100_000; i++) {
    const scale = 2 ** ((next() % 60) - 30);
    values.push(((next() / 2 ** 32) * 2 - 1) * scale);
  }
  for (const x of values) {
    const got = f16Bits(x);
    const expected = nativeBits(x);
    if (got !== expected) assert.fail(`${x}: 0x${got.toString(16)}, Float16Array stores 0x${expected.toString(16)}`);
  }
  assert.ok(Number.isNaN(f16Value(f16Bits(NaN))));
});
