// A backing whose blocks are views of a resizable ArrayBuffer that it later
// shrinks (a hostile or buggy backing): the DebugAllocator's canaries, header
// and poison bytes lie in memory that is gone. Freeing such a block is
// AllocationError("corruption") saying so (the block is freed and reported, as
// for damaged canaries), never the engine's RangeError or TypeError from a
// view over the old length.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AllocationError, type Allocator, DebugAllocator } from "../../mod.ts";

type Resizable = ArrayBuffer & { resize(n: number): void };

/** A backing that carves 16-byte-aligned views out of one resizable buffer and never takes them back. */
function shrinkableBacking(): { backing: Allocator; buffer: Resizable } {
  const buffer = new ArrayBuffer(4096, { maxByteLength: 8192 }) as Resizable;
  let next = 0;
  const take = (size: number) => {
    const view = new Uint8Array(buffer, next, size);
    next += (size + 15) & ~15;
    return view;
  };
  const backing = {
    kind: "system",
    alloc: take,
    tryAlloc: take,
    free() {},
    resize: (_view: ArrayBufferView, size: number) => take(size),
    stats: () => ({
      allocatedBytes: 0,
      capacityBytes: 0,
      peakBytes: 0,
      allocationCount: 0,
      fragmentation: 0,
      failedAllocations: 0,
    }),
  } as unknown as Allocator;
  return { backing, buffer };
}

for (const options of [{}, { poison: true }, { poison: true, retainMetadata: true }]) {
  test(`a block whose backing's buffer shrank under it: free is corruption, not the engine's error (${JSON.stringify(options)})`, () => {
    const { backing, buffer } = shrinkableBacking();
    const debug = new DebugAllocator(backing, options);
    const a = debug.alloc(64);
    const b = debug.alloc(64);
    buffer.resize(200); // both blocks' user bytes still lie inside; their buffer's old length does not
    for (const view of [a, b]) {
      assert.throws(
        () => debug.free(view),
        (error: unknown) =>
          error instanceof AllocationError && error.category === "corruption" &&
          /shrank from 4096 to 200/.test(error.message),
      );
    }
    assert.equal(debug.leaks().length, 0, "each block was freed and reported, as for damaged canaries");
  });

  test(`a block the shrunk buffer no longer covers at all: its view reads length 0 and free is invalid-free (${JSON.stringify(options)})`, () => {
    const { backing, buffer } = shrinkableBacking();
    const debug = new DebugAllocator(backing, options);
    const a = debug.alloc(64);
    const b = debug.alloc(64);
    buffer.resize(100); // a still inside, b past the end
    assert.throws(
      () => debug.free(a),
      (error: unknown) => error instanceof AllocationError && error.category === "corruption",
    );
    assert.throws(
      () => debug.free(b),
      (error: unknown) => error instanceof AllocationError && error.category === "invalid-free",
    );
    assert.equal(debug.leaks().length, 1, "b is still a live block (its memory is the backing's to account for)");
  });
}
