// Messages and categories a new user meets first: a budget typo names
// `budgets.<key>` and the memory types; isValidPointer / getAllocationInfo
// name themselves and what they accept; another interface's live allocation,
// given as its bytes or its address, is "mismatched-allocator" (as the
// allocation object itself is), and memory of no interface stays "invalid-free".
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  Arena,
  DynamicArray,
  MemoryInterface,
  nativeInfo,
  RegionAllocator,
  SystemAllocator,
} from "../../mod.ts";

const any = (v: unknown) => v as never;

test("a budget for an unknown type names budgets.<key> and lists the memory types", () => {
  assert.throws(() => new MemoryInterface({ budgets: any({ gpu: 1 }) }), (error: Error) => {
    assert.ok(error instanceof TypeError);
    assert.equal(
      error.message,
      "Cannot create MemoryInterface as option 'budgets.gpu' is not known: expected only system, video, audio, " +
        "network, shared, temporary, stack, pool in 'budgets'",
    );
    return true;
  });
  assert.throws(
    () => new MemoryInterface(any({ budget: 1 })),
    /option 'budget' is not known: expected only budgets, pressure$/,
  );
});

test("isValidPointer and getAllocationInfo name themselves and what they accept", () => {
  using memory = new MemoryInterface({ pressure: false });
  for (
    const [call, name] of [[() => memory.isValidPointer(any("1")), "isValidPointer"], [
      () => memory.getAllocationInfo(any("1")),
      "getAllocationInfo",
    ]] as const
  ) {
    assert.throws(call, (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, new RegExp(`with ${name} as 'target' must be an address \\(a number\\) or a view`));
      assert.match(error.message, /current value is "1"/);
      return true;
    });
  }
});

test("another interface's live allocation, by bytes or address, is mismatched-allocator", () => {
  using m1 = new MemoryInterface({ pressure: false });
  using m2 = new MemoryInterface({ pressure: false });
  for (const type of ["system", "pool", "temporary"] as const) {
    const a = m1.allocateTyped(64, type);
    m2.allocateTyped(64, type); // m2 has allocations of its own
    for (const target of [a, a.bytes, a.address]) {
      assert.throws(
        () => m2.deallocate(target),
        (e: unknown) => e instanceof AllocationError && e.category === "mismatched-allocator",
        `${type} ${typeof target}`,
      );
    }
    assert.equal(m1.isValidPointer(a.bytes), true, "refused, so nothing changed");
    m1.deallocate(a.bytes);
  }
  const foreign = new SystemAllocator();
  const mine = foreign.alloc(64);
  assert.throws(
    () => m2.deallocate(mine),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
    "memory of no interface",
  );
  foreign.free(mine);
  foreign.dispose();
});

test("after the other interface is disposed its views are released memory, not mismatched", () => {
  const m1 = new MemoryInterface({ pressure: false });
  using m2 = new MemoryInterface({ pressure: false });
  const a = m1.allocateTyped(64, "system");
  const address = a.address;
  m1.dispose();
  assert.throws(
    () => m2.deallocate(a.bytes),
    (e: unknown) => e instanceof AllocationError && e.category === "double-free",
  );
  assert.throws(
    () => m2.deallocate(address),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
  );
});

test("a shared name that other shared memory has is refused in the request's terms, with what to do", {
  skip: nativeInfo().os !== "linux" && nativeInfo().os !== "darwin" && "no shared memory on this system",
}, () => {
  using a = new MemoryInterface({ pressure: false });
  using b = new MemoryInterface({ pressure: false });
  const name = `mk-taken-${crypto.randomUUID().slice(0, 8)}`;
  const held = a.allocate({ size: 64, type: "shared", name });
  const before = JSON.stringify(b.getMemoryStats());
  for (const [who, memory] of [["another interface", b], ["the same interface", a]] as const) {
    assert.throws(() => memory.allocate({ size: 64, type: "shared", name }), (error: unknown) => {
      assert.ok(error instanceof AllocationError);
      assert.equal(error.category, "platform");
      assert.equal(error.errno, 17, "EEXIST");
      assert.equal(
        error.message,
        `Cannot allocate 64 bytes of shared memory named "${name}": other shared memory has that name (EEXIST); ` +
          `pass another name, leave out 'name' for a unique one, or open the existing memory with ` +
          `openSharedMemory("${name}")`,
        who,
      );
      assert.doesNotMatch(error.message, /exclusive/, "an option the caller never passed");
      return true;
    }, who);
  }
  assert.equal(JSON.stringify(b.getMemoryStats()), before, "nothing changed");
  held.bytes[0] = 1; // still a's
  a.deallocate(held);
});

test("a disposed interface: every call that would use it is use-after-free, whatever its arguments would get", async () => {
  const memory = new MemoryInterface({ pressure: false });
  const held = memory.allocateTyped(64, "system");
  memory.dispose();
  const useAfterFree = (e: unknown) =>
    e instanceof AllocationError && e.category === "use-after-free" &&
    /the MemoryInterface was disposed/.test(e.message);
  const calls: [string, () => unknown][] = [
    ["allocate(size)", () => memory.allocate(64)],
    ["allocate(pool request)", () => memory.allocate({ size: 64, type: "pool" })],
    ["allocate(shared request)", () => memory.allocate({ size: 64, type: "shared" })],
    ["allocateTyped(temporary)", () => memory.allocateTyped(64, "temporary")],
    ["allocateTyped(audio)", () => memory.allocateTyped(64, "audio")],
    ["deallocate(allocation)", () => memory.deallocate(held)],
    ["deallocate(address)", () => memory.deallocate(held.address)],
    ["beginFrame", () => memory.beginFrame()],
    ["endFrame", () => memory.endFrame()],
    ["frame", () => memory.frame()],
    ["getMemoryStats()", () => memory.getMemoryStats()],
    ["getMemoryStats(type)", () => memory.getMemoryStats("pool")],
    ["registerPressureCallback", () => memory.registerPressureCallback(1, () => {})],
    ["getAllocator", () => memory.getAllocator("pool")],
    ["defragment", () => memory.defragment()],
    ...(["system", "arena", "stack", "pool", "buddy", "free-list"] as const).map((kind) =>
      [`defragmentAllocator(${kind})`, () => memory.defragmentAllocator(kind)] as [string, () => unknown]
    ),
  ];
  for (const [name, call] of calls) assert.throws(call, useAfterFree, name);
  await assert.rejects(memory.allocateAsync({ size: 64 }), useAfterFree, "allocateAsync");
  await assert.rejects(memory.allocateAsync({ size: 64, timeoutMs: 10 }), useAfterFree, "allocateAsync with a wait");
  // Bad arguments are still named first; the calls that only answer questions answer them.
  assert.throws(() => memory.defragmentAllocator(any("heap")), TypeError);
  assert.throws(() => memory.getAllocator(any("heap")), TypeError);
  assert.equal(memory.isValidPointer(held.address), false);
  assert.equal(memory.getAllocationInfo(held.bytes), null);
  assert.deepEqual(memory.availableAllocators(), ["system", "arena", "stack", "pool", "buddy", "free-list"]);
  memory.unregisterPressureCallback(1); // unknown ids are ignored, also now
  memory.dispose(); // a second call does nothing
});

test("a budget past 2^53 is refused naming the real limit, not as a number that is not an integer", () => {
  for (const type of ["stack", "pool", "system"] as const) {
    assert.throws(
      () => new MemoryInterface({ pressure: false, budgets: { [type]: 2 ** 53 } }),
      (e) => e instanceof RangeError && /must be at most \d+/.test(e.message) && !/integer/.test(e.message),
    );
  }
});

// What memkit releases on the program's behalf is said in the program's terms: the call it made, not the
// allocator memkit used inside (the program never called Arena.reset(), and a guard or region allocator
// refuses dispose()).
const releasedBy = (what: string) => (e: unknown) =>
  e instanceof AllocationError && e.category === "use-after-free" && e.message.includes(`(${what} released it)`) &&
  !/(Arena|FreeListAllocator|PoolAllocator|StackAllocator|BuddyAllocator|SystemAllocator)\.\w+\(\)/.test(e.message);

test('an array over getAllocator("arena") after endFrame(): the message names MemoryInterface.endFrame()', () => {
  using memory = new MemoryInterface({ pressure: false });
  for (const framed of [false, true]) {
    if (framed) memory.beginFrame();
    const array = new DynamicArray<number>("f64", { allocator: memory.getAllocator("arena") });
    array.push(1);
    memory.endFrame();
    assert.throws(() => array.get(0), releasedBy("MemoryInterface.endFrame()"), framed ? "in a frame" : "outside");
  }
});

test('an array over getAllocator("arena") after a frame() scope ends: the message names the scope\'s end', () => {
  using memory = new MemoryInterface({ pressure: false });
  let array: DynamicArray<number>;
  {
    using _frame = memory.frame();
    array = new DynamicArray<number>("f64", { allocator: memory.getAllocator("arena") });
    array.push(1);
  }
  assert.throws(() => array.get(0), releasedBy("the end of a MemoryInterface.frame() scope"));
});

for (const kind of ["free-list", "pool", "stack", "buddy", "system", "arena"] as const) {
  test(`an array and an Arena over getAllocator("${kind}") after dispose(): the message names MemoryInterface.dispose()`, () => {
    const memory = new MemoryInterface({ pressure: false });
    const guard: Allocator = memory.getAllocator(kind);
    const array = new DynamicArray<number>("f64", { allocator: guard, capacity: 8 });
    array.push(1);
    const arena = new Arena({ capacity: 1024, backing: guard });
    arena.alloc(16);
    memory.dispose();
    assert.throws(() => array.get(0), releasedBy("MemoryInterface.dispose()"));
    assert.throws(
      () => arena.alloc(16),
      (e) => e instanceof AllocationError && /MemoryInterface\.dispose\(\)/.test(e.message),
    );
  });
}

test("an array over a region after RegionAllocator.dispose(): the message names RegionAllocator.dispose()", () => {
  for (const name of ["vertex", "uniform", "audio", "texture"] as const) {
    const regions = new RegionAllocator();
    const array = new DynamicArray<number>("f32", { allocator: regions.region(name) });
    array.push(1);
    regions.dispose();
    assert.throws(() => array.get(0), releasedBy("RegionAllocator.dispose()"), name);
  }
});

// Finding 9 of the fourth new user: "1 bytes"; a runtime message naming a TypeScript type
// ("StructLayout<unknown>") and printing a value as "[object Object]"; addresses in decimal where the leak
// report writes hex; two parenthesised asides in a row. Each pattern, across the messages of src/hal.
function messageOf(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("it did not throw");
}

test("messages count one byte as one byte, never '1 bytes'", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { pool: 1, temporary: 4096 } });
  memory.allocateTyped(4096, "temporary");
  const messages = [
    messageOf(() => memory.allocateTyped(2, "pool")), // "the pool budget of 1 byte can never hold 2"
    messageOf(() => memory.allocateTyped(1, "temporary")), // "Cannot allocate 1 byte of temporary memory"
    await memory.allocateAsync({ size: 1, type: "temporary", timeoutMs: 5 }).then(
      () => "served",
      (e: Error) => e.message,
    ),
  ];
  const one = memory.allocateTyped(1, "pool");
  memory.deallocate(one);
  messages.push(messageOf(() => memory.deallocate(one))); // "Cannot deallocate 1 byte of pool memory"
  for (const message of messages) {
    assert.doesNotMatch(message, /\b1 bytes\b/, message);
    assert.match(message, /\b1 byte\b/, message);
  }
});

test("a value of the wrong kind is named as what it is, never as '[object Object]' or a TypeScript type", () => {
  using regions = new RegionAllocator({ capacity: 4096 });
  using memory = new MemoryInterface({ pressure: false });
  const messages = [
    messageOf(() => regions.allocateVertexData(1, any({ size: 32 }))),
    messageOf(() => regions.allocateUniformData(1, any(new Map()))),
    messageOf(() => regions.allocateAlignedBuffer(1, 64, any({ size: 4 }))),
    messageOf(() => regions.region(any({ name: "vertex" }))),
    messageOf(() => memory.getMemoryStats(any({ type: "pool" }))),
    messageOf(() => memory.isValidPointer(any({ address: 1 }))),
    messageOf(() => memory.getAllocator(any({}))),
    messageOf(() => memory.allocate(any({ size: {} }))),
    messageOf(() => memory.allocate(any({ size: 8, flags: [{}] }))),
    messageOf(() => memory.registerPressureCallback(any({}), () => {})),
  ];
  for (const message of messages) {
    assert.doesNotMatch(message, /\[object /, message);
    assert.doesNotMatch(message, /StructLayout</, message);
  }
  assert.match(messages[0], /'layout' must be a layout from struct\(\): current value is an object$/);
  assert.match(messages[1], /current value is a Map$/);
});

test("addresses in the HAL's messages are hex, as the leak report writes them", () => {
  using memory = new MemoryInterface({ pressure: false });
  const other = new MemoryInterface({ pressure: false });
  try {
    const a = memory.allocateTyped(64, "pool");
    const theirs = other.allocateTyped(64, "pool");
    const hex = (n: number) => `0x${n.toString(16)}`;
    const cases: [() => unknown, number][] = [
      [() => memory.deallocate(a.address + 8), a.address + 8], // inside an allocation
      [() => memory.deallocate(a.bytes.subarray(0, 8)), a.address], // another view over a live one
      [() => memory.deallocate(theirs.address), theirs.address], // another interface's
      [() => memory.deallocate(4096), 4096], // memory of none
    ];
    for (const [call, address] of cases) {
      const message = messageOf(call);
      assert.ok(message.includes(hex(address)), message);
      assert.ok(!message.includes(String(address)) || address < 1e6, `decimal address in: ${message}`);
    }
    assert.match(
      messageOf(() => memory.deallocate(a.address + 8)),
      new RegExp(`the 64-byte pool allocation at ${hex(a.address)}`),
    );
    memory.deallocate(a);
    other.deallocate(theirs);
  } finally {
    other.dispose();
  }
});

test("a refusal is one sentence: no two parenthesised asides in a row", () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { stack: 8192, pool: 64 } });
  const messages = [
    messageOf(() => memory.allocateTyped(8193, "stack")),
    messageOf(() => memory.allocate({ size: 8193, type: "stack" })),
    messageOf(() => memory.allocateTyped(128, "pool")),
    messageOf(() => memory.allocateTyped(5000, "pool")),
    messageOf(() => memory.allocateTyped(1537, "network")),
  ];
  if (nativeInfo().maxViewBytes < 2 ** 40) {
    // The heap's chunk for it (the block, its alignment, rounded to pages) is more than one view: refused at once.
    messages.push(messageOf(() => memory.allocateTyped(nativeInfo().maxViewBytes - 1, "video")));
  }
  for (const message of messages) assert.doesNotMatch(message, /\) \(/, message);
  assert.match(messages[0], /the stack holds 8192 bytes, the size budgets\.stack sets \(pass allowFallback: true/);
});
