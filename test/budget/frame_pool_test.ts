// FramePool: frame geometry (pages, 64-byte rows), triple-buffered sets and
// their reuse, limits per format and in bytes (with reclaim of other formats'
// idle frames), pressure shrinking the pools without taking frames in use
// (resident memory really falls), views detached on release.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../../src/base/errors.ts";
import { FramePool } from "../../src/budget/frame_pool.ts";
import { PressureLevel } from "../../src/pressure/pressure_level.ts";

const page = native.pageSize;
const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;

test("frames are page-aligned, rows and planes start on 64-byte boundaries, planes follow each other", () => {
  using pool = new FramePool();
  const set = pool.acquireFrameSet({ width: 1001, height: 7, bytesPerPixel: 3, planes: 3 })!;
  for (const frame of set.frames) {
    assert.equal(frame.rowBytes, 3008); // 3003 rounded up to 64
    assert.equal(frame.planeBytes, 3008 * 7);
    assert.equal(frame.byteLength, 3 * 3008 * 7);
    assert.equal(frame.bytes.length, frame.byteLength);
    assert.equal(frame.address % page, 0);
    for (let p = 0; p < 3; p++) {
      const plane = frame.plane(p);
      assert.equal(plane.length, frame.planeBytes);
      assert.equal((frame.address + plane.byteOffset - frame.bytes.byteOffset) % 64, 0);
      for (const y of [0, 1, 6]) {
        const row = frame.row(y, p);
        assert.equal(row.length, 3003);
        assert.equal(row.byteOffset - frame.bytes.byteOffset, p * frame.planeBytes + y * 3008);
      }
    }
  }
  assert.equal(new Set(set.frames.map((f) => f.address)).size, 3, "three distinct frames");
  assert.equal(pool.stats().formats[0].frameBytes, Math.ceil((3 * 3008 * 7) / page) * page);
  set.release();
});

test("a released set's pages are the next set's: no new mapping, old views detached, old handles throw", () => {
  using pool = new FramePool({ maxFrames: 3 });
  const format = { width: 64, height: 64, bytesPerPixel: 4 };
  const first = pool.acquireFrameSet(format)!;
  const addresses = first.frames.map((f) => f.address).sort();
  const view = first.current.bytes;
  view.fill(5);
  first.release();
  assert.equal(view.length, 0, "detached on release");
  assert.throws(
    () => first.current.bytes,
    (e) => isCategory("use-after-free")(e) && /frame #1 \(64x64x4x1\)/.test(String(e)),
  );
  assert.throws(() => first.next.plane(0), isCategory("use-after-free"));
  const mapped = pool.stats().mappedBytes;
  const second = pool.acquireFrameSet(format)!;
  assert.deepEqual(second.frames.map((f) => f.address).sort(), addresses);
  assert.equal(pool.stats().mappedBytes, mapped);
  assert.ok(second.frames.some((f) => f.bytes[0] === 5), "the same memory, not cleared");
  second.release();
});

test("maxFrames per format: a second set only when the pool may grow; null, not a throw, when it may not", () => {
  using pool = new FramePool({ maxFrames: 6 });
  const a = { width: 32, height: 32, bytesPerPixel: 4 };
  const b = { width: 16, height: 16, bytesPerPixel: 2 };
  const s1 = pool.acquireFrameSet(a)!;
  const s2 = pool.acquireFrameSet(a)!;
  assert.equal(pool.acquireFrameSet(a), null);
  const s3 = pool.acquireFrameSet(b); // another format has its own limit
  assert.ok(s3 !== null);
  s1.release();
  const s4 = pool.acquireFrameSet(a)!;
  assert.equal(pool.stats().formats.find((f) => f.format.width === 32)!.frames, 6);
  for (const s of [s2, s3!, s4]) s.release();
});

test("maxBytes: idle frames of other formats are unmapped to make room; null when only frames in use are left", () => {
  const frame = Math.ceil((256 * 64 * 4) / page) * page;
  using pool = new FramePool({ maxBytes: 3 * frame });
  const big = { width: 256, height: 64, bytesPerPixel: 4 };
  const other = { width: 64, height: 256, bytesPerPixel: 4 }; // the same bytes, another format
  pool.acquireFrameSet(big)!.release();
  assert.equal(pool.stats().mappedBytes, 3 * frame);
  const set = pool.acquireFrameSet(other)!; // reclaims big's three idle frames
  assert.ok(set !== null);
  const stats = pool.stats();
  assert.equal(stats.mappedBytes, 3 * frame);
  assert.equal(stats.formats.find((f) => f.format.width === 256)!.frames, 0);
  assert.equal(stats.unmappedFrames, 3);
  assert.equal(pool.acquireFrameSet(big), null, "the other format's frames are in use");
  set.current.bytes[0] = 1; // untouched by the failed request
  set.release();
});

test("adaptToPressure: idle frames above the level's limit are unmapped, frames in use never", () => {
  using pool = new FramePool({ maxFrames: 9 });
  const format = { width: 128, height: 128, bytesPerPixel: 4 };
  const frameBytes = 128 * 128 * 4;
  const sets = [0, 1, 2].map(() => pool.acquireFrameSet(format)!);
  sets[0].release();
  sets[1].release(); // 6 idle, 3 in use
  sets[2].current.bytes.fill(7);
  assert.equal(pool.adaptToPressure(PressureLevel.Medium), 4 * frameBytes, "limit 5: four idle frames go");
  assert.equal(pool.stats().formats[0].idle, 2);
  assert.equal(pool.adaptToPressure(PressureLevel.Critical), 2 * frameBytes, "limit 3: the rest of the idle go");
  const stats = pool.stats().formats[0];
  assert.deepEqual([stats.frames, stats.idle, stats.inUse, stats.maxFrames], [3, 0, 3, 3]);
  assert.ok(sets[2].current.bytes.every((b) => b === 7), "the set in use kept its memory");
  assert.equal(pool.acquireFrameSet(format), null);
  assert.equal(pool.adaptToPressure(PressureLevel.None), 0);
  const more = pool.acquireFrameSet(format);
  assert.ok(more !== null, "back to 9 frames without pressure");
  more.release();
  sets[2].release();
});

test("frames in use over the limit are unmapped when released, down to the limit", () => {
  using pool = new FramePool({ maxFrames: 6 });
  const format = { width: 64, height: 64, bytesPerPixel: 4 };
  const a = pool.acquireFrameSet(format)!;
  const b = pool.acquireFrameSet(format)!;
  assert.equal(pool.adaptToPressure(PressureLevel.Critical), 0, "nothing idle");
  assert.equal(pool.stats().formats[0].inUse, 6);
  a.release(); // 6 > 3: unmapped
  assert.deepEqual([pool.stats().formats[0].frames, pool.stats().unmappedFrames], [3, 3]);
  b.release(); // 3: kept idle
  assert.deepEqual([pool.stats().formats[0].frames, pool.stats().formats[0].idle], [3, 3]);
});

test("Critical pressure unmaps real memory: resident set falls by about the idle frames' bytes", () => {
  using pool = new FramePool({ maxFrames: 12 });
  const format = { width: 1024, height: 1024, bytesPerPixel: 4 }; // 4 MiB frames
  const sets = [0, 1, 2, 3].map(() => pool.acquireFrameSet(format)!);
  for (const s of sets) for (const f of s.frames) f.bytes.fill(1); // touch: resident
  for (const s of sets.slice(1)) s.release(); // 9 idle frames, 36 MiB
  const before = process.memoryUsage().rss;
  const unmapped = pool.adaptToPressure(PressureLevel.Critical);
  const after = process.memoryUsage().rss;
  assert.equal(unmapped, 9 * 4 * 1024 * 1024);
  assert.ok(before - after > unmapped / 2, `RSS ${before} -> ${after} after unmapping ${unmapped} bytes`);
  sets[0].release();
});

test("release: a frame at a time, then the set's remaining frames; twice is a double free; foreign frames refused", () => {
  using pool = new FramePool();
  using other = new FramePool();
  const set = pool.acquireFrameSet({ width: 8, height: 8, bytesPerPixel: 1 })!;
  pool.release(set.previous);
  assert.throws(() => pool.release(set.previous), isCategory("double-free"));
  const foreign = other.acquireFrameSet({ width: 8, height: 8, bytesPerPixel: 1 })!;
  assert.throws(() => pool.release(foreign), isCategory("mismatched-allocator"));
  assert.equal(foreign.current.bytes.length, 8 * 64, "untouched (8 rows of 64 bytes)");
  pool.release(set); // current and next
  assert.equal(pool.stats().formats[0].idle, 3);
  assert.throws(() => pool.release(set), isCategory("double-free"));
  set.release(); // FrameSet.release: nothing left, nothing thrown
  foreign.release();
});

test("dispose unmaps frames in use too: their views read as length 0 and handles throw", () => {
  const pool = new FramePool();
  const set = pool.acquireFrameSet({ width: 8, height: 8, bytesPerPixel: 4 })!;
  const view = set.current.bytes;
  pool.dispose();
  assert.equal(view.length, 0);
  assert.throws(() => set.current.bytes, isCategory("use-after-free"));
  set.release(); // nothing held any more
  assert.throws(() => pool.acquireFrameSet({ width: 8, height: 8, bytesPerPixel: 4 }), isCategory("use-after-free"));
  pool.dispose();
});

test("a frame of a disposed pool says the pool was disposed, not that it was released", () => {
  const pool = new FramePool();
  const set = pool.acquireFrameSet({ width: 64, height: 64, bytesPerPixel: 4 })!;
  const frame = set.next;
  pool.dispose();
  for (const use of [() => frame.bytes, () => frame.address, () => frame.row(0), () => frame.plane(0)]) {
    assert.throws(use, (e) => {
      assert.ok(e instanceof AllocationError && e.category === "use-after-free");
      assert.match(e.message, /its FramePool was disposed, which unmapped its memory \(FramePool\.dispose\(\)\)/);
      assert.doesNotMatch(e.message, /released to its FramePool/);
      return true;
    });
  }
  // A frame released to its pool before the dispose still says so.
  const other = new FramePool();
  const released = other.acquireFrameSet({ width: 8, height: 8, bytesPerPixel: 4 })!;
  const first = released.current;
  other.release(first);
  other.dispose();
  assert.throws(() => first.bytes, /it was released to its FramePool/);
});
