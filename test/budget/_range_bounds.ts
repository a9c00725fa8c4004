// A check shared by the budget and profiler tables: a numeric option's
// RangeError says its real bounds, the same for every out-of-range value (a
// budget's 'physicalBytes' of -1 used to say "at least 0" and then refuse 0
// with "at least 1"), and a value at a stated inclusive bound is accepted.
import assert from "node:assert/strict";
import { test } from "node:test";

/** One numeric option, with values below and above its range. */
export interface RangeRow {
  /** What the test calls it. */
  name: string;
  /** Uses the option with `value`; what it returns is disposed when it can be. */
  make: (value: number) => unknown;
  below: number[];
  above: number[];
  /** Whether a value at the stated upper bound may be tried (false when that would map a huge block). */
  tryUpper?: boolean;
}

// The first number in a bound's text: "2^20", "1e6", "3600000", "the normal total (524288 bytes)".
const numberIn = (text: string): number => {
  const token = /2\^\d+|-?\d+(?:\.\d+)?(?:e\d+)?/.exec(text)?.[0];
  assert.ok(token !== undefined, `no number in the bound "${text}"`);
  return token.startsWith("2^") ? 2 ** Number(token.slice(2)) : Number(token);
};

// The bound a RangeError states: "at least 1", "from 0 to 100", "at most the normal total (524288 bytes)".
function boundOf(row: RangeRow, value: number): string {
  let message = "";
  try {
    dispose(row.make(value));
  } catch (error) {
    assert.ok(error instanceof RangeError, `${row.name} ${value}: ${error}`);
    message = error.message;
  }
  assert.ok(message !== "", `${row.name} ${value} was accepted`);
  const bound = /must be .*?\b((?:at least|at most|from|above|below) .+?): current value/.exec(message);
  assert.ok(bound, `${row.name} ${value}: no bound in "${message}"`);
  return bound[1];
}

function dispose(made: unknown): void {
  const end = (made as { [Symbol.dispose]?: () => void } | null)?.[Symbol.dispose];
  if (typeof end === "function") end.call(made);
}

// A value at a stated inclusive bound must not be refused as out of range.
function accepted(row: RangeRow, value: number, bound: string): void {
  try {
    dispose(row.make(value));
  } catch (error) {
    assert.ok(!(error instanceof RangeError), `${row.name}: says "${bound}" but refuses ${value}: ${error}`);
  }
}

/** Registers one test per row. */
export function rangeBoundsTable(title: string, rows: RangeRow[]): void {
  for (const row of rows) {
    test(`${title}: ${row.name} states one real bound for every value out of range`, () => {
      for (const [side, values] of [["below", row.below], ["above", row.above]] as const) {
        if (values.length === 0) continue; // no bound on that side (a weight may be any finite number from 0)
        const bounds = values.map((value) => boundOf(row, value));
        assert.equal(new Set(bounds).size, 1, `${row.name} ${side} ${values}: ${JSON.stringify(bounds)}`);
        const bound = bounds[0];
        assert.match(bound, side === "below" ? /^(at least|from|above) / : /^(at most|from|below) /, row.name);
        const range = /^from (.+?)(?: to (.+))?$/.exec(bound);
        const tryIt = side === "below" || row.tryUpper !== false;
        if (range) {
          assert.ok(side === "below" || range[2] !== undefined, `${row.name}: "${bound}" states no upper bound`);
          if (tryIt) accepted(row, numberIn(side === "below" ? range[1] : range[2]), bound);
        } else if (/^at (least|most) /.test(bound) && tryIt) accepted(row, numberIn(bound), bound);
      }
    });
  }
}
