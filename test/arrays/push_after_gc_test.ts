// Pushes right after a forced full collection (issue 14 item 9). In Bun,
// Bun.gc(true) gives the JavaScript heap's free pages back to the system, and
// the next pushes of object literals fault them in again, memkit or not; what
// memkit adds must not change: as many ArrayBuffers made over native memory
// (each counts as heap in Bun and paces its collector), storage pages taken
// from the memory freed arrays left (no fresh page faults), and nothing left
// counted once the array is freed. Counted, never timed.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { native, requestGC } from "../../ffi/native.ts";
import { DynamicArray, struct } from "../../mod.ts";

const Vertex = struct({ position: "f32x3", color: "f32x4" });
const N = 1_000_000;

// Minor page faults of this process so far (/proc/self/stat, field 10).
function minorFaults(): number {
  return Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")[7]);
}

// Runs `f`, counting the ArrayBuffers memkit makes over native memory and their bytes.
function wrapsOf(f: () => void): { count: number; bytes: number } {
  const layer = native as { wrap: typeof native.wrap };
  const original = layer.wrap;
  let count = 0, bytes = 0;
  layer.wrap = (address, byteLength) => {
    count++;
    bytes += byteLength;
    return original(address, byteLength);
  };
  try {
    f();
  } finally {
    layer.wrap = original;
  }
  return { count, bytes };
}

function pushVertices(): void {
  const vertices = new DynamicArray(Vertex);
  for (let i = 0; i < N; i++) vertices.push({ position: [i, i + 1, i + 2], color: [0.5, 0.5, i, 1] });
  assert.equal(vertices.length, N);
  vertices.free();
}

test("1M pushes right after a forced full GC make the same wraps as before, and free leaves nothing counted", () => {
  pushVertices(); // the allocator keeps the large blocks this frees for the next arrays
  requestGC();
  const counted = process.memoryUsage().external;
  const before = wrapsOf(pushVertices);
  requestGC();
  const after = wrapsOf(pushVertices);
  assert.deepEqual(after, before, "a collection changes nothing memkit wraps");
  assert.ok(before.count <= 32, `${before.count} wraps for 1M pushes`); // one per growth, not per push
  requestGC();
  const left = process.memoryUsage().external - counted;
  assert.ok(left < 1 << 20, `${left} bytes still counted as heap after free()`);
});

if (native.os === "linux") {
  test("1M pushes right after a forced full GC take their storage's pages from retained memory", () => {
    const pushScalars = () => {
      const values = new DynamicArray("f32");
      for (let i = 0; i < N; i++) values.push(i);
      values.free();
    };
    pushScalars();
    requestGC();
    const faults = minorFaults();
    pushScalars();
    // 1M f32 grown by doubling touches 2,048 fresh pages (8 MB) when its storage is not reused.
    const taken = minorFaults() - faults;
    assert.ok(taken < 512, `${taken} minor page faults for 1M pushes right after a collection`);
  });
}
