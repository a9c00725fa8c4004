// Windows into large mappings: every live ArrayBuffer counts its whole length
// as JavaScript heap (Bun's heapUsed and the heap its collector plans for;
// Deno's external memory), so a small view of a 4 GiB mapping must not wrap
// all of it, and window()s a program closes must stop counting. Measured with
// process.memoryUsage().external, which both runtimes keep, never with time.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { requestGC } from "../../ffi/native.ts";
import { AllocationError, mapPages, type Mapping } from "../../mod.ts";

const MiB = 1 << 20;

// Bytes of ArrayBuffers the JavaScript heap counts now (after a full collection, so dead ones are gone).
function heapCounted(): number {
  requestGC();
  return process.memoryUsage().external;
}

// 4 GiB of address space reserved (no RAM, no commit charge), writable.
function reserve4GiB(): Mapping {
  const mapping = mapPages(2 ** 32, { protection: "none" });
  mapping.protect("read-write");
  return mapping;
}

test("a small view() of a 4 GiB mapping counts the MiB it lies in, not the mapping", () => {
  const before = heapCounted();
  const mapping = reserve4GiB();
  const views: Uint8Array[] = [];
  // 64 views in one MiB, and one near the end: two granules' buffers in all.
  for (let i = 0; i < 64; i++) views.push(mapping.view(3 * MiB + i * 4096, 4096));
  views.push(mapping.view(2 ** 32 - 100, 100));
  views[0][0] = 1;
  views[64][99] = 2;
  const grown = heapCounted() - before;
  assert.ok(grown <= 4 * MiB, `the heap counts ${grown} more bytes for 65 small views of a 4 GiB mapping`);
  assert.equal(mapping.read(3 * MiB, 1)[0], 1);
  assert.equal(mapping.read(2 ** 32 - 1, 1)[0], 2);
  mapping.unmap();
  for (const view of views) assert.equal(view.length, 0, "unmap() detaches every view");
});

test("a view() across MiB lines and one into bytes alias the mapping and share buffers with later views", () => {
  using mapping = mapPages(8 * MiB);
  const across = mapping.view(MiB - 8, 16);
  across.fill(5);
  const again = mapping.view(MiB - 8, 16);
  assert.equal(again.buffer, across.buffer, "the same window reuses its buffer");
  assert.deepEqual([...mapping.read(MiB - 8, 16)], Array(16).fill(5));
  const bytes = mapping.bytes;
  const inBytes = mapping.view(100, 4);
  assert.equal(inBytes.buffer, bytes.buffer, "once bytes exists, windows are views into its buffer");
  inBytes[0] = 9;
  assert.equal(bytes[100], 9);
});

test("window()s that are closed stop counting: walking 1 GiB of a 4 GiB mapping keeps the heap flat", () => {
  const before = heapCounted();
  const mapping = reserve4GiB();
  let peak = 0;
  for (let i = 0; i < 64; i++) {
    using win = mapping.window(i * 64 * MiB, 16 * MiB);
    assert.equal(win.offset, i * 64 * MiB);
    assert.equal(win.byteLength, 16 * MiB);
    win.bytes[0] = i;
    win.bytes[16 * MiB - 1] = i;
    if (i % 16 === 0) peak = Math.max(peak, heapCounted() - before);
  }
  const after = heapCounted() - before;
  assert.ok(peak <= 48 * MiB, `the heap counted ${peak} more bytes with one 16 MiB window open`);
  assert.ok(after <= 16 * MiB, `the heap counts ${after} more bytes after every window closed`);
  assert.equal(mapping.read(63 * 64 * MiB, 1)[0], 63);
  mapping.unmap();
});

test("window(): close() detaches its bytes and every view over them; a second close does nothing", () => {
  using mapping = mapPages(1 << 16);
  const win = mapping.window(4096, 8192);
  const bytes = win.bytes;
  const sub = bytes.subarray(10, 20);
  const asWords = new Uint32Array(bytes.buffer);
  bytes.fill(3);
  assert.equal(mapping.read(4096, 1)[0], 3);
  assert.equal(win.closed, false);
  win.close();
  assert.equal(win.closed, true);
  assert.equal(win.byteLength, 0);
  assert.equal(bytes.length, 0);
  assert.equal(sub.length, 0);
  assert.equal(asWords.length, 0);
  assert.equal(win.bytes.length, 0);
  win.close();
  assert.equal(mapping.read(4096 + 8191, 1)[0], 3, "the pages stay mapped");
  const empty = mapping.window(1 << 16, 0);
  assert.equal(empty.bytes.length, 0);
  empty.close();
  assert.equal(empty.closed, true);
});

test("window(): protect() below read-write and unmap() end the open windows first", () => {
  const mapping = mapPages(1 << 16);
  const first = mapping.window(0, 4096);
  first.bytes[0] = 1;
  mapping.protect("read");
  assert.equal(first.closed, true);
  assert.equal(first.bytes.length, 0, "no view may reach read-only pages");
  assert.throws(
    () => mapping.window(0, 1),
    (e: unknown) => e instanceof AllocationError && e.category === "unsupported",
  );
  mapping.protect("read-write");
  const second = mapping.window(0, 4096);
  assert.equal(second.bytes[0], 1);
  mapping.unmap();
  assert.equal(second.closed, true);
  assert.equal(second.bytes.length, 0);
  second.close(); // after unmap: nothing to do
  assert.throws(
    () => mapping.window(0, 1),
    (e: unknown) => e instanceof AllocationError && e.category === "use-after-free",
  );
});
