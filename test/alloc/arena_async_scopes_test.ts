// An Arena's scopes are one LIFO stack. Two async tasks that each open a scope
// on the same arena and await inside it interleave on that stack: when the
// task that opened its scope first ends it first, that end also ends the
// other task's scope (opened later, so nested in it), whose views then read as
// length 0 (with safety) while the task still uses them. The JSDoc of
// Arena.scope() warns about this; these tests hold it to what it says.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Arena } from "../../mod.ts";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("Arena: two async tasks' scopes on one arena: the first-opened scope's end ends the later one too", async () => {
  const arena = new Arena({ capacity: 1 << 16 });
  try {
    let seen = -1;
    // The tasks take turns by promises, not timers (a loaded machine fires timers out of order).
    const firstOpened = Promise.withResolvers<void>(), secondOpened = Promise.withResolvers<void>();
    const first = (async () => {
      using _scope = arena.scope();
      const view = arena.alloc(64);
      firstOpened.resolve();
      await secondOpened.promise; // ends first, once the second task's scope is open
      return view.length;
    })();
    const second = (async () => {
      await firstOpened.promise; // opens its scope after the first task's
      using _scope = arena.scope();
      const view = arena.alloc(64);
      assert.equal(arena.stats().scopeDepth, 2);
      secondOpened.resolve();
      await first; // the first task's scope ends meanwhile
      seen = arena.stats().scopeDepth;
      return view.length;
    })();
    assert.equal(await first, 64);
    assert.equal(await second, 0, "the later scope's view was detached by the earlier scope's end");
    assert.equal(seen, 0, "both scopes had ended before the second task's own end");
    assert.equal(arena.stats().allocatedBytes, 0);
  } finally {
    arena.dispose();
  }
});

test("Arena: one arena per concurrent task keeps each task's views until its own scope ends", async () => {
  const arenas = [new Arena({ capacity: 1 << 16 }), new Arena({ capacity: 1 << 16 })];
  try {
    const run = async (arena: Arena, startMs: number, holdMs: number) => {
      await tick(startMs);
      using _scope = arena.scope();
      const view = arena.alloc(64);
      await tick(holdMs);
      return view.length;
    };
    assert.deepEqual(await Promise.all([run(arenas[0], 0, 5), run(arenas[1], 1, 30)]), [64, 64]);
  } finally {
    for (const arena of arenas) arena.dispose();
  }
});
