// An Arena that is another allocator's backing (a chain) tells its observers
// about the chunk the child takes from it, or a DynamicArray's storage, while
// the child is still in the middle of its own call: the child registers its
// claim on that memory only once the arena returns. Nothing an observer does
// there may give that memory back to the arena: a free of the block it is
// told about is counted and ignored (it gets a second view, never the one
// that rolls the block back), and reset(), dispose() and the end of a scope
// opened before are refused with "unsupported". Every case ends by filling
// every live view with its own byte and checking that none was overwritten
// and that no two share an address.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  AllocationError,
  Arena,
  BuddyAllocator,
  DynamicArray,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
} from "../../mod.ts";

// A child over `arena` and a function that makes it take memory from the
// arena again (a second chunk, a grown storage) and returns its live views.
interface Child {
  /** Allocates through the child (enough to take a chunk after the first), returning its live views. */
  use(): Uint8Array[];
  dispose(): void;
}

const CHILDREN: Record<string, (arena: Arena) => Child> = {
  stack: (arena) => {
    const stack = new StackAllocator({ capacity: 4096, backing: arena });
    return { use: () => [stack.alloc(64), stack.alloc(64)], dispose: () => stack.dispose() };
  },
  pool: (arena) => {
    const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 16, backing: arena });
    return {
      // 40 blocks: the pool takes a second and a third chunk on the way.
      use: () => Array.from({ length: 40 }, () => pool.alloc(64)),
      dispose: () => pool.dispose(),
    };
  },
  "free list": (arena) => {
    const heap = new FreeListAllocator({ capacity: 4096, growth: "linear", backing: arena });
    return {
      use: () => Array.from({ length: 6 }, () => heap.alloc(1024)),
      dispose: () => heap.dispose(),
    };
  },
  buddy: (arena) => {
    const buddy = new BuddyAllocator({ capacity: 4096, backing: arena });
    return { use: () => [buddy.alloc(64), buddy.alloc(1024)], dispose: () => buddy.dispose() };
  },
  DynamicArray: (arena) => {
    const array = new DynamicArray<number>("u8", { allocator: arena, capacity: 64 });
    return {
      use: () => {
        for (let i = 0; i < 200; i++) array.push(i); // grows twice (a copying resize in the arena)
        return [array.bytes];
      },
      dispose: () => array.free(),
    };
  },
};

// What an observer does when told about an allocation; it records what each call threw.
const ACTIONS: Record<string, (arena: Arena, view: Uint8Array, mine: Uint8Array[], before: () => void) => void> = {
  free: (arena, view) => arena.free(view),
  "free and allocate": (arena, view, mine) => {
    arena.free(view);
    mine.push(arena.alloc(view.length));
  },
  allocate: (arena, _view, mine) => {
    mine.push(arena.alloc(64));
  },
  reset: (arena) => arena.reset(),
  "reset free-all": (arena) => arena.reset("free-all"),
  "end an older scope": (_arena, _view, _mine, before) => before(),
  dispose: (arena) => arena.dispose(),
};

function category(error: unknown): string {
  return error instanceof AllocationError ? error.category : String(error);
}

// Fills every view with its own byte, then checks each kept it and that no two overlap in memory.
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
  for (const [kind, make] of Object.entries(CHILDREN)) {
    for (const [action, act] of Object.entries(ACTIONS)) {
      const label = `${kind}, observer ${action}, safety: ${safety}`;
      test(`Arena chain: ${label}`, () => {
        const arena = new Arena({ capacity: 1 << 16, safety });
        const older = arena.scope();
        const mine: Uint8Array[] = [];
        const errors: string[] = [];
        let told = 0;
        let acting = false;
        const stop = arena.observe({
          onAlloc(view) {
            if (acting) return; // its own allocations
            told++;
            acting = true;
            try {
              act(arena, view, mine, () => older.end());
            } catch (error) {
              errors.push(category(error));
            } finally {
              acting = false;
            }
          },
        });
        const ignoredBefore = arena.stats().ignoredFrees;
        const child = make(arena);
        const views = child.use();
        stop(); // the arena's own allocations below are not a child's
        assert.ok(told >= 1, `${label}: the observer heard of the child's takes (${told})`);
        // The arena still works and hands out memory the child does not hold.
        const parent = Array.from({ length: 4 }, () => arena.alloc(64));
        assertDisjoint([...views, ...mine, ...parent], label);
        switch (action) {
          case "free":
          case "free and allocate":
            // A free through the view an observer is told about is counted, never rolled back.
            assert.deepEqual(errors, [], label);
            assert.equal(arena.stats().ignoredFrees - ignoredBefore >= told, true, label);
            break;
          case "allocate":
            assert.deepEqual(errors, [], label);
            assert.equal(mine.length, told);
            break;
          default:
            // Releasing memory in bulk while a child is taking some of it is refused, and changes nothing.
            assert.deepEqual(errors, Array(told).fill("unsupported"), label);
            assert.equal(older.stats().allocations >= told, true, label);
        }
        child.dispose();
        older.end();
        arena.dispose();
      });
    }
  }
}

test("Arena chain: a scope opened by the observer itself ends normally while a child takes a chunk", () => {
  const arena = new Arena({ capacity: 1 << 16 });
  const seen: string[] = [];
  let once = false;
  arena.observe({
    onAlloc() {
      if (once) return;
      once = true;
      using _scope = arena.scope();
      seen.push(arena.alloc(32).length === 32 ? "allocated" : "empty");
    }, // the scope ends here, releasing only the observer's block
  });
  const stack = new StackAllocator({ capacity: 4096, backing: arena });
  assert.deepEqual(seen, ["allocated"]);
  const s = stack.alloc(64).fill(1);
  const a = arena.alloc(64).fill(2);
  assert.ok(s.every((b) => b === 1), "the arena handed out the stack's chunk again");
  assert.ok(a.every((b) => b === 2));
  stack.dispose();
  arena.dispose();
});

test("Arena chain: once the child has its chunk, a reset reaches it through the chain", () => {
  const arena = new Arena({ capacity: 1 << 16 });
  const stack = new StackAllocator({ capacity: 4096, backing: arena });
  const s = stack.alloc(64);
  arena.reset();
  assert.equal(s.length, 0);
  assert.throws(() => stack.alloc(8), (e) => e instanceof AllocationError && e.category === "use-after-free");
  arena.dispose();
});

test("Arena: an observer outside any chain still frees and resets as before", () => {
  const arena = new Arena({ capacity: 1 << 16 });
  let stop = false;
  arena.observe({
    onAlloc(view) {
      if (stop) return;
      arena.free(view); // the view returned: rolled back
    },
  });
  const first = arena.alloc(64);
  stop = true;
  const second = arena.alloc(64);
  assert.equal(addressOf(first), addressOf(second), "the observer's free rolled the block back");
  assert.equal(arena.stats().ignoredFrees, 0);
  arena.dispose();
});
