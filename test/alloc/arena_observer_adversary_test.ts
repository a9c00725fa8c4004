// Adversarial re-entry of Arena observers in a chain (after a1e9547): an
// onAlloc observer told of a block a child allocator is taking may open a
// scope of its own and end it, but a scope it opened becomes "older" for a
// second child that takes memory inside it. Ending that scope from the
// observer told of the second child's take must be refused, as for any
// scope opened before a take: it would release the block before the child
// has claimed it (without safety the arena hands it out again under the
// child; with safety the child gets a released, detached chunk).
import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, Arena, type ArenaScope, StackAllocator } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

function category(error: unknown): string {
  return error instanceof AllocationError ? error.category : String(error);
}

// Fills every live view with its own byte, then checks each kept it and that no two overlap in memory.
function assertDisjoint(views: Uint8Array[], label: string): void {
  const live = views.filter((v) => v.length !== 0);
  live.forEach((v, i) => v.fill((i % 250) + 1));
  live.forEach((v, i) => {
    assert.ok(v.every((b) => b === (i % 250) + 1), `${label}: view ${i} of ${live.length} was overwritten`);
  });
  const spans = live.map((v) => [addressOf(v), addressOf(v) + v.length]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    assert.ok(spans[i][0] >= spans[i - 1][1], `${label}: two live views share bytes`);
  }
}

for (const safety of [true, false]) {
  test(`Arena chain: a scope an observer opened cannot end while a child takes memory inside it (safety: ${safety})`, () => {
    const arena = new Arena({ capacity: 1 << 16, safety });
    let depth = 0;
    // Set by the observer (a holder: TypeScript does not see a closure's assignments).
    const made: { inner?: ArenaScope; second?: StackAllocator } = {};
    const errors: string[] = [];
    const stop = arena.observe({
      onAlloc() {
        depth++;
        try {
          if (depth === 1 && made.inner === undefined) {
            // Told of the first stack's chunk: a scope of its own, and a second stack taking its chunk in it.
            made.inner = arena.scope();
            made.second = new StackAllocator({ capacity: 4096, backing: arena });
          } else if (depth === 2) {
            // Told of the second stack's chunk, not yet claimed: ending the scope it lies in is refused.
            try {
              made.inner?.end();
            } catch (error) {
              errors.push(category(error));
            }
          }
        } finally {
          depth--;
        }
      },
    });
    const first = new StackAllocator({ capacity: 4096, backing: arena });
    stop();
    const { inner, second } = made;
    assert.ok(
      inner !== undefined && second !== undefined,
      "the second stack was created (its chunk was not released under it)",
    );
    assert.deepEqual(errors, ["unsupported"]);
    assert.equal(inner.active, true, "the refused end changed nothing");
    const views = [second.alloc(64), second.alloc(64), first.alloc(64)];
    const parent = [arena.alloc(4096), arena.alloc(4096)];
    assertDisjoint([...views, ...parent], `safety ${safety}`);
    // Once the second stack holds its chunk, the scope ends as usual and takes the chunk through the chain.
    inner.end();
    assert.equal(views[0].length, 0, "the second stack's views are released with its chunk");
    assert.throws(() => second.alloc(8), (e) => e instanceof AllocationError && e.category === "use-after-free");
    assert.equal(first.alloc(8).length, 8);
    first.dispose();
    arena.dispose();
  });
}

// Seeded: observers that, at random nesting depths of child takes, open scopes, create stacks, allocate, free,
// end any open scope or reset. With safety a released view reads as length 0, so every view of nonzero length must
// be live: none may share bytes with another, and a later ordinary observer can still reset (no refusal stuck).
for (const seed of [1, 7, 42, 1234, 99991]) {
  test(`Arena chain: seeded nested observer re-entry keeps live views disjoint (seed ${seed})`, () => {
    const next = xorshift32(seed);
    for (const safety of [true]) { // without safety a released view still reads: this model cannot tell it
      const arena = new Arena({ capacity: 1 << 18, safety });
      const scopes: ArenaScope[] = [];
      const stacks: StackAllocator[] = [];
      const views: Uint8Array[] = [];
      let depth = 0;
      let budget = 40;
      const stop = arena.observe({
        onAlloc(view) {
          if (budget-- <= 0 || depth > 3) return;
          depth++;
          try {
            switch (below(next, 6)) {
              case 0:
                scopes.push(arena.scope());
                break;
              case 1:
                stacks.push(new StackAllocator({ capacity: 4096, backing: arena }));
                break;
              case 2:
                views.push(arena.alloc(16 + below(next, 200)));
                break;
              case 3:
                arena.free(view);
                break;
              case 4:
                if (scopes.length !== 0) scopes[below(next, scopes.length)].end();
                break;
              default:
                if (below(next, 2) === 0) arena.reset();
                else stacks[below(next, Math.max(1, stacks.length))]?.alloc(32);
            }
          } catch (error) {
            assert.ok(error instanceof AllocationError, `seed ${seed}: ${error}`);
          } finally {
            depth--;
          }
        },
      });
      for (let round = 0; round < 6; round++) {
        try {
          stacks.push(new StackAllocator({ capacity: 4096, backing: arena }));
        } catch (error) {
          assert.ok(error instanceof AllocationError, `seed ${seed}: ${error}`);
        }
        for (const s of stacks) {
          try {
            views.push(s.alloc(48));
          } catch (error) {
            assert.ok(error instanceof AllocationError, `seed ${seed}: ${error}`);
          }
        }
        assertDisjoint([...views, arena.alloc(64)], `seed ${seed}, safety ${safety}, round ${round}`);
      }
      stop();
      // No refusal is left stuck: an ordinary observer resets.
      let reset = false;
      const again = arena.observe({
        onAlloc() {
          if (reset) return;
          reset = true;
          arena.reset();
        },
      });
      arena.alloc(8);
      again();
      assert.equal(reset, true);
      assert.equal(arena.stats().liveAllocations, 0);
      arena.dispose();
    }
  });
}
