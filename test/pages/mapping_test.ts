import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { native } from "../../ffi/native.ts";
import { addressOf, AllocationError, mapFile, mapPages, nativeInfo } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;

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

for (const mode of ["none", "read"] as const) {
  test(`Mapping.protect("${mode}") detaches every view, so stores and loads through old views cannot fault`, () => {
    // In a child process: if a view were left attached, the store would kill it.
    const child = runChild(fixture("protect_store.ts"), {}, [mode]);
    assert.equal(child.status, 0, JSON.stringify(child));
    assert.match(child.stdout, /protected/);
    assert.match(child.stdout, /survived/);
    const report = JSON.parse(child.stdout.split("\n").find((line) => line.startsWith("{"))!);
    assert.equal(report.protection, mode);
    assert.deepEqual(report.lengths, [0, 0, 0], "bytes, a window and a subarray are detached");
    assert.deepEqual(report.loaded, [null, null, null]);
    assert.deepEqual(report.bytes, { error: "unsupported" });
    assert.deepEqual(report.view, { error: "unsupported" });
    if (mode === "read") {
      assert.deepEqual(report.read, { value: [1, 0] }, "read() copies the bytes out");
      assert.deepEqual(report.readWindow, { value: [5] });
    } else {
      assert.deepEqual(report.read, { error: "unsupported" });
    }
    // protect("read-write") again: a new view over the unchanged pages.
    assert.deepEqual(report.fresh, { same: false, first: 1, window: 5 });
  });
}

test("Mapping.protect('read') offers read() for copies; bytes and view() throw until read-write", () => {
  using mapping = mapPages(8192, { protection: "read-write" });
  mapping.bytes[5] = 5;
  const old = mapping.bytes;
  mapping.protect("read");
  assert.equal(mapping.protection, "read");
  assert.equal(old.length, 0);
  assert.throws(() => mapping.bytes, (e: unknown) => isCategory("unsupported")(e) && /read\(\)/.test(String(e)));
  assert.throws(() => mapping.view(0, 8), isCategory("unsupported"));
  const copy = mapping.read(0, 8);
  assert.deepEqual([...copy], [0, 0, 0, 0, 0, 5, 0, 0]);
  copy[0] = 1; // a JS-owned copy: writing it is harmless
  assert.equal(mapping.read()[0], 0);
  assert.equal(mapping.read().length, 8192);
  mapping.protect("read-write");
  mapping.bytes[6] = 6;
  assert.equal(mapping.bytes[5], 5);
});

test("mapPages() with protection 'read' or 'none' starts with bytes unavailable", () => {
  using readable = mapPages(4096, { protection: "read" });
  assert.throws(() => readable.bytes, isCategory("unsupported"));
  assert.equal(readable.read(0, 4).length, 4);
  using reserved = mapPages(4096, { protection: "none" });
  assert.throws(() => reserved.bytes, isCategory("unsupported"));
  assert.throws(() => reserved.read(), isCategory("unsupported"));
  reserved.protect("read-write");
  reserved.bytes[0] = 1;
});

test("Mapping.view() gives windows that alias bytes and are detached with it", () => {
  const mapping = mapPages(1 << 16);
  const a = mapping.view(100, 50);
  const b = mapping.view(4096);
  assert.equal(a.length, 50);
  assert.equal(b.length, (1 << 16) - 4096);
  assert.equal(mapping.view().length, 1 << 16);
  assert.equal(mapping.view(1 << 16, 0).length, 0);
  a[0] = 7;
  assert.equal(mapping.bytes[100], 7);
  assert.equal(addressOf(b), mapping.address + 4096);
  mapping.protect("none");
  assert.equal(a.length, 0);
  assert.equal(b.length, 0);
  mapping.protect("read-write");
  const c = mapping.view(100, 1);
  assert.equal(c[0], 7);
  mapping.unmap();
  assert.equal(c.length, 0);
});

test("Mapping.unmap() detaches bytes, and a second unmap is a no-op", () => {
  const mapping = mapPages(4096);
  const bytes = mapping.bytes;
  const sub = bytes.subarray(10, 20);
  const window = mapping.view(16, 16);
  mapping.unmap();
  assert.equal(bytes.length, 0);
  assert.equal(sub.length, 0);
  assert.equal(window.length, 0);
  assert.equal(mapping.bytes.length, 0);
  assert.equal(mapping.byteLength, 0);
  mapping.unmap();
  mapping[Symbol.dispose]();
});

test("every Mapping method but unmap() throws use-after-free naming the mapping after unmap()", () => {
  const mapping = mapPages(4096);
  mapping.unmap();
  const calls: [string, () => unknown][] = [
    ["protect", () => mapping.protect("read")],
    ["advise", () => mapping.advise("normal")],
    ["lock", () => mapping.lock()],
    ["unlock", () => mapping.unlock()],
    ["sync", () => mapping.sync()],
    ["view", () => mapping.view(0, 1)],
    ["window", () => mapping.window(0, 1)],
    ["read", () => mapping.read(0, 1)],
  ];
  for (const [name, call] of calls) {
    assert.throws(call, (e: unknown) => {
      assert.ok(isCategory("use-after-free")(e), `${name}: ${e}`);
      assert.match((e as Error).message, new RegExp(`${name}.*4096 mapped bytes at 0x${mapping.address.toString(16)}`));
      return true;
    });
  }
  assert.equal(mapping.bytes.length, 0, "bytes reads as an empty, detached view");
});

test("a mapping larger than one ArrayBuffer is used through windows, and leaves nothing behind", () => {
  // 8 GiB reserved (protection "none" maps with MAP_NORESERVE): no RAM is used.
  const size = 2 ** 33;
  const vmSize = () => Number(/VmSize:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
  const baseline = vmSize();
  for (let round = 0; round < 4; round++) {
    const mapping = mapPages(size, { protection: "none" });
    mapping.protect("read-write");
    if (size > native.maxViewBytes) {
      // Bun: one ArrayBuffer holds at most 4 GiB.
      assert.throws(
        () => mapping.bytes,
        (e: unknown) =>
          isCategory("unsupported")(e) && /4294967296 bytes/.test(String(e)) &&
          /view\(offset, length\)/.test(String(e)),
      );
    } else {
      assert.equal(mapping.bytes.length, size); // Deno: up to 2^53 - 1
    }
    // Windows: one page past 4 GiB, and one across the 4 GiB line.
    const high = mapping.view(2 ** 32 + 4096, 4096);
    high[0] = 42;
    assert.equal(mapping.read(2 ** 32 + 4096, 1)[0], 42);
    const across = mapping.view(2 ** 32 - 2, 4);
    across.fill(7);
    assert.deepEqual([...mapping.read(2 ** 32 - 2, 4)], [7, 7, 7, 7]);
    assert.equal(addressOf(across), mapping.address + 2 ** 32 - 2);
    mapping.unmap();
    assert.equal(high.length, 0);
    assert.equal(across.length, 0);
  }
  const grown = vmSize() - baseline;
  assert.ok(grown < 2 ** 30, `VmSize grew by ${grown} bytes after 4 rounds of 8 GiB`);
});

test("native.wrap() refuses more than the runtime's per-ArrayBuffer limit before the runtime sees it", () => {
  // In a child process: past the limit, Deno's V8 aborts the process.
  const child = runChild(fixture("wrap_limit.ts"));
  assert.equal(child.status, 0, JSON.stringify(child));
  const report = JSON.parse(child.stdout);
  if (report.runtime === "bun") {
    assert.equal(report.maxViewBytes, 2 ** 32);
    assert.equal(report.overLimit.error, "unsupported");
    assert.match(report.overLimit.message, /Bun allows at most 4294967296 bytes per ArrayBuffer/);
    assert.equal(report.eightGiB.error, "unsupported");
    assert.deepEqual(report.atLimit, { byteLength: 2 ** 32 });
  } else {
    assert.equal(report.maxViewBytes, Number.MAX_SAFE_INTEGER);
    assert.equal(report.overLimit.error, "RangeError"); // 2^53 is not a safe integer
    assert.deepEqual(report.eightGiB, { byteLength: 2 ** 33 });
  }
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

// The flags the kernel shows for the mapping starting at `address` (Linux: /proc/self/smaps).
function vmFlags(address: number): string[] {
  const lines = readFileSync("/proc/self/smaps", "utf8").split("\n");
  const start = lines.findIndex((line) => line.startsWith(`${address.toString(16)}-`));
  assert.ok(start >= 0, "the mapping is in /proc/self/smaps");
  for (let i = start + 1; i < lines.length && !/^[0-9a-f]+-/.test(lines[i]); i++) {
    if (lines[i].startsWith("VmFlags:")) return lines[i].slice("VmFlags:".length).trim().split(/\s+/);
  }
  return [];
}

test("a Mapping.lock() that fails leaves the pages unlocked (its throw changes nothing)", {
  skip: process.platform !== "linux",
}, () => {
  // Pages that may not be read cannot be faulted in: mlock fails, after Linux marked the range locked.
  using mapping = mapPages(64 << 20, { protection: "none" });
  const error = (() => {
    try {
      mapping.lock();
      return null;
    } catch (error) {
      return error;
    }
  })();
  if (error === null) return; // this kernel locked them after all: nothing failed to look at
  assert.ok(error instanceof AllocationError && error.category === "platform" && error.call === "mlock");
  assert.ok(!vmFlags(mapping.address).includes("lo"), "the failed lock left the range marked locked");
  mapping.protect("read-write"); // with the mark left, this filled and pinned all 64 MiB
  assert.ok(!vmFlags(mapping.address).includes("lo"));
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
    assert.equal(mapping.protection, "read-write");
    assert.deepEqual(mapping.bytes, content);
    // Zero-copy: a change to the file shows through pages this mapping has not written.
    writeFileSync(path, new Uint8Array([99]), { flag: "r+" });
    assert.equal(mapping.bytes[0], 99);
  });
});

test("mapFile() by default is private copy-on-write: a store changes the view, not the file, and cannot crash", () => {
  withTempFile(new Uint8Array(5000).fill(1), (path) => {
    // In a child process: before issue 10 this store killed the process.
    const child = runChild(fixture("map_file_store.ts"), {}, [path]);
    assert.equal(child.status, 0, JSON.stringify(child));
    assert.match(child.stdout, /survived/);
    const report = JSON.parse(child.stdout.split("\n")[0]);
    assert.deepEqual(report, {
      protection: "read-write",
      before: 1,
      view: [0xab, 0xcd],
      fileWhileMapped: [1, 1],
      fileAfter: [1, 1],
    });
  });
});

test("mapFile() of a file truncated while mapped dies with SIGBUS on the next read (the documented hazard)", () => {
  withTempFile(new Uint8Array(8192).fill(7), (path) => {
    const child = runChild(fixture("map_file_truncate.ts"), {}, [path]);
    assert.match(child.stdout, /read 7/);
    assert.match(child.stdout, /truncated/);
    assert.doesNotMatch(child.stdout, /survived/);
    assert.ok(child.signal === "SIGBUS" || child.status === 128 + 7, JSON.stringify(child));
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

test("mapFile() without write opens the file read-only: protect() works on its private copy", () => {
  withTempFile(new Uint8Array(100), (path) => {
    using mapping = mapFile(path);
    mapping.protect("read");
    assert.equal(mapping.read(0, 1)[0], 0);
    mapping.protect("read-write");
    mapping.bytes[0] = 1;
    assert.equal(readFileSync(path)[0], 0);
  });
});

test("mapFile() of an empty file is an empty mapping", () => {
  withTempFile(new Uint8Array(0), (path) => {
    using mapping = mapFile(path);
    assert.equal(mapping.byteLength, 0);
    assert.equal(mapping.bytes.length, 0);
  });
});

test("mapFile() of a missing file: a platform error with the call, its errno and the whole path", () => {
  const directory = mkdtempSync(`${tmpdir()}/memkit-a-directory-with-a-long-name-`);
  try {
    const path = `${directory}/images/a-file-whose-name-is-longer-than-forty-characters.png`;
    assert.throws(() => mapFile(path), (e: unknown) => {
      assert.ok(e instanceof AllocationError);
      assert.equal(e.category, "platform");
      assert.equal(e.call, "stat");
      assert.equal(e.errno, 2); // ENOENT on Linux and macOS
      assert.ok(e.message.includes(JSON.stringify(path)), e.message);
      assert.match(e.message, /ENOENT/);
      return true;
    });
  } finally {
    rmSync(directory, { recursive: true });
  }
});
