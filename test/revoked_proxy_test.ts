// A revoked Proxy (its revoke() ran: every read, even Array.isArray, throws
// the engine's TypeError) given where an array or an options object belongs,
// at entry points outside the HAL (whose own table is in test/hal): each is
// refused with memkit's TypeError naming the argument, never the engine's
// "Cannot perform 'IsArray' on a proxy that has been revoked".
import assert from "node:assert/strict";
import { test } from "node:test";
import { Arena, heatmap, leakSuspicion, MemoryProfiler, PressureMonitor, respondToPressure } from "../mod.ts";

function revoked(): never {
  const { proxy, revoke } = Proxy.revocable([], {});
  revoke();
  return proxy as never;
}

const engine = /revoked|IsArray/i;

test("a revoked Proxy where an array or options belong is memkit's TypeError naming the argument", () => {
  using arena = new Arena({ capacity: 1 << 16 });
  const monitor = new PressureMonitor();
  const rows: [string, () => unknown, RegExp][] = [
    ["heatmap(snapshots)", () => heatmap(revoked()), /^Cannot draw a heatmap as 'snapshots' must be an array/],
    ["leakSuspicion(snapshots)", () => leakSuspicion(revoked()), /^Cannot look for leaks as 'snapshots'/],
    ["MemoryProfiler sources", () => new MemoryProfiler({ sources: revoked() }), /'sources' is a revoked Proxy/],
    ["Arena.reset(mode)", () => arena.reset(revoked()), /^Cannot reset as 'mode' must be/],
    ["respondToPressure targets", () => respondToPressure(monitor, revoked()), /'targets' must be an object/],
  ];
  for (const [name, act, message] of rows) {
    assert.throws(act, (error) => {
      assert.ok(error instanceof TypeError, `${name}: ${error}`);
      assert.match(error.message, message, name);
      // The engine's own message names IsArray or a revoked proxy without saying which argument.
      if (engine.test(error.message)) assert.match(error.message, /^Cannot /, name);
      return true;
    }, name);
  }
  // The arena refused and changed nothing.
  assert.equal(arena.stats().allocatedBytes, 0);
  arena.alloc(16);
});
