// PurgeableBuffer: volatile memory the kernel really takes back (Linux:
// MADV_FREE, then MADV_PAGEOUT forces the reclaim a memory shortage would
// cause), told apart by the sentinels; views detached while volatile; the
// macOS state decoder.
import assert from "node:assert/strict";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../../src/base/errors.ts";
import { PurgeableBuffer } from "../../src/budget/purgeable_buffer.ts";
import {
  decodePurgableState,
  VM_PURGABLE_EMPTY,
  VM_PURGABLE_NONVOLATILE,
  VM_PURGABLE_VOLATILE,
} from "../../src/budget/_purgeable_darwin.ts";
import { xorshift32 } from "../_helpers.ts";

const linux = native.os === "linux";
const page = native.pageSize;

// Random bytes everywhere, so a restored first word or a zeroed page is visible.
function fillRandom(bytes: Uint8Array, seed: number): void {
  const next = xorshift32(seed);
  for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 0xff;
}

// The kernel's reclaim of the given pages, now (Linux 5.4+): lazily freed pages are discarded.
function pageOut(address: number, byteLength: number): void {
  const result = native.heap.madvise(address, byteLength, native.platform.MADV_PAGEOUT);
  assert.equal(result, 0, `madvise(MADV_PAGEOUT) failed with errno ${native.errno()}`);
}

test("a volatile buffer reclaimed by the kernel comes back purged, zero-filled, and restore refills it", {
  skip: !linux && "MADV_PAGEOUT is Linux-only",
}, () => {
  const seen: number[] = [];
  using buffer = new PurgeableBuffer(16 * page + 100, {
    restore: (bytes) => {
      seen.push(bytes.reduce((max, b) => Math.max(max, b), 0)); // what restore was given: all zeros?
      fillRandom(bytes, 7);
    },
  });
  fillRandom(buffer.bytes, 7);
  const expected = buffer.bytes.slice();
  buffer.makeVolatile();
  pageOut(buffer.address, 17 * page);
  assert.equal(buffer.makeNonVolatile(), "purged");
  assert.deepEqual(seen, [0], "restore ran once, over zero bytes");
  assert.equal(buffer.purgeCount, 1);
  assert.deepEqual(buffer.bytes, expected);
});

test("one reclaimed page purges the whole buffer: every page reads as zero before restore", {
  skip: !linux && "MADV_PAGEOUT is Linux-only",
}, () => {
  let zeroWhenRestored = false;
  using buffer = new PurgeableBuffer(8 * page, {
    restore: (bytes) => {
      zeroWhenRestored = bytes.every((b) => b === 0);
    },
  });
  fillRandom(buffer.bytes, 3);
  buffer.makeVolatile();
  pageOut(buffer.address + 5 * page, page);
  assert.equal(buffer.makeNonVolatile(), "purged");
  assert.ok(zeroWhenRestored);
});

test("without a reclaim the contents are kept, sentinels and all put back (or purged by a real shortage)", () => {
  let restored = 0;
  using buffer = new PurgeableBuffer(32 * page, { restore: () => restored++ });
  fillRandom(buffer.bytes, 11);
  const expected = buffer.bytes.slice();
  for (let round = 0; round < 5; round++) {
    buffer.makeVolatile();
    const state = buffer.makeNonVolatile();
    // A loaded machine may really reclaim between the two calls: then it must say so.
    if (state === "kept") {
      assert.deepEqual(buffer.bytes, expected, `round ${round}: kept means every byte as it was`);
    } else {
      assert.equal(restored, buffer.purgeCount);
      buffer.bytes.set(expected);
    }
  }
  assert.equal(restored, buffer.purgeCount);
});

test("a page written while non-volatile is not lost by an earlier makeVolatile (MADV_FREE is cancelled)", {
  skip: !linux && "MADV_PAGEOUT is Linux-only",
}, () => {
  using buffer = new PurgeableBuffer(4 * page);
  buffer.makeVolatile();
  assert.equal(buffer.makeNonVolatile(), "kept");
  buffer.bytes.fill(9);
  pageOut(buffer.address, 4 * page); // dirty, non-volatile anonymous pages: not discarded without swap
  assert.ok(buffer.bytes.every((b) => b === 9));
});

test("makeVolatile detaches bytes; bytes throws while volatile; makeNonVolatile gives a new view", () => {
  using buffer = new PurgeableBuffer(100);
  const before = buffer.bytes;
  assert.equal(before.length, 100);
  assert.equal(buffer.bytes, before, "one view until makeVolatile");
  buffer.makeVolatile();
  buffer.makeVolatile(); // twice: nothing more
  assert.equal(buffer.volatile, true);
  assert.equal(before.length, 0);
  assert.throws(() => buffer.bytes, (e) => e instanceof AllocationError && e.category === "unsupported");
  buffer.makeNonVolatile();
  assert.equal(buffer.makeNonVolatile(), "kept", "not volatile: kept");
  assert.equal(buffer.bytes.length, 100);
  assert.notEqual(buffer.bytes, before);
});

test("after dispose every method throws use-after-free naming the buffer, and views read as length 0", () => {
  const buffer = new PurgeableBuffer(page);
  const view = buffer.bytes;
  buffer.dispose();
  buffer.dispose(); // twice: nothing
  assert.equal(view.length, 0);
  for (const use of [() => buffer.bytes, () => buffer.makeVolatile(), () => buffer.makeNonVolatile()]) {
    assert.throws(use, (e) =>
      e instanceof AllocationError && e.category === "use-after-free" &&
      /PurgeableBuffer of 4096 bytes/.test(e.message));
  }
});

test("a volatile buffer can be disposed", () => {
  const buffer = new PurgeableBuffer(page);
  buffer.makeVolatile();
  buffer.dispose();
  assert.equal(buffer.disposed, true);
});

test("macOS: the old state from vm_purgable_control decodes to kept or purged; DENY is an error", () => {
  assert.equal(decodePurgableState(VM_PURGABLE_NONVOLATILE), "kept");
  assert.equal(decodePurgableState(VM_PURGABLE_VOLATILE), "kept");
  assert.equal(decodePurgableState(VM_PURGABLE_EMPTY), "purged");
  // Volatile group and order bits above the mask (VM_VOLATILE_GROUP_7 = 7 << 8, VM_PURGABLE_ORDERING_NORMAL = 1 << 5).
  assert.equal(decodePurgableState((7 << 8) | (1 << 5) | VM_PURGABLE_EMPTY), "purged");
  assert.equal(decodePurgableState((7 << 8) | VM_PURGABLE_VOLATILE), "kept");
  assert.throws(() => decodePurgableState(3), (e) => e instanceof AllocationError && e.category === "platform");
});
