// Code a backing runs while an allocator takes memory from it or gives memory
// back (an Arena's observer, an Allocator written in JavaScript) must not call
// back into that allocator halfway through: every such call is refused with
// "unsupported", a dispose too; the backing releasing the allocator's memory
// there ends it, so the operation that was growing it fails as any use after
// the end does and gives back what it had just taken. Before, a pool
// re-entered while growing handed out one block to two owners, and one
// disposed while growing returned a live block of a disposed pool that
// outlived its memory (a write through it crashed the process: the child
// process below).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  type Allocator,
  Arena,
  BuddyAllocator,
  DebugAllocator,
  DynamicArray,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { fixture, outcome, runChild } from "../_helpers.ts";

type Disposable = Allocator & { dispose(): void };
type Client = { name: string; make(backing: Allocator): Disposable; size: number };

// Each client takes its first chunk from the backing at its first allocation of `size`.
const CLIENTS: Client[] = [
  {
    name: "PoolAllocator",
    make: (backing) => new PoolAllocator({ blockSize: 64, blocksPerChunk: 16, backing }),
    size: 64,
  },
  {
    name: "FreeListAllocator",
    make: (backing) => new FreeListAllocator({ capacity: 4096, growth: "linear", backing }),
    size: 3000,
  },
  { name: "Arena", make: (backing) => new Arena({ capacity: 4096, backing }), size: 3000 },
];

/**
 * A backing in JavaScript over a SystemAllocator that runs `hook` inside each tryAlloc and free; `free`, when
 * given, frees in its place (it may throw, before or after the system's free).
 */
function hookedBacking(
  hook: () => void = () => {},
  free?: (system: SystemAllocator, view: ArrayBufferView) => void,
): Allocator & { system: SystemAllocator } {
  const system = new SystemAllocator();
  return {
    kind: "system",
    system,
    alloc: (size: number, align?: number) => {
      hook();
      return system.alloc(size, align);
    },
    tryAlloc: (size: number, align?: number) => {
      hook();
      return system.tryAlloc(size, align);
    },
    array: system.array.bind(system),
    free: (view: ArrayBufferView) => {
      hook();
      if (free === undefined) system.free(view);
      else free(system, view);
    },
    resize: system.resize.bind(system),
    owns: system.owns.bind(system),
    stats: system.stats.bind(system),
  } as unknown as Allocator & { system: SystemAllocator };
}

function overlapping(blocks: Uint8Array[]): number {
  const spans = blocks.map((b) => [addressOf(b), addressOf(b) + b.length]).sort((x, y) => x[0] - y[0]);
  let n = 0;
  for (let i = 1; i < spans.length; i++) if (spans[i][0] < spans[i - 1][1]) n++;
  return n;
}

for (const client of CLIENTS) {
  for (const via of ["an Arena observer", "a backing in JavaScript"] as const) {
    // The backing runs `reenter` once, inside the client's growth; the outcome of each call is recorded.
    const setup = (reenter: (c: Disposable) => void) => {
      let target: Disposable | null = null;
      let armed = false;
      const seen: string[] = [];
      const hook = () => {
        if (!armed || target === null) return;
        armed = false;
        seen.push(outcome(() => reenter(target!)));
      };
      let backing: Allocator;
      let arena: Arena | null = null;
      if (via === "an Arena observer") {
        arena = new Arena({ capacity: 1 << 20 });
        arena.observe({ onAlloc: hook, onFree: hook });
        backing = arena;
      } else backing = hookedBacking(hook);
      target = client.make(backing);
      return {
        allocator: target,
        seen,
        arm: () => (armed = true),
        done: () => {
          target!.dispose();
          arena?.dispose();
        },
      };
    };

    for (const call of ["alloc", "free", "resize", "stats", "owns"] as const) {
      test(`${client.name} growing through ${via}: ${call} from inside the backing is ${call === "stats" || call === "owns" ? "answered" : "refused as unsupported"}, and no block is handed out twice`, () => {
        const kept: Uint8Array[] = [];
        const { allocator, seen, arm, done } = setup((c) => {
          if (call === "alloc") kept.push(c.alloc(client.size));
          else if (call === "free") c.free(kept[0]);
          else if (call === "resize") c.resize(kept[0], 16);
          else if (call === "stats") assert.equal(c.stats().liveAllocations, kept.length);
          else assert.equal(c.owns(kept[0]), true);
        });
        if (client.name === "PoolAllocator") {
          for (let i = 0; i < 16; i++) kept.push(allocator.alloc(client.size)); // fills the first chunk
        } else kept.push(allocator.alloc(client.size));
        arm();
        kept.push(allocator.alloc(client.size)); // grows: the backing runs the call
        assert.deepEqual(seen, [call === "stats" || call === "owns" ? "ok" : "unsupported"]);
        for (let i = 0; i < 20; i++) kept.push(allocator.alloc(client.size));
        assert.equal(overlapping(kept), 0, "two live blocks share memory");
        kept.forEach((b, i) => b.fill(i & 0xff));
        assert.ok(kept.every((b, i) => b.every((x) => x === (i & 0xff))), "a block's bytes were another's");
        assert.equal(allocator.stats().liveAllocations, kept.length);
        done();
      });
    }

    test(`${client.name} asked to dispose from inside ${via} while it grows: refused as unsupported, and it goes on`, () => {
      const { allocator, seen, arm, done } = setup((c) => c.dispose());
      const first = allocator.alloc(client.size);
      if (client.name === "PoolAllocator") { for (let i = 0; i < 15; i++) allocator.alloc(client.size); }
      arm();
      const grown = allocator.alloc(client.size);
      assert.deepEqual(seen, ["unsupported"]);
      assert.equal(grown.length, client.size);
      assert.equal(first.length, client.size);
      assert.equal(outcome(() => allocator.free(grown)), "ok");
      done(); // a dispose outside the backing's code ends it
      assert.equal(first.length, 0, "a block of the disposed allocator still reads its memory");
      assert.equal(outcome(() => allocator.alloc(16)), "use-after-free");
    });
  }
}

test("an Arena scope cannot end from inside the arena's own backing while the arena grows", () => {
  let scopeToEnd: { [Symbol.dispose](): void } | null = null;
  const seen: string[] = [];
  const arena = new Arena({
    capacity: 4096,
    backing: hookedBacking(() => {
      if (scopeToEnd === null) return;
      const s = scopeToEnd;
      scopeToEnd = null;
      seen.push(outcome(() => s[Symbol.dispose]()));
    }),
  });
  const scope = arena.scope();
  arena.alloc(3000);
  scopeToEnd = scope;
  const grown = arena.alloc(3000); // a new chunk: the backing tries to end the scope mid-growth
  assert.deepEqual(seen, ["unsupported"]);
  assert.equal(grown.length, 3000);
  scope[Symbol.dispose](); // ends normally afterwards
  assert.equal(grown.length, 0);
  arena.dispose();
});

test("a pool asked to dispose while it grows from an arena: no view of it outlives the arena's memory (child process)", () => {
  const child = runChild(fixture("backing_reentry_child.ts"));
  assert.equal(child.signal, null, `the child died: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  assert.match(
    child.stdout,
    /dispose inside: unsupported\ninterrupted alloc: returned a block\nblock after the arena's end: 0\n/,
  );
  assert.match(child.stdout, /done/);
});

for (const options of [{}, { safety: false }]) {
  test(`DebugAllocator ${JSON.stringify(options)}: calls from its backing's code while it allocates are refused, a dispose too`, () => {
    let reenter: (() => void) | null = null;
    const seen: string[] = [];
    let debug: DebugAllocator | null = null;
    const backing = hookedBacking(() => {
      const call = reenter;
      reenter = null;
      if (call !== null) seen.push(outcome(call));
    });
    debug = new DebugAllocator(backing, options);
    const first = debug.alloc(64);
    for (const call of [() => debug!.dispose(), () => debug!.alloc(16), () => debug!.free(first)]) {
      reenter = call;
      debug.free(debug.alloc(64));
    }
    assert.deepEqual(seen, ["unsupported", "unsupported", "unsupported"]);
    assert.equal(debug.stats().liveAllocations, 1);
    debug.free(first);
    debug.dispose();
    assert.equal(backing.system.stats().liveAllocations, 0);
  });
}

test("a backing in JavaScript that passes an Arena's blocks on: the arena's release reaches the allocator over it", () => {
  const arena = new Arena({ capacity: 64 << 20 });
  const passOn = {
    kind: "system",
    alloc: (size: number, align?: number) => arena.alloc(size, align),
    tryAlloc: (size: number, align?: number) => arena.tryAlloc(size, align),
    array: arena.array.bind(arena),
    free: (view: ArrayBufferView) => arena.free(view),
    resize: (view: ArrayBufferView, size: number) => arena.resize(view, size),
    owns: (view: ArrayBufferView) => arena.owns(view),
    stats: () => arena.stats(),
  } as unknown as Allocator;
  const pool = new PoolAllocator({ blockSize: 1 << 20, blocksPerChunk: 4, backing: passOn });
  const block = pool.alloc(1 << 20);
  arena.reset("free-all"); // its memory goes back: before, the pool's block kept reading it (a write crashed)
  assert.equal(block.length, 0);
  assert.equal(outcome(() => pool.alloc(64)), "use-after-free");
  arena.dispose();
});

test("a backing in JavaScript that passes two adjacent blocks on as one: freeing the second revokes the chain", () => {
  const heap = new FreeListAllocator({ capacity: 1 << 16 });
  let second: Uint8Array | null = null;
  const joined = {
    kind: "free-list",
    alloc: (size: number) => joined.tryAlloc(size),
    tryAlloc: (size: number) => {
      const first = heap.alloc(size / 2);
      second = heap.alloc(size / 2);
      assert.equal(addressOf(second), addressOf(first) + size / 2, "adjacent blocks");
      return new Uint8Array(first.buffer, first.byteOffset, size); // both blocks as one
    },
    array: () => {
      throw new Error("not used");
    },
    free: (view: ArrayBufferView) => {
      heap.free(view);
      heap.free(second!);
    },
    resize: () => {
      throw new Error("not used");
    },
    owns: (view: ArrayBufferView) => heap.owns(view),
    stats: () => heap.stats(),
  };
  const arena = new Arena({ capacity: 4096, growth: "fixed", backing: joined as unknown as Allocator });
  const mine = arena.alloc(4096);
  heap.free(second!); // the heap's second block goes back, and may be handed out again
  assert.equal(mine.length, 0, "the arena's block reaches into a freed block: its views read as length 0");
  assert.equal(outcome(() => arena.alloc(16)), "use-after-free");
  heap.dispose();
});

test("an Arena whose backing throws as a chunk goes back: reset() throws that error, and the arena is reset and usable", () => {
  let refuse = false;
  const backing = hookedBacking(undefined, (system, view) => {
    if (refuse) {
      refuse = false;
      throw new Error("the backing refuses");
    }
    system.free(view);
  });
  const arena = new Arena({ capacity: 4096, backing });
  const kept = arena.alloc(16);
  refuse = true;
  assert.throws(() => arena.reset("free-all"), /the backing refuses/);
  assert.equal(kept.length, 0);
  assert.deepEqual([arena.stats().liveAllocations, arena.stats().allocatedBytes], [0, 0]);
  const again = arena.alloc(16); // before, a plain TypeError from a detached buffer, until the next reset
  assert.equal(again.length, 16);
  arena.reset("free-all");
  arena.dispose();
});

// A backing in JavaScript that passes on a part of a memkit allocator's block (from 4 KiB in), then that allocator
// frees the block through its own view: the holder of the part is told. Before, its lease sat at the part's address,
// which no free names, and its views kept reading released memory (a write crashed the process).
const PARENTS: [string, () => Allocator][] = [
  ["SystemAllocator", () => new SystemAllocator()],
  ["Arena", () => new Arena({ capacity: 1 << 20 })],
  ["PoolAllocator", () => new PoolAllocator({ blockSize: 1 << 16, blocksPerChunk: 4, align: 4096 })],
  ["BuddyAllocator", () => new BuddyAllocator({ capacity: 1 << 20 })],
  ["FreeListAllocator", () => new FreeListAllocator({ capacity: 1 << 20 })],
  ["StackAllocator", () => new StackAllocator({ capacity: 1 << 20 })],
];
for (const [name, make] of PARENTS) {
  for (const holder of ["a PoolAllocator", "a DynamicArray"] as const) {
    test(`a backing in JavaScript passing on part of a ${name} block: the block's free reaches ${holder} over it`, () => {
      const parent = make();
      const originals: Uint8Array[] = [];
      const take = (size: number, align?: number) => {
        const whole = parent.tryAlloc(size + 4096, align);
        if (whole === null) return null;
        originals.push(whole);
        return whole.subarray(4096);
      };
      const passOn = {
        kind: "system",
        alloc: (size: number, align?: number) => take(size, align)!,
        tryAlloc: take,
        array: parent.array.bind(parent),
        free() {},
        resize: parent.resize.bind(parent),
        owns: parent.owns.bind(parent),
        stats: parent.stats.bind(parent),
      } as unknown as Allocator;
      let view: Uint8Array, use: () => unknown;
      if (holder === "a PoolAllocator") {
        const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 16, backing: passOn });
        view = pool.alloc(64);
        use = () => pool.alloc(64);
      } else {
        const array = new DynamicArray<number>("u32", { allocator: passOn, capacity: 16 });
        array.push(7);
        view = array.bytes;
        use = () => array.get(0);
      }
      if (name === "Arena") (parent as Arena).reset("free-all"); // an arena frees only its most recent block
      else parent.free(originals[0]);
      assert.equal(view.length, 0, "a view of the part still reads released memory");
      assert.equal(outcome(use), "use-after-free");
    });
  }
}

// The free that rolls back an Arena's most recent block tells the block's holder, which may find that a buffer of
// its over the block was transferred away: that memory is then kept, as the other allocators' free keeps it.
// Before, the arena rolled the block back and handed the memory the stolen buffer reaches out again.
test("an Arena's most recent block held by a child whose buffer was transferred away: free() keeps it", () => {
  const arena = new Arena({ capacity: 1 << 20 });
  const handed: Uint8Array[] = [];
  const take = (size: number, align?: number) => {
    const view = arena.tryAlloc(size, align);
    if (view !== null) handed.push(view);
    return view;
  };
  const passOn = {
    kind: "system",
    alloc: (size: number, align?: number) => take(size, align)!,
    tryAlloc: take,
    array: arena.array.bind(arena),
    free() {},
    resize: arena.resize.bind(arena),
    owns: arena.owns.bind(arena),
    stats: arena.stats.bind(arena),
  } as unknown as Allocator;
  const child = new Arena({ capacity: 4096, growth: "fixed", backing: passOn, safety: false });
  const view = child.alloc(16);
  const stolen = new Uint8Array(structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] }));
  const lo = addressOf(stolen), hi = lo + stolen.length;
  assert.equal(outcome(() => arena.free(handed[0])), "corruption");
  assert.equal(outcome(() => arena.free(handed[0])), "ok"); // no longer the block a free rolls back: ignored
  for (let i = 0; i < 16; i++) {
    const at = addressOf(arena.alloc(256));
    assert.ok(at + 256 <= lo || at >= hi, "the arena handed out memory a transferred buffer reaches");
  }
  assert.equal(outcome(() => arena.reset()), "ok");
  assert.equal(outcome(() => arena.alloc(16)), "corruption", "a reset that would reuse that memory ends the arena");
});

test("an Arena's oversized block whose backing throws as it goes back: the free throws, and the block is gone all the same", () => {
  let refuse = false;
  const backing = hookedBacking(undefined, (system, view) => {
    if (refuse) {
      refuse = false;
      throw new Error("the backing refuses");
    }
    system.free(view);
  });
  const arena = new Arena({ capacity: 4096, growth: "linear", backing });
  const first = arena.alloc(1 << 20), second = arena.alloc(1 << 20); // each an oversized chunk of its own
  refuse = true;
  assert.throws(() => arena.free(second), /the backing refuses/);
  assert.equal(second.length, 0);
  assert.equal(outcome(() => arena.free(second)), "double-free"); // before, it rolled back `first`'s chunk
  assert.equal(first.length, 1 << 20);
  assert.equal(arena.stats().liveAllocations, 1);
  arena.dispose();
  assert.equal(first.length, 0);
});

test("a DebugAllocator with poison whose backing frees a block and then throws: the backing's error, not the engine's", () => {
  let throwAfter = false;
  const backing = hookedBacking(undefined, (system, view) => {
    system.free(view);
    if (throwAfter) throw new RangeError("the backing failed after freeing");
  });
  const debug = new DebugAllocator(backing, { poison: true });
  const block = debug.alloc(64);
  throwAfter = true;
  assert.throws(() => debug.free(block), /the backing failed after freeing/);
});

// A parent's free or resize of a block a child allocator holds (the program's own call, through the view the child's
// backing in JavaScript was given) tells the child first. Code that runs then must not call into the parent
// halfway through: before, the child gave its other chunk back through its backing, whose code freed the block
// again, and the parent handed the same memory out twice (a FreeListAllocator, a BuddyAllocator), counted -1 live
// blocks, computed NaN (a StackAllocator) or threw the engine's TypeError (a SystemAllocator, which also freed
// one malloc block twice). Now the parent is busy while it tells its holders (every call but owns and stats is
// refused, "unsupported", a dispose too), and a holder gives its other blocks back once the parent is done: what
// the backing's code does then is an ordinary call. Each parent × operation runs in a child process (a double free
// in libc may abort it); each re-entering call (none, a free of the same block or of another, alloc, resize,
// dispose, reset, owns, stats) is a case there, made once through the backing's code and once by a holder told of
// the release (its calls must be refused, changing nothing).
{
  const REENTRY_PARENTS = [
    "Arena",
    "PoolAllocator",
    "FreeListAllocator",
    "BuddyAllocator",
    "StackAllocator",
    "SystemAllocator",
  ];
  for (const parent of REENTRY_PARENTS) {
    for (const op of ["free", "resize"]) {
      test(`${parent}: calls back into it while its ${op} of a child's chunk tells the child: no block handed out twice, exact counters, only AllocationErrors`, () => {
        const child = runChild(fixture("release_reentry_child.ts"), {}, [parent, op], 60_000);
        let begun: string | null = null;
        const failures: string[] = [];
        let cases = 0;
        for (const line of child.stdout.split("\n")) {
          if (!line.startsWith("{")) continue;
          const value = JSON.parse(line) as { begin?: string; id?: string; ok?: boolean; failures?: string[] };
          if (value.begin !== undefined) begun = value.begin;
          else {
            cases++;
            begun = null;
            if (!value.ok) failures.push(`${value.id}: ${value.failures!.join("; ")}`);
          }
        }
        if (begun !== null) failures.push(`${begun}: the process died here (${child.signal ?? child.status})`);
        assert.deepEqual(failures, []);
        assert.equal(child.status, 0, child.stderr.slice(-2000));
        assert.match(child.stdout, /done/);
        assert.ok(cases >= 16, `only ${cases} cases ran`);
      });
    }
  }
}
