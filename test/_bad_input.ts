// The runner behind every bad-input table (test/bad_input_test.ts and the
// per-family tables): each row gets its documented error, makes no native
// call while it runs, and leaves memkit usable.
import assert from "node:assert/strict";
import { test } from "node:test";
import { spyOnNativeCalls } from "./_native_hooks.ts";
import { AllocationError, type AllocationErrorCategory } from "../mod.ts";

/** What a row must throw: an error class, or an AllocationError category. */
export type Expected = typeof TypeError | typeof RangeError | AllocationErrorCategory;

/** One bad input. */
export interface BadInputRow<A = unknown> {
  name: string;
  /** Setup that may call native code; runs before the spy starts. Its result goes to `act` and `after`. */
  arrange?: () => A;
  /** The misuse; must throw `expect` without a native call. */
  act: (arranged: A) => unknown;
  expect: Expected;
  /** Checks that what `act` touched still works, and cleans up (native calls allowed). */
  after?: (arranged: A) => void;
  /** Native calls `act` may make (for misuse that can only be found by asking the OS). */
  allowNative?: boolean;
}

/** Whether `error` is what `expected` names (an AllocationError is never a plain TypeError here). */
export function matches(error: unknown, expected: Expected): boolean {
  if (typeof expected === "string") return error instanceof AllocationError && error.category === expected;
  return error instanceof expected && !(error instanceof AllocationError);
}

/** A readable name for `expected`. */
export function expectedLabel(expected: Expected): string {
  return typeof expected === "string" ? `AllocationError("${expected}")` : expected.name;
}

/** Registers one test per row. */
export function badInputTable<A>(title: string, rows: BadInputRow<A>[]): void {
  for (const row of rows) {
    test(`${title}: ${row.name} throws ${expectedLabel(row.expect)}${row.allowNative ? "" : ", no native call"}`, () => {
      const arranged = row.arrange?.() as A;
      const spy = spyOnNativeCalls();
      let thrown: unknown = null;
      try {
        row.act(arranged);
      } catch (error) {
        thrown = error;
      } finally {
        spy.restore();
      }
      assert.ok(thrown !== null, `${row.name} did not throw`);
      assert.ok(matches(thrown, row.expect), `${row.name} threw ${thrown}`);
      assert.ok((thrown as Error).message.length > 20, `the message explains: ${(thrown as Error).message}`);
      if (!row.allowNative) assert.deepEqual(spy.calls, [], `${row.name} made native calls`);
      row.after?.(arranged);
    });
  }
}
