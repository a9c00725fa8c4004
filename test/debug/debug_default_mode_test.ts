// The DebugAllocator's default options (issue 14 item 10): views of the
// backing's memory (`detachFreed: false`), what they still catch of a use
// after free, and the flat alloc/free path that serves them, which must
// check exactly what the general path checks.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  AllocationError,
  type Allocator,
  Arena,
  DebugAllocator,
  type DebugAllocatorOptions,
  deinit,
  FreeListAllocator,
  getAllocator,
  initAllocator,
  leakCheck,
  PoolAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { below, outcome, xorshift32 } from "../_helpers.ts";

function thrown(fn: () => unknown): AllocationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AllocationError) return error;
    throw error;
  }
  assert.fail("nothing was thrown");
}

test("default options: freed views of a pool's memory keep their length; detachFreed: true and reportUnreachable empty them", () => {
  using pool = new PoolAllocator({ blockSize: 64 });
  const debug = new DebugAllocator(pool);
  const view = debug.alloc(16);
  debug.free(view);
  assert.equal(view.length, 16, "the default hands out views of the backing's memory: freeing does not detach them");
  debug.deinit();
  for (const options of [{ detachFreed: true }, { reportUnreachable: true }] as DebugAllocatorOptions[]) {
    const strict = new DebugAllocator(pool, options);
    const block = strict.alloc(16);
    strict.free(block);
    assert.equal(block.length, 0, `${JSON.stringify(options)}: the block's own buffer is detached`);
    strict.deinit();
  }
  // Over a SystemAllocator the backing detaches each block's own buffer when the debug allocator frees it.
  const overSystem = new DebugAllocator(new SystemAllocator());
  const freed = overSystem.alloc(16);
  overSystem.free(freed);
  assert.equal(freed.length, 0);
  overSystem.deinit();
});

test("leakCheck detaches freed blocks whatever the backing; the global allocator's freed views read as length 0", async () => {
  using pool = new PoolAllocator({ blockSize: 64 });
  let freed: Uint8Array | null = null;
  await leakCheck((allocator) => {
    freed = allocator.alloc(16);
    allocator.free(freed);
  }, pool);
  assert.equal(freed!.length, 0, "leakCheck asks for detachFreed: true");
  initAllocator({ leakCheckAtExit: "off" });
  try {
    const block = getAllocator().alloc(16);
    getAllocator().free(block);
    assert.equal(block.length, 0, "its SystemAllocator detaches the block's buffer");
  } finally {
    deinit();
  }
});

test("default options: a free, resize or owns through a freed view is caught, also after the address was reused", () => {
  using pool = new PoolAllocator({ blockSize: 64 });
  const debug = new DebugAllocator(pool);
  const p = debug.alloc(24);
  debug.free(p);
  assert.equal(outcome(() => debug.free(p)), "double-free");
  assert.equal(outcome(() => debug.resize(p, 8)), "use-after-free");
  assert.equal(debug.owns(p), false);
  const q = debug.alloc(24);
  assert.equal(addressOf(q), addressOf(p), "the pool hands the same block out again");
  assert.equal(outcome(() => debug.free(p)), "double-free", "the stale view is not the new block's");
  assert.equal(debug.owns(p), false);
  assert.equal(debug.owns(q), true);
  assert.equal(debug.stats().liveAllocations, 1, "the new block lives on");
  debug.free(q);
  assert.equal(debug.deinit(), "ok");
});

test("default options: a block allocated where the backing released one is a new generation", () => {
  using arena = new Arena({ capacity: 1 << 16, safety: false });
  const debug = new DebugAllocator(arena);
  const old = debug.alloc(32);
  arena.reset(); // retires `old`: a later use says what released it
  const fresh = debug.alloc(32);
  assert.equal(addressOf(fresh), addressOf(old), "the arena hands the same memory out again");
  assert.match(thrown(() => debug.free(old)).message, /released the memory \(.*reset/);
  debug.free(fresh);
  // A view made from the freed block (not the one handed out) is judged by its address: the newest block there.
  const error = thrown(() => debug.free(new Uint8Array(fresh.buffer, fresh.byteOffset, 4)));
  assert.equal(error.category, "double-free");
  assert.doesNotMatch(error.message, /reset/);
  assert.equal(debug.deinit(), "ok");
});

test("default options with poison and a quarantine: a freed view reads 0xDD and a write through it is reported by check()", () => {
  for (const hold of [{ neverUnmap: true }, { retainMetadata: true }]) {
    using pool = new PoolAllocator({ blockSize: 128 });
    const debug = new DebugAllocator(pool, { poison: true, ...hold });
    const kept = debug.alloc(40);
    const freed = debug.alloc(40);
    debug.free(freed);
    assert.ok(freed.every((b) => b === 0xdd), "freed bytes read 0xDD");
    debug.check(); // nothing written yet
    freed[37] = 7;
    const error = thrown(() => debug.check());
    assert.equal(error.category, "use-after-free");
    assert.match(
      error.message,
      /40-byte block at 0x[0-9a-f]+ \(allocation #2\) was written at offset 37 after it was freed/,
    );
    assert.equal(outcome(() => debug.check()), "use-after-free", "still written: reported again");
    freed[37] = 0xdd;
    debug.check();
    assert.equal(kept.length, 40);
    debug.free(kept);
    assert.equal(debug.deinit(), "ok");
  }
});

test("a write after free is reported by the next check() after the block left the quarantine, once", () => {
  const system = new SystemAllocator();
  const debug = new DebugAllocator(system, { poison: true, retainMetadata: true });
  const first = debug.alloc(40 << 20);
  debug.free(first); // held back, poisoned
  first[5] = 1; // written after free
  const second = debug.alloc(40 << 20);
  debug.free(second); // over the 64 MiB the quarantine holds: `first` goes back to the backing
  const error = thrown(() => debug.check());
  assert.equal(error.category, "use-after-free");
  assert.match(error.message, /was written at offset 5 after it was freed/);
  debug.check(); // reported once: that memory is the backing's now
  assert.equal(debug.deinit(), "ok");
  system.dispose();
});

test("without poison, or without a quarantine, check() does not judge freed memory", () => {
  using pool = new PoolAllocator({ blockSize: 128 });
  for (const options of [{ retainMetadata: true }, { poison: true }] as DebugAllocatorOptions[]) {
    const debug = new DebugAllocator(pool, options);
    const freed = debug.alloc(40);
    debug.free(freed);
    freed[0] = 1;
    debug.check();
    debug.deinit();
  }
});

test("canaries on the flat path: every overflow and underflow of 1–16 bytes is reported with its distance, for sizes 1–48", () => {
  using pool = new PoolAllocator({ blockSize: 96 });
  const debug = new DebugAllocator(pool);
  for (let size = 1; size <= 48; size++) {
    for (let distance = 1; distance <= 16; distance++) {
      for (const kind of ["overflow", "underflow"] as const) {
        const block = debug.alloc(size);
        const offset = block.byteOffset;
        // A raw write past the block's end, or before its start (the user's view stops at the block).
        const at = kind === "overflow" ? offset + size + distance - 1 : offset - distance;
        new Uint8Array(block.buffer)[at] ^= 0xff;
        const before = debug.stats().liveAllocations;
        const error = thrown(() => debug.free(block));
        const where = `size ${size}, ${kind} by ${distance}`;
        assert.equal(error.category, "corruption", where);
        assert.match(error.message, new RegExp(`Heap ${kind} detected: .* written ${distance} bytes?`), where);
        assert.equal(debug.stats().liveAllocations, before - 1, `${where}: the block is still freed`);
      }
    }
  }
  assert.equal(debug.deinit(), "ok");
});

// The flat path serves the default options; poison sends every call down the general path and changes nothing
// else a caller can see but the bytes. The same random program, misuse included, must get the same outcome
// from both at every step.
const BACKINGS: [string, () => Allocator][] = [
  ["PoolAllocator", () => new PoolAllocator({ blockSize: 128, blocksPerChunk: 64 })],
  ["FreeListAllocator", () => new FreeListAllocator({ capacity: 1 << 20 })],
  ["Arena", () => new Arena({ capacity: 1 << 20, safety: false })],
  ["SystemAllocator", () => new SystemAllocator()],
];

for (const [name, make] of BACKINGS) {
  test(`the flat path and the general path agree over a ${name}: same outcomes, counters and leaks`, () => {
    const next = xorshift32(0xdeb6 + name.length);
    const backings = [make(), make()];
    const flat = new DebugAllocator(backings[0]);
    const general = new DebugAllocator(backings[1], { poison: true });
    const live: Uint8Array[][] = [[], []];
    const stale: Uint8Array[][] = [[], []];
    const kinds = new Map<string, number>();
    for (let step = 0; step < 3000; step++) {
      const op = below(next, 12);
      const pick = below(next, 1 << 16);
      const size = 1 + below(next, 120);
      const distance = 1 + below(next, 16);
      const align = below(next, 8) === 0 ? 64 : undefined;
      const results = [0, 1].map((side) => {
        const debug = side === 0 ? flat : general;
        const blocks = live[side];
        const old = stale[side];
        const block = blocks.length > 0 ? blocks[pick % blocks.length] : null;
        return outcome(() => {
          switch (op) {
            case 0:
            case 1:
            case 2:
            case 3:
              blocks.push(debug.alloc(size, align));
              return;
            case 4:
            case 5:
            case 6:
              if (block === null) return;
              blocks.splice(blocks.indexOf(block), 1);
              old.push(block);
              debug.free(block);
              return;
            case 7: // a stale view: freed, maybe reused since
              if (old.length > 0) debug.free(old[pick % old.length]);
              return;
            case 8: // an interior view
              if (block !== null && block.length > 1) debug.free(block.subarray(1));
              return;
            case 9: { // a raw write past the end or before the start, then a free
              if (block === null) return;
              const start = block.byteOffset;
              const at = pick % 2 === 0 ? start + block.length + distance - 1 : start - distance;
              const bytes = new Uint8Array(block.buffer);
              if (at < 0 || at >= bytes.length) return;
              bytes[at] ^= 0x5a;
              blocks.splice(blocks.indexOf(block), 1);
              debug.free(block);
              return;
            }
            case 10:
              if (block === null) return;
              blocks[blocks.indexOf(block)] = debug.resize(block, size);
              return;
            default:
              debug.check();
          }
        });
      });
      kinds.set(results[0], (kinds.get(results[0]) ?? 0) + 1);
      const where = `${name}, step ${step}, op ${op}`;
      assert.equal(results[0], results[1], `${where}: the same outcome`);
      const [a, b] = [flat.stats(), general.stats()];
      for (const key of ["liveAllocations", "allocatedBytes", "totalAllocations", "totalFrees"] as const) {
        assert.equal(a[key], b[key], `${where}: ${key}`);
      }
    }
    for (const kind of ["ok", "double-free", "invalid-free", "corruption"]) {
      assert.ok((kinds.get(kind) ?? 0) > 0, `${name}: the program exercised "${kind}" (${[...kinds]})`);
    }
    assert.deepEqual(flat.leaks().map((l) => l.size), general.leaks().map((l) => l.size));
    assert.equal(flat.deinit(), general.deinit());
    for (const backing of backings) (backing as Allocator & Disposable)[Symbol.dispose]();
  });
}
