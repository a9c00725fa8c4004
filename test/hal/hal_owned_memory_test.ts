// What MemoryInterface.getAllocator(kind) returns never releases, moves or
// reuses memory a live allocation of the interface owns: a table of every
// kind × every releasing method (free, resize, the arena's reset and scope
// end, the stack's reset and rewind, dispose, the class pools of the pool
// kind), each refused with its error, changing nothing (the interface's and
// the allocator's figures, the bytes of the target and of a neighbour, the
// target's view), after which the target deallocates, a later allocation
// does not overlap it, and a block the caller took from the allocator itself
// still frees normally. On the code before the guard each refused call went
// through (the same memory was then handed out twice).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  type AllocatorKind,
  type Arena,
  type MemoryAllocation,
  MemoryInterface,
  type MemoryType,
  type StackAllocator,
} from "../../mod.ts";

type Category = "mismatched-allocator" | "invalid-free" | "unsupported";

interface Ctx {
  memory: MemoryInterface;
  guard: Allocator;
  /** The interface allocation the call must not release (made last, so it is the stack's top and the arena's last block). */
  target: MemoryAllocation;
  /** An interface allocation made before `target` (and before `before`). */
  other: MemoryAllocation;
  /** What the case's `before` returned (a marker, a scope), made before `target`. */
  before: unknown;
}

interface Case {
  kind: AllocatorKind;
  name: string;
  /** How the interface allocates (its type and the request's extra fields). */
  type: MemoryType;
  request?: { preferredAllocator?: AllocatorKind };
  size?: number;
  /** Runs before the target is allocated. */
  before?: (ctx: Omit<Ctx, "target" | "before" | "other">) => unknown;
  act: (ctx: Ctx) => unknown;
  expect: Category;
  /** After the refusal and the target's deallocation: the same call now goes through. */
  thenWorks?: (ctx: Ctx) => void;
}

const any = (x: unknown) => x as never;
const arena = (g: Allocator) => g as unknown as Arena;
const stack = (g: Allocator) => g as unknown as StackAllocator;
// A view at the target's first byte that is not its `bytes` (what a kept or hand-made view looks like).
const twin = (a: MemoryAllocation) => new Uint8Array(a.bytes.buffer, a.bytes.byteOffset, a.size);
const empty = (a: MemoryAllocation) => new Uint8Array(a.bytes.buffer, a.bytes.byteOffset, 0);

function blockCases(kind: AllocatorKind, type: MemoryType, request?: Case["request"], grow = 200): Case[] {
  const base = { kind, type, request };
  return [
    { ...base, name: "free(bytes)", act: (c) => c.guard.free(c.target.bytes), expect: "mismatched-allocator" },
    {
      ...base,
      name: "free(a view at its first byte)",
      act: (c) => c.guard.free(twin(c.target)),
      expect: "mismatched-allocator",
    },
    {
      ...base,
      name: "free(an empty view at its first byte)",
      act: (c) => c.guard.free(empty(c.target)),
      expect: "mismatched-allocator",
    },
    {
      ...base,
      name: "free(Uint32Array over it)",
      act: (c) => c.guard.free(new Uint32Array(c.target.bytes.buffer, c.target.bytes.byteOffset, 4)),
      expect: "mismatched-allocator",
    },
    { ...base, name: "resize smaller", act: (c) => c.guard.resize(c.target.bytes, 16), expect: "mismatched-allocator" },
    {
      ...base,
      name: "resize larger",
      act: (c) => c.guard.resize(c.target.bytes, grow),
      expect: "mismatched-allocator",
    },
    { ...base, name: "resize to 0", act: (c) => c.guard.resize(c.target.bytes, 0), expect: "mismatched-allocator" },
    {
      ...base,
      name: "dispose()",
      act: (c) => (c.guard as unknown as Disposable & { dispose(): void }).dispose(),
      expect: "unsupported",
    },
    {
      ...base,
      name: "[Symbol.dispose]()",
      act: (c) => (c.guard as unknown as Disposable)[Symbol.dispose](),
      expect: "unsupported",
    },
  ];
}

const CASES: Case[] = [
  ...blockCases("pool", "pool", undefined, 1000),
  ...blockCases("pool", "system", { preferredAllocator: "pool" }, 1000),
  ...blockCases("arena", "temporary"),
  ...blockCases("arena", "system", { preferredAllocator: "arena" }),
  ...blockCases("stack", "stack"),
  ...blockCases("system", "system", undefined, 1 << 20),
  ...blockCases("buddy", "system", { preferredAllocator: "buddy" }),
  ...blockCases("free-list", "video", undefined, 1 << 16),
  {
    kind: "arena",
    name: "reset()",
    type: "temporary",
    act: (c) => arena(c.guard).reset(),
    expect: "invalid-free",
    thenWorks: (c) => {
      c.memory.deallocate(c.other);
      arena(c.guard).reset();
    },
  },
  {
    kind: "arena",
    name: "reset('free-all')",
    type: "system",
    request: { preferredAllocator: "arena" },
    act: (c) => arena(c.guard).reset("free-all"),
    expect: "invalid-free",
    thenWorks: (c) => {
      c.memory.deallocate(c.other);
      arena(c.guard).reset("free-all");
    },
  },
  {
    kind: "arena",
    name: "a scope opened before it: end()",
    type: "temporary",
    before: (c) => arena(c.guard).scope(),
    act: (c) => (c.before as Disposable & { end(): void }).end(),
    expect: "invalid-free",
    thenWorks: (c) => {
      const scope = c.before as { end(): void; active: boolean };
      scope.end();
      assert.equal(scope.active, false);
    },
  },
  {
    kind: "arena",
    name: "a scope opened before it: [Symbol.dispose]() (using)",
    type: "temporary",
    before: (c) => arena(c.guard).scope(),
    act: (c) => (c.before as Disposable)[Symbol.dispose](),
    expect: "invalid-free",
    thenWorks: (c) => (c.before as Disposable)[Symbol.dispose](),
  },
  {
    kind: "arena",
    name: "a scope with one of the interface's frames begun inside it: end()",
    type: "temporary",
    before: (c) => {
      const scope = arena(c.guard).scope();
      c.memory.beginFrame();
      return scope;
    },
    act: (c) => (c.before as { end(): void }).end(),
    expect: "invalid-free",
    thenWorks: (c) => {
      c.memory.endFrame();
      (c.before as { end(): void }).end();
    },
  },
  {
    kind: "arena",
    name: "reset() while a frame of the interface is open",
    type: "temporary",
    before: (c) => c.memory.beginFrame(),
    act: (c) => arena(c.guard).reset(),
    expect: "invalid-free",
  },
  {
    kind: "stack",
    name: "reset()",
    type: "stack",
    act: (c) => stack(c.guard).reset(),
    expect: "invalid-free",
  },
  {
    kind: "stack",
    name: "rewind(a marker taken before it)",
    type: "stack",
    before: (c) => stack(c.guard).mark(),
    act: (c) => stack(c.guard).rewind(any(c.before)),
    expect: "invalid-free",
    thenWorks: (c) => stack(c.guard).rewind(any(c.before)),
  },
];

function figures(memory: MemoryInterface, guard: Allocator, type: MemoryType) {
  const mine = memory.getMemoryStats(type), all = memory.getMemoryStats(), s = guard.stats();
  return {
    used: mine.usedBytes,
    count: mine.allocationCount,
    allUsed: all.usedBytes,
    allCount: all.allocationCount,
    allocatorBytes: s.allocatedBytes,
    allocatorLive: s.liveAllocations,
    allocatorFrees: s.totalFrees,
  };
}

const overlaps = (a: MemoryAllocation, b: MemoryAllocation) =>
  a.address < b.address + b.size && b.address < a.address + a.size;

for (const c of CASES) {
  test(`getAllocator("${c.kind}") over ${c.type} memory: ${c.name} is refused (${c.expect}), changing nothing`, () => {
    using memory = new MemoryInterface({ pressure: false });
    const guard = memory.getAllocator(c.kind);
    const size = c.size ?? 64;
    const allocate = () => memory.allocate({ size, type: c.type, ...c.request });
    const mine = guard.alloc(48); // the caller's own block, below the interface's
    mine.fill(0x5a);
    const other = allocate();
    other.bytes.fill(0x11);
    const before = c.before?.({ memory, guard });
    const target = allocate();
    target.bytes.fill(0x22);
    assert.equal(target.allocator, c.kind, "served by the allocator under test");
    const ctx: Ctx = { memory, guard, target, other, before };
    const was = figures(memory, guard, c.type);

    assert.throws(() => c.act(ctx), (e: unknown) => {
      assert.ok(e instanceof AllocationError, `an AllocationError, not ${e}`);
      assert.equal(e.category, c.expect, e.message);
      return true;
    });

    assert.deepEqual(figures(memory, guard, c.type), was, "the figures did not change");
    assert.equal(target.bytes.length, size, "the target's view still reads its bytes");
    assert.ok(target.bytes.every((b) => b === 0x22), "the target's bytes are intact");
    assert.ok(other.bytes.every((b) => b === 0x11), "the neighbour's bytes are intact");
    assert.ok(mine.every((b) => b === 0x5a), "the caller's block is intact");
    assert.equal(memory.isValidPointer(target.bytes), true);
    // Its memory was not given back: a new allocation goes elsewhere.
    const third = allocate();
    assert.ok(!overlaps(third, target) && !overlaps(third, other), "no memory handed out twice");
    memory.deallocate(third);
    memory.deallocate(target); // still the interface's to give back
    assert.throws(
      () => memory.deallocate(target),
      (e: unknown) => e instanceof AllocationError && e.category === "double-free",
    );
    c.thenWorks?.(ctx);
    if (memory.isValidPointer(other.bytes)) memory.deallocate(other);
    if (c.before !== undefined && c.thenWorks === undefined && c.name.includes("frame")) memory.endFrame();
    // The caller's own block frees through the allocator as before (when a whole release did not take it).
    if (guard.owns(mine)) {
      const live = guard.stats().liveAllocations, ignored = arena(guard).stats().ignoredFrees;
      guard.free(mine);
      // (An arena counts a free of a block that is not its last, and reclaims it at its reset or scope end.)
      if (c.kind === "arena") assert.equal(arena(guard).stats().ignoredFrees, ignored + 1);
      else assert.equal(guard.stats().liveAllocations, live - 1);
    }
    assert.equal(memory.getMemoryStats().allocationCount, 0);
  });
}

test("getAllocator('pool'): the class pools are not reachable from it (pool(i), pools())", () => {
  using memory = new MemoryInterface({ pressure: false });
  const guard = memory.getAllocator("pool") as unknown as Record<string, unknown>;
  const a = memory.allocateTyped(64, "pool");
  for (const name of ["pool", "pools"]) assert.equal(guard[name], undefined, name);
  for (const key of Reflect.ownKeys(guard)) {
    const value = guard[key as string];
    assert.ok(typeof value !== "object" || value === null, `no object behind ${String(key)}`);
  }
  memory.deallocate(a);
});

test("the adversarial sequence: free through the pool, allocate, deallocate, allocate: never the same memory twice", () => {
  using memory = new MemoryInterface({ pressure: false });
  const pool = memory.getAllocator("pool");
  const a = memory.allocateTyped(64, "pool");
  assert.throws(
    () => pool.free(a.bytes),
    (e: unknown) => e instanceof AllocationError && e.category === "mismatched-allocator",
  );
  const b = memory.allocateTyped(64, "pool");
  assert.ok(!overlaps(a, b));
  memory.deallocate(a);
  const c = memory.allocateTyped(64, "pool");
  assert.ok(!overlaps(b, c));
  b.bytes.fill(1);
  c.bytes.fill(2);
  assert.ok(b.bytes.every((x) => x === 1));
  memory.deallocate(b);
  memory.deallocate(c);
});

test("blocks taken from each kind directly still free, resize and go with whole releases", () => {
  using memory = new MemoryInterface({ pressure: false });
  for (const kind of memory.availableAllocators()) {
    const guard = memory.getAllocator(kind);
    const live = guard.stats().liveAllocations;
    const block = guard.alloc(64);
    block.fill(7);
    const resized = guard.resize(block, kind === "stack" ? 96 : 128);
    assert.ok(resized.subarray(0, 64).every((x) => x === 7), kind);
    guard.free(resized);
    guard.free(guard.array(Float64Array, 4));
    assert.equal(guard.stats().liveAllocations, live, kind);
  }
  // Whole releases of the caller's own blocks only (the interface's are given back first).
  const a = arena(memory.getAllocator("arena"));
  const t = memory.allocateTyped(64, "temporary");
  using scope = a.scope();
  a.alloc(100);
  assert.equal(scope.stats().allocations, 1);
  scope.end();
  memory.deallocate(t);
  a.alloc(100);
  a.reset();
  assert.equal(a.stats().liveAllocations, 0);
  const s = stack(memory.getAllocator("stack"));
  const under = memory.allocateTyped(64, "stack");
  const marker = s.mark(); // the interface's block is below: rewinding to here leaves it
  s.alloc(32);
  s.rewind(marker);
  assert.equal(memory.isValidPointer(under.bytes), true);
  memory.deallocate(under);
  s.alloc(32);
  s.reset();
  assert.equal(s.stats().liveAllocations, 0);
});

test("a scope opened inside an interface frame: its end releases the caller's blocks, and is refused over the interface's", () => {
  using memory = new MemoryInterface({ pressure: false });
  const a = arena(memory.getAllocator("arena"));
  memory.beginFrame();
  const early = memory.allocateTyped(64, "temporary"); // before the scope: not the scope's to release
  const scope = a.scope();
  const mine = a.alloc(64);
  scope.end();
  assert.equal(mine.length, 0, "the caller's block went with the scope");
  assert.equal(memory.isValidPointer(early.bytes), true);
  const inner = a.scope();
  const late = memory.allocateTyped(64, "temporary"); // made inside the scope (on the fast path)
  assert.throws(() => inner.end(), (e: unknown) => e instanceof AllocationError && e.category === "invalid-free");
  assert.equal(late.bytes.length, 64);
  memory.deallocate(late);
  inner.end();
  memory.endFrame();
  assert.equal(early.bytes.length, 0);
  assert.equal(memory.getMemoryStats().allocationCount, 0);
});

test("getAllocator after dispose throws; a guard kept from before says use-after-free", () => {
  const memory = new MemoryInterface({ pressure: false });
  const guard = memory.getAllocator("pool");
  const a = memory.allocateTyped(64, "pool");
  memory.dispose();
  assert.equal(a.bytes.length, 0);
  assert.throws(
    () => memory.getAllocator("pool"),
    (e: unknown) => e instanceof AllocationError && e.category === "use-after-free",
  );
  assert.throws(() => guard.alloc(64), (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
});
