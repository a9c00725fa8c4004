// The views an array hands out (`bytes`, `view()` of any type, a DataView):
// they are over an ArrayBuffer of the array's own, which memkit detaches
// whenever the storage goes or moves, so no view outlives the memory (also
// when the allocator releases it without detaching anything itself); a view
// may write, so it never reaches storage a snapshot shares; and a buffer
// someone else detached (transfer()) keeps its memory from ever being freed.
// Crash-prone cases run in a child process (test/fixtures/array_release_child.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import {
  AllocationError,
  Arena,
  DynamicArray,
  FailingAllocator,
  FreeListAllocator,
  simd,
  SIMDArray,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

function child(scenario: string): unknown {
  const result = runChild(fixture("array_release_child.ts"), {}, [scenario]);
  assert.equal(result.signal, null, `${scenario}: killed by ${result.signal}\n${result.stderr}`);
  assert.equal(result.status, 0, `${scenario}: exit ${result.status}\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split("\n").pop()!);
}

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;

// A view's byte length from its internal slot (a DataView over a detached buffer throws on `byteLength`).
function lengthOfView(view: ArrayBufferView): number {
  try {
    return view.byteLength;
  } catch {
    return 0;
  }
}

const CTORS = [
  Uint8Array,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
] as const;

// Every kind of view of `array` (f64 elements: whole elements of every type).
function allViews(array: DynamicArray<number>): [string, ArrayBufferView][] {
  return [
    ["bytes", array.bytes],
    ["bytes.subarray(8)", array.bytes.subarray(8)],
    ...CTORS.map((ctor) => [`view(${ctor.name})`, array.view(ctor as never)] as [string, ArrayBufferView]),
  ];
}

// ---------------------------------------------------------------- 1. no view outlives the storage

test("adversarial 1: after a stack rewind/reset, an arena reset/scope end without safety, a DebugAllocator without detaching or safety, a FailingAllocator over a stack, old views read as length 0 and never reach the next block (child process)", () => {
  const results = child("views after a release that detaches nothing") as Record<string, unknown>;
  assert.equal(Object.keys(results).length, 7);
  for (const [name, result] of Object.entries(results)) {
    assert.deepEqual(result, {
      "ids.view(Uint32Array)": [0, null],
      "ids.bytes": 0,
      "ids.view(DataView)": 0,
      "points.view(Float32Array)": 0,
      "points.bytes": 0,
      "next block untouched": true,
      "ids.get(0)": "uaf",
      "points.get(0)": "uaf",
    }, name);
  }
});

test("every view an array handed out reads as length 0 after its free(), a growth, reserve() and compact()", () => {
  const events: [string, (array: DynamicArray<number>) => void][] = [
    ["free()", (array) => array.free()],
    ["[Symbol.dispose]()", (array) => array[Symbol.dispose]()],
    ["a push that grows", (array) => array.pushMany([5, 6, 7, 8, 9])],
    ["reserve(1000)", (array) => array.reserve(1000)],
    ["compact()", (array) => array.compact()],
  ];
  for (const allocator of [new SystemAllocator(), new FreeListAllocator({ capacity: 1 << 16 }), new Arena()]) {
    for (const [event, act] of events) {
      const array = new DynamicArray<number>("f64", { allocator, capacity: 8 });
      array.pushMany([1, 2, 3, 4]);
      const views = allViews(array);
      act(array);
      for (const [name, view] of views) {
        assert.equal(lengthOfView(view), 0, `${allocator.constructor.name}, ${event}: ${name}`);
      }
      if (event !== "free()" && event !== "[Symbol.dispose]()") {
        assert.deepEqual([...array.view(Float64Array)].slice(0, 4), [1, 2, 3, 4], "a new view sees the elements");
        array.free();
      }
    }
  }
});

test("a view stays valid while the storage neither moves nor goes; a later one covers the elements pushed since", () => {
  using array = new DynamicArray<number>("u32", { capacity: 8 });
  array.pushMany([1, 2]);
  const first = array.view(Uint32Array);
  array.push(3);
  array.set(0, 10);
  assert.equal(array.pop(), 3);
  array.swapRemove(1);
  array.push(4);
  assert.deepEqual([...first], [10, 4]);
  first[1] = 40; // a view writes to the array
  assert.equal(array.get(1), 40);
  array.push(5);
  assert.deepEqual([...array.view(Uint32Array)], [10, 40, 5]);
  assert.equal(first.buffer, array.bytes.buffer, "one buffer per storage");
});

test("push-only arrays make no buffer of their own; the first view makes one, and only a move or release makes another", () => {
  using values = new DynamicArray<number>("f32", { capacity: 4 });
  using points = new SIMDArray("f32x3", { capacity: 4 });
  const wrap = native.wrap;
  let made = 0; // (allocators wrap their blocks too: only calls with no allocation under way count here)
  native.wrap = (address: number, byteLength: number) => {
    made++;
    return wrap(address, byteLength);
  };
  try {
    for (let i = 0; i < 4; i++) {
      values.push(i);
      points.push([i, i, i]);
    }
    void values.get(3);
    void [...values];
    points.scale(2);
    void points.magnitudes();
    void points.dot(points);
    void points.sum();
    values.set(0, 1);
    assert.equal(made, 0, "no view was asked for");
    void values.bytes;
    void values.view(Float32Array);
    void values.view(DataView);
    void values.address;
    assert.equal(made, 1, "one buffer for every view of the same storage");
    const before = values.bytes.buffer;
    values.push(4); // grows: the storage moves (the allocator wraps its new block)
    const grown = made;
    assert.notEqual(values.bytes.buffer, before);
    assert.equal(made, grown + 1, "a new buffer for the new storage");
    void values.view(Uint8Array);
    assert.equal(made, grown + 1);
  } finally {
    native.wrap = wrap;
  }
});

test("allocator.free(array.bytes) is refused: the view is the array's, not the allocator's block; the array lives on", () => {
  const allocators = [
    new SystemAllocator(),
    new Arena({ capacity: 1 << 16 }),
    new FreeListAllocator({ capacity: 1 << 16 }),
    new StackAllocator({ capacity: 1 << 16 }),
  ];
  for (const allocator of allocators) {
    const array = new DynamicArray<number>("u32", { allocator });
    array.pushMany([1, 2, 3]);
    const bytes = array.bytes;
    assert.throws(() => allocator.free(bytes), isCategory("invalid-free"), allocator.constructor.name);
    assert.deepEqual([...array], [1, 2, 3], allocator.constructor.name);
    assert.equal(bytes.length, 12);
    array.free();
    assert.equal(bytes.length, 0);
  }
});

// ---------------------------------------------------------------- 2. views never bypass snapshot() copy-on-write

test("adversarial 2: a write through a view never changes a snapshot, in either direction", () => {
  using array = new DynamicArray<number>("u32");
  array.pushMany([1, 2, 3]);
  using snap = array.snapshot();
  array.view(Uint32Array)[0] = 100;
  assert.deepEqual([...snap], [1, 2, 3]);
  assert.deepEqual([...array], [100, 2, 3]);
  snap.bytes[4] = 200;
  assert.deepEqual([...array], [100, 2, 3]);
  assert.deepEqual([...snap], [1, 200, 3]);

  using other = new DynamicArray<number>("u32");
  other.pushMany([1, 2, 3]);
  using before = other.snapshot();
  simd.fill(other.bytes, 0);
  assert.deepEqual([...before], [1, 2, 3]);
  assert.deepEqual([...other], [0, 0, 0]);
  other.view(DataView).setUint32(0, 9, true);
  assert.deepEqual([...before], [1, 2, 3]);
});

test("a snapshot of an array that handed out views (or its address) copies at once: the old views write only to the array", () => {
  using array = new DynamicArray<number>("u32");
  array.pushMany([1, 2, 3]);
  const view = array.view(Uint32Array);
  using snap = array.snapshot();
  assert.equal(snap.metrics().allocations, 1, "the snapshot has storage of its own");
  view[0] = 100;
  assert.deepEqual([...snap], [1, 2, 3]);
  assert.deepEqual([...array], [100, 2, 3]);

  using pointed = new DynamicArray<number>("u32");
  pointed.pushMany([1, 2, 3]);
  const address = pointed.address;
  using copy = pointed.snapshot();
  assert.notEqual(copy.address, address);
  assert.equal(pointed.address, address, "the array keeps its storage (and its address)");
});

test("the address of a storage a snapshot shares is of a copy of this array's own", () => {
  using array = new DynamicArray<number>("u32");
  array.pushMany([1, 2, 3]);
  using snap = array.snapshot();
  const a = array.address, b = snap.address;
  assert.notEqual(a, b);
  assert.deepEqual([...array], [1, 2, 3]);
  assert.deepEqual([...snap], [1, 2, 3]);
});

test("asking for a view of shared storage is all or nothing: an allocator that cannot copy changes nothing", () => {
  const failing = new FailingAllocator(new SystemAllocator(), { failAfter: 1 });
  const array = new DynamicArray<number>("u32", { allocator: failing });
  array.pushMany([1, 2, 3]);
  const snap = array.snapshot(); // shares: no allocation
  for (
    const ask of [() => array.bytes, () => array.view(Uint32Array), () => snap.view(DataView), () => array.address]
  ) {
    assert.throws(ask, isCategory("out-of-memory"));
  }
  assert.deepEqual([...array], [1, 2, 3]);
  assert.deepEqual([...snap], [1, 2, 3]);
  assert.equal(array.metrics().allocations, 1);
  assert.equal(snap.metrics().allocations, 0);
  snap.free();
  assert.equal(array.bytes.length, 12, "alone again: no copy needed");
  array.free();
});

test("adversarial 2: SIMDArray.snapshot() is a SIMDArray of the same type that its kernels accept; views of either never reach the other", () => {
  using a = new SIMDArray("f32x3");
  a.pushMany([[1, 2, 3], [4, 5, 6]]);
  using snap = a.snapshot();
  assert.ok(snap instanceof SIMDArray);
  assert.equal(snap.stride, a.stride);
  a.add(snap);
  assert.deepEqual([...a], [[2, 4, 6], [8, 10, 12]]);
  assert.deepEqual([...snap], [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual([...a.dot(snap)], [28, 154]);
  snap.view(Float32Array)[0] = 50;
  assert.deepEqual(a.get(0), [2, 4, 6]);
  simd.fill(a.bytes, 0);
  assert.deepEqual(snap.get(1), [4, 5, 6]);
  using again = snap.snapshot();
  assert.ok(again instanceof SIMDArray);
  snap.scale(2);
  assert.deepEqual(again.get(0), [50, 2, 3]);
});

// ---------------------------------------------------------------- 5. a buffer memkit made, detached by someone else

// What every member gave after the theft (test/fixtures/array_release_child.ts stolen()).
function checkStolen(results: Record<string, string>, taken: boolean): void {
  const allocators = ["system", "stack", "arena", "free-list", "debug", "debug over a stack"];
  const corruption = (outcome: string) => /^corruption: .*detached outside memkit.*stays allocated/.test(outcome);
  for (const name of allocators) {
    const at = (member: string) => results[`${name}: ${member}`];
    for (const member of ["push that grows", "pushMany that grows", "reserve(100)", "free()", "[Symbol.dispose]()"]) {
      assert.ok(corruption(at(member)), `${name}: ${member}: ${at(member)}`);
    }
    assert.equal(at("bytes"), "ok 12", `${name}: a new buffer, never the engine's TypeError`);
    assert.equal(at("view(Uint32Array)"), "ok [1,2,3]", name);
    assert.equal(at("view(DataView)"), "ok 3", name);
    assert.equal(at("push within capacity"), "ok 4", name);
    assert.equal(at("length"), "ok 4", `${name}: the refusals changed nothing`);
    assert.equal(at("get(3)"), "ok 4", name);
    assert.equal(at("set(0, 9)"), "ok undefined", name);
    assert.equal(at("[...array]"), "ok [9,2,3,4]", name);
    assert.equal(at("remove(3)"), "ok 4", name);
    assert.equal(at("snapshot() (a copy)"), "ok [9,2,3]", name);
    assert.equal(at("bytes again, then simd.fill of the first element"), "ok 0", name);
    assert.equal(at("compact()"), "ok undefined", `${name}: already compact, nothing moves`);
    if (taken) assert.equal(at("the taken buffer still reaches the elements"), "ok true", name);
    assert.equal(at("the memory handed out again"), "ok false", `${name}: memkit never gave the memory back`);
  }
  const engine = Object.entries(results).filter(([, outcome]) => /detached/i.test(outcome) && !corruption(outcome));
  assert.deepEqual(engine, [], "no engine error about a detached buffer");
}

test("adversarial 5: arr.bytes.buffer.transfer(): the memory the stolen buffer reaches is never freed or moved; free() and growth report corruption and change nothing (child process)", () => {
  checkStolen(child("stolen by transfer()") as Record<string, string>, true);
});

test("adversarial 5: a structured-clone transfer of the array's buffer is the same theft (child process)", () => {
  checkStolen(child("stolen by structuredClone") as Record<string, string>, true);
});

test("adversarial 5: transfer(0) of the array's buffer is treated as a theft too: memkit cannot tell (child process)", () => {
  checkStolen(child("stolen by transfer(0)") as Record<string, string>, false);
});

test("an array whose buffer was taken and whose allocator then released the storage is use-after-free, never the engine's error", () => {
  const arena = new Arena({ capacity: 1 << 16 });
  const array = new DynamicArray<number>("u32", { allocator: arena });
  array.pushMany([1, 2, 3]);
  const taken = (array.bytes.buffer as ArrayBuffer).transfer();
  assert.equal(taken.byteLength, 64);
  // (An allocator's bulk release does not ask its holders: the taken buffer now reaches memory
  // the arena may hand out again. The arena keeps its chunks mapped, so it cannot fault.)
  arena.reset();
  assert.equal(array.length, 0);
  for (const use of [() => array.bytes, () => array.get(0), () => array.push(4), () => array.view(DataView)]) {
    assert.throws(use, isCategory("use-after-free"));
  }
  array.free(); // nothing to give back
  arena.dispose();
});
