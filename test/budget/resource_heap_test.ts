// ResourceHeap: placement in one block (alignment, no overlap, null when full,
// maxAvailableSize exact enough to allocate), aliasing (the later resource
// takes the first's memory, the first can no longer reach it), stats, and
// compact() giving free pages back (resident memory falls). A seeded model run
// checks the allocator-conformance invariants.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../../src/base/errors.ts";
import { type HeapResource, ResourceHeap } from "../../src/budget/resource_heap.ts";
import { below, xorshift32 } from "../_helpers.ts";

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;

test("resources are placed inside the block, aligned, without overlap; null when none fits", () => {
  using heap = new ResourceHeap({ capacity: 1 << 20 });
  const placed: HeapResource[] = [];
  for (const [size, alignment] of [[1000, 16], [5000, 256], [64, 4096], [300, 64]]) {
    const r = heap.allocate(size, { alignment })!;
    assert.equal(r.bytes.length, size);
    assert.equal((heap.baseAddress + r.offset) % alignment, 0);
    assert.ok(r.offset >= 0 && r.offset + size <= heap.capacity);
    placed.push(r);
  }
  const spans = placed.map((r) => [r.offset, r.offset + r.size]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i - 1][1] <= spans[i][0], "no overlap");
  assert.equal(heap.allocate(1 << 20), null);
  assert.equal(heap.stats().resources, 4);
  for (const r of placed) r.release();
  assert.equal(heap.stats().usedBytes, 0);
  assert.ok(heap.allocate(1 << 20) !== null, "everything back: the whole block fits again");
});

test("maxAvailableSize(alignment) is a size allocate() places, in a fragmented heap", () => {
  const next = xorshift32(16);
  using heap = new ResourceHeap({ capacity: 1 << 20 });
  const live: HeapResource[] = [];
  for (let i = 0; i < 200; i++) {
    const r = heap.allocate(16 + below(next, 8000), { alignment: 1 << below(next, 9) });
    if (r) live.push(r);
    if (live.length > 0 && below(next, 3) === 0) live.splice(below(next, live.length), 1)[0].release();
  }
  for (const alignment of [16, 64, 256, 4096]) {
    const max = heap.maxAvailableSize(alignment);
    assert.ok(max > 0);
    const r = heap.allocate(max, { alignment });
    assert.ok(r !== null, `maxAvailableSize(${alignment}) = ${max} is placed`);
    r.release();
  }
});

test("alias: the later resource takes the first's memory, keeps its bytes, and its own block goes back", () => {
  using heap = new ResourceHeap({ capacity: 1 << 20 });
  const blur = heap.allocate(64 << 10, { alignment: 256, aliasable: true, name: "blur" })!;
  const bloom = heap.allocate(48 << 10, { alignment: 256, name: "bloom" })!;
  blur.bytes.fill(1);
  bloom.bytes.fill(2);
  const blurOffset = blur.offset;
  const oldBlur = blur.bytes;
  const oldBloom = bloom.bytes;
  const usedBefore = heap.stats().usedBytes;
  heap.alias(blur, bloom);
  assert.equal(oldBlur.length, 0, "the first resource's view is detached");
  assert.equal(oldBloom.length, 0, "the later one's old view too: its memory went back to the heap");
  assert.equal(bloom.offset, blurOffset);
  assert.ok(bloom.bytes.every((b) => b === 2), "bloom's bytes moved with it");
  assert.equal(bloom.aliasOf, "blur");
  assert.equal(blur.state, "aliased");
  assert.throws(() => blur.bytes, (e) => isCategory("use-after-free")(e) && /blur.*bloom/.test(String(e)));
  assert.throws(() => blur.offset, isCategory("use-after-free"));
  assert.throws(
    () => heap.free(blur),
    (e) => isCategory("use-after-free")(e) && /^Cannot free blur/.test(String((e as Error).message)),
  );
  const stats = heap.stats();
  assert.equal(stats.aliasedBytesSaved, 0, "bloom took a block of its own first: nothing was saved at peak");
  assert.equal(stats.aliasedResources, 1);
  assert.equal(stats.resources, 1);
  assert.equal(stats.usedBytes, usedBefore - (48 << 10));
  // The freed block is reusable: a third resource lands where bloom was.
  const third = heap.allocate(48 << 10, { alignment: 256 })!;
  assert.notEqual(third.offset, bloom.offset);
  assert.ok(third.offset + third.size <= bloom.offset || bloom.offset + bloom.size <= third.offset, "no overlap");
  third.release();
  bloom.release();
  assert.equal(heap.stats().usedBytes, 0, "releasing the later resource gives the shared block back");
  assert.ok(heap.allocate(1 << 20) !== null);
});

test("alias chains: an aliasable later resource passes the memory on", () => {
  using heap = new ResourceHeap({ capacity: 1 << 20 });
  const a = heap.allocate(8192, { aliasable: true, name: "a" })!;
  const b = heap.allocate(4096, { aliasable: true, name: "b" })!;
  const c = heap.allocate(2048, { name: "c" })!;
  heap.alias(a, b);
  heap.alias(b, c);
  assert.equal(c.aliasOf, "a", "c lives in a's memory");
  assert.throws(() => b.bytes, isCategory("use-after-free"));
  assert.deepEqual([heap.stats().resources, heap.stats().usedBytes], [1, 8192]);
  c.release();
});

test("alias refusals change nothing", () => {
  using heap = new ResourceHeap({ capacity: 1 << 20 });
  const small = heap.allocate(1024, { aliasable: true, name: "small" })!;
  const big = heap.allocate(4096, { name: "big" })!;
  const fixed = heap.allocate(4096, { name: "fixed" })!;
  small.bytes.fill(3);
  assert.throws(() => heap.alias(small, big), RangeError);
  assert.throws(() => heap.alias(fixed, small), isCategory("unsupported"));
  assert.throws(() => heap.alias(small, small), RangeError);
  const aligned = heap.allocate(512, { alignment: 4096, name: "aligned" })!;
  if ((heap.baseAddress + small.offset) % 4096 !== 0) assert.throws(() => heap.alias(small, aligned), RangeError);
  assert.ok(small.bytes.every((b) => b === 3));
  assert.equal(heap.stats().resources, 4);
  for (const r of [small, big, fixed, aligned]) r.release();
});

test("compact() gives free pages back: resident memory falls, live resources keep their bytes", () => {
  using heap = new ResourceHeap({ capacity: 64 << 20 });
  const keep = heap.allocate(1 << 20, { name: "keep" })!;
  keep.bytes.fill(5);
  const scratch = heap.allocate(48 << 20, { name: "scratch" })!;
  scratch.bytes.fill(1); // resident now
  scratch.release();
  const before = process.memoryUsage().rss;
  const { releasedBytes } = heap.compact();
  const after = process.memoryUsage().rss;
  assert.ok(releasedBytes >= 48 << 20, `released ${releasedBytes}`);
  assert.ok(before - after > (48 << 20) / 2, `RSS ${before} -> ${after}`);
  assert.ok(keep.bytes.every((b) => b === 5));
  keep.release();
});

test("a seeded model: no overlap, alignment, stats consistent, everything returned at the end", () => {
  const next = xorshift32(2024);
  using heap = new ResourceHeap({ capacity: 4 << 20 });
  const live: HeapResource[] = [];
  let aliases = 0;
  for (let step = 0; step < 3000; step++) {
    const op = below(next, 10);
    if (op < 5 || live.length === 0) {
      const alignment = 1 << (4 + below(next, 9));
      const r = heap.allocate(1 + below(next, 20000), { alignment, aliasable: below(next, 2) === 0 });
      if (r) {
        assert.equal((heap.baseAddress + r.offset) % alignment, 0);
        r.bytes.fill(step & 0xff);
        live.push(r);
      }
    } else if (op < 8) {
      live.splice(below(next, live.length), 1)[0].release();
    } else {
      const a = live[below(next, live.length)];
      const b = live[below(next, live.length)];
      if (a !== b && a.aliasable && b.size <= a.size && (heap.baseAddress + a.offset) % b.alignment === 0) {
        const bytes = b.bytes.slice();
        heap.alias(a, b);
        aliases++;
        live.splice(live.indexOf(a), 1);
        assert.deepEqual(b.bytes, bytes);
      }
    }
    if (step % 100 === 0) {
      const spans = live.map((r) => [r.offset, r.offset + r.size]).sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i - 1][1] <= spans[i][0], `overlap at step ${step}`);
      assert.equal(heap.stats().resources, live.length);
    }
  }
  assert.ok(aliases > 10, `${aliases} aliases in the run`);
  for (const r of live) r.release();
  assert.deepEqual([heap.stats().usedBytes, heap.stats().resources], [0, 0]);
  assert.equal(heap.maxAvailableSize(16), heap.capacity);
});

test("dispose detaches every view; resources and the heap then throw use-after-free", () => {
  const heap = new ResourceHeap({ capacity: native.pageSize * 4 });
  const r = heap.allocate(100)!;
  const view = r.bytes;
  heap.dispose();
  assert.equal(view.length, 0);
  assert.throws(() => r.bytes, isCategory("use-after-free"));
  assert.throws(() => heap.allocate(8), isCategory("use-after-free"));
  heap.dispose();
});

test("allocate({ into }): a later pass takes a finished aliasable resource's memory, so the peak is one pass", () => {
  // A heap with room for the larger pass plus a little, not for both passes.
  using heap = new ResourceHeap({ capacity: 320 << 10 });
  const blur = heap.allocate(256 << 10, { alignment: 256, aliasable: true, name: "blur" })!;
  blur.bytes.fill(1);
  const blurView = blur.bytes;
  const blurOffset = blur.offset;
  const free = heap.stats().largestFreeBlock;
  assert.equal(heap.allocate(200 << 10, { alignment: 256 }), null, "both passes do not fit side by side");
  const bloom = heap.allocate(200 << 10, { alignment: 256, name: "bloom", into: blur });
  assert.ok(bloom !== null, "the later pass is served in the finished one's memory");
  assert.equal(bloom.offset, blurOffset);
  assert.equal(bloom.bytes.length, 200 << 10);
  bloom.bytes.fill(2);
  assert.equal(bloom.aliasOf, "blur");
  assert.equal(blurView.length, 0, "the first resource's view is detached");
  assert.equal(blur.state, "aliased");
  assert.throws(() => blur.bytes, (e) => isCategory("use-after-free")(e) && /blur.*bloom/.test(String(e)));
  assert.throws(() => blur.offset, isCategory("use-after-free"));
  const stats = heap.stats();
  assert.equal(stats.largestFreeBlock, free, "no second block was ever taken");
  assert.equal(stats.usedBytes, 256 << 10, "the peak stayed at the larger pass");
  assert.deepEqual([stats.resources, stats.aliasedResources, stats.aliasedBytesSaved], [1, 1, 200 << 10]);
  bloom.release();
  assert.deepEqual([heap.stats().usedBytes, heap.stats().aliasedBytesSaved], [0, 0]);
  assert.equal(heap.maxAvailableSize(16), heap.capacity);
});

test("allocate({ into }) in a heap only as large as the larger pass, and chains of passes", () => {
  // One page over the pass: an aligned request leaves the allocator a little slack to find an aligned start.
  using heap = new ResourceHeap({ capacity: (256 << 10) + native.pageSize });
  const a = heap.allocate(256 << 10, { alignment: 256, aliasable: true, name: "a" })!;
  const b = heap.allocate(100 << 10, { aliasable: true, name: "b", into: a })!;
  const c = heap.allocate(64 << 10, { alignment: 4096, name: "c", into: b })!;
  assert.equal(c.aliasOf, "a", "c lives in a's memory");
  assert.throws(() => b.bytes, (e) => isCategory("use-after-free")(e) && /\bb\b.*\bc\b/.test(String(e)));
  assert.deepEqual(
    [heap.stats().resources, heap.stats().usedBytes, heap.stats().aliasedBytesSaved],
    [1, 256 << 10, 64 << 10],
  );
  c.release();
  assert.equal(heap.stats().usedBytes, 0);
});

test("alias() of two resources that both exist saves nothing at peak: aliasedBytesSaved counts only bytes never taken", () => {
  using heap = new ResourceHeap({ capacity: 1 << 20 });
  const first = heap.allocate(8192, { aliasable: true, name: "first" })!;
  const later = heap.allocate(4096, { name: "later" })!;
  heap.alias(first, later); // later took a block of its own before: the peak held both
  assert.deepEqual([heap.stats().aliasedResources, heap.stats().aliasedBytesSaved], [1, 0]);
  // Later passes placed through `into` are counted, the moved one still not.
  const chained = heap.allocate(8192, { aliasable: true, name: "chained" })!;
  const placed = heap.allocate(2048, { name: "placed", into: chained })!;
  assert.deepEqual([heap.stats().aliasedResources, heap.stats().aliasedBytesSaved], [2, 2048]);
  placed.release();
  later.release();
});

test("allocate({ into }) refusals: each bad `into` gets its documented error and changes nothing", () => {
  using heap = new ResourceHeap({ capacity: 1 << 20 });
  using other = new ResourceHeap({ capacity: 1 << 16 });
  const spacer = heap.allocate(48, { name: "spacer" })!; // so `target` is not at offset 0
  const target = heap.allocate(4096, { alignment: 16, aliasable: true, name: "target" })!;
  const fixed = heap.allocate(4096, { name: "fixed" })!;
  const released = heap.allocate(4096, { aliasable: true, name: "released" })!;
  released.release();
  const given = heap.allocate(4096, { aliasable: true, name: "given" })!;
  const taker = heap.allocate(1024, { name: "taker", into: given })!;
  const foreign = other.allocate(4096, { aliasable: true, name: "foreign" })!;
  target.bytes.fill(9);
  const misaligned = (target.offset & -target.offset) * 2; // the lowest alignment target's address misses
  assert.ok(target.offset !== 0 && misaligned <= native.pageSize, `target at ${target.offset}`);
  const proxy = new Proxy(target, {});
  const before = JSON.stringify([heap.stats(), other.stats(), heap.maxAvailableSize(16)]);
  const cases: [string, () => unknown, (e: unknown) => boolean, RegExp][] = [
    ["not a resource", () => heap.allocate(64, { into: {} as never }), (e) => e instanceof TypeError, /'into'/],
    ["null", () => heap.allocate(64, { into: null as never }), (e) => e instanceof TypeError, /'into'/],
    ["a view", () => heap.allocate(64, { into: new Uint8Array(64) as never }), (e) => e instanceof TypeError, /'into'/],
    ["a Proxy of a resource", () => heap.allocate(64, { into: proxy }), (e) => e instanceof TypeError, /'into'/],
    [
      "another heap's",
      () => heap.allocate(64, { into: foreign }),
      isCategory("mismatched-allocator"),
      /foreign.*another ResourceHeap/,
    ],
    ["not aliasable", () => heap.allocate(64, { into: fixed }), isCategory("unsupported"), /fixed.*aliasable: true/],
    ["released", () => heap.allocate(64, { into: released }), isCategory("use-after-free"), /released.*released/],
    [
      "too small",
      () => heap.allocate(4097, { name: "big", into: target }),
      (e) => e instanceof RangeError,
      /big needs 4097 bytes.*target.*4096/,
    ],
    [
      "misaligned",
      () => heap.allocate(64, { alignment: misaligned, name: "strict", into: target }),
      (e) => e instanceof RangeError,
      new RegExp(`strict needs an alignment of ${misaligned}.*target`),
    ],
    [
      "reached twice (its memory already went to another)",
      () => heap.allocate(64, { into: given }),
      isCategory("use-after-free"),
      /given.*taker/,
    ],
  ];
  for (const [label, act, kind, message] of cases) {
    assert.throws(act, (e) => kind(e) && message.test((e as Error).message), label);
    assert.equal(
      JSON.stringify([heap.stats(), other.stats(), heap.maxAvailableSize(16)]),
      before,
      `${label}: nothing changed`,
    );
    assert.ok(target.bytes.length === 4096 && target.bytes.every((b) => b === 9), `${label}: target intact`);
    assert.equal(target.state, "live");
  }
  // A refused `into` named nothing: the next default name is still the next number.
  const later = heap.allocate(64, { into: target })!;
  assert.equal(later.name, "resource #1");
  assert.throws(() => heap.allocate(64, { into: target }), isCategory("use-after-free"), "target reached twice");
  for (const r of [later, spacer, fixed, taker, foreign]) r.release();
  heap.dispose();
  assert.throws(() => heap.allocate(64, { into: later }), isCategory("use-after-free"), "after dispose()");
});
