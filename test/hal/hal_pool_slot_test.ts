// MemoryInterface's pool fast path gives a block back by the slot index its
// class pool took it from (no view decoding): across chunk growth (whose first
// block goes the ordinary way) and any order of deallocation, every block
// must go back to its own slot, so no live block is ever handed out twice and
// the class pool ends with every block free.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type MemoryAllocation, MemoryInterface } from "../../mod.ts";
import { ownedAllocatorOf } from "../../src/hal/_owned_allocators.ts";
import type { SizeClassPools } from "../../src/hal/_size_class_pools.ts";
import { below, xorshift32 } from "../_helpers.ts";

for (const seed of [7, 1234]) {
  test(`pool fast path, seed ${seed}: blocks go back to their own slots across chunk growth`, () => {
    using memory = new MemoryInterface({ pressure: false });
    const next = xorshift32(seed);
    const live: { a: MemoryAllocation; tag: number }[] = [];
    let tags = 0;
    const check = () => {
      for (const { a, tag } of live) assert.ok(a.bytes.every((b) => b === tag), `block tagged ${tag} was overwritten`);
    };
    // 64-byte blocks: 1024 to a chunk, so up to ~2500 live grows the class pool twice.
    for (let step = 0; step < 12_000; step++) {
      if (live.length < 2500 && (live.length === 0 || below(next, 100) < 55)) {
        const size = 49 + below(next, 16); // all in the 64-byte class
        const a = memory.allocateTyped(size, "pool");
        const tag = (tags++ % 255) + 1;
        a.bytes.fill(tag);
        live.push({ a, tag });
      } else {
        const [{ a }] = live.splice(below(next, live.length), 1);
        memory.deallocate(a);
      }
      if (step % 1000 === 0) check();
    }
    check();
    const pool = (ownedAllocatorOf(memory.getAllocator("pool")) as SizeClassPools).pool(2);
    assert.equal(pool.stats().liveAllocations, live.length);
    for (const { a } of live.splice(0)) memory.deallocate(a);
    assert.equal(pool.stats().liveAllocations, 0);
    assert.equal(pool.stats().allocatedBytes, 0);
    assert.equal(memory.getMemoryStats("pool").usedBytes, 0);
    // Every block is free once: as many distinct blocks as the pool holds come out again.
    const again = Array.from({ length: 2048 }, () => memory.allocateTyped(64, "pool"));
    assert.equal(new Set(again.map((a) => a.address)).size, again.length);
    for (const a of again) memory.deallocate(a);
    assert.equal(pool.stats().liveAllocations, 0);
  });
}
