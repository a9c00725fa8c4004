// DynamicArray and SIMDArray against plain JavaScript: pushing 1M Vertex
// records, and dot / magnitudes / scale over f32x3 arrays.
import { DynamicArray, gcHint, SIMDArray, struct } from "../mod.ts";
import { native } from "../ffi/native.ts";
import { bytesMoved, compare, do_not_optimize } from "./_ratios.ts";

const Vertex = struct({ position: "f32x3", color: "f32x4" });
const N = 1_000_000;

// The hand-written buffers' growth: doubled (copied) when `records` records of 8 floats do not fit.
function roomFor(buffer: Float32Array<ArrayBuffer>, records: number): Float32Array<ArrayBuffer> {
  if (records * 8 <= buffer.length) return buffer;
  const bigger = new Float32Array(buffer.length * 2);
  bigger.set(buffer);
  return bigger;
}

// Every variant stores the same per-vertex data, built from the index as a
// program would build it from its input (one array literal per field).
compare("push 1M Vertex records", "array of objects", {
  "array of objects": () => {
    const all: { position: number[]; color: number[] }[] = [];
    for (let i = 0; i < N; i++) all.push({ position: [i, i + 1, i + 2], color: [0.5, 0.5, i, 1] });
    do_not_optimize(all);
  },
  "hand-written Float32Array doubling buffer": () => {
    let buffer = new Float32Array(16 * 8);
    let length = 0;
    for (let i = 0; i < N; i++) {
      buffer = roomFor(buffer, length + 1);
      const position = [i, i + 1, i + 2], color = [0.5, 0.5, i, 1];
      const at = length++ * 8;
      buffer[at] = position[0];
      buffer[at + 1] = position[1];
      buffer[at + 2] = position[2];
      buffer[at + 3] = 0;
      buffer[at + 4] = color[0];
      buffer[at + 5] = color[1];
      buffer[at + 6] = color[2];
      buffer[at + 7] = color[3];
    }
    do_not_optimize(buffer);
  },
  // The same buffer written with scalar stores and no per-record arrays: what a
  // program that computes each field in place would write (the fastest baseline).
  "hand-written Float32Array doubling buffer, scalar stores": () => {
    let buffer = new Float32Array(16 * 8);
    let length = 0;
    for (let i = 0; i < N; i++) {
      buffer = roomFor(buffer, length + 1);
      const at = length++ * 8;
      buffer[at] = i;
      buffer[at + 1] = i + 1;
      buffer[at + 2] = i + 2;
      buffer[at + 3] = 0;
      buffer[at + 4] = 0.5;
      buffer[at + 5] = 0.5;
      buffer[at + 6] = i;
      buffer[at + 7] = 1;
    }
    do_not_optimize(buffer);
  },
  "DynamicArray(Vertex).push": () => {
    const vertices = new DynamicArray(Vertex);
    for (let i = 0; i < N; i++) vertices.push({ position: [i, i + 1, i + 2], color: [0.5, 0.5, i, 1] });
    vertices.free();
  },
});

// 1M pushes right after a forced full collection (issue 14 item 9): in Bun,
// Bun.gc(true) gives the JavaScript heap's free pages back to the system, so
// the object literals of the next million pushes take fresh pages (~15,000
// minor page faults here, with or without memkit); pushes that make no garbage
// do not notice. Each "after gcHint()" case also pays for that collection:
// "gcHint() alone" is its cost.
function pushVertices(): void {
  const vertices = new DynamicArray(Vertex);
  for (let i = 0; i < N; i++) vertices.push({ position: [i, i + 1, i + 2], color: [0.5, 0.5, i, 1] });
  vertices.free();
}
function pushHandWritten(): void {
  let buffer = new Float32Array(16 * 8);
  for (let i = 0; i < N; i++) {
    buffer = roomFor(buffer, i + 1);
    const position = [i, i + 1, i + 2], color = [0.5, 0.5, i, 1];
    const at = i * 8;
    buffer[at] = position[0];
    buffer[at + 1] = position[1];
    buffer[at + 2] = position[2];
    buffer[at + 3] = 0;
    buffer[at + 4] = color[0];
    buffer[at + 5] = color[1];
    buffer[at + 6] = color[2];
    buffer[at + 7] = color[3];
  }
  do_not_optimize(buffer);
}
function pushScalars(): void {
  const values = new DynamicArray("f32");
  for (let i = 0; i < N; i++) values.push(i);
  values.free();
}
compare("push 1M right after a forced full GC", "DynamicArray(Vertex).push, no forced GC", {
  "DynamicArray(Vertex).push, no forced GC": pushVertices,
  "DynamicArray(Vertex).push after gcHint()": () => {
    gcHint();
    pushVertices();
  },
  "hand-written Float32Array doubling buffer, no forced GC": pushHandWritten,
  "hand-written Float32Array doubling buffer after gcHint()": () => {
    gcHint();
    pushHandWritten();
  },
  "DynamicArray(f32).push(i), no forced GC": pushScalars,
  "DynamicArray(f32).push(i) after gcHint()": () => {
    gcHint();
    pushScalars();
  },
  "gcHint() alone": () => gcHint(),
});

function jsDot(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0, e = 0; i < out.length; i++, e += 4) out[i] = a[e] * b[e] + a[e + 1] * b[e + 1] + a[e + 2] * b[e + 2];
}
// The same loop as one function a program runs over vectors of every size: it
// runs over both sizes before anything is measured. (Run over 1M vectors right
// before 4K ones, a loop ran the 4K ones 1.5–3× slower in Bun; after the 10 ms
// a fresh process runs each case before timing it, both measure the same.)
function jsDotAnySize(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0, e = 0; i < out.length; i++, e += 4) out[i] = a[e] * b[e] + a[e + 1] * b[e + 1] + a[e + 2] * b[e + 2];
}
function jsMagnitudes(a: Float32Array, out: Float32Array): void {
  for (let i = 0, e = 0; i < out.length; i++, e += 4) {
    out[i] = Math.sqrt(a[e] * a[e] + a[e + 1] * a[e + 1] + a[e + 2] * a[e + 2]);
  }
}
function jsScale(a: Float32Array, k: number): void {
  for (let i = 0; i < a.length; i++) a[i] *= k;
}

// Reading records back: an element as an object, against the array of objects
// a program would otherwise keep, and against indexing the floats directly.
// Each case builds its data when it starts (a generator case in mitata), so a
// million live objects do not slow the garbage collector for the other groups.
compare("read 1M Vertex records (sum of position.x)", "array of objects", {
  "array of objects": function* () {
    const objects = Array.from({ length: N }, (_, i) => ({ position: [i, i + 1, i + 2], color: [0.5, 0.5, i, 1] }));
    yield () => {
      let sum = 0;
      for (let i = 0; i < N; i++) sum += objects[i].position[0];
      return sum;
    };
  },
  "DynamicArray.get(i)": function* () {
    const stored = storedVertices();
    yield () => {
      let sum = 0;
      for (let i = 0; i < N; i++) sum += stored.get(i).position[0];
      return sum;
    };
    stored.free();
  },
  "DynamicArray.view(Float32Array)": function* () {
    const stored = storedVertices();
    const floats = stored.view(Float32Array);
    yield () => {
      let sum = 0;
      for (let i = 0; i < N; i++) sum += floats[i * 8];
      return sum;
    };
    stored.free();
  },
});
function storedVertices(): DynamicArray<{ position: number[]; color: number[] }> {
  const stored = new DynamicArray<{ position: number[]; color: number[] }>(Vertex, { capacity: N });
  for (let i = 0; i < N; i++) stored.push({ position: [i, i + 1, i + 2], color: [0.5, 0.5, i, 1] });
  return stored;
}

// The machine's copy bandwidth, for the GB/s table: 64 MiB copied (64 MiB read, 64 MiB written).
const source = new Uint8Array(64 << 20).fill(1), target = new Uint8Array(64 << 20);
const COPY = "copy 64 MiB (memory bandwidth)";
compare(COPY, "C memmove (libmemkit mk_copy)", {
  "C memmove (libmemkit mk_copy)": () => native.kernels.copy(target, source),
  "TypedArray.prototype.set": () => target.set(source),
});
bytesMoved(COPY, 2 * (64 << 20), "C memmove (libmemkit mk_copy)");

for (const [label, n] of [["4K", 4096], ["1M", 1 << 20]] as const) {
  const a = new SIMDArray("f32x3", { capacity: n });
  const b = new SIMDArray("f32x3", { capacity: n });
  const plainA = new Float32Array(n * 4), plainB = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const v = [(i % 7) + 1, (i % 5) + 1, (i % 3) + 1];
    a.push(v);
    b.push(v);
    plainA.set(v, i * 4);
    plainB.set(v, i * 4);
  }
  const out = new Float32Array(n);
  for (let k = 0, calls = (1 << 24) / n; k < calls; k++) jsDotAnySize(plainA, plainB, out);
  // Each kernel comparison runs in a fresh process of its own: the plain loop
  // then has the JIT state a program doing only this work gives it, not the
  // one other groups leave. In Deno, once a buffer is detached in a way that
  // ends V8's ArrayBufferDetaching protector (a buffer with a DataView over
  // it; a DynamicArray growing; SecretAllocator.free), V8 recompiles every
  // typed-array loop in the process with detach checks: this dot took 2.4×
  // and the scale loop 3.2× as long. Each group's `jsDot` then sees one size
  // only: its best case.
  const fresh = { freshProcess: import.meta.url };
  compare(`f32x3 dot, ${label} vectors`, "plain JS loop", {
    "plain JS loop": () => jsDot(plainA, plainB, out),
    "plain JS loop, one function for both sizes": () => jsDotAnySize(plainA, plainB, out),
    "SIMDArray.dot": () => a.dot(b, out),
  }, fresh);
  compare(`f32x3 magnitudes, ${label} vectors`, "plain JS loop", {
    "plain JS loop": () => jsMagnitudes(plainA, out),
    "SIMDArray.magnitudes": () => a.magnitudes(out),
  }, fresh);
  compare(`f32x3 scale, ${label} vectors`, "plain JS loop", {
    "plain JS loop": () => jsScale(plainA, 1.0000001),
    "SIMDArray.scale": () => a.scale(1.0000001),
  }, fresh);
  // Each f32x3 takes 16 bytes; dot reads two arrays and writes a float per
  // vector, magnitudes reads one and writes a float, scale rewrites one.
  bytesMoved(`f32x3 dot, ${label} vectors`, n * (16 + 16 + 4));
  bytesMoved(`f32x3 magnitudes, ${label} vectors`, n * (16 + 4));
  bytesMoved(`f32x3 scale, ${label} vectors`, n * (16 + 16));
}
