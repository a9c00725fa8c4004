// LockedPageAllocator: its blocks are pages the kernel holds in RAM (VmLck
// grows by exactly them and shrinks when they go), the census counts them,
// and a refusal under RLIMIT_MEMLOCK is a clear AllocationError("platform")
// that leaves nothing mapped or locked.
import assert from "node:assert/strict";
import { test } from "node:test";
import { censusEntries } from "../../src/base/_native_census.ts";
import {
  addressOf,
  AllocationError,
  LockedPageAllocator,
  nativeInfo,
  SecretAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { fixture } from "../_helpers.ts";
import { HAS_PROC, lockedBytes, mappingAt, runUnderMemlockLimit } from "./_locked_memory.ts";

const PAGE = nativeInfo().pageSize;
const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;

test("LockedPageAllocator: VmLck grows by the locked pages and shrinks after free", { skip: !HAS_PROC }, () => {
  using allocator = new LockedPageAllocator();
  const before = lockedBytes();
  const big = allocator.alloc(64 << 10);
  assert.equal(lockedBytes() - before, 64 << 10);
  const small = allocator.alloc(100); // a whole page
  assert.equal(lockedBytes() - before, (64 << 10) + PAGE);
  assert.equal(allocator.stats().capacityBytes, (64 << 10) + PAGE);
  assert.equal(allocator.stats().overheadBytes, PAGE - 100);
  allocator.free(big);
  assert.equal(lockedBytes() - before, PAGE);
  allocator.free(small);
  assert.equal(lockedBytes(), before);
  assert.equal(allocator.stats().capacityBytes, 0);
});

test(
  "LockedPageAllocator: blocks are page-aligned, zero-filled, in their own locked mapping",
  { skip: !HAS_PROC },
  () => {
    using allocator = new LockedPageAllocator();
    const block = allocator.alloc(3 * PAGE + 1, 64);
    assert.equal(addressOf(block) % PAGE, 0);
    assert.equal(block.length, 3 * PAGE + 1);
    assert.equal(block.indexOf(1), -1);
    const { at } = mappingAt(addressOf(block));
    assert.ok(at.flags.includes("lo"), `VmFlags ${at.flags.join(" ")} include lo (locked)`);
    assert.equal(at.start, addressOf(block));
    assert.ok(at.end - at.start >= 4 * PAGE);
    allocator.free(block);
  },
);

test("LockedPageAllocator: the census counts each block while it is mapped", () => {
  using allocator = new LockedPageAllocator();
  const mine = () => censusEntries().filter((e) => e.owner.kind === "LockedPageAllocator");
  const before = mine().length;
  const a = allocator.alloc(10);
  const b = allocator.alloc(PAGE + 1);
  const entries = mine();
  assert.equal(entries.length, before + 2);
  assert.ok(entries.some((e) => e.address === addressOf(a) && e.size === PAGE));
  assert.ok(entries.some((e) => e.address === addressOf(b) && e.size === 2 * PAGE));
  allocator.free(a);
  allocator.free(b);
  assert.equal(mine().length, before);
});

test("LockedPageAllocator: resize keeps the page in place when the page count holds, moves otherwise", () => {
  using allocator = new LockedPageAllocator();
  let block = allocator.alloc(1000);
  block.fill(7);
  const address = addressOf(block);
  const old = block;
  block = allocator.resize(block, 3000);
  assert.equal(old.length, 0, "the old view is detached even in place");
  assert.equal(addressOf(block), address);
  assert.equal(block[999], 7);
  block = allocator.resize(block, 3 * PAGE);
  assert.notEqual(addressOf(block), address);
  assert.equal(block[999], 7);
  assert.equal(block[2999], 0);
  assert.equal(allocator.stats().capacityBytes, 3 * PAGE);
  allocator.free(block);
});

test("LockedPageAllocator({ zero }): growth in place zero-fills what it adds; without it the old bytes show", () => {
  for (const zero of [false, true]) {
    using allocator = new LockedPageAllocator({ zero });
    let block = allocator.alloc(2000);
    block.fill(9);
    block = allocator.resize(block, 10);
    block = allocator.resize(block, 2000);
    assert.equal(block[1999], zero ? 0 : 9, `zero: ${zero}`);
    assert.equal(block[5], 9);
    allocator.free(block);
  }
});

test("LockedPageAllocator: frees into the wrong allocator and twice are caught", () => {
  using locked = new LockedPageAllocator();
  using system = new SystemAllocator();
  using secrets = new SecretAllocator();
  const mine = locked.alloc(64);
  const theirs = system.alloc(64);
  const secret = secrets.alloc(64);
  assert.throws(() => locked.free(theirs), isCategory("mismatched-allocator"));
  assert.throws(() => system.free(mine), isCategory("mismatched-allocator"));
  assert.throws(
    () => locked.free(secret),
    (e: unknown) => isCategory("mismatched-allocator")(e) && /secret/.test(String(e)),
  );
  assert.throws(() => locked.free(new Uint8Array(8)), isCategory("invalid-free"));
  locked.free(mine);
  assert.throws(() => locked.free(mine), isCategory("double-free"));
  assert.ok(locked.owns(mine) === false && system.owns(theirs));
  system.free(theirs);
  secrets.free(secret);
});

test(
  "LockedPageAllocator and SecretAllocator under RLIMIT_MEMLOCK = 64 KiB: AllocationError('platform') naming the limit, nothing left",
  { skip: !HAS_PROC },
  (t) => {
    const child = runUnderMemlockLimit(fixture("memlock_refusal.ts"), 64);
    if ("skip" in child) return t.skip(child.skip);
    assert.equal(child.status, 0, JSON.stringify(child));
    const report = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
    for (const name of ["locked", "secret"] as const) {
      const r = report[name];
      assert.equal(r.category, "platform", `${name}: ${r.message}`);
      assert.match(r.message, /RLIMIT_MEMLOCK/);
      assert.match(r.message, /64 KiB/, "the message names the current limit");
      assert.match(r.message, /ulimit -l/, "and how to raise it");
      assert.match(r.message, /ENOMEM|EPERM|EAGAIN/);
      assert.ok(r.errno === 12 || r.errno === 1 || r.errno === 11, `errno ${r.errno}`);
      assert.equal(r.tryAlloc, null, "tryAlloc returns null for the same refusal");
      assert.equal(r.mmaps, 2, `${name}: one mapping per attempt`);
      assert.equal(r.munmaps, 2, `${name}: every mapping of a refused attempt is unmapped`);
      assert.equal(r.mlocks, 2);
      assert.equal(r.lockedAfterFailure, 0, `${name}: nothing stays locked`);
      assert.equal(r.smallLocked, PAGE, `${name}: a block within the limit still works`);
      assert.equal(r.stats.liveAllocations, 0);
      assert.equal(r.stats.capacityBytes, 0);
      assert.equal(r.stats.failedAllocations, 2);
      assert.equal(r.stats.totalAllocations, 1);
    }
  },
);
