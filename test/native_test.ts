import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { native, nativeReady } from "../ffi/native.ts";
import { libcHeap, memkitHeap } from "../ffi/heap.ts";
import { VERSION } from "../ffi/version.ts";
import { addressOf, AllocationError, fragmentation, nativeInfo, SystemAllocator } from "../mod.ts";
import { badInputTable } from "./_bad_input.ts";
import { platformError } from "../src/base/_platform_error.ts";
import { spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { fixture, runChild } from "./_helpers.ts";

test("nativeInfo() describes the runtime, page size and kernels", () => {
  const info = nativeInfo();
  assert.ok(info.runtime === "deno" || info.runtime === "bun");
  assert.equal(info.os, "linux");
  assert.ok(info.pageSize >= 4096 && (info.pageSize & (info.pageSize - 1)) === 0);
  assert.ok(["avx2", "sse2", "neon", "scalar", "js"].includes(info.simd));
  assert.equal(info.libcError, null);
  // This machine has a compiler, so the library must have been built and loaded.
  assert.notEqual(info.library, null, info.libraryError ?? "");
  assert.equal(info.simd, "avx2");
});

test("VERSION in ffi/version.ts matches deno.json", () => {
  const config = JSON.parse(readFileSync(new URL("../deno.json", import.meta.url), "utf8"));
  assert.equal(VERSION, config.version);
});

test("addressOf() gives exact addresses, offsets included", () => {
  const allocator = new SystemAllocator();
  const block = allocator.alloc(1000, 256);
  const base = addressOf(block);
  assert.ok(base > 0 && Number.isSafeInteger(base));
  assert.equal(base % 256, 0);
  assert.equal(addressOf(block.subarray(17)), base + 17);
  assert.equal(addressOf(new Float64Array(block.buffer, 64, 3)), base + 64);
  assert.equal(addressOf(block.subarray(1000)), base + 1000, "empty view at the end");
  allocator.free(block);
  assert.equal(addressOf(block), 0, "detached view");
  assert.ok(addressOf(new Uint8Array(8)) > 0, "JS-owned arrays have addresses too");
});

test("the heap goes through libmemkit's double-typed calls once it is loaded, and both paths share libc's heap", async () => {
  await nativeReady();
  assert.equal(native.heap.via, "libmemkit");
  const heaps = [libcHeap(native.libc), memkitHeap(native.memkit!, () => native.errno())];
  for (const [from, to] of [[0, 1], [1, 0], [0, 0], [1, 1]]) {
    const a = heaps[from].malloc(100);
    assert.ok(a > 0 && a % 16 === 0);
    assert.ok(heaps[to].usableSize!(a) >= 100);
    new Uint8Array(native.wrap(a, 100)).fill(9);
    const b = heaps[to].realloc(a, 100_000);
    assert.ok(b > 0);
    assert.equal(new Uint8Array(native.wrap(b, 100))[99], 9, "realloc kept the bytes");
    heaps[from].free(b); // a block from either declaration goes back through the other
    const c = heaps[to].memalign(4096, 5000);
    assert.ok(c > 0 && c % 4096 === 0);
    assert.equal(heaps[from].madvise(c, 0, 0), 0);
    assert.equal(heaps[from].madvise(c + 1, 4096, 0), -1, "an unaligned madvise fails");
    assert.equal(native.errno(), 22);
    heaps[to].free(c);
    // posix_memalign's refusal comes back as minus its error code (EINVAL for an alignment that is not a power of 2).
    assert.equal(heaps[to].memalign(24, 64), -22);
  }
});

test("platform errors name the failed call and errno", () => {
  // munmap of an unaligned address fails with EINVAL.
  assert.equal(native.libc.munmap(12345, 4096), -1);
  const error = platformError("munmap", "12345, 4096 bytes");
  assert.ok(error instanceof AllocationError);
  assert.equal(error.category, "platform");
  assert.equal(error.call, "munmap");
  assert.equal(error.errno, 22);
  assert.match(error.message, /munmap\(12345, 4096 bytes\) failed with EINVAL/);
});

test("MEMKIT_NATIVE=0 runs the TypeScript kernels", () => {
  const child = runChild(fixture("native_info.ts"), { MEMKIT_NATIVE: "0" });
  assert.equal(child.status, 0, child.stderr);
  const info = JSON.parse(child.stdout);
  assert.equal(info.simd, "js");
  assert.equal(info.library, null);
  assert.match(info.libraryError, /MEMKIT_NATIVE=0/);
  assert.equal(info.compare, 777);
});

test("a bad MEMKIT_LIB fails loudly, naming the path and why, on every kernel use", () => {
  const child = runChild(fixture("native_bad_lib.ts"), { MEMKIT_LIB: "/nonexistent/libmemkit.so" });
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout);
  assert.equal(out.simd, "js");
  assert.match(out.libraryError, /libmemkit could not be loaded; tried:/);
  assert.match(out.libraryError, /MEMKIT_LIB=\/nonexistent\/libmemkit\.so/);
  assert.equal(out.throws.length, 2);
  for (const thrown of out.throws) assert.match(thrown, /^unsupported: libmemkit could not be loaded; tried:/);
});

test("six processes building on one empty cache at once all end with a working library", async () => {
  const cache = mkdtempSync(`${tmpdir()}/memkit-cache-`);
  try {
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        new Promise<{ status: number | null; out: string }>((resolve) => {
          // Staggered starts: a build that begins while another writes its files is the case that matters.
          setTimeout(() => {
            const config = fileURLToPath(new URL("../deno.json", import.meta.url));
            const args = nativeInfo().runtime === "deno"
              ? ["run", "-A", `--config=${config}`, fixture("native_info.ts")]
              : ["run", fixture("native_info.ts")];
            const child = spawn(process.execPath, args, {
              env: { ...process.env, MEMKIT_CACHE_DIR: cache, NO_COLOR: "1" },
            });
            let out = "";
            child.stdout.on("data", (d) => out += d);
            child.stderr.on("data", (d) => out += d);
            child.on("close", (status) => resolve({ status, out }));
          }, i * 150);
        })),
    );
    for (const { status, out } of runs) {
      assert.equal(status, 0, out);
      const info = JSON.parse(out.trim().split("\n").at(-1)!);
      assert.notEqual(info.simd, "js", info.libraryError);
      assert.equal(info.compare, 777);
    }
    assert.deepEqual(readdirSync(join(cache, readdirSync(cache)[0])).filter((f) => f.startsWith("build-")), []);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("a program that exits right after its first kernel use still leaves the library in the cache", async () => {
  const cache = mkdtempSync(`${tmpdir()}/memkit-cache-`);
  try {
    const child = runChild(fixture("native_exit_early.ts"), { MEMKIT_CACHE_DIR: cache });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), "-1");
    // The build goes on after the process ended, then renames the library into place.
    let library: string | undefined;
    for (let i = 0; i < 600 && library === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const dirs = readdirSync(cache);
      library = dirs.length === 0
        ? undefined
        : readdirSync(join(cache, dirs[0])).find((f) => f.startsWith("libmemkit."));
    }
    assert.ok(library !== undefined, "libmemkit is in the cache");
    const next = runChild(fixture("native_info.ts"), { MEMKIT_CACHE_DIR: cache });
    assert.ok(JSON.parse(next.stdout).library.startsWith(cache));
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("the library is compiled on first use into the cache and reused", () => {
  const cache = mkdtempSync(`${tmpdir()}/memkit-cache-`);
  try {
    const first = runChild(fixture("native_info.ts"), { MEMKIT_CACHE_DIR: cache });
    assert.equal(first.status, 0, first.stderr);
    const info = JSON.parse(first.stdout);
    assert.ok(info.library.startsWith(cache), info.library);
    assert.match(info.library, new RegExp(`${VERSION}-[0-9a-f]{16}-linux-`));
    assert.equal(info.compare, 777);
    const second = runChild(fixture("native_info.ts"), { MEMKIT_CACHE_DIR: cache });
    assert.equal(JSON.parse(second.stdout).library, info.library);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("importing memkit never waits for a build: the first use builds in the background, nativeReady() waits", () => {
  const cache = mkdtempSync(`${tmpdir()}/memkit-cache-`);
  try {
    const child = runChild(fixture("native_lazy.ts"), { MEMKIT_CACHE_DIR: cache });
    assert.equal(child.status, 0, child.stderr);
    const out = JSON.parse(child.stdout);
    assert.equal(out.first.simd, "js", "the TypeScript kernels while the library builds");
    assert.match(out.first.libraryError, /building it in the background/);
    assert.equal(out.first.compare, 5);
    assert.notEqual(out.ready.simd, "js");
    assert.ok(out.ready.library.startsWith(cache), out.ready.library);
    assert.equal(out.compare, 5);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("without a compiler, the failure lists every compiler tried and falls back", () => {
  const cache = mkdtempSync(`${tmpdir()}/memkit-cache-`);
  try {
    const child = runChild(fixture("native_info.ts"), {
      MEMKIT_CACHE_DIR: cache,
      CC: "/nonexistent/cc",
      PATH: "/nonexistent",
    });
    assert.equal(child.status, 0, child.stderr);
    const info = JSON.parse(child.stdout);
    assert.equal(info.simd, "js");
    assert.equal(info.compare, 777);
    for (const cc of ["/nonexistent/cc", "cc", "gcc", "clang"]) {
      assert.ok(info.libraryError.includes(`compile with ${cc}`), info.libraryError);
    }
    assert.match(info.libraryError, /not built yet/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("in a terminal, with any set of the usual permissions, nothing memkit does makes Deno prompt", (t) => {
  // --no-prompt (the other tests) turns a prompt into an error, which memkit would quietly handle: only a real
  // terminal shows one. `script` gives the child a pseudo-terminal; a prompt would wait there for an answer.
  if (nativeInfo().runtime !== "deno") return t.skip("Bun has no permission prompts");
  if (spawnSync("script", ["--version"]).status !== 0) return t.skip("no `script` command to give Deno a terminal");
  const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
  const config = fileURLToPath(new URL("../deno.json", import.meta.url));
  const sets = ["", "--allow-ffi", "--allow-ffi --allow-env", "--allow-ffi --allow-env --allow-read --allow-write"];
  for (const permissions of sets) {
    const command = `'${deno}' run --config='${config}' ${permissions} '${fixture("no_prompt_tour.ts")}'`;
    const result = spawnSync("script", ["-qec", command, "/dev/null"], {
      input: "",
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, NO_COLOR: "1" },
    });
    const output = `${result.stdout}${result.stderr}`;
    assert.doesNotMatch(output, /Deno requests/, `${permissions || "no permissions"}: ${output}`);
    assert.match(output, /^done /m, `${permissions || "no permissions"}: ${output}`);
  }
});

test("Deno without permissions: memkit imports, explains what is missing, and never prompts", {
  skip: nativeInfo().runtime !== "deno",
}, () => {
  // Through the npm shim's path: Deno's node:child_process gives a child started
  // as `process.execPath run ...` the parent's permissions.
  const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
  const result = spawnSync(deno, ["run", "--no-prompt", fixture("no_permissions.ts")], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    input: "", // a prompt would wait for input; --no-prompt makes any attempt an error instead
  });
  assert.equal(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  assert.match(out.info.libcError, /--allow-ffi/);
  assert.equal(out.info.simd, "js");
  assert.equal(out.category, "unsupported");
  assert.match(out.message, /--allow-ffi/);
  assert.equal(out.equals, true);
});

test("Deno without --allow-ffi or /proc access: addressOf and readMemoryStatus say which permission is missing", {
  skip: nativeInfo().runtime !== "deno",
}, () => {
  const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
  const run = (...permissions: string[]) => {
    const result = spawnSync(deno, ["run", "--no-prompt", ...permissions, fixture("no_permission_errors.ts")], {
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
      input: "",
    });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout);
  };
  const none = run();
  assert.deepEqual(
    { name: none.addressOf.name, category: none.addressOf.category },
    { name: "AllocationError", category: "unsupported" },
  );
  assert.equal(none.addressOf.message, "memkit needs FFI access: run Deno with --allow-ffi");
  assert.equal(none.memoryStatus.category, "unsupported");
  assert.match(none.memoryStatus.message, /Deno denied reading \/proc .*--allow-all \(-A\)/);
  assert.doesNotMatch(none.memoryStatus.message, /MemTotal/);
  // With FFI: addressOf works. Deno 2 wants --allow-all for /proc even with --allow-read, and says so.
  const ffiRead = run("--allow-ffi", "--allow-read");
  assert.deepEqual(ffiRead.addressOf, { ok: true });
  assert.equal(ffiRead.memoryStatus.category, "unsupported");
  assert.match(ffiRead.memoryStatus.message, /Deno denied reading \/proc .*--allow-all \(-A\)/);
  // A MemoryBudget reads the real limit the same way: its refusal also names the way around it.
  assert.equal(ffiRead.budget.category, "unsupported");
  assert.match(ffiRead.budget.message, /--allow-all \(-A\); or give the budget its total: .*physicalBytes/);
  assert.deepEqual(ffiRead.budgetOfItsOwn, { ok: true });
  assert.deepEqual(run("--allow-all").memoryStatus, { ok: true });
});

test("addressOf() reads the view's range from internal slots: own properties and subclass getters change nothing", () => {
  const allocator = new SystemAllocator();
  const block = allocator.alloc(256);
  const base = addressOf(block);
  const sub = block.subarray(16, 32);
  Object.defineProperty(sub, "byteOffset", { value: 1 << 30 });
  Object.defineProperty(sub, "byteLength", { value: 0 });
  Object.defineProperty(sub, "buffer", { value: new ArrayBuffer(8) });
  assert.equal(addressOf(sub), base + 16);
  const empty = block.subarray(100, 100);
  Object.defineProperty(empty, "byteOffset", { value: 7 });
  assert.equal(addressOf(empty), base + 100, "an empty view: its real offset");
  class Lying extends Float64Array {
    override get byteOffset(): number {
      return 1 << 30;
    }
    override get byteLength(): number {
      return 0;
    }
  }
  assert.equal(addressOf(new Lying(block.buffer as ArrayBuffer, 64, 2)), base + 64);
  allocator.free(block);
});

test("native.maxViewBytes is the runtime's per-ArrayBuffer limit", () => {
  assert.equal(native.maxViewBytes, native.runtime === "bun" ? 2 ** 32 : Number.MAX_SAFE_INTEGER);
  assert.equal(nativeInfo().maxViewBytes, native.maxViewBytes); // public, named in the limit's messages
});

badInputTable<number>("native boundary and helpers", [
  { name: "fragmentation('16')", act: () => fragmentation(any("16")), expect: TypeError },
  { name: "fragmentation(16)", act: () => fragmentation(any(16)), expect: TypeError },
  { name: "fragmentation(null)", act: () => fragmentation(any(null)), expect: TypeError },
  { name: "fragmentation({})", act: () => fragmentation(any({})), expect: TypeError },
  { name: "fragmentation(['16'])", act: () => fragmentation(any(["16"])), expect: TypeError },
  { name: "fragmentation([16, 16n])", act: () => fragmentation(any([16, 16n])), expect: TypeError },
  {
    name: "addressOf(Proxy of a typed array)",
    act: () => addressOf(new Proxy(new Uint8Array(8), {})),
    expect: TypeError,
  },
  { name: "native.wrap(0, 16)", act: () => native.wrap(0, 16), expect: RangeError },
  { name: "native.wrap(-4096, 16)", act: () => native.wrap(-4096, 16), expect: RangeError },
  {
    name: "native.wrap(address, -1)",
    arrange: () => addressOf(new Uint8Array(16)),
    act: (address) => native.wrap(address, -1),
    expect: RangeError,
  },
  {
    name: "native.wrap(address, 1.5)",
    arrange: () => addressOf(new Uint8Array(16)),
    act: (address) => native.wrap(address, 1.5),
    expect: RangeError,
  },
  {
    name: "native.wrap(address, NaN)",
    arrange: () => addressOf(new Uint8Array(16)),
    act: (address) => native.wrap(address, NaN),
    expect: RangeError,
  },
]);

// deno-lint-ignore no-explicit-any
function any(value: unknown): any {
  return value;
}
