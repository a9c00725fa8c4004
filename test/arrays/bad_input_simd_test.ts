// Bad input at the native boundary (issue 10, the safety model: lengths cannot be faked): typed arrays
// that lie about their length, freed views, Proxies, and counts the arrays do
// not cover, through native.kernels (libmemkit and the TypeScript fallback)
// and simd. Rows that reach libmemkit run in child processes: a broken check
// there is a segfault, and it must fail one test, not the runner.
import assert from "node:assert/strict";
import { test } from "node:test";
import { native, type SimdLevel } from "../../ffi/native.ts";
import { useKernels } from "../_native_hooks.ts";
import { simd, SystemAllocator } from "../../mod.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";
import { kernelRows, truthRows } from "../fixtures/boundary_rows.ts";
import { childRowsTable } from "../fixtures/child_rows.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const original: SimdLevel = native.simd;

function freedBlock(): Uint8Array {
  const allocator = new SystemAllocator();
  const block = allocator.alloc(4096);
  allocator.free(block);
  return block;
}

function detachedFloats(): Float64Array {
  const floats = new Float64Array(64);
  floats.buffer.transfer(0);
  return floats;
}

function lyingLength(real: number, claimed: number): Uint8Array {
  const a = new Uint8Array(real);
  Object.defineProperty(a, "length", { value: claimed });
  return a;
}

class ClaimsMore extends Uint8Array {
  override get length(): number {
    return 2 ** 40;
  }
  override get byteLength(): number {
    return 2 ** 40;
  }
}

const proxy = () => new Proxy(new Uint8Array(4096), {});

badInputTable<Uint8Array>("simd", [
  { name: "simd.fill of a freed block", arrange: freedBlock, act: (b) => simd.fill(b, 1), expect: "use-after-free" },
  {
    name: "simd.copy into a freed block",
    arrange: freedBlock,
    act: (b) => simd.copy(b, new Uint8Array(8)),
    expect: "use-after-free",
  },
  {
    name: "simd.copy from a freed block",
    arrange: freedBlock,
    act: (b) => simd.copy(new Uint8Array(8), b),
    expect: "use-after-free",
  },
  {
    name: "simd.compare of a freed block",
    arrange: freedBlock,
    act: (b) => simd.compare(b, new Uint8Array(0)),
    expect: "use-after-free",
  },
  {
    name: "simd.equals with a freed block",
    arrange: freedBlock,
    act: (b) => simd.equals(new Uint8Array(0), b),
    expect: "use-after-free",
  },
  { name: "simd.fill of a detached Float64Array", act: () => simd.fill(detachedFloats(), 1), expect: "use-after-free" },
  {
    name: "simd.copy from a detached Float64Array",
    act: () => simd.copy(new Uint8Array(8), detachedFloats()),
    expect: "use-after-free",
  },
  {
    name: "simd.fill of a DataView over a detached buffer",
    act: () => {
      const view = new DataView(new ArrayBuffer(16));
      view.buffer.transfer(0);
      simd.fill(view, 1);
    },
    expect: "use-after-free",
  },
  { name: "simd.compare(Proxy, x)", act: () => simd.compare(proxy(), new Uint8Array(4)), expect: TypeError },
  { name: "simd.equals(x, Proxy)", act: () => simd.equals(new Uint8Array(4), proxy()), expect: TypeError },
  { name: "simd.fill(Proxy, 1)", act: () => simd.fill(proxy(), 1), expect: TypeError },
  { name: "simd.copy(x, Proxy)", act: () => simd.copy(new Uint8Array(4096), proxy()), expect: TypeError },
  {
    name: "simd.copy of a 64-byte src whose own length says 1 into 8 bytes",
    act: () => simd.copy(new Uint8Array(8), lyingLength(64, 1)),
    expect: RangeError,
  },
  {
    name: "simd.copy into an 8-byte subclass claiming 2^40",
    act: () => simd.copy(new ClaimsMore(8), new Uint8Array(64)),
    expect: RangeError,
  },
  { name: "simd.fill(x, 1.5)", act: () => simd.fill(new Uint8Array(4), 1.5), expect: RangeError },
  { name: "simd.fill(x, NaN)", act: () => simd.fill(new Uint8Array(4), NaN), expect: RangeError },
  { name: "simd.fill(x, -1)", act: () => simd.fill(new Uint8Array(4), -1), expect: RangeError },
  { name: "simd.fill(x, 1n)", act: () => simd.fill(new Uint8Array(4), any(1n)), expect: TypeError },
]);

// libmemkit: in child processes.
childRowsTable("native.kernels with libmemkit", "kernels", "avx2");
childRowsTable("lies change nothing with libmemkit", "truths", "avx2");

// The TypeScript fallback behind the same boundary: cannot crash, so in process.
const fallbackRows: BadInputRow[] = kernelRows().map((row) => ({
  name: row.name,
  arrange: () => useKernels("js"),
  act: row.act,
  expect: row.expect!,
  after: () => useKernels(original),
}));
badInputTable("native.kernels with the TypeScript fallback", fallbackRows);

for (const row of truthRows()) {
  test(`lies change nothing with the TypeScript fallback: ${row.name}`, () => {
    useKernels("js");
    try {
      assert.deepEqual(JSON.parse(JSON.stringify(row.act() ?? null)), row.returns);
    } finally {
      useKernels(original);
    }
  });
}
