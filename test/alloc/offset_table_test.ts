import assert from "node:assert/strict";
import { test } from "node:test";
import { OffsetTable } from "../../src/alloc/_offset_table.ts";
import { below, xorshift32 } from "../_helpers.ts";

test("OffsetTable matches a Map over 200,000 seeded set/get/delete steps", () => {
  const next = xorshift32(0x0ff5e7);
  const table = new OffsetTable();
  const model = new Map<number, number>();
  for (let step = 0; step < 200_000; step++) {
    // Keys cluster (nearby offsets) and sometimes sit far above 2^32.
    const key = (below(next, 4096) + (below(next, 8) === 0 ? 2 ** 40 : 0)) * 16;
    const op = below(next, 3);
    if (op === 0) {
      table.set(key, step);
      model.set(key, step);
    } else if (op === 1) {
      assert.equal(table.delete(key), model.delete(key), `step ${step}`);
    } else {
      assert.equal(table.get(key), model.get(key) ?? -1, `step ${step}`);
    }
    assert.equal(table.size, model.size);
  }
  for (const [key, value] of model) assert.equal(table.get(key), value);
});
