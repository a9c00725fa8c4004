// A DebugAllocator that holds freed blocks back (retainMetadata, neverUnmap) over an Allocator written in
// JavaScript that passes on memkit's memory (here a SystemAllocator's blocks): the heap leases each block it takes
// from the memory's owner, by address, and tells the holders of that memory when it frees a block into its
// quarantine (the backing hears nothing then). Its own lease on the held-back block is not one of those holders:
// before, the heap's tell revoked it, took the block out of the quarantine as if the owner had released it, and
// the block was never given back (deinit() left it allocated in the backing for good).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Allocator, DebugAllocator, type DebugAllocatorOptions, SystemAllocator } from "../../mod.ts";
import { zeroStats } from "../../src/alloc/_zero_stats.ts";

/** An Allocator written in JavaScript passing on `under`'s blocks, counting the frees that reach it. */
function passing(under: SystemAllocator): { backing: Allocator; frees: { count: number } } {
  const frees = { count: 0 };
  const backing = {
    kind: "system",
    alloc: (size: number, align?: number) => under.alloc(size, align),
    tryAlloc: (size: number, align?: number) => under.tryAlloc(size, align),
    array: () => new Uint8Array(0),
    free: (view: Uint8Array) => {
      frees.count++;
      under.free(view);
    },
    resize: (view: Uint8Array, size: number) => under.resize(view, size),
    owns: (view: Uint8Array) => under.owns(view),
    stats: () => zeroStats("system"),
  } as unknown as Allocator;
  return { backing, frees };
}

const HOLDING: Record<string, DebugAllocatorOptions> = {
  "retainMetadata": { retainMetadata: true },
  "poison and retainMetadata": { poison: true, retainMetadata: true },
  "neverUnmap": { neverUnmap: true },
  "retainMetadata, detachFreed": { retainMetadata: true, detachFreed: true },
};

for (const [name, mode] of Object.entries(HOLDING)) {
  test(`${name} over a JavaScript backing passing memkit's memory on: a block held back goes back at deinit()`, () => {
    const system = new SystemAllocator();
    const { backing, frees } = passing(system);
    const debug = new DebugAllocator(backing, mode);
    const kept = debug.alloc(100);
    debug.free(debug.alloc(64)); // held back, in band
    debug.free(debug.alloc(4096)); // held back
    // A move: the old block is held back too.
    const moved = debug.resize(kept, 8000);
    assert.equal(frees.count, 0, "nothing went back to the backing yet");
    assert.equal(system.stats().liveAllocations, 4, "three blocks held back and one live");
    debug.check(); // nothing written after its free
    debug.free(moved);
    assert.equal(debug.deinit(), "ok");
    assert.equal(frees.count, 4, "every block went back to the backing");
    assert.equal(system.stats().liveAllocations, 0, "nothing left in the backing");
    system.dispose();
  });

  test(`${name} over a JavaScript backing: a held-back block its owner releases is dropped, not given back twice`, () => {
    for (const release of ["the owner's free of that block", "the owner's dispose"]) {
      const system = new SystemAllocator();
      const { backing, frees } = passing(system);
      const outers: Uint8Array[] = [];
      const spy = {
        ...backing,
        tryAlloc: (size: number, align?: number) => {
          const block = backing.tryAlloc(size, align);
          if (block !== null) outers.push(block);
          return block;
        },
      } as Allocator;
      const over = new DebugAllocator(spy, mode);
      over.free(over.alloc(64)); // held back
      assert.equal(system.stats().liveAllocations, 1, release);
      if (release === "the owner's dispose") system.dispose();
      else system.free(outers[0]); // the owner takes the block back by itself: the heap drops it
      assert.equal(over.deinit(), "ok", release);
      assert.equal(frees.count, 0, `${release}: nothing went back to the backing a second time`);
      if (release !== "the owner's dispose") {
        assert.equal(system.stats().liveAllocations, 0, release);
        system.dispose();
      }
    }
  });
}
