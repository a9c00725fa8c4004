// Each memory type of the MemoryInterface has a real backing of its own, and
// each test here observes what that backing does differently (not a label):
// where the block comes from, how blocks sit next to each other, what a
// release does, what the kernel says about the pages.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, MemoryInterface, type MemoryStatus, nativeInfo, PressureMonitor } from "../../mod.ts";
import { B_STACK, Backings, stackSize } from "../../src/hal/_backings.ts";
import { fixture, runChild } from "../_helpers.ts";
import { HAS_PROC, lockedBytes, mappingAt, runUnderMemlockLimit } from "./_locked_memory.ts";

const PAGE = nativeInfo().pageSize;
const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
const fresh = () => new MemoryInterface({ pressure: false });

test("system: blocks come from the interface's SystemAllocator, and deallocate detaches them", () => {
  using memory = fresh();
  const block = memory.allocateTyped(1000, "system");
  assert.deepEqual([block.type, block.allocator, block.alignment], ["system", "system", 16]);
  assert.ok(memory.getAllocator("system").owns(block.bytes));
  assert.equal(block.bytes.buffer.byteLength, 1000, "a buffer of its own (one malloc per block)");
  memory.deallocate(block);
  assert.equal(block.bytes.length, 0, "its memory went back to libc: the view is detached");
});

test("temporary: one arena, released at once by endFrame(); frames nest; frame() is a scope", () => {
  using memory = fresh();
  const a = memory.allocateTyped(100, "temporary");
  const b = memory.allocateTyped(100, "temporary");
  assert.equal(b.address - a.address, 112, "bump allocation: the next block follows at 16-byte alignment");
  assert.ok(memory.getAllocator("arena").owns(b.bytes));
  memory.beginFrame();
  const inner = memory.allocateTyped(50, "temporary");
  memory.endFrame();
  assert.equal(inner.bytes.length, 0, "the inner frame's block is released");
  assert.equal(a.bytes.length, 100, "blocks from before the frame live on");
  assert.equal(memory.getMemoryStats("temporary").usedBytes, 200);
  {
    using _frame = memory.frame();
    memory.allocateTyped(4000, "temporary");
    assert.equal(memory.getMemoryStats("temporary").allocationCount, 3);
  }
  assert.equal(memory.getMemoryStats("temporary").allocationCount, 2);
  memory.endFrame(); // outside frames: everything temporary made outside one goes
  assert.deepEqual([a.bytes.length, b.bytes.length], [0, 0]);
  assert.equal(memory.getMemoryStats("temporary").usedBytes, 0);
  assert.equal(memory.isValidPointer(a.address), false);
  const again = memory.allocateTyped(100, "temporary");
  assert.equal(again.address, a.address, "the arena's memory is reused from its start");
});

test("pool: size classes; a block goes to the smallest class that holds it and comes back in O(1)", () => {
  using memory = fresh();
  const a = memory.allocateTyped(20, "pool");
  const b = memory.allocateTyped(30, "pool");
  const c = memory.allocateTyped(33, "pool");
  assert.deepEqual([a.alignment, b.alignment, c.alignment], [32, 32, 64]);
  assert.equal(b.address - a.address, 32, "20 and 30 bytes share the 32-byte class, side by side");
  assert.equal(c.address % 64, 0);
  assert.notEqual(c.bytes.buffer, a.bytes.buffer, "another class, another pool's chunk");
  memory.deallocate(a);
  const d = memory.allocateTyped(17, "pool");
  assert.equal(d.address, a.address, "the freed block is the next one its class hands out");
  assert.throws(() => memory.allocateTyped(4097, "pool"), RangeError);
  for (const x of [b, c, d]) memory.deallocate(x);
});

test("stack: LIFO; a block below the top cannot go first, and refusing changes nothing", () => {
  using memory = fresh();
  const bottom = memory.allocateTyped(100, "stack");
  const top = memory.allocateTyped(100, "stack");
  assert.ok(top.address > bottom.address);
  assert.throws(() => memory.deallocate(bottom), isCategory("invalid-free"));
  assert.equal(memory.isValidPointer(bottom.address), true);
  assert.equal(memory.getMemoryStats("stack").allocationCount, 2);
  memory.deallocate(top);
  memory.deallocate(bottom);
  assert.equal(memory.getMemoryStats("stack").usedBytes, 0);
});

test("stack: budgets.stack is a limit, not a reservation: above the memory the process may use, that sizes the stack", () => {
  // A process that may use 64 MiB (its monitor says so): a stack larger than that could never be filled.
  const MiB = 1 << 20;
  const read = (): MemoryStatus => ({
    totalBytes: 64 * MiB,
    availableBytes: 48 * MiB,
    limitBytes: null,
    usedBytes: 16 * MiB,
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events: null,
  });
  using monitor = new PressureMonitor({ read, intervalMs: 3_600_000 });
  for (const budget of [5 * 2 ** 30, 2 ** 47]) {
    using memory = new MemoryInterface({ budgets: { stack: budget }, pressure: monitor });
    const block = memory.allocateTyped(16, "stack"); // before: "Cannot create StackAllocator: ... refused a chunk"
    assert.equal(block.size, 16);
    assert.equal(memory.getAllocator("stack").stats().capacityBytes, 64 * MiB, `budget ${budget}`);
    assert.throws(() => memory.allocateTyped(64 * MiB + PAGE, "stack"), (e: unknown) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(
        e.message,
        /: the stack holds 67108864 bytes, the size budgets\.stack sets, capped at the 67108864 bytes this process may use \(pass allowFallback/,
      );
      return true;
    });
    memory.deallocate(block);
  }
});

test("stack: its size is the budget, at most the memory the process may use and one ArrayBuffer, at least a page", () => {
  const { maxViewBytes } = nativeInfo();
  assert.deepEqual(stackSize(undefined, Infinity), { bytes: 1 << 20, cap: null }, "1 MiB without a budget");
  assert.deepEqual(stackSize(0, Infinity), { bytes: 4096, cap: null });
  assert.deepEqual(stackSize(8 << 20, 64 << 20), { bytes: 8 << 20, cap: null });
  assert.deepEqual(stackSize(1 << 30, 64 << 20), { bytes: 64 << 20, cap: "the 67108864 bytes this process may use" });
  const view = stackSize(2 ** 47, Infinity);
  if (maxViewBytes < 2 ** 47) {
    assert.equal(view.bytes, maxViewBytes);
    assert.match(view.cap!, /^\d+ bytes, what one ArrayBuffer holds in Bun, nativeInfo\(\)\.maxViewBytes$/);
  } else {
    assert.deepEqual(view, { bytes: 2 ** 47, cap: null }, "no known total, no view limit: the budget");
  }
});

test("stack: a stack the system cannot make says so, names budgets.stack and what to do, and maps nothing", () => {
  // 2^47 bytes (no known total, Deno's views): more address space than a process has. Bun refuses it before
  // any native call (above one view: "unsupported", as a StackAllocator refuses a capacity above one
  // ArrayBuffer), Deno's mmap refuses it ("out-of-memory").
  const backings = new Backings({ stackBytes: 2 ** 47, stackCap: null, temporaryBytes: 4096, buddyBytes: 4096 });
  assert.throws(() => backings.allocator(B_STACK), (e: unknown) => {
    assert.ok(e instanceof AllocationError);
    assert.equal(e.category, nativeInfo().maxViewBytes < 2 ** 47 ? "unsupported" : "out-of-memory");
    assert.match(
      e.message,
      /^Cannot make the MemoryInterface's stack of 140737488355328 bytes \(budgets\.stack sets its size; it is one chunk, made on first use\): .+; set a smaller budgets\.stack$/,
    );
    return true;
  });
  backings.dispose();
});

test("network: MTU-sized (1536-byte), cache-line-aligned packet blocks from one pool", () => {
  using memory = fresh();
  const packets = Array.from({ length: 4 }, () => memory.allocateTyped(60, "network"));
  for (const p of packets) {
    assert.equal(p.address % 64, 0);
    assert.equal(p.alignment, 64);
    assert.equal(p.allocator, "pool");
  }
  assert.equal(packets[1].address - packets[0].address, 1536, "one MTU block per packet, even a small one");
  assert.equal(memory.getMemoryStats("network").largestFreeBlock, 1536);
  assert.throws(() => memory.allocateTyped(1537, "network"), RangeError);
  const big = memory.allocate({ size: 9000, type: "network", allowFallback: true });
  assert.deepEqual([big.type, big.allocator], ["system", "system"], "a jumbo frame falls back to system memory");
  for (const p of [...packets, big]) memory.deallocate(p);
});

test("video: every block 256-byte aligned, from the free-list heap", () => {
  using memory = fresh();
  const blocks = [1, 7, 255, 300, 4096, 10_000].map((size) => memory.allocateTyped(size, "video"));
  for (const block of blocks) {
    assert.equal(block.address % 256, 0, `${block.size} bytes at 0x${block.address.toString(16)}`);
    assert.equal(block.alignment, 256);
    assert.ok(memory.getAllocator("free-list").owns(block.bytes));
  }
  // A system block of the same size would sit at malloc's 16-byte alignment.
  for (const block of blocks) memory.deallocate(block);
});

test("audio and dma-capable: pages locked in RAM (VmLck grows, then shrinks)", { skip: !HAS_PROC }, () => {
  using memory = fresh();
  const before = lockedBytes();
  const audio = memory.allocateTyped(64 << 10, "audio");
  assert.equal(lockedBytes() - before, 64 << 10);
  assert.equal(audio.address % PAGE, 0);
  assert.ok(mappingAt(audio.address).at.flags.includes("lo"), "the mapping is locked (VmFlags lo)");
  const dma = memory.allocate({ size: 100, flags: ["dma-capable"] });
  assert.deepEqual([dma.type, dma.allocator], ["system", "system"]);
  assert.equal(lockedBytes() - before, (64 << 10) + PAGE, "a dma-capable block: one locked page");
  const plain = memory.allocateTyped(64 << 10, "system");
  assert.equal(lockedBytes() - before, (64 << 10) + PAGE, "system memory is not locked");
  memory.deallocate(audio);
  memory.deallocate(dma);
  memory.deallocate(plain);
  assert.equal(lockedBytes(), before);
});

test(
  "audio: a refusal under RLIMIT_MEMLOCK is AllocationError('platform') naming the limit",
  { skip: !HAS_PROC },
  () => {
    const result = runUnderMemlockLimit(fixture("hal_memlock_refusal.ts"), 64);
    if ("skip" in result) return void console.log(`skipped: ${result.skip}`);
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    assert.equal(report.category, "platform");
    assert.match(report.message, /RLIMIT_MEMLOCK/);
    assert.equal(report.usedAfter, 0, "the refused request left nothing counted");
    assert.equal(report.smallOk, true, "an allocation within the limit still works");
  },
);

test("shared: another process opens the allocation by its name and shares its bytes", () => {
  using memory = fresh();
  const shared = memory.allocateTyped(8192, "shared");
  assert.ok(shared.name !== undefined && shared.name.length <= 30);
  assert.deepEqual([shared.type, shared.allocator, shared.alignment], ["shared", "system", PAGE]);
  shared.bytes.set([1, 2, 3, 4]);
  const child = runChild(fixture("shared_memory_child.ts"), {}, [shared.name!]);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout.trim()), { seen: [1, 2, 3, 4], byteLength: 8192 });
  assert.deepEqual([...shared.bytes.subarray(8, 12)], [0xc1, 0xc2, 0xc3, 0xc4], "the child's stores are seen here");
  const named = memory.allocate({ size: 100, type: "shared", name: `hal-test-${shared.name!.slice(-6)}` });
  assert.equal(named.name, `hal-test-${shared.name!.slice(-6)}`);
  memory.deallocate(named);
  memory.deallocate(shared);
  assert.equal(shared.bytes.length, 0);
  const gone = runChild(fixture("shared_memory_child.ts"), {}, [shared.name!]);
  assert.notEqual(gone.status, 0, "deallocate unlinked the name");
});

test("flag zero: a reused pool block reads as zero only when asked", () => {
  using memory = fresh();
  const first = memory.allocateTyped(64, "pool");
  first.bytes.fill(0xab);
  memory.deallocate(first);
  const dirty = memory.allocateTyped(64, "pool");
  assert.equal(dirty.address, first.address);
  assert.equal(dirty.bytes[0], 0xab, "without the flag the old bytes are still there");
  memory.deallocate(dirty);
  const clean = memory.allocateTyped(64, "pool", undefined, ["zero"]);
  assert.equal(clean.address, first.address);
  assert.ok(clean.bytes.every((b) => b === 0));
  assert.deepEqual(clean.flags, ["zero"]);
  memory.deallocate(clean);
});

test("flag cacheable: a block starts on a cache line and has whole lines to itself", () => {
  using memory = fresh();
  const plain = [memory.allocateTyped(10, "temporary"), memory.allocateTyped(10, "temporary")];
  assert.equal(plain[1].address - plain[0].address, 16, "without it, two small blocks share a cache line");
  const lines = [0, 1, 2].map(() => memory.allocateTyped(10, "temporary", undefined, ["cacheable"]));
  for (const block of lines) {
    assert.equal(block.address % 64, 0);
    assert.equal(block.bytes.length, 10);
  }
  assert.equal(lines[1].address - lines[0].address, 64);
  assert.equal(lines[2].address - lines[1].address, 64);
  const pooled = memory.allocateTyped(70, "pool", undefined, ["cacheable"]);
  assert.equal(pooled.address % 64, 0);
  assert.equal(pooled.alignment, 128, "70 bytes padded to two lines: the 128-byte class");
  memory.deallocate(pooled);
  memory.endFrame();
});

test("flag temporary: system memory served by the arena, released by endFrame()", () => {
  using memory = fresh();
  const scratch = memory.allocate({ size: 1 << 20, flags: ["temporary"] });
  assert.deepEqual([scratch.type, scratch.allocator], ["temporary", "arena"]);
  memory.endFrame();
  assert.equal(scratch.bytes.length, 0);
  assert.throws(() => memory.deallocate(scratch), isCategory("double-free"));
});

test("flag secret: locked, out of core dumps, fenced: a write one byte past the end kills a child", {
  skip: !HAS_PROC,
}, () => {
  using memory = fresh();
  const before = lockedBytes();
  const key = memory.allocate({ size: 32, flags: ["secret", "zero"] });
  assert.deepEqual([key.type, key.allocator], ["system", "system"]);
  assert.ok(key.bytes.every((b) => b === 0));
  assert.equal(lockedBytes() - before, PAGE);
  const { at, above } = mappingAt(key.address);
  assert.ok(at.flags.includes("dd"), `VmFlags ${at.flags.join(" ")} include dd (not dumped)`);
  assert.ok(at.flags.includes("lo"));
  assert.equal(above?.perms.startsWith("---"), true, "a guard page right after the block's page");
  memory.deallocate(key);
  assert.equal(lockedBytes(), before);
  const past = runChild(fixture("hal_secret_overflow.ts"), {}, ["past"]);
  assert.equal(past.signal ?? "", "SIGSEGV", `status ${past.status}, stderr ${past.stderr.slice(0, 300)}`);
  assert.match(past.stdout, /before/);
  assert.doesNotMatch(past.stdout, /after/);
  const last = runChild(fixture("hal_secret_overflow.ts"), {}, ["last"]);
  assert.equal(last.status, 0, last.stderr);
  assert.match(last.stdout, /after/);
});

test("stack: getMemoryStats('stack') counts what the stack holds, not a budget above it", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { stack: 2 ** 46 } });
  const held = stackSize(2 ** 46, memory.platform.totalBytes).bytes;
  assert.ok(held < 2 ** 46, "the stack is capped below the budget here");
  const a = memory.allocateTyped(4096, "stack");
  const stats = memory.getMemoryStats("stack");
  assert.equal(stats.totalBytes, held);
  assert.equal(stats.freeBytes, held - 4096);
  assert.ok(stats.largestFreeBlock <= held - 4096);
  memory.deallocate(a);
});
