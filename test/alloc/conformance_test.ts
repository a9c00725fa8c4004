// The allocator conformance suite: the same properties on every allocator,
// every debug allocator over each of them, and every parent × child chain.
// Tests known to fail today are skipped (see KNOWN_FAILING in _conformance.ts);
// MEMKIT_ALL=1 runs them, MEMKIT_LONG=1 makes the randomized runs long.
import assert from "node:assert/strict";
import {
  addressOf,
  AllocationError,
  type Allocator,
  Arena,
  BuddyAllocator,
  cFree,
  DebugAllocator,
  deinit,
  DynamicArray,
  FailingAllocator,
  FreeListAllocator,
  initAllocator,
  leakCheck,
  malloc,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
  type TypedArray,
  type TypedArrayConstructor,
} from "../../mod.ts";
import {
  CHAIN_OPS,
  CHILDREN,
  conformanceTest,
  describeError,
  disposeQuietly,
  OPS,
  PAGE,
  PARENTS,
  randomRun,
  seedFor,
  stableStats,
  type Subject,
  SUBJECTS,
  throwsAllocation,
  throwsRange,
} from "./_conformance.ts";

const pattern = (i: number) => (i * 31 + 7) & 255;

function fillPattern(v: Uint8Array, from = 0): void {
  for (let i = from; i < v.length; i++) v[i] = pattern(i);
}

function checkPattern(v: Uint8Array, n: number, what: string): void {
  for (let i = 0; i < n; i++) {
    if (v[i] !== pattern(i)) assert.fail(`${what}: byte ${i} is ${v[i]}, expected ${pattern(i)}`);
  }
}

function alignsUpTo(max: number): number[] {
  const out: number[] = [];
  for (let a = 1; a <= Math.min(max, PAGE); a *= 2) out.push(a);
  return out;
}

/** Builds the subject, runs `fn`, then disposes it and its backings. */
async function withSubject(subject: Subject, fn: (a: Allocator) => void | Promise<void>): Promise<void> {
  const { allocator, backings } = subject.make();
  try {
    await fn(allocator);
  } finally {
    disposeQuietly(allocator, ...backings);
  }
}

/** Frees views newest first (fine for stacks; arenas roll back what they can). */
function freeAll(a: Allocator, views: ArrayBufferView[]): void {
  for (let i = views.length - 1; i >= 0; i--) a.free(views[i]);
  views.length = 0;
}

// ------------------------------------------------------------------ per-subject properties

for (const subject of SUBJECTS) {
  const name = (property: string) => `conformance: ${subject.name}: ${property}`;
  const caps = subject.caps;

  // 1. Every power of two up to the page size, for alloc and for array().
  conformanceTest(name("alignment of every power of two up to the page size"), () =>
    withSubject(subject, (a) => {
      for (const align of alignsUpTo(caps.maxAlign)) {
        const held: ArrayBufferView[] = [];
        for (const size of [1, 3, align, align + 1, 2 * align + 3]) {
          if (size > caps.maxSize) continue;
          const v = a.alloc(size, align);
          assert.equal(v.length, size, `alloc(${size}, ${align}).length`);
          assert.equal(addressOf(v) % align, 0, `alloc(${size}, ${align}) at ${addressOf(v)}`);
          v.fill(0xa5);
          held.push(v);
          const t = a.tryAlloc(size, align);
          assert.ok(t !== null, `tryAlloc(${size}, ${align}) returned null`);
          assert.equal(addressOf(t) % align, 0, `tryAlloc(${size}, ${align}) at ${addressOf(t)}`);
          held.push(t);
          const u8 = a.array(Uint8Array, size, align);
          assert.equal(u8.length, size);
          assert.equal(addressOf(u8) % align, 0, `array(Uint8Array, ${size}, ${align}) at ${addressOf(u8)}`);
          held.push(u8);
          if (align >= 8 && 3 * 8 <= caps.maxSize) {
            const f64 = a.array(Float64Array, 3, align);
            assert.equal(f64.length, 3);
            assert.equal(addressOf(f64) % align, 0, `array(Float64Array, 3, ${align}) at ${addressOf(f64)}`);
            held.push(f64);
          }
          // An odd-sized block in between, so the next one does not start where it would anyway.
          held.push(a.alloc(3, 1));
        }
        freeAll(a, held);
      }
    }));

  // 2. Contents kept by resize, growing and shrinking.
  conformanceTest(name("resize keeps the contents (grow and shrink)"), () =>
    withSubject(subject, (a) => {
      const sizes = [1, 100, 4097, 20_000, 300, 17, 5000, 16, 65_536, 33].filter((s) => s <= caps.maxSize);
      let v = a.alloc(sizes[0]);
      fillPattern(v);
      let size = sizes[0];
      for (let i = 1; i < sizes.length; i++) {
        const next = sizes[i];
        // Every other step, another block after this one, so growing in place is not free.
        const blocker = !caps.lifo && i % 2 === 1 ? a.alloc(24) : null;
        const what = `resize(${size} → ${next})${blocker ? " with a block allocated after it" : ""}`;
        const r = a.resize(v, next);
        assert.equal(r.length, next, `${what}: length`);
        assert.equal(addressOf(r) % 16, 0, `${what}: the default alignment of 16 is kept (address ${addressOf(r)})`);
        checkPattern(r, Math.min(size, next), what);
        fillPattern(r);
        v = r;
        size = next;
        if (blocker) a.free(blocker);
      }
      a.free(v);
    }));

  // 2b. The block's alignment is kept by resize (issue item 4).
  conformanceTest(name("resize keeps the block's alignment"), () =>
    withSubject(subject, (a) => {
      const big = Math.min(20_000, caps.maxSize);
      for (const align of [64, 256, 4096].filter((x) => x <= Math.min(caps.maxAlign, PAGE))) {
        const first = a.alloc(100, align);
        fillPattern(first);
        const other = caps.lifo ? null : a.alloc(10);
        const grown = a.resize(first, big);
        assert.equal(
          addressOf(grown) % align,
          0,
          `alloc(100, ${align}), another alloc, resize(first, ${big}): address ${addressOf(grown)} is ` +
            `${addressOf(grown) % align} mod ${align}`,
        );
        checkPattern(grown, 100, `resize(first, ${big})`);
        const shrunk = a.resize(grown, 50);
        assert.equal(addressOf(shrunk) % align, 0, `resize(…, 50) keeps ${align}`);
        checkPattern(shrunk, 50, "resize(…, 50)");
        if (caps.lifo) {
          a.free(shrunk);
        } else {
          a.free(other!);
          a.free(shrunk);
        }
      }
      // Uniform-buffer-like: 256-byte slots aligned to 256, one of them grown.
      if (caps.maxAlign >= 256) {
        const slots = caps.lifo ? [a.alloc(256, 256)] : [0, 1, 2, 3].map(() => a.alloc(256, 256));
        let u = slots[0];
        fillPattern(u);
        for (const s of [512, 1024, 3000, 256].filter((x) => x <= caps.maxSize)) {
          u = a.resize(u, s);
          assert.equal(
            addressOf(u) % 256,
            0,
            `alloc(256, 256) resized to ${s}: address ${addressOf(u)} is ${addressOf(u) % 256} mod 256`,
          );
          checkPattern(u, 256, `alloc(256, 256) resized to ${s}`);
        }
        slots[0] = u;
        freeAll(a, slots);
      }
    }));

  // 3. Zero-size blocks (issue item 12).
  conformanceTest(name("zero-size blocks are empty views that count nothing"), async () => {
    await withSubject(subject, (a) => {
      const before = a.stats();
      const counts = (what: string) => {
        const s = a.stats();
        assert.equal(s.liveAllocations, before.liveAllocations, `${what}: liveAllocations`);
        assert.equal(s.allocatedBytes, before.allocatedBytes, `${what}: allocatedBytes`);
      };
      const z = a.alloc(0);
      assert.equal(z.length, 0);
      assert.equal(z.byteLength, 0);
      counts("after alloc(0)");
      const t = a.tryAlloc(0);
      assert.ok(t !== null && t.length === 0, "tryAlloc(0) is an empty view");
      const e = a.array(Float64Array, 0);
      assert.equal(e.length, 0);
      counts("after tryAlloc(0) and array(Float64Array, 0)");
      a.free(z);
      a.free(t);
      a.free(e);
      counts("after freeing them");
      const v = a.alloc(8);
      const r = a.resize(v, 0);
      assert.equal(r.length, 0, "resize(v, 0) returns an empty view");
      assert.equal(r.byteLength, 0);
      counts("after resize(alloc(8), 0)");
      a.free(r);
      counts("after freeing the view resize(v, 0) returned");
      // Size 0 is not a block, alike in every allocator: an empty view holds nothing to release twice, or to
      // own, whoever made it, and resizing one allocates anew.
      a.free(r);
      a.free(new Uint8Array(0));
      a.free(new DataView(new ArrayBuffer(0)));
      assert.equal(a.owns(z), false, "owns(alloc(0))");
      counts("after freeing empty views again and foreign ones");
      for (const empty of [z, new Uint8Array(0)]) {
        const grown = a.resize(empty, 24);
        assert.equal(grown.length, 24, "resize(empty view, 24)");
        assert.ok(a.owns(grown));
        a.free(grown);
      }
      counts("after resizing empty views to 24 and freeing those");
    });
  });

  // 3b. The same through leakCheck's debug allocator over this one.
  conformanceTest(
    name("leakCheck over it: alloc(0) and resize(v, 0) leak nothing"),
    () =>
      withSubject(subject, async (a) => {
        await leakCheck((d) => {
          d.alloc(0);
          d.resize(d.alloc(8), 0);
        }, a);
      }),
  );

  // 4. Limits: AllocationError("limit-exceeded" / "out-of-memory") from alloc, null from tryAlloc, nothing changed.
  conformanceTest(name("limits fail with AllocationError from alloc and null from tryAlloc"), () => {
    const failsCleanly = (a: Allocator, size: number, category: string, what: string) => {
      const before = stableStats(a);
      throwsAllocation(() => a.alloc(size), category, undefined, `${what}: alloc(${size})`);
      let t: Uint8Array | null = new Uint8Array(1);
      try {
        t = a.tryAlloc(size);
      } catch (error) {
        assert.fail(`${what}: tryAlloc(${size}) threw ${describeError(error)} instead of returning null`);
      }
      assert.equal(t, null, `${what}: tryAlloc(${size})`);
      const after = stableStats(a);
      assert.equal(after.liveAllocations, before.liveAllocations, `${what}: liveAllocations unchanged`);
      assert.equal(after.allocatedBytes, before.allocatedBytes, `${what}: allocatedBytes unchanged`);
    };
    const fill = (a: Allocator, size: number, max: number): Uint8Array[] => {
      const held: Uint8Array[] = [];
      for (let i = 0; i < max; i++) {
        const v = a.tryAlloc(size);
        if (v === null) return held;
        held.push(v);
      }
      assert.fail(`never reached the limit with ${max} blocks of ${size} bytes`);
    };
    switch (subject.family) {
      case "arena": {
        const a = new Arena({ capacity: 4096, maxCapacity: 64 << 10, safety: caps.arena!.safety });
        fill(a, 16 << 10, 100);
        failsCleanly(a, 16 << 10, "limit-exceeded", "Arena({ maxCapacity: 64 KiB }) full");
        disposeQuietly(a);
        const fixed = new Arena({ capacity: 4096, growth: "fixed", safety: caps.arena!.safety });
        fill(fixed, 1024, 100);
        failsCleanly(fixed, 1024, "out-of-memory", "Arena({ growth: 'fixed' }) full");
        disposeQuietly(fixed);
        break;
      }
      case "free-list": {
        const a = new FreeListAllocator({ capacity: 64 << 10, maxCapacity: 256 << 10 });
        fill(a, 16 << 10, 100);
        failsCleanly(a, 16 << 10, "limit-exceeded", "FreeListAllocator({ maxCapacity: 256 KiB }) full");
        disposeQuietly(a);
        break;
      }
      case "pool": {
        const a = new PoolAllocator({ blockSize: 64, maxBlocks: 4 });
        const held = fill(a, 64, 100);
        assert.equal(held.length, 4, "maxBlocks: 4 serves 4 blocks");
        failsCleanly(a, 64, "limit-exceeded", "PoolAllocator({ maxBlocks: 4 }) full");
        // What a pool can never serve is a RangeError; everything else it serves.
        const p = new PoolAllocator({ blockSize: 64, align: 16 });
        throwsRange(() => p.alloc(65), "pool(64).alloc(65)");
        throwsRange(() => p.tryAlloc(65), "pool(64).tryAlloc(65)");
        throwsRange(() => p.alloc(8, 32), "pool(align 16).alloc(8, 32)");
        throwsRange(() => p.array(Float64Array, 9), "pool(64).array(Float64Array, 9)");
        const v = p.alloc(8);
        throwsRange(() => p.resize(v, 65), "pool(64).resize(v, 65)");
        p.free(v);
        for (let size = 0; size <= 64; size++) {
          for (const align of [1, 2, 4, 8, 16]) {
            const w = p.alloc(size, align);
            assert.equal(w.length, size);
            if (size > 0) assert.equal(addressOf(w) % align, 0);
            p.free(w);
          }
        }
        disposeQuietly(a, p);
        break;
      }
      case "stack": {
        const a = new StackAllocator({ capacity: 64 << 10 });
        fill(a, 4096, 100);
        failsCleanly(a, 4096, "out-of-memory", "StackAllocator({ capacity: 64 KiB }) full");
        disposeQuietly(a);
        break;
      }
      case "buddy": {
        const a = new BuddyAllocator({ capacity: 64 << 10, minBlockSize: 16 });
        fill(a, 16 << 10, 100);
        failsCleanly(a, 16 << 10, "out-of-memory", "BuddyAllocator({ capacity: 64 KiB }) full");
        disposeQuietly(a);
        break;
      }
      case "debug": {
        const { allocator: inner, backings } = subject.make();
        disposeQuietly(inner);
        const backing = backings[0] as Allocator;
        const detach = subject.name.includes("detachFreed");
        const a = new DebugAllocator(backing, { memoryLimit: 1000, detachFreed: detach });
        const first = a.alloc(600);
        failsCleanly(a, 600, "limit-exceeded", "DebugAllocator({ memoryLimit: 1000 }) with 600 bytes live");
        // resize respects the limit too
        const before = stableStats(a);
        throwsAllocation(() => a.resize(first, 2000), "limit-exceeded", undefined, "resize(600 → 2000) past the limit");
        assert.equal(first.length, 600, "the block survives the failed resize");
        assert.equal(a.stats().allocatedBytes, before.allocatedBytes);
        a.free(first);
        disposeQuietly(a, ...backings);
        break;
      }
      case "failing": {
        const backing = new SystemAllocator();
        const a = new FailingAllocator(backing, { failAfter: 2 });
        const held = [a.alloc(8), a.alloc(8)];
        failsCleanly(a, 8, "out-of-memory", "FailingAllocator({ failAfter: 2 }) after 2");
        for (const v of held) a.free(v);
        disposeQuietly(a, backing);
        break;
      }
      case "system":
        // No limit of its own: the backing-refusal tests below cover it as a backing.
        break;
    }
  });

  // 5. array() with an alignment below the element size (issue item 7).
  conformanceTest(
    name("array() with an alignment below the element size works or throws RangeError cleanly"),
    () =>
      withSubject(subject, (a) => {
        const cases: [TypedArrayConstructor<TypedArray>, number, number][] = [
          [Float64Array as unknown as TypedArrayConstructor<TypedArray>, 3, 4],
          [Float64Array as unknown as TypedArrayConstructor<TypedArray>, 3, 1],
          [Int32Array as unknown as TypedArrayConstructor<TypedArray>, 5, 2],
          [BigInt64Array as unknown as TypedArrayConstructor<TypedArray>, 2, 4],
          [Float32Array as unknown as TypedArrayConstructor<TypedArray>, 7, 2],
        ];
        // Something allocated first, so an odd offset is possible.
        const first = a.alloc(3, 1);
        for (const [ctor, length, align] of cases) {
          const what = `array(${ctor.name}, ${length}, ${align})`;
          const before = stableStats(a);
          let arr: TypedArray;
          try {
            arr = a.array(ctor, length, align);
          } catch (error) {
            if (!(error instanceof RangeError)) assert.fail(`${what} threw ${describeError(error)}`);
            assert.deepEqual(stableStats(a), before, `${what} threw RangeError but stats() changed (a phantom block)`);
            continue;
          }
          assert.equal(arr.length, length, `${what}.length`);
          assert.equal(addressOf(arr) % ctor.BYTES_PER_ELEMENT, 0, `${what} at ${addressOf(arr)}`);
          a.free(arr);
        }
        a.free(first);
      }),
  );

  // 6. dispose(): views read as length 0, every method throws "use-after-free", twice is a no-op.
  conformanceTest(name("dispose and [Symbol.dispose]"), () => {
    const { allocator: a, backings } = subject.make();
    try {
      const disposable = a as Allocator & { dispose?: () => void; [Symbol.dispose]?: () => void };
      assert.equal(typeof disposable.dispose, "function", `${subject.name} has no dispose()`);
      assert.equal(typeof disposable[Symbol.dispose], "function", `${subject.name} has no [Symbol.dispose]()`);
      const views: ArrayBufferView[] = [a.alloc(64), a.array(Float64Array, 4), a.alloc(0)];
      const top = a.alloc(32);
      views.push(a.resize(top, 48));
      const kept = a.alloc(100);
      views.push(kept);
      disposable.dispose!();
      if (caps.viewsDieOnDispose) {
        views.forEach((v, i) => {
          assert.equal(v.byteLength, 0, `view ${i} still has ${v.byteLength} bytes after dispose()`);
          assert.equal((v as Uint8Array).length, 0, `view ${i}.length after dispose()`);
        });
      }
      const uaf = (fn: () => unknown, what: string) => throwsAllocation(fn, "use-after-free", undefined, what);
      uaf(() => a.alloc(8), "alloc after dispose()");
      uaf(() => a.tryAlloc(8), "tryAlloc after dispose()");
      uaf(() => a.array(Uint8Array, 4), "array after dispose()");
      uaf(() => a.free(kept), "free after dispose()");
      uaf(() => a.resize(kept, 16), "resize after dispose()");
      let owned: unknown;
      try {
        owned = a.owns(kept);
      } catch (error) {
        if (!(error instanceof AllocationError && error.category === "use-after-free")) {
          assert.fail(`owns after dispose() threw ${describeError(error)}`);
        }
        owned = false;
      }
      assert.equal(owned, false, "owns() after dispose()");
      disposable.dispose!(); // a no-op
      disposable[Symbol.dispose]!();
    } finally {
      disposeQuietly(a, ...backings);
    }
    // `using` works.
    const fresh = subject.make();
    let escaped: Uint8Array;
    {
      using u = fresh.allocator as Allocator & Disposable;
      escaped = u.alloc(16);
    }
    if (caps.viewsDieOnDispose) assert.equal(escaped.length, 0, "a view that outlived its `using` block");
    disposeQuietly(fresh.allocator, ...fresh.backings);
  });

  // 7. The seeded randomized run.
  const randomName = name(`randomized run (${OPS} operations)`);
  conformanceTest(
    randomName,
    () => withSubject(subject, (a) => randomRun(a, caps, seedFor(randomName), OPS, subject.name)),
  );
}

// ------------------------------------------------------------------ a backing that cannot serve (issue items 4, 8)

const pool64 = () => new PoolAllocator({ blockSize: 64 });

conformanceTest("conformance: DebugAllocator(PoolAllocator(64)): serves alloc(64)", () => {
  const pool = pool64();
  const debug = new DebugAllocator(pool);
  try {
    const v = debug.alloc(64);
    assert.equal(v.length, 64);
    debug.free(v);
    const w = debug.tryAlloc(64);
    assert.ok(w !== null, "tryAlloc(64)");
    debug.free(w);
    assert.equal(debug.deinit(), "ok");
  } finally {
    disposeQuietly(debug, pool);
  }
});

/** Children over a backing that cannot serve what they ask: AllocationError or null, never RangeError. */
const refusingBackings: { name: string; make(): Allocator }[] = [
  { name: "PoolAllocator(64)", make: pool64 },
  { name: "FailingAllocator(failAfter: 0)", make: () => new FailingAllocator(new SystemAllocator(), { failAfter: 0 }) },
];
const refusedChildren: { name: string; make(backing: Allocator): Allocator }[] = [
  { name: "Arena", make: (backing) => new Arena({ backing }) },
  { name: "StackAllocator", make: (backing) => new StackAllocator({ backing, capacity: 64 << 10 }) },
  { name: "PoolAllocator(256)", make: (backing) => new PoolAllocator({ backing, blockSize: 256 }) },
  { name: "BuddyAllocator", make: (backing) => new BuddyAllocator({ capacity: 64 << 10, backing }) },
  { name: "FreeListAllocator", make: (backing) => new FreeListAllocator({ backing }) },
  { name: "DebugAllocator", make: (backing) => new DebugAllocator(backing) },
];

for (const backingSpec of refusingBackings) {
  for (const childSpec of refusedChildren) {
    conformanceTest(
      `conformance: ${childSpec.name} over ${backingSpec.name}: a refusing backing gives AllocationError or null, never RangeError`,
      () => {
        const backing = backingSpec.make();
        const size = 100; // in range for every child
        let child: Allocator | null = null;
        try {
          try {
            child = childSpec.make(backing);
          } catch (error) {
            if (error instanceof AllocationError) return; // refusing the first chunk at construction is fine
            assert.fail(`constructing ${childSpec.name} threw ${describeError(error)}`);
          }
          let t: Uint8Array | null = null;
          try {
            t = child!.tryAlloc(size);
          } catch (error) {
            assert.fail(`tryAlloc(${size}) threw ${describeError(error)} instead of returning null`);
          }
          if (t !== null) child!.free(t);
          for (let i = 0; i < 40; i++) {
            // Enough to need more from the backing.
            try {
              child!.alloc(size);
            } catch (error) {
              if (error instanceof AllocationError) break;
              assert.fail(`alloc(${size}) threw ${describeError(error)}, not AllocationError`);
            }
            try {
              child!.tryAlloc(4000);
            } catch (error) {
              assert.fail(`tryAlloc(4000) threw ${describeError(error)} instead of returning null`);
            }
          }
        } finally {
          disposeQuietly(child, backing);
        }
      },
    );
  }
}

conformanceTest(
  "conformance: DynamicArray over PoolAllocator(64): outgrowing the pool is AllocationError, never RangeError",
  () => {
    const pool = pool64();
    let array: DynamicArray<number> | null = null;
    try {
      try {
        array = new DynamicArray<number>("u8", { allocator: pool });
      } catch (error) {
        if (error instanceof AllocationError) return;
        assert.fail(`new DynamicArray threw ${describeError(error)}`);
      }
      let failed: unknown = null;
      for (let i = 0; i < 1000 && failed === null; i++) {
        try {
          array!.push(i & 255);
        } catch (error) {
          failed = error;
        }
      }
      assert.ok(failed !== null, "pushing 1000 bytes into a pool of 64-byte blocks never failed");
      assert.ok(failed instanceof AllocationError, `push threw ${describeError(failed)}, not AllocationError`);
      assert.ok(array!.length <= 64);
      for (let i = 0; i < array!.length; i++) assert.equal(array!.get(i), i & 255, "contents survive the failure");
    } finally {
      try {
        array?.free();
      } catch { /* teardown */ }
      disposeQuietly(pool);
    }
  },
);

// ------------------------------------------------------------------ chains: the child works

for (const parentSpec of PARENTS) {
  for (const childSpec of CHILDREN) {
    const testName =
      `conformance: chain ${parentSpec.name} > ${childSpec.name}: randomized run (${CHAIN_OPS} operations)`;
    conformanceTest(testName, () => {
      const parent = parentSpec.make();
      let child: Allocator | null = null;
      try {
        child = childSpec.make(parent);
        randomRun(
          child,
          childSpec.caps(parentSpec),
          seedFor(testName),
          CHAIN_OPS,
          `${parentSpec.name} > ${childSpec.name}`,
        );
        const ending = child as Allocator & { dispose?: () => void; deinit?: () => unknown };
        try {
          if (typeof ending.dispose === "function") ending.dispose();
          else if (typeof ending.deinit === "function") ending.deinit();
          else assert.fail(`the child ${childSpec.name} has no dispose()`);
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          assert.fail(`disposing the child failed: ${describeError(error)}`);
        }
        child = null;
        if (parentSpec.returnsFrees) {
          const s = parent.stats();
          assert.equal(s.allocatedBytes, 0, "the parent has every byte back once the child is disposed");
          assert.equal(s.liveAllocations, 0, "the parent has every block back once the child is disposed");
        }
      } finally {
        disposeQuietly(child, parent);
      }
    });
  }
}

// ------------------------------------------------------------------ specific items of issue 11

conformanceTest("conformance: Arena: small allocations after a huge one do not double past it (item 3)", () => {
  const arena = new Arena({ capacity: 4096 });
  try {
    arena.alloc(10);
    arena.alloc(1 << 20);
    arena.alloc(10);
    assert.ok(
      arena.stats().capacityBytes <= 1_052_672,
      `capacityBytes is ${arena.stats().capacityBytes} after alloc(10), alloc(1 MiB), alloc(10) (at most 1,052,672)`,
    );
    for (let i = 0; i < 100; i++) arena.alloc(100);
    assert.ok(
      arena.stats().capacityBytes < 1_052_672 + (64 << 10),
      `capacityBytes is ${arena.stats().capacityBytes} after 100 more small blocks: the growth doubled past the huge chunk`,
    );
  } finally {
    disposeQuietly(arena);
  }
});

/** Fills a fixed heap completely; returns the blocks. */
function fillHeap(heap: FreeListAllocator): Uint8Array[] {
  const held: Uint8Array[] = [];
  for (let size = 32768; size >= 16; size >>= 1) {
    for (;;) {
      const v = heap.tryAlloc(size);
      if (v === null) break;
      held.push(v);
    }
  }
  return held;
}

for (const size of [1000, 1025, 5000, 40_000]) {
  conformanceTest(`conformance: FreeListAllocator: a freed ${size}-byte block is found again (item 5)`, () => {
    const heap = new FreeListAllocator({ capacity: 65536, growth: "fixed" });
    try {
      const block = heap.alloc(size);
      const rest = fillHeap(heap);
      heap.free(block);
      const again = heap.tryAlloc(size);
      assert.ok(
        again !== null,
        `tryAlloc(${size}) after freeing a ${size}-byte block on a full fixed heap returned null`,
      );
      heap.free(again);
      for (const v of rest) heap.free(v);
    } finally {
      disposeQuietly(heap);
    }
  });
}

conformanceTest("conformance: FreeListAllocator: largestFreeBlock is exactly what tryAlloc can serve (item 5)", () => {
  const heap = new FreeListAllocator({ capacity: 65536, growth: "fixed" });
  try {
    const check = (when: string) => {
      const largest = heap.stats().largestFreeBlock;
      if (largest > 0) {
        const v = heap.tryAlloc(largest);
        assert.ok(v !== null, `${when}: tryAlloc(largestFreeBlock = ${largest}) returned null`);
        heap.free(v);
      }
      let over: Uint8Array | null = null;
      try {
        over = heap.tryAlloc(largest + 1);
      } catch (error) {
        assert.fail(`${when}: tryAlloc(largestFreeBlock + 1 = ${largest + 1}) threw ${describeError(error)}`);
      }
      assert.equal(over, null, `${when}: tryAlloc(largestFreeBlock + 1 = ${largest + 1}) succeeded on a fixed heap`);
    };
    check("fresh heap");
    const blocks = [100, 3000, 250, 7000, 1000, 12_000, 40].map((s) => heap.alloc(s));
    check("after 7 allocations");
    heap.free(blocks[1]);
    heap.free(blocks[3]);
    heap.free(blocks[5]);
    check("with three holes");
    for (const i of [0, 2, 4, 6]) heap.free(blocks[i]);
    check("everything freed");
  } finally {
    disposeQuietly(heap);
  }
});

conformanceTest("conformance: FreeListAllocator: the heap does not grow when a freed block fits (item 5)", () => {
  const heap = new FreeListAllocator({ capacity: 65536 });
  try {
    const blocks: Uint8Array[] = [];
    while (heap.stats().capacityBytes === 65536 && blocks.length < 64) {
      const v = heap.alloc(1000);
      if (heap.stats().capacityBytes !== 65536) {
        heap.free(v);
        break;
      }
      blocks.push(v);
    }
    const capacity = heap.stats().capacityBytes;
    for (const size of [1000, 1000, 1000]) {
      heap.free(blocks.pop()!);
      const v = heap.alloc(size);
      blocks.push(v);
      assert.equal(
        heap.stats().capacityBytes,
        capacity,
        `alloc(${size}) after freeing a 1000-byte block grew the heap`,
      );
    }
    for (const v of blocks) heap.free(v);
  } finally {
    disposeQuietly(heap);
  }
});

conformanceTest("conformance: StackAllocator: resize(top, 0) frees the top block (item 6)", () => {
  const stack = new StackAllocator({ capacity: 64 << 10 });
  try {
    const a = stack.alloc(100);
    const b = stack.alloc(200);
    const r = stack.resize(b, 0);
    assert.equal(r.length, 0);
    assert.equal(stack.stats().liveAllocations, 1, "liveAllocations after resize(top, 0)");
    assert.equal(stack.stats().allocatedBytes, 100, "allocatedBytes after resize(top, 0)");
    stack.free(a); // must not be blocked by a 0-byte block above it
    assert.equal(stack.stats().liveAllocations, 0);
    assert.equal(stack.stats().allocatedBytes, 0);
  } finally {
    disposeQuietly(stack);
  }
});

conformanceTest("conformance: DebugAllocator(StackAllocator): resizing the top block works (item 9)", () => {
  const stack = new StackAllocator({ capacity: 1 << 20 });
  const debug = new DebugAllocator(stack);
  try {
    const a = debug.alloc(100);
    let b = debug.alloc(100);
    fillPattern(b);
    for (const size of [5000, 300, 20_000, 50]) {
      b = debug.resize(b, size);
      assert.equal(b.length, size);
      checkPattern(b, Math.min(size, 100), `resize(top, ${size})`);
      fillPattern(b);
    }
    debug.free(b);
    debug.free(a);
    assert.equal(debug.leaks().length, 0, "no leaks");
    assert.equal(debug.deinit(), "ok");
    assert.equal(stack.stats().liveAllocations, 0, "nothing stranded in the stack");
  } finally {
    disposeQuietly(debug, stack);
  }
});

conformanceTest(
  "conformance: DebugAllocator(StackAllocator): a free the backing refuses changes no debug state (item 9)",
  () => {
    const stack = new StackAllocator({ capacity: 1 << 20 });
    const debug = new DebugAllocator(stack);
    try {
      const a = debug.alloc(100);
      const b = debug.alloc(100);
      a.fill(1);
      const before = debug.stats();
      throwsAllocation(() => debug.free(a), "invalid-free", undefined, "freeing the lower block first");
      assert.equal(a.length, 100, "the refused block's view is still usable");
      assert.equal(a[99], 1);
      assert.deepEqual(debug.stats(), before, "stats unchanged by the refused free");
      debug.free(b);
      debug.free(a);
      assert.equal(debug.deinit(), "ok");
      assert.equal(stack.stats().liveAllocations, 0);
    } finally {
      disposeQuietly(debug, stack);
    }
  },
);

conformanceTest("conformance: global allocator: double free after the address was reused (item 10)", () => {
  initAllocator({ enableLeakDetection: true, retainMetadata: true, leakCheckAtExit: "off" });
  try {
    const p = malloc(16);
    cFree(p, 16);
    const q = malloc(16);
    throwsAllocation(
      () => cFree(p, 16),
      "double-free",
      undefined,
      `cFree(p) a second time (q ${q === p ? "==" : "!="} p)`,
    );
    cFree(q, 16); // q is still alive
  } finally {
    deinit();
  }
});

conformanceTest("conformance: DebugAllocator(pool, detachFreed:false): double free after reuse (item 10)", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  const debug = new DebugAllocator(pool, { detachFreed: false });
  try {
    const p = debug.alloc(16);
    debug.free(p);
    const q = debug.alloc(16);
    q.fill(7);
    throwsAllocation(() => debug.free(p), "double-free", undefined, "free(p) a second time");
    assert.equal(q.length, 16, "q is still alive");
    assert.equal(q[15], 7);
    assert.equal(debug.stats().liveAllocations, 1);
    debug.free(q);
    assert.equal(debug.deinit(), "ok");
  } finally {
    disposeQuietly(debug, pool);
  }
});

conformanceTest(
  "conformance: DebugAllocator({ safety: false }): a free through a prefix view counts right (item 11)",
  () => {
    const debug = new DebugAllocator(new SystemAllocator(), { safety: false });
    try {
      const v = debug.alloc(100);
      debug.free(v.subarray(0, 4));
      assert.equal(debug.stats().allocatedBytes, 0, "allocatedBytes after free(v.subarray(0, 4))");
      assert.equal(debug.stats().liveAllocations, 0);
    } finally {
      disposeQuietly(debug);
    }
  },
);

conformanceTest("conformance: DebugAllocator({ safety: false }): resize respects memoryLimit (item 11)", () => {
  const debug = new DebugAllocator(new SystemAllocator(), { safety: false, memoryLimit: 1000 });
  try {
    const v = debug.alloc(100);
    throwsAllocation(
      () => debug.resize(v, 5000),
      "limit-exceeded",
      undefined,
      "resize(100 → 5000) with memoryLimit 1000",
    );
    assert.equal(debug.stats().allocatedBytes, 100);
    debug.free(v);
  } finally {
    disposeQuietly(debug);
  }
});

conformanceTest("conformance: PoolAllocator: owns() is false for unused parts of a chunk (item 13)", () => {
  // 16 blocks of 64 bytes use 1 KiB of each 4 KiB (page-rounded) chunk; later chunks are full.
  const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 16 });
  try {
    const blocks = Array.from({ length: 16 * 5 }, () => pool.alloc(64));
    const first = blocks[0];
    assert.equal(pool.owns(first), true);
    const buffer = first.buffer as ArrayBuffer;
    const used = 64 * 16;
    for (let offset = first.byteOffset + used; offset + 8 <= buffer.byteLength; offset += 512) {
      const tail = new Uint8Array(buffer, offset, 8);
      assert.equal(pool.owns(tail), false, `a view at offset ${offset} of a chunk whose blocks end at ${used}`);
    }
    pool.free(blocks[5]);
    assert.equal(pool.owns(blocks[5]), false, "a freed block");
    assert.equal(pool.owns(new Uint8Array(buffer, first.byteOffset + 5 * 64 + 8, 8)), false, "inside a freed block");
    for (const [i, v] of blocks.entries()) if (i !== 5) pool.free(v);
  } finally {
    disposeQuietly(pool);
  }
});

conformanceTest("conformance: SystemAllocator: a same-size resize detaches the old view (item 13)", () => {
  const system = new SystemAllocator();
  const v = system.alloc(100);
  fillPattern(v);
  const r = system.resize(v, 100);
  assert.equal(r.length, 100);
  checkPattern(r, 100, "resize(v, v.length)");
  assert.equal(v.length, 0, "the old view after resize(v, v.length)");
  system.free(r);
  disposeQuietly(system);
});

conformanceTest("conformance: leakCheck: alloc(0) and resize(v, 0) leak nothing (item 12)", async () => {
  await leakCheck((a) => {
    a.alloc(0);
    a.resize(a.alloc(8), 0);
  });
});
