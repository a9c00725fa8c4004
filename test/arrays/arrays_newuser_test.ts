// Found by a new user's pass over the README's arrays sections: at maxCapacity,
// the RangeError said only what the limit was, not that it is fixed at creation
// and how to get a larger one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SharedDynamicArray, struct } from "../../mod.ts";

test("SharedDynamicArray past maxCapacity: the RangeError says the limit is fixed and what to do; nothing changes", () => {
  const Point = struct({ x: "f32", y: "f32" });
  const points = new SharedDynamicArray<{ x: number; y: number }>(Point, { maxCapacity: 2 });
  points.pushMany([{ x: 1, y: 2 }, { x: 3, y: 4 }]);
  for (const write of [() => points.push({ x: 5, y: 6 }), () => points.pushMany([{ x: 5, y: 6 }])]) {
    assert.throws(write, (error: unknown) => {
      assert.ok(error instanceof RangeError);
      assert.match(error.message, /to 3 elements: its maxCapacity is 2/);
      assert.match(error.message, /fixed when it was created/);
      assert.match(error.message, /create it with a larger maxCapacity/);
      return true;
    });
  }
  assert.deepEqual(points.toArray(), [{ x: 1, y: 2 }, { x: 3, y: 4 }]);
  points.pop(); // the lock was freed: the next writes go through at once
  assert.equal(points.push({ x: 7, y: 8 }), 2);
});
