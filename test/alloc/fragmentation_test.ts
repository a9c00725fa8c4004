// fragmentation() over any finite, non-negative sizes: a number from 0 to 1 that depends only on the
// proportions of the sizes. The sum and the sum of squares overflowed (MAX_VALUE: NaN; 1e200: 0) or underflowed
// (1e-320: 1) before the sizes were scaled by the largest.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fragmentation } from "../../mod.ts";

const TWO_EQUAL = 1 - Math.SQRT1_2; // about 0.29
const close = (actual: number, expected: number, label: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${label}: ${actual}, expected about ${expected}`);

test("fragmentation() of two equal blocks is about 0.29 at any scale, the extremes included", () => {
  for (const size of [1, 16, 4096, 2 ** 47, 1e200, 1e300, Number.MAX_VALUE, 1e-300, 1e-320, Number.MIN_VALUE]) {
    close(fragmentation([size, size]), TWO_EQUAL, `[${size}, ${size}]`);
    close(fragmentation(new Float64Array([size, size])), TWO_EQUAL, `Float64Array [${size}, ${size}]`);
  }
});

test("fragmentation() depends only on the proportions of the sizes", () => {
  const shapes = [[1], [1, 1, 1, 1], [1, 2, 3], [5, 0, 5], [1, 1e-10], [3, 1, 4, 1, 5, 9, 2, 6]];
  for (const shape of shapes) {
    const expected = fragmentation(shape);
    for (const scale of [1e-310, 1e-200, 1e200, Number.MAX_VALUE / 10]) {
      close(fragmentation(shape.map((s) => s * scale)), expected, `${shape} × ${scale}`);
    }
  }
  close(fragmentation(Array(10).fill(Number.MAX_VALUE)), 1 - 1 / Math.sqrt(10), "ten MAX_VALUE blocks");
});

test("fragmentation() is always a number from 0 to 1 for finite non-negative sizes", () => {
  const rows = [
    [],
    [0],
    [0, 0],
    [-0],
    [Number.MAX_VALUE],
    [Number.MAX_VALUE, Number.MIN_VALUE],
    [Number.MIN_VALUE, Number.MAX_VALUE],
    [Number.MAX_VALUE, Number.MAX_VALUE, Number.MAX_VALUE],
    [1e-320, 1e300],
    [0, 1e-320],
    Array(1000).fill(1e308),
    Array.from({ length: 1000 }, (_, i) => (i % 7) * 1e305),
  ];
  for (const row of rows) {
    const value = fragmentation(row);
    assert.ok(value >= 0 && value <= 1, `fragmentation(${row.length > 4 ? `${row.length} sizes` : row}) = ${value}`);
  }
  assert.equal(fragmentation([Number.MAX_VALUE]), 0);
  assert.equal(fragmentation([0, Number.MIN_VALUE]), 0); // one block and an empty one
});

test("fragmentation() reads any iterable once (a generator, a Set)", () => {
  close(
    fragmentation((function* () {
      yield Number.MAX_VALUE;
      yield Number.MAX_VALUE;
    })()),
    TWO_EQUAL,
    "a generator",
  );
  close(fragmentation(new Set([1e-320, 2e-320])), fragmentation([1, 2]), "a Set of tiny sizes");
});
