// Objects of the budget family used through one view over all their memory (a PurgeableBuffer, a frame of a
// FramePool, a ResourceHeap's block) refuse sizes above what one ArrayBuffer holds in this runtime
// (nativeInfo().maxViewBytes: 4 GiB in Bun), with AllocationError("unsupported") before anything is mapped.
// Before, Bun took them (12.9 GB mapped for one frame set), then their bytes said "use smaller windows",
// which these classes do not have, and a ResourceHeap said "out-of-memory" on a machine with room.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, FramePool, nativeInfo, PurgeableBuffer, ResourceHeap } from "../../mod.ts";
import { checkViewLimit } from "../../src/base/_view_limit.ts";
import { MAX_BLOCK_SIZE } from "../../src/base/_validate.ts";

const { maxViewBytes, pageSize } = nativeInfo();
const unsupported = (what: RegExp) => (e: unknown) =>
  e instanceof AllocationError && e.category === "unsupported" && what.test(e.message) &&
  /nativeInfo\(\)\.maxViewBytes/.test(e.message);

test("the limit is this runtime's nativeInfo().maxViewBytes: at it passes, one byte above is unsupported", () => {
  checkViewLimit(maxViewBytes, "create it", "it", "use less");
  assert.throws(
    () => checkViewLimit(maxViewBytes + 1, "create it", "it", "use less"),
    unsupported(
      /^Cannot create it as it needs \d+ bytes in one view: (Deno|Bun) allows at most \d+ bytes .*; use less$/,
    ),
  );
});

test("a PurgeableBuffer, a frame or a ResourceHeap over the limit is refused before anything is mapped", {
  skip: maxViewBytes + pageSize > MAX_BLOCK_SIZE && "this runtime views any size memkit maps in one ArrayBuffer",
}, () => {
  const over = maxViewBytes + pageSize;
  assert.throws(() => new PurgeableBuffer(over), unsupported(/^Cannot create PurgeableBuffer as the buffer needs/));
  assert.throws(() => new ResourceHeap({ capacity: over }), unsupported(/^Cannot create ResourceHeap/));
  using pool = new FramePool();
  const width = 65536, bytesPerPixel = 4; // rows of 256 KiB
  const height = Math.floor(maxViewBytes / (width * bytesPerPixel)) + 1;
  assert.throws(
    () => pool.acquireFrameSet({ width, height, bytesPerPixel }),
    unsupported(/^Cannot acquire a frame set as a 65536x\d+x4x1 frame needs/),
  );
  assert.deepEqual([pool.stats().mappedBytes, pool.stats().formats.length], [0, 0], "nothing mapped, no format listed");
  // At the limit, a frame set is still possible (not made here: it maps three frames of that size).
});
