// BudgetToken and MemoryBudget.stats against callers that rewrite things: a
// token's size, category and priority are read-only and release() gives back
// what was granted whatever is defined on the token (t19); a category named
// "__proto__" is an entry of stats().categories, not its prototype (t08).
import assert from "node:assert/strict";
import { test } from "node:test";
import { BudgetToken, MemoryBudget } from "../../mod.ts";

test("a token's fields are read-only and release() gives back what was granted (t19)", () => {
  const budget = new MemoryBudget({ physicalBytes: 1000, fractions: { normal: 1 }, minimumBytes: 0 });
  const token = budget.request(100, "ui")!;
  for (const key of ["size", "category", "priority"]) {
    assert.throws(() => ((token as unknown as Record<string, unknown>)[key] = 1e12), TypeError, key);
  }
  Object.defineProperty(token, "size", { value: 1e12 });
  Object.defineProperty(token, "category", { value: "nope" });
  token.release();
  assert.equal(budget.usedBytes, 0);
  assert.equal(budget.availableBytes, 1000);
  assert.deepEqual(budget.stats().categories.ui, { usedBytes: 0, peakBytes: 100, tokens: 0, granted: 1, refused: 0 });
  const whole = budget.request(1000, "ui");
  assert.equal(whole?.size, 1000);
  assert.equal(budget.request(1000, "ui"), null, "no second grant from a full budget");
  whole!.release();
  token.release(); // a second release does nothing
  assert.equal(budget.usedBytes, 0);
});

test("a BudgetToken cannot be made but by MemoryBudget.request(): new, a subclass, and Reflect.construct are TypeErrors", () => {
  const release = () => {};
  assert.throws(() => new BudgetToken(64, "ui", 50, release), /MemoryBudget\.request\(\) grants them/);
  assert.throws(() => new BudgetToken(-1, 0 as never, NaN, "not a function" as never), TypeError);
  class Forged extends BudgetToken {}
  assert.throws(() => new Forged(64, "ui", 50, release), TypeError);
  assert.throws(() => Reflect.construct(BudgetToken, [64, "ui", 50, release]), TypeError);
  const budget = new MemoryBudget({ physicalBytes: 1000, fractions: { normal: 1 }, minimumBytes: 0 });
  const granted = budget.request(64, "ui")!;
  assert.ok(granted instanceof BudgetToken, "request() still grants tokens");
  granted.release();
  assert.equal(budget.usedBytes, 0);
});

test("a category named __proto__ is listed in stats().categories, the prototype stays Object.prototype (t08)", () => {
  const budget = new MemoryBudget({ physicalBytes: 1000, fractions: { normal: 1 }, minimumBytes: 0 });
  const token = budget.request(100, "__proto__")!;
  const { categories } = budget.stats();
  assert.equal(Object.getPrototypeOf(categories), Object.prototype);
  assert.deepEqual(Object.keys(categories), ["__proto__"]);
  assert.equal(Object.getOwnPropertyDescriptor(categories, "__proto__")?.value.usedBytes, 100);
  token.release();
  assert.equal(budget.usedBytes, 0);
});
