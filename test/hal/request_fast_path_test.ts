// allocate(request) reads a plain request for a pool block or temporary
// memory itself and sends it to allocateTyped's fast path; every other
// request goes through readRequest. Both must read each field exactly once
// (a getter or Proxy trap runs once, before anything changes), refuse the
// same unknown keys, and throw the same errors as allocateAsync (which reads
// every request through readRequest) for the same input.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type AllocationRequest, MemoryInterface, type MemoryType } from "../../mod.ts";
import { outcome } from "../_helpers.ts";

const FIELDS = ["size", "type", "alignment", "flags", "preferredAllocator", "timeoutMs", "allowFallback", "name"];

function counted(target: Record<string, unknown>): { request: AllocationRequest; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const request = new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === "string") reads.set(key, (reads.get(key) ?? 0) + 1);
      return Reflect.get(t, key, receiver);
    },
  });
  return { request: request as unknown as AllocationRequest, reads };
}

function books(memory: MemoryInterface): number[] {
  return [undefined, "pool", "temporary", "system"].flatMap((type) => {
    const s = memory.getMemoryStats(type as MemoryType | undefined);
    return [s.usedBytes, s.allocationCount];
  });
}

// What allocate(request) throws, and what allocateAsync(request) rejects with, as "Class: message".
async function both(memory: MemoryInterface, make: () => unknown): Promise<[string, string]> {
  const describe = (e: unknown) => e instanceof Error ? `${e.constructor.name}: ${e.message}` : `value ${String(e)}`;
  let sync = "no error";
  try {
    memory.deallocate(memory.allocate(make() as AllocationRequest));
  } catch (e) {
    sync = describe(e);
  }
  let later = "no error";
  try {
    memory.deallocate(await memory.allocateAsync(make() as AllocationRequest));
  } catch (e) {
    later = describe(e);
  }
  return [sync, later];
}

test("every field of a request is read exactly once, on the fast path and off it", () => {
  using memory = new MemoryInterface({ pressure: false });
  const cases: Record<string, unknown>[] = [
    { size: 64, type: "pool" },
    { size: 64, type: "temporary" },
    { size: 64, type: "pool", timeoutMs: 0, allowFallback: false },
    { size: 64 },
    { size: 64, type: "system", alignment: 64 },
    { size: 64, type: "pool", flags: ["zero"] },
    { size: 64, type: "temporary", allowFallback: true },
  ];
  for (const fields of cases) {
    const { request, reads } = counted(fields);
    const a = memory.allocate(request);
    assert.equal(a.size, 64);
    for (const key of FIELDS) assert.equal(reads.get(key), 1, `${JSON.stringify(fields)}: '${key}' read once`);
    memory.deallocate(a);
  }
  assert.deepEqual(books(memory), [0, 0, 0, 0, 0, 0, 0, 0]);
});

test("a getter that allocates runs before the request is served, once; the books stay exact", () => {
  using memory = new MemoryInterface({ pressure: false });
  const inside: ReturnType<MemoryInterface["allocateTyped"]>[] = [];
  for (const type of ["pool", "temporary"] as const) {
    let calls = 0;
    const request = {
      size: 64,
      get type() {
        calls++;
        inside.push(memory.allocateTyped(32, type));
        return type;
      },
    } as AllocationRequest;
    const a = memory.allocate(request);
    assert.equal(calls, 1);
    assert.equal(a.type, type);
    assert.notEqual(a.address, inside.at(-1)!.address);
    memory.deallocate(a);
  }
  assert.deepEqual(books(memory).slice(0, 2), [64, 2]);
  for (const a of inside) memory.deallocate(a);
  assert.deepEqual(books(memory), [0, 0, 0, 0, 0, 0, 0, 0]);
});

test("unknown keys are refused on the fast path too, own or inherited, and change nothing", () => {
  using memory = new MemoryInterface({ pressure: false });
  const before = books(memory);
  for (const type of ["pool", "temporary"]) {
    assert.equal(
      outcome(() => memory.allocate({ size: 64, type, sise: 64 } as unknown as AllocationRequest)),
      "TypeError",
    );
    const inherited = Object.create({ color: "red" });
    Object.assign(inherited, { size: 64, type });
    assert.equal(outcome(() => memory.allocate(inherited)), "TypeError");
  }
  assert.deepEqual(books(memory), before);
  // Known fields inherited from a prototype are read like own ones.
  const a = memory.allocate(Object.create({ size: 64, type: "pool" }));
  assert.equal(a.type, "pool");
  memory.deallocate(a);
});

test("allocate(request) and allocateAsync(request) throw the same error for the same plain-looking request", async () => {
  using memory = new MemoryInterface({ budgets: { pool: 4096, temporary: 4096 }, pressure: false });
  const rows: Record<string, unknown>[] = [];
  for (const type of ["pool", "temporary"]) {
    for (const size of [undefined, 0, -1, 1.5, NaN, Infinity, 2 ** 53, "64", 64n, null, {}, 4097]) {
      rows.push({ size, type });
    }
    rows.push({ size: 64, type, timeoutMs: -1 });
    rows.push({ size: 64, type, timeoutMs: NaN });
    rows.push({ size: 64, type, allowFallback: 0 });
    rows.push({ size: 64, type, name: 5 });
    rows.push({ size: 64, type, flags: "zero" });
    rows.push({ size: 64, type, alignment: 3 });
    rows.push({ size: 64, type, preferredAllocator: "debug" });
    rows.push({ size: 64, type, extra: 1 });
  }
  const before = books(memory);
  for (const row of rows) {
    const [sync, later] = await both(memory, () => ({ ...row }));
    assert.notEqual(sync, "no error", JSON.stringify(row, (_, v) => typeof v === "bigint" ? `${v}n` : v));
    assert.equal(sync, later, `${String(row.size)} ${String(row.type)}`);
  }
  assert.deepEqual(books(memory), before);
});

test("the fast path serves what readRequest's path would: the type, size and allocator", async () => {
  using memory = new MemoryInterface({ pressure: false });
  for (const type of ["pool", "temporary"] as const) {
    for (const extra of [{}, { timeoutMs: 0 }, { allowFallback: false }, { timeoutMs: 0, allowFallback: false }]) {
      const fast = memory.allocate({ size: 100, type, ...extra });
      const slow = await memory.allocateAsync({ size: 100, type, ...extra });
      assert.deepEqual(
        [fast.type, fast.size, fast.allocator, fast.alignment, fast.flags],
        [slow.type, slow.size, slow.allocator, slow.alignment, slow.flags],
      );
      memory.deallocate(slow);
      memory.deallocate(fast);
    }
  }
  assert.equal(outcome(() => memory.allocate({ size: 64, type: "pool", timeoutMs: 5 })), "TypeError", "never waits");
  assert.deepEqual(books(memory), [0, 0, 0, 0, 0, 0, 0, 0]);
});

test("a bad alignment's message names the field as the caller wrote it, 'alignment'", () => {
  using memory = new MemoryInterface({ pressure: false });
  for (
    const call of [
      () => memory.allocate(64, 3),
      () => memory.allocate({ size: 64, alignment: 3 }),
      () => memory.allocateTyped(64, "pool", 3),
      () => memory.allocate({ size: 64, alignment: "16" as unknown as number }),
    ]
  ) {
    assert.throws(call, (e: Error) => e.message.includes("'alignment' must be"), "names 'alignment'");
  }
});
