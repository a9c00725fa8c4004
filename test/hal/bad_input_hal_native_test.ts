// Bad input and misuse of the HAL's native kinds: LockedPageAllocator,
// SecretAllocator and openSharedMemory. Each row gets its documented error
// without a native call (checked before any) and leaves memkit usable.
import assert from "node:assert/strict";
import { LockedPageAllocator, nativeInfo, openSharedMemory, SecretAllocator, SystemAllocator } from "../../mod.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

type PageAllocator = LockedPageAllocator | SecretAllocator;

interface Arranged {
  allocator: PageAllocator;
  block: Uint8Array;
  freed: Uint8Array;
  foreign: Uint8Array;
  system: SystemAllocator;
}

function arrange(make: () => PageAllocator): () => Arranged {
  return () => {
    const allocator = make();
    const freed = allocator.alloc(64);
    allocator.free(freed);
    const system = new SystemAllocator();
    return { allocator, block: allocator.alloc(64), freed, foreign: system.alloc(64), system };
  };
}

// The allocator still serves and frees, its live block is intact, then everything goes.
function stillUsable({ allocator, block, system }: Arranged): void {
  const stats = allocator.stats();
  if (block.length > 0) {
    assert.equal(stats.liveAllocations, 1);
    block[63] = 1;
    const more = allocator.alloc(8);
    allocator.free(more);
  }
  allocator.dispose();
  system.dispose();
}

function allocatorRows(label: string, make: () => PageAllocator): BadInputRow<Arranged>[] {
  const rows: Omit<BadInputRow<Arranged>, "arrange" | "after">[] = [
    { name: "alloc('64')", act: (c) => c.allocator.alloc(any("64")), expect: TypeError },
    { name: "alloc(64n)", act: (c) => c.allocator.alloc(any(64n)), expect: TypeError },
    { name: "alloc(-1)", act: (c) => c.allocator.alloc(-1), expect: RangeError },
    { name: "alloc(1.5)", act: (c) => c.allocator.alloc(1.5), expect: RangeError },
    { name: "alloc(NaN)", act: (c) => c.allocator.alloc(NaN), expect: RangeError },
    { name: "alloc(2**48)", act: (c) => c.allocator.alloc(2 ** 48), expect: RangeError },
    { name: "alloc(64, 3)", act: (c) => c.allocator.alloc(64, 3), expect: RangeError },
    { name: "alloc(64, 2 pages)", act: (c) => c.allocator.alloc(64, 2 * nativeInfo().pageSize), expect: RangeError },
    { name: "alloc(64, '16')", act: (c) => c.allocator.alloc(64, any("16")), expect: TypeError },
    { name: "tryAlloc(-1)", act: (c) => c.allocator.tryAlloc(-1), expect: RangeError },
    { name: "array(Array, 4)", act: (c) => c.allocator.array(any(Array), 4), expect: TypeError },
    { name: "array(Float64Array, -1)", act: (c) => c.allocator.array(Float64Array, -1), expect: RangeError },
    { name: "free(null)", act: (c) => c.allocator.free(any(null)), expect: TypeError },
    { name: "free of a foreign JS array", act: (c) => c.allocator.free(new Uint8Array(8)), expect: "invalid-free" },
    { name: "free of a freed block", act: (c) => c.allocator.free(c.freed), expect: "double-free" },
    { name: "free of an interior view", act: (c) => c.allocator.free(c.block.subarray(8)), expect: "invalid-free" },
    {
      name: "free of a SystemAllocator block",
      act: (c) => c.allocator.free(c.foreign),
      expect: "mismatched-allocator",
    },
    { name: "resize(block, -1)", act: (c) => c.allocator.resize(c.block, -1), expect: RangeError },
    { name: "resize(block, '8')", act: (c) => c.allocator.resize(c.block, any("8")), expect: TypeError },
    { name: "resize of a freed block", act: (c) => c.allocator.resize(c.freed, 8), expect: "use-after-free" },
    { name: "owns('x')", act: (c) => c.allocator.owns(any("x")), expect: TypeError },
  ];
  const all: BadInputRow<Arranged>[] = rows.map((row) => ({
    ...row,
    name: `${label}.${row.name}`,
    arrange: arrange(make),
    after: stillUsable,
  }));
  all.push({
    name: `${label}.alloc after dispose()`,
    arrange: () => {
      const arranged = arrange(make)();
      arranged.allocator.dispose();
      return arranged;
    },
    act: (c) => c.allocator.alloc(8),
    expect: "use-after-free",
    after: (c) => {
      assert.equal(c.block.length, 0, "dispose detached the live block");
      c.system.dispose();
    },
  });
  return all;
}

badInputTable("LockedPageAllocator", [
  ...allocatorRows("LockedPageAllocator", () => new LockedPageAllocator()),
  {
    name: "new LockedPageAllocator({ zero: 1 })",
    act: () => new LockedPageAllocator(any({ zero: 1 })),
    expect: TypeError,
  },
  {
    name: "new LockedPageAllocator({ lock: true })",
    act: () => new LockedPageAllocator(any({ lock: true })),
    expect: TypeError,
  },
  { name: "new LockedPageAllocator('zero')", act: () => new LockedPageAllocator(any("zero")), expect: TypeError },
]);

badInputTable("SecretAllocator", allocatorRows("SecretAllocator", () => new SecretAllocator()));

const LONG_NAME = "n".repeat(31);
const open = (...args: unknown[]) => () => (openSharedMemory as (...a: unknown[]) => unknown)(...args);

badInputTable("openSharedMemory", [
  { name: "name 42", act: open(42), expect: TypeError },
  { name: "name undefined", act: open(undefined), expect: TypeError },
  { name: "name ''", act: open(""), expect: RangeError },
  { name: "a name of 31 characters", act: open(LONG_NAME), expect: RangeError },
  { name: "name 'a/b'", act: open("a/b"), expect: TypeError },
  { name: "name '/abs'", act: open("/abs"), expect: TypeError },
  { name: "name '.hidden'", act: open(".hidden"), expect: TypeError },
  { name: "name '..'", act: open(".."), expect: TypeError },
  { name: "name 'sp ace'", act: open("sp ace"), expect: TypeError },
  { name: "name 'nul\\0'", act: open("nul\0"), expect: TypeError },
  { name: "name 'ünï'", act: open("ünï"), expect: TypeError },
  { name: "byteLength 0", act: open("ok-name", 0, { create: true }), expect: RangeError },
  { name: "byteLength -1", act: open("ok-name", -1), expect: RangeError },
  { name: "byteLength 1.5", act: open("ok-name", 1.5), expect: RangeError },
  { name: "byteLength NaN", act: open("ok-name", NaN), expect: RangeError },
  { name: "byteLength 2**48", act: open("ok-name", 2 ** 48), expect: RangeError },
  { name: "byteLength '4096'", act: open("ok-name", "4096"), expect: TypeError },
  { name: "options 'create'", act: open("ok-name", 4096, "create"), expect: TypeError },
  { name: "options { create: 'yes' }", act: open("ok-name", 4096, { create: "yes" }), expect: TypeError },
  { name: "options { size: 1 }", act: open("ok-name", 4096, { size: 1 }), expect: TypeError },
  { name: "{ exclusive: true } without create", act: open("ok-name", 4096, { exclusive: true }), expect: TypeError },
  { name: "{ create: true } without byteLength", act: open("ok-name", undefined, { create: true }), expect: TypeError },
  {
    name: "a name nobody created",
    act: open(`mk-missing-${crypto.randomUUID().slice(0, 8)}`),
    expect: "platform",
  },
]);
