import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { addressOf, AllocationError, mapFile, mapPages, nativeInfo } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

test("mapPages() of 1 GiB without populate costs address space, not memory", () => {
  const before = process.memoryUsage().rss;
  const mapping = mapPages(2 ** 30);
  assert.equal(mapping.byteLength, 2 ** 30);
  assert.equal(mapping.address % nativeInfo().pageSize, 0);
  // Touch one byte per 64 MiB: 16 pages become resident, not 262144.
  for (let offset = 0; offset < 2 ** 30; offset += 64 << 20) mapping.bytes[offset] = 1;
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 64 << 20, `RSS grew by ${grown} bytes`);
  mapping.unmap();
});

test("mapPages() rounds up to whole pages and gives zeroed, writable memory", () => {
  using mapping = mapPages(100);
  assert.equal(mapping.byteLength, nativeInfo().pageSize);
  assert.equal(mapping.bytes.length, nativeInfo().pageSize);
  assert.equal(mapping.bytes.indexOf(1), -1);
  mapping.bytes.fill(7);
  assert.equal(addressOf(mapping.bytes), mapping.address);
});

test("Mapping.protect('none') makes a write kill the process with SIGSEGV", () => {
  const child = runChild(fixture("protect_none_write.ts"));
  assert.match(child.stdout, /mapped/);
  assert.doesNotMatch(child.stdout, /survived/);
  assert.ok(child.signal === "SIGSEGV" || child.status === 139 || child.status === 128 + 11, JSON.stringify(child));
});

test("Mapping.protect('read') still allows reads", () => {
  using mapping = mapPages(8192, { protection: "read-write" });
  mapping.bytes[5] = 5;
  mapping.protect("read");
  assert.equal(mapping.bytes[5], 5);
  mapping.protect("read-write");
  mapping.bytes[6] = 6;
});

test("Mapping.unmap() detaches bytes, and a second unmap is a no-op", () => {
  const mapping = mapPages(4096);
  const bytes = mapping.bytes;
  const sub = bytes.subarray(10, 20);
  mapping.unmap();
  assert.equal(bytes.length, 0);
  assert.equal(sub.length, 0);
  assert.equal(mapping.bytes.length, 0);
  assert.equal(mapping.byteLength, 0);
  mapping.unmap();
  assert.throws(
    () => mapping.protect("read"),
    (e: unknown) => e instanceof AllocationError && e.category === "use-after-free",
  );
});

test("using unmaps a mapping at the end of the block", () => {
  let bytes: Uint8Array;
  {
    using mapping = mapPages(4096);
    bytes = mapping.bytes;
    bytes[0] = 1;
  }
  assert.equal(bytes.length, 0);
});

test("Mapping.advise() accepts every advice this OS has", () => {
  using mapping = mapPages(1 << 21);
  mapping.bytes.fill(1);
  for (const advice of ["normal", "random", "sequential", "will-need", "huge-page", "free"] as const) {
    mapping.advise(advice);
  }
  mapping.advise("dont-need");
  // MADV_DONTNEED on private anonymous memory gives zero pages back.
  assert.equal(mapping.bytes[0], 0);
});

test("Mapping.lock() and unlock() pin and release pages", () => {
  using mapping = mapPages(1 << 16, { populate: true });
  mapping.lock();
  mapping.unlock();
});

test("mapPages() options: populate, shared, hugePages", () => {
  for (const options of [{ populate: true }, { shared: true }, { hugePages: true }, { protection: "none" as const }]) {
    using mapping = mapPages(1 << 21, options);
    assert.equal(mapping.byteLength, 1 << 21);
    if (options.protection !== "none") mapping.bytes[100] = 1;
  }
});

function withTempFile(content: Uint8Array, body: (path: string) => void): void {
  const dir = mkdtempSync(`${tmpdir()}/memkit-map-`);
  try {
    const path = `${dir}/data.bin`;
    writeFileSync(path, content);
    body(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("mapFile() reads a file zero-copy", () => {
  const content = new Uint8Array(10_000).map((_, i) => i % 251);
  withTempFile(content, (path) => {
    using mapping = mapFile(path);
    assert.equal(mapping.byteLength, content.length);
    assert.deepEqual(mapping.bytes, content);
    // Zero-copy: a change to the file shows through the existing mapping.
    writeFileSync(path, new Uint8Array([99]), { flag: "r+" });
    assert.equal(mapping.bytes[0], 99);
  });
});

test("mapFile() with write and shared changes the file on disk", () => {
  withTempFile(new Uint8Array(5000), (path) => {
    const mapping = mapFile(pathToFileURL(path), { write: true, shared: true });
    mapping.bytes[0] = 0xab;
    mapping.bytes[4999] = 0xcd;
    mapping.sync();
    mapping.unmap();
    const disk = readFileSync(path);
    assert.equal(disk[0], 0xab);
    assert.equal(disk[4999], 0xcd);
  });
});

test("mapFile() with write but not shared keeps changes private", () => {
  withTempFile(new Uint8Array(100), (path) => {
    using mapping = mapFile(path, { write: true, shared: false });
    mapping.bytes[0] = 1;
    assert.equal(mapping.bytes[0], 1);
    assert.equal(readFileSync(path)[0], 0);
  });
});

test("mapFile() of a read-only mapping cannot be written through", () => {
  withTempFile(new Uint8Array(100), (path) => {
    using mapping = mapFile(path);
    // A read-only mapping: making it writable is refused by the kernel (EACCES).
    assert.throws(
      () => mapping.protect("read-write"),
      (e: unknown) => e instanceof AllocationError && e.category === "platform" && /EACCES/.test(e.message),
    );
  });
});

test("mapFile() of an empty file is an empty mapping", () => {
  withTempFile(new Uint8Array(0), (path) => {
    using mapping = mapFile(path);
    assert.equal(mapping.byteLength, 0);
    assert.equal(mapping.bytes.length, 0);
  });
});
