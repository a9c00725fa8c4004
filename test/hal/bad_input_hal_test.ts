// Bad input and misuse of MemoryInterface and RegionAllocator: each row gets
// its documented error without a native call (checked before any) and leaves
// the interface usable. allocateAsync's bad requests reject the same way.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type AllocationRequest,
  type MemoryAllocation,
  MemoryInterface,
  PoolAllocator,
  RegionAllocator,
  struct,
} from "../../mod.ts";
import { type BadInputRow, badInputTable, type Expected, expectedLabel, matches } from "../_bad_input.ts";
import { spyOnNativeCalls } from "../_native_hooks.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

interface Arranged {
  memory: MemoryInterface;
  other: MemoryInterface;
  live: MemoryAllocation;
  freed: MemoryAllocation;
  stackBottom: MemoryAllocation;
  stackTop: MemoryAllocation;
  ended: MemoryAllocation;
  foreignPool: PoolAllocator;
  foreign: Uint8Array;
}

function arrange(): Arranged {
  const memory = new MemoryInterface({ budgets: { pool: 1 << 20, system: 1 << 16 }, pressure: false });
  const other = new MemoryInterface({ pressure: false });
  const freed = memory.allocate(64);
  void freed.address; // read while live: after the free its view is detached
  memory.deallocate(freed);
  const ended = memory.allocateTyped(64, "temporary");
  memory.endFrame();
  const foreignPool = new PoolAllocator({ blockSize: 64 });
  return {
    memory,
    other,
    live: memory.allocateTyped(64, "pool"),
    freed,
    stackBottom: memory.allocateTyped(32, "stack"),
    stackTop: memory.allocateTyped(32, "stack"),
    ended,
    foreignPool,
    foreign: foreignPool.alloc(64),
  };
}

// The interface still serves and frees, its counts are as they were, then everything goes.
function stillUsable(c: Arranged): void {
  const stats = c.memory.getMemoryStats();
  assert.equal(stats.allocationCount, 3, "the failed call changed no count");
  assert.equal(stats.usedBytes, 128);
  const more = c.memory.allocateTyped(100, "pool");
  more.bytes[99] = 1;
  c.memory.deallocate(more);
  c.live.bytes[63] = 1;
  c.memory.deallocate(c.stackTop);
  c.memory.deallocate(c.stackBottom);
  c.memory.deallocate(c.live);
  c.memory.dispose();
  c.other.dispose();
  c.foreignPool.dispose();
}

const Vertex = struct({ position: "f32x3" });
const request = (r: Record<string, unknown>) => any({ size: 64, ...r }) as AllocationRequest;

/** A Proxy of ["zero", "cacheable"] whose length reads `length` (Array.isArray is true for it). */
function flagsOfLength(length: unknown): unknown {
  return new Proxy(["zero", "cacheable"], { get: (t, k) => (k === "length" ? length : Reflect.get(t, k)) });
}

const interfaceRows: Omit<BadInputRow<Arranged>, "arrange" | "after">[] = [
  { name: "new MemoryInterface(5)", act: () => new MemoryInterface(any(5)), expect: TypeError },
  { name: "new MemoryInterface({ heap: 1 })", act: () => new MemoryInterface(any({ heap: 1 })), expect: TypeError },
  {
    name: "budgets of an unknown type",
    act: () => new MemoryInterface(any({ budgets: { gpu: 1 } })),
    expect: TypeError,
  },
  { name: "a negative budget", act: () => new MemoryInterface({ budgets: { pool: -1 } }), expect: RangeError },
  { name: "a NaN budget", act: () => new MemoryInterface({ budgets: { pool: NaN } }), expect: RangeError },
  { name: "a string budget", act: () => new MemoryInterface(any({ budgets: { pool: "1" } })), expect: TypeError },
  { name: "pressure: true", act: () => new MemoryInterface(any({ pressure: true })), expect: TypeError },
  { name: "allocate('64')", act: (c) => c.memory.allocate(any("64")), expect: TypeError },
  { name: "allocate(0)", act: (c) => c.memory.allocate(0), expect: RangeError },
  { name: "allocate(-1)", act: (c) => c.memory.allocate(-1), expect: RangeError },
  { name: "allocate(NaN)", act: (c) => c.memory.allocate(NaN), expect: RangeError },
  { name: "allocate(1.5)", act: (c) => c.memory.allocate(1.5), expect: RangeError },
  { name: "allocate(2**48)", act: (c) => c.memory.allocate(2 ** 48), expect: RangeError },
  { name: "allocate(64, 3): alignment not a power of two", act: (c) => c.memory.allocate(64, 3), expect: RangeError },
  { name: "allocate(64, 8192): alignment over the page", act: (c) => c.memory.allocate(64, 8192), expect: RangeError },
  { name: "allocate(64, '16')", act: (c) => c.memory.allocate(64, any("16")), expect: TypeError },
  { name: "allocate(null)", act: (c) => c.memory.allocate(any(null)), expect: TypeError },
  { name: "allocate({}): no size", act: (c) => c.memory.allocate(any({})), expect: TypeError },
  { name: "allocate(request, 16)", act: (c) => c.memory.allocate(any(request({})), any(16)), expect: TypeError },
  {
    name: "a request with an unknown field",
    act: (c) => c.memory.allocate(request({ timeout: 5 })),
    expect: TypeError,
  },
  { name: "an unknown type", act: (c) => c.memory.allocate(request({ type: "gpu" })), expect: TypeError },
  { name: "type 5", act: (c) => c.memory.allocate(request({ type: 5 })), expect: TypeError },
  { name: "type 'toString'", act: (c) => c.memory.allocate(request({ type: "toString" })), expect: TypeError },
  { name: "an unknown flag", act: (c) => c.memory.allocate(request({ flags: ["fast"] })), expect: TypeError },
  { name: "flags as a string", act: (c) => c.memory.allocate(request({ flags: "zero" })), expect: TypeError },
  { name: "a flag twice", act: (c) => c.memory.allocate(request({ flags: ["zero", "zero"] })), expect: TypeError },
  {
    name: "flags of length 2**32-1",
    act: (c) => c.memory.allocate(request({ flags: new Array(2 ** 32 - 1) })),
    expect: RangeError,
  },
  {
    name: "secret with shared",
    act: (c) => c.memory.allocate(request({ type: "shared", flags: ["secret"] })),
    expect: TypeError,
  },
  {
    name: "secret with pool",
    act: (c) => c.memory.allocate(request({ type: "pool", flags: ["secret"] })),
    expect: TypeError,
  },
  {
    name: "secret with the temporary flag",
    act: (c) => c.memory.allocate(request({ flags: ["secret", "temporary"] })),
    expect: TypeError,
  },
  {
    name: "the temporary flag with video",
    act: (c) => c.memory.allocate(request({ type: "video", flags: ["temporary"] })),
    expect: TypeError,
  },
  {
    name: "dma-capable with pool",
    act: (c) => c.memory.allocate(request({ type: "pool", flags: ["dma-capable"] })),
    expect: TypeError,
  },
  {
    name: "preferredAllocator 'heap'",
    act: (c) => c.memory.allocate(request({ preferredAllocator: "heap" })),
    expect: TypeError,
  },
  {
    name: "preferredAllocator 'debug'",
    act: (c) => c.memory.allocate(request({ preferredAllocator: "debug" })),
    expect: "unsupported",
  },
  {
    name: "the pool type with preferredAllocator 'arena'",
    act: (c) => c.memory.allocate(request({ type: "pool", preferredAllocator: "arena" })),
    expect: TypeError,
  },
  {
    name: "the secret flag with preferredAllocator 'pool'",
    act: (c) => c.memory.allocate(request({ flags: ["secret"], preferredAllocator: "pool" })),
    expect: TypeError,
  },
  { name: "a name for system memory", act: (c) => c.memory.allocate(request({ name: "x" })), expect: TypeError },
  {
    name: "a name of 64 characters",
    act: (c) => c.memory.allocate(request({ type: "shared", name: "n".repeat(64) })),
    expect: RangeError,
  },
  {
    name: "a name with a slash",
    act: (c) => c.memory.allocate(request({ type: "shared", name: "a/b" })),
    expect: TypeError,
  },
  {
    name: "timeoutMs 1000 in allocate",
    act: (c) => c.memory.allocate(request({ timeoutMs: 1000 })),
    expect: TypeError,
  },
  { name: "timeoutMs -1", act: (c) => c.memory.allocate(request({ timeoutMs: -1 })), expect: RangeError },
  { name: "timeoutMs NaN", act: (c) => c.memory.allocate(request({ timeoutMs: NaN })), expect: RangeError },
  { name: "timeoutMs '5'", act: (c) => c.memory.allocate(request({ timeoutMs: "5" })), expect: TypeError },
  { name: "allowFallback 'yes'", act: (c) => c.memory.allocate(request({ allowFallback: "yes" })), expect: TypeError },
  { name: "4097 bytes of pool", act: (c) => c.memory.allocateTyped(4097, "pool"), expect: RangeError },
  { name: "1537 bytes of network", act: (c) => c.memory.allocateTyped(1537, "network"), expect: RangeError },
  { name: "network at alignment 128", act: (c) => c.memory.allocateTyped(64, "network", 128), expect: RangeError },
  { name: "more than the stack", act: (c) => c.memory.allocateTyped(2 << 20, "stack"), expect: RangeError },
  { name: "over the system budget", act: (c) => c.memory.allocate(1 << 17), expect: "limit-exceeded" },
  { name: "allocateTyped(64, 'gpu')", act: (c) => c.memory.allocateTyped(64, any("gpu")), expect: TypeError },
  { name: "allocateTyped(64, 'pool', 3)", act: (c) => c.memory.allocateTyped(64, "pool", 3), expect: RangeError },
  // Adversarial finding (hal3, 5): the type was taken as optional and system memory served.
  { name: "allocateTyped(64): no type", act: (c) => any(c.memory).allocateTyped(64), expect: TypeError },
  {
    name: "allocateTyped(64, undefined, 64)",
    act: (c) => c.memory.allocateTyped(64, any(undefined), 64),
    expect: TypeError,
  },
  // Adversarial finding (hal3, 6): a flags array (a Proxy of one) whose length is no array length was taken.
  ...([-1, NaN, 1.5, Infinity, 2 ** 32] as const).map((length) => ({
    name: `flags whose length reads ${length}`,
    act: (c: Arranged) => c.memory.allocate(request({ type: "pool", flags: flagsOfLength(length) })),
    expect: RangeError as Expected,
  })),
  {
    name: 'flags whose length reads "2"',
    act: (c) => c.memory.allocate(request({ type: "pool", flags: flagsOfLength("2") })),
    expect: TypeError,
  },
  {
    name: "allocateTyped's flags whose length reads 1.5",
    act: (c) => c.memory.allocateTyped(64, "pool", undefined, any(flagsOfLength(1.5))),
    expect: RangeError,
  },
  {
    name: "allocateTyped(64, 'pool', 16, ['x'])",
    act: (c) => c.memory.allocateTyped(64, "pool", 16, any(["x"])),
    expect: TypeError,
  },
  // A callback would never run and the frame would stay open: refused before one opens (stillUsable's counts).
  { name: "frame(callback)", act: (c) => any(c.memory).frame(() => {}), expect: TypeError },
  { name: "frame(undefined)", act: (c) => any(c.memory).frame(undefined), expect: TypeError },
  { name: "deallocate twice", act: (c) => c.memory.deallocate(c.freed), expect: "double-free" },
  {
    name: "deallocate of a freed block's address",
    act: (c) => c.memory.deallocate(c.freed.address),
    expect: "double-free",
  },
  { name: "deallocate after its frame ended", act: (c) => c.memory.deallocate(c.ended), expect: "double-free" },
  { name: "deallocate of a foreign block", act: (c) => c.memory.deallocate(c.foreign), expect: "invalid-free" },
  { name: "deallocate of a JS array", act: (c) => c.memory.deallocate(new Uint8Array(64)), expect: "invalid-free" },
  {
    name: "deallocate of an interior view",
    act: (c) => c.memory.deallocate(c.live.bytes.subarray(8)),
    expect: "invalid-free",
  },
  {
    name: "deallocate of an interior address",
    act: (c) => c.memory.deallocate(c.live.address + 8),
    expect: "invalid-free",
  },
  { name: "deallocate of address 12345", act: (c) => c.memory.deallocate(12345), expect: "invalid-free" },
  { name: "deallocate(1.5)", act: (c) => c.memory.deallocate(1.5), expect: RangeError },
  { name: "deallocate(-8)", act: (c) => c.memory.deallocate(-8), expect: RangeError },
  { name: "deallocate('x')", act: (c) => c.memory.deallocate(any("x")), expect: TypeError },
  {
    name: "deallocate of a look-alike object",
    act: (c) => c.memory.deallocate(any({ ...any(c.live).toJSON() })),
    expect: TypeError,
  },
  { name: "deallocate into another interface", act: (c) => c.other.deallocate(c.live), expect: "mismatched-allocator" },
  { name: "a stack block out of order", act: (c) => c.memory.deallocate(c.stackBottom), expect: "invalid-free" },
  { name: "getMemoryStats('gpu')", act: (c) => c.memory.getMemoryStats(any("gpu")), expect: TypeError },
  {
    name: "registerPressureCallback(0, fn)",
    act: (c) => c.memory.registerPressureCallback(any(0), () => {}),
    expect: RangeError,
  },
  {
    name: "registerPressureCallback(2, 'f')",
    act: (c) => c.memory.registerPressureCallback(2, any("f")),
    expect: TypeError,
  },
  {
    name: "registerPressureCallback('2', fn)",
    act: (c) => c.memory.registerPressureCallback(any("2"), () => {}),
    expect: TypeError,
  },
  { name: "getAllocator('heap')", act: (c) => c.memory.getAllocator(any("heap")), expect: TypeError },
  { name: "getAllocator('debug')", act: (c) => c.memory.getAllocator("debug"), expect: "unsupported" },
  { name: "defragment('x')", act: (c) => c.memory.defragment(any("x")), expect: TypeError },
  { name: "defragmentAllocator(1)", act: (c) => c.memory.defragmentAllocator(any(1)), expect: TypeError },
  { name: "defragmentAllocator('pool')", act: (c) => c.memory.defragmentAllocator("pool"), expect: "unsupported" },
  { name: "isValidPointer('x')", act: (c) => c.memory.isValidPointer(any("x")), expect: TypeError },
  { name: "getAllocationInfo({})", act: (c) => c.memory.getAllocationInfo(any({})), expect: TypeError },
];

badInputTable(
  "MemoryInterface",
  interfaceRows.map((row) => ({ ...row, arrange, after: stillUsable })),
);

badInputTable("MemoryInterface after dispose", [
  {
    name: "allocate",
    arrange: () => {
      const memory = new MemoryInterface({ pressure: false });
      memory.dispose();
      return memory;
    },
    act: (memory) => memory.allocateTyped(64, "pool"),
    expect: "use-after-free",
  },
]);

// allocateAsync reports bad input by rejecting, before any native call, as allocate throws.
const asyncRows: { name: string; request: unknown; expect: Expected }[] = [
  { name: "null", request: null, expect: TypeError },
  { name: "a size", request: 64, expect: TypeError },
  { name: "timeoutMs -1", request: { size: 64, timeoutMs: -1 }, expect: RangeError },
  { name: "timeoutMs NaN", request: { size: 64, timeoutMs: NaN }, expect: RangeError },
  { name: "an unknown type", request: { size: 64, type: "gpu" }, expect: TypeError },
  { name: "secret with shared", request: { size: 64, type: "shared", flags: ["secret"] }, expect: TypeError },
  { name: "alignment 3", request: { size: 64, alignment: 3 }, expect: RangeError },
  { name: "over the pool's classes", request: { size: 5000, type: "pool", timeoutMs: 60_000 }, expect: RangeError },
];
for (const row of asyncRows) {
  test(`MemoryInterface.allocateAsync: ${row.name} rejects with ${expectedLabel(row.expect)}, no native call`, async () => {
    using memory = new MemoryInterface({ pressure: false });
    const spy = spyOnNativeCalls();
    let promise: Promise<unknown>;
    try {
      promise = memory.allocateAsync(any(row.request));
    } finally {
      spy.restore();
    }
    await assert.rejects(promise, (error: unknown) => matches(error, row.expect));
    assert.deepEqual(spy.calls, []);
    assert.equal(memory.getMemoryStats().allocationCount, 0);
  });
}

interface RegionArranged {
  regions: RegionAllocator;
  block: Uint8Array;
  freed: Float32Array;
}

function arrangeRegions(): RegionArranged {
  const regions = new RegionAllocator({ capacity: 1 << 16 });
  const freed = regions.allocateAudioData(16); // another region than `block`: its place is not reused
  regions.deallocate(freed);
  return { regions, block: regions.allocateVertexData(4, Vertex), freed };
}

function regionsUsable(c: RegionArranged): void {
  assert.equal(c.regions.getMemoryReport().totalAllocated, 4 * 16);
  c.regions.deallocate(c.regions.allocateAudioData(16));
  c.regions.deallocate(c.block);
  c.regions.dispose();
}

const regionRows: Omit<BadInputRow<RegionArranged>, "arrange" | "after">[] = [
  { name: "new RegionAllocator(5)", act: () => new RegionAllocator(any(5)), expect: TypeError },
  { name: "capacity 0", act: () => new RegionAllocator({ capacity: 0 }), expect: RangeError },
  { name: "backing {}", act: () => new RegionAllocator(any({ backing: {} })), expect: TypeError },
  { name: "region('gpu')", act: (c) => c.regions.region(any("gpu")), expect: TypeError },
  { name: "region('toString')", act: (c) => c.regions.region(any("toString")), expect: TypeError },
  {
    name: "allocateVertexData(1, {})",
    act: (c) => c.regions.allocateVertexData(1, any({ size: 4, align: 4 })),
    expect: TypeError,
  },
  { name: "allocateVertexData(-1)", act: (c) => c.regions.allocateVertexData(-1, Vertex), expect: RangeError },
  { name: "allocateVertexData(1.5)", act: (c) => c.regions.allocateVertexData(1.5, Vertex), expect: RangeError },
  { name: "allocateUniformData('1')", act: (c) => c.regions.allocateUniformData(any("1"), Vertex), expect: TypeError },
  { name: "allocateAudioData(-1)", act: (c) => c.regions.allocateAudioData(-1), expect: RangeError },
  { name: "allocateAudioData(2**50)", act: (c) => c.regions.allocateAudioData(2 ** 50), expect: RangeError },
  {
    name: "allocateAlignedBuffer(10, 3, 'f32')",
    act: (c) => c.regions.allocateAlignedBuffer(10, 3, "f32"),
    expect: RangeError,
  },
  {
    name: "allocateAlignedBuffer(10, 8192, 'f32')",
    act: (c) => c.regions.allocateAlignedBuffer(10, 8192, "f32"),
    expect: RangeError,
  },
  {
    name: "allocateAlignedBuffer(10, 64, 'f16')",
    act: (c) => c.regions.allocateAlignedBuffer(10, 64, any("f16")),
    expect: TypeError,
  },
  { name: "deallocate('x')", act: (c) => c.regions.deallocate(any("x")), expect: TypeError },
  { name: "deallocate of a JS array", act: (c) => c.regions.deallocate(new Uint8Array(8)), expect: "invalid-free" },
  { name: "deallocate twice", act: (c) => c.regions.deallocate(c.freed), expect: "double-free" },
  {
    name: "deallocate of an interior view",
    act: (c) => c.regions.deallocate(c.block.subarray(16)),
    expect: "invalid-free",
  },
];

badInputTable("RegionAllocator", regionRows.map((row) => ({ ...row, arrange: arrangeRegions, after: regionsUsable })));

// Adversarial finding (hal3, 6): a flags length of 1.5 read flags[1], past the length.
test("a flags list is read up to its length only, and its length once", () => {
  using memory = new MemoryInterface({ pressure: false });
  const read: PropertyKey[] = [];
  const flags = new Proxy(["zero", "cacheable"], {
    get: (t, k) => (read.push(k), k === "length" ? 1.5 : Reflect.get(t, k)),
  });
  assert.throws(() => memory.allocate(request({ type: "pool", flags })), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /^Cannot allocate as 'flags' must be an array of at most 5 flags: its length reads 1\.5/);
    return true;
  });
  assert.deepEqual(read, ["length"], "the length, once, and no element");
  assert.throws(() => memory.allocate(request({ flags: flagsOfLength("2") })), (e: unknown) => {
    assert.ok(e instanceof TypeError);
    assert.match(
      e.message,
      /^Cannot allocate as 'flags' must be an array of flags .*: its length reads "2", not a number$/,
    );
    return true;
  });
});

// Adversarial finding (hal3, 5).
test("allocateTyped names the types when the type is left out", () => {
  using memory = new MemoryInterface({ pressure: false });
  for (const call of [() => any(memory).allocateTyped(64), () => memory.allocateTyped(64, any(undefined), 64)]) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof TypeError);
      assert.equal(
        e.message,
        "Cannot allocate as 'type' must be one of system, video, audio, network, shared, temporary, stack, pool: " +
          "current value is undefined (allocateTyped(size, type) takes the type; allocate(size) serves system memory)",
      );
      return true;
    });
  }
  assert.equal(memory.getMemoryStats().allocationCount, 0);
});

// Adversarial finding (hal3, 4): a revoked Proxy (every operation on it throws) as the request, its flags or the
// options got the engine's TypeError ("Cannot perform 'IsArray' on a proxy that has been revoked"). Also a Proxy
// that revokes itself while it is read (from its own trap). Each is a TypeError in the library's words, and
// nothing changes.
test("a revoked Proxy as a request, flags, size or options: a TypeError in the library's words", async () => {
  const revoked = () => {
    const { proxy, revoke } = Proxy.revocable<Record<string, unknown>>({ size: 64, type: "pool" }, {});
    revoke();
    return proxy;
  };
  const revokedArray = () => {
    const { proxy, revoke } = Proxy.revocable<string[]>(["zero"], {});
    revoke();
    return proxy;
  };
  // Proxies whose trap revokes them on the first read: later reads throw.
  const selfRevoking = <T extends object>(target: T): T => {
    const r = Proxy.revocable(target, { get: (t, k) => (r.revoke(), Reflect.get(t, k)) });
    return r.proxy;
  };
  using memory = new MemoryInterface({ pressure: false });
  const before = JSON.stringify(memory.getMemoryStats());
  const calls: [string, () => unknown][] = [
    ["allocate(revoked)", () => memory.allocate(any(revoked()))],
    ["allocate(revoked, 16)", () => memory.allocate(any(revoked()), any(16))],
    ["a request whose flags are revoked", () => memory.allocate(request({ type: "pool", flags: revokedArray() }))],
    ["allocateTyped's flags revoked", () => memory.allocateTyped(64, "pool", undefined, any(revokedArray()))],
    ["allocateTyped(revoked, 'pool')", () => memory.allocateTyped(any(revoked()), "pool")],
    ["allocateTyped(revoked, 'temporary')", () => memory.allocateTyped(any(revoked()), "temporary")],
    ["allocateTyped(revoked, 'system')", () => memory.allocateTyped(any(revoked()), "system")],
    ["a request that revokes itself", () => memory.allocate(any(selfRevoking({ size: 64, type: "pool" })))],
    ["a request with an extra key that revokes itself", () => memory.allocate(any(selfRevoking({ size: 64, x: 1 })))],
    [
      "flags that revoke themselves",
      () => memory.allocate(request({ type: "pool", flags: selfRevoking(["zero", "cacheable"]) })),
    ],
    ["new MemoryInterface(revoked)", () => new MemoryInterface(any(revoked()))],
    ["new MemoryInterface({ budgets: revoked })", () => new MemoryInterface(any({ budgets: revoked() }))],
    ["new MemoryInterface(self-revoking)", () => new MemoryInterface(any(selfRevoking({ pressure: false })))],
    ["new RegionAllocator(revoked)", () => new RegionAllocator(any(revoked()))],
    ["new RegionAllocator({ backing: revoked })", () => new RegionAllocator(any({ backing: revoked() }))],
  ];
  const library = (label: string) => (e: unknown) => {
    assert.ok(e instanceof TypeError, `${label}: ${e}`);
    assert.match(e.message, /^Cannot (allocate|create \w+) as /, `${label}: ${e.message}`);
    assert.doesNotMatch(e.message, /proxy that has been revoked|Cannot perform|IsArray|cannot be called on/, label);
    return true;
  };
  for (const [label, call] of calls) assert.throws(call, library(label), label);
  for (
    const [label, make] of [
      ["allocateAsync(revoked)", () => revoked()],
      ["allocateAsync(self-revoking)", () => selfRevoking({ size: 64, type: "pool", timeoutMs: 5 })],
    ] as const
  ) {
    await assert.rejects(memory.allocateAsync(any(make())), library(label), label);
  }
  assert.equal(JSON.stringify(memory.getMemoryStats()), before, "nothing changed");
  memory.deallocate(memory.allocate({ size: 64, type: "pool" })); // still serves
});
