// Freed large blocks keep their pages for the next large allocation: counted
// in page faults (the minor faults the kernel reports for this process), never
// in time. Also the bound, trim(), and the give-back under memory pressure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { addressOf, Arena, DynamicArray, PressureLevel, PressureMonitor, struct, SystemAllocator } from "../../mod.ts";
import { readMemoryStatus } from "../../mod.ts";

const PAGE = 4096;

/** Minor page faults of this process so far (/proc/self/stat, field 10). */
function minorFaults(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

/** Page faults taken while `touch` runs. */
function faultsOf(touch: () => void): number {
  const before = minorFaults();
  touch();
  return minorFaults() - before;
}

/**
 * The fewest faults of `tries` runs of `touch`: the count is the whole
 * process's, so a collector thread giving pages back and taking them again in
 * the same moment can add a few hundred to one run; memory that is not reused
 * faults on every page in every run.
 */
function fewestFaultsOf(touch: () => void, tries = 3): number {
  let fewest = Infinity;
  for (let i = 0; i < tries; i++) fewest = Math.min(fewest, faultsOf(touch));
  return fewest;
}

const linux = readFileSyncSafe("/proc/self/stat") !== null;
function readFileSyncSafe(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

test("a freed 8 MiB block's pages serve the next 8 MiB block: no fresh page faults", { skip: !linux }, () => {
  // Its own mmap, so the cold block is fresh pages whatever ran before in this process (a malloc block of this
  // size may come from heap memory glibc already touched, once an earlier free raised its mmap threshold).
  using allocator = new SystemAllocator({ mmapThreshold: 1 << 20 });
  const size = 8 << 20, pages = size / PAGE;
  const cold = faultsOf(() => allocator.free(allocator.alloc(size).fill(1)));
  assert.ok(cold >= pages / 2, `a cold 8 MiB block takes a fault per page (${cold} for ${pages} pages)`);
  assert.equal(allocator.retainedBytes, size);
  const warm = fewestFaultsOf(() => allocator.free(allocator.alloc(size).fill(2)));
  assert.ok(warm < pages / 16, `a reused block takes almost none (${warm} for ${pages} pages)`);
});

test(
  "a DynamicArray grown again after free, and an arena regrown after reset, take no fresh pages",
  { skip: !linux },
  () => {
    // Records appended as bytes, so the JavaScript heap (whose own pages fault too) stays out of the count.
    const Vertex = struct({ position: "f32x3", color: "f32x4" });
    const chunk = new Uint8Array(1000 * Vertex.size).fill(1);
    const build = () => {
      const array = new DynamicArray(Vertex);
      for (let i = 0; i < 300; i++) array.pushMany(chunk);
      array.free();
    };
    const pages = (300_000 * Vertex.size) / PAGE;
    build(); // the first build takes fresh pages; its blocks are kept when freed
    build();
    const warm = fewestFaultsOf(build);
    assert.ok(warm < pages / 4, `a rebuild takes few fresh pages (${warm} for ${pages} pages of records)`);

    using arena = new Arena({ capacity: 1 << 20, growth: "exponential" });
    const fill = () => {
      for (let i = 0; i < 64; i++) arena.alloc(256 << 10).fill(i);
    };
    fill();
    arena.reset("free-all");
    const regrow = fewestFaultsOf(() => {
      fill();
      arena.reset("free-all");
    });
    assert.ok(
      regrow < (16 << 20) / PAGE / 4,
      `an arena regrown after reset("free-all") reuses its chunks' pages (${regrow})`,
    );
  },
);

test("retained extents stay within retainBytes; 0 turns them off; trim() and dispose() give them back", () => {
  using small = new SystemAllocator({ retainBytes: 1 << 20 });
  const first = small.alloc(512 << 10), second = small.alloc(768 << 10);
  small.free(first);
  small.free(second); // both would pass the bound: the older one goes back to libc
  assert.equal(small.retainedBytes, 768 << 10);
  small.free(small.alloc(2 << 20)); // larger than the whole bound: freed to libc
  assert.equal(small.retainedBytes, 768 << 10);
  small.free(small.alloc(64 << 10)); // below 128 KiB: left to libc's own free lists
  assert.equal(small.retainedBytes, 768 << 10);
  assert.equal(small.trim(), 768 << 10);
  assert.equal(small.retainedBytes, 0);

  using off = new SystemAllocator({ retainBytes: 0 });
  off.free(off.alloc(1 << 20));
  assert.equal(off.retainedBytes, 0);

  const disposed = new SystemAllocator();
  disposed.free(disposed.alloc(1 << 20));
  assert.equal(disposed.retainedBytes, 1 << 20);
  disposed.dispose();
  assert.equal(disposed.retainedBytes, 0);
  assert.throws(() => new SystemAllocator({ retainBytes: -1 }), RangeError);
  assert.throws(() => new SystemAllocator({ retainBytes: "1" as never }), TypeError);
});

test("a reused block keeps the promises of a fresh one: mmap blocks and zero: true read as zeros", () => {
  using mapped = new SystemAllocator({ mmapThreshold: 1 << 20 });
  mapped.free(mapped.alloc(2 << 20).fill(7));
  const again = mapped.alloc(2 << 20);
  assert.equal(mapped.retainedBytes, 0, "the kept extent was reused");
  assert.ok(again.every((b) => b === 0));
  using zeroed = new SystemAllocator({ zero: true });
  zeroed.free(zeroed.alloc(1 << 20).fill(9));
  assert.ok(zeroed.alloc(1 << 20).every((b) => b === 0));
  // Growth in place into a reused extent's spare bytes reads zeros too, and keeps the old contents.
  let block = zeroed.alloc(600 << 10).fill(3);
  zeroed.free(block);
  block = zeroed.alloc(400 << 10);
  block.fill(5);
  block = zeroed.resize(block, 600 << 10);
  assert.equal(block[0], 5);
  assert.equal(block[(400 << 10) - 1], 5);
  assert.ok(block.subarray(400 << 10).every((b) => b === 0));
});

test("a block at or above mmapThreshold reuses only a mapped extent: page-aligned and zero-filled, as promised", () => {
  using allocator = new SystemAllocator();
  let grown = allocator.alloc(20 << 20);
  grown = allocator.resize(grown, 40 << 20); // grown by realloc: a malloc block past the threshold, 16-byte aligned
  allocator.free(grown.fill(0xcc));
  const big = allocator.alloc(33 << 20);
  assert.equal(addressOf(big) % 4096, 0);
  assert.ok(big.every((b) => b === 0));
});

test("a PressureMonitor reaching High gives every SystemAllocator's retained extents back", () => {
  using allocator = new SystemAllocator();
  allocator.free(allocator.alloc(1 << 20));
  assert.equal(allocator.retainedBytes, 1 << 20);
  const real = readMemoryStatus();
  let available = real.totalBytes;
  using monitor = new PressureMonitor({
    read: () => ({ ...real, availableBytes: available, psi: null, events: null }),
  });
  monitor.refresh();
  assert.equal(allocator.retainedBytes, 1 << 20, "no pressure, nothing given back");
  available = Math.round(real.totalBytes * 0.07); // High
  monitor.refresh();
  assert.equal(monitor.level, PressureLevel.High);
  assert.equal(allocator.retainedBytes, 0);
});
