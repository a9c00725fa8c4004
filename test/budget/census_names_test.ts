// The report at exit names the budget family's memory after the object the program made: a FramePool's frames,
// a PurgeableBuffer and a ResourceHeap (before: bare "mapPages" blocks and a "FreeListAllocator").
import assert from "node:assert/strict";
import { test } from "node:test";
import { FramePool, PurgeableBuffer, ResourceHeap } from "../../mod.ts";
import { censusEntries } from "../../src/base/_native_census.ts";
import { fixture, runChild } from "../_helpers.ts";

test("frames, purgeable buffers and resource heaps are counted under their own class's name", () => {
  const kinds = () => new Set(censusEntries().map((entry) => entry.owner.kind));
  const before = kinds();
  using pool = new FramePool();
  const set = pool.acquireFrameSet({ width: 64, height: 64, bytesPerPixel: 4 })!;
  using _buffer = new PurgeableBuffer(8192);
  using _heap = new ResourceHeap({ capacity: 1 << 16 });
  const added = [...kinds()].filter((kind) => !before.has(kind)).sort();
  assert.deepEqual(added, ["FramePool (64x64x4x1 frame)", "PurgeableBuffer", "ResourceHeap"]);
  const frames = censusEntries().filter((entry) => entry.owner.kind.startsWith("FramePool"));
  assert.equal(frames.length, 3, "three frames, each its own mapping");
  set.release();
});

test("the first object a process makes names its own memory only, not the thread's shared SystemAllocator", () => {
  // Before: a ResourceHeap or a RegionAllocator's heap made first in a process also made the thread's shared
  // SystemAllocator, which took the pending name, so the report named the heap's chunk "SystemAllocator".
  for (const [name, expected] of [["heap", "ResourceHeap"], ["region", "RegionAllocator (audio region)"]]) {
    const child = runChild(fixture("census_first_owner.ts"), {}, [name]);
    assert.equal(child.status, 0, child.stderr);
    const kinds: string[] = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
    assert.ok(kinds.includes(expected), `${name}: ${kinds}`);
  }
});
