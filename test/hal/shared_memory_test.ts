// openSharedMemory: the same bytes in another Worker and another process,
// opened by name; clear errors for a missing name, an existing one with
// `exclusive` and a length past the object's end; unlink; and what truncation
// from elsewhere does (nothing, when it is memkit's unlink and re-create; SIGBUS
// when a program shrinks the very file, the documented hazard).
import assert from "node:assert/strict";
import { existsSync, readdirSync, truncateSync } from "node:fs";
import { test } from "node:test";
import { censusEntries } from "../../src/base/_native_census.ts";
import { AllocationError, nativeInfo, openSharedMemory, type SharedMemory } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

const LINUX = nativeInfo().os === "linux";
const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;

function freshName(): string {
  return `mk-test-${crypto.randomUUID().slice(0, 12)}`;
}

// Opens a fresh name and removes it again after `fn`, whatever happens.
async function withShared(byteLength: number, fn: (memory: SharedMemory) => void | Promise<void>): Promise<void> {
  const memory = openSharedMemory(freshName(), byteLength, { create: true, exclusive: true });
  try {
    await fn(memory);
  } finally {
    memory.close();
    memory.unlink();
  }
}

function temporaries(): string[] {
  return LINUX ? readdirSync("/dev/shm").filter((f) => f.startsWith(".memkit-")) : [];
}

test("openSharedMemory: another Worker opens it by name and sees the same bytes, both ways", async () => {
  await withShared(8192, async (memory) => {
    memory.bytes[0] = 0x11;
    memory.bytes[8191] = 0x12;
    const worker = new Worker(new URL("../fixtures/shared_memory_worker.ts", import.meta.url), { type: "module" });
    const replies: unknown[] = [];
    let wake: (() => void) | null = null;
    worker.onmessage = (event) => {
      replies.push(event.data);
      wake?.();
    };
    const next = async (): Promise<Record<string, unknown>> => {
      while (replies.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return replies.shift() as Record<string, unknown>;
    };
    try {
      assert.equal(await next(), "ready");
      worker.postMessage({ op: "open", name: memory.name });
      assert.deepEqual(await next(), { byteLength: 8192 });
      worker.postMessage({ op: "read", offset: 0 });
      assert.deepEqual(await next(), { value: 0x11 }, "the Worker sees the main thread's store");
      worker.postMessage({ op: "read", offset: 8191 });
      assert.deepEqual(await next(), { value: 0x12 });
      worker.postMessage({ op: "write", offset: 100, value: 0x21 });
      assert.deepEqual(await next(), { written: true });
      assert.equal(memory.bytes[100], 0x21, "the main thread sees the Worker's store");
      memory.bytes[101] = 0x22;
      worker.postMessage({ op: "read", offset: 101 });
      assert.deepEqual(await next(), { value: 0x22 });
      worker.postMessage({ op: "close" });
      assert.deepEqual(await next(), { closed: true });
      assert.equal(memory.bytes[0], 0x11, "the Worker's close leaves this mapping alone");
    } finally {
      worker.terminate();
    }
  });
});

test("openSharedMemory: another process opens it by name, sees the bytes and writes back", async () => {
  await withShared(100_000, (memory) => {
    memory.bytes.set([1, 2, 3, 4], 0);
    const child = runChild(fixture("shared_memory_child.ts"), {}, [memory.name]);
    assert.equal(child.status, 0, JSON.stringify(child));
    const report = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(report, { seen: [1, 2, 3, 4], byteLength: 100_000 });
    assert.deepEqual([...memory.bytes.subarray(8, 12)], [0xc1, 0xc2, 0xc3, 0xc4], "the child's stores are here");
  });
});

test("openSharedMemory: a missing name without create is AllocationError('platform') that says how to create it", () => {
  const name = freshName();
  assert.throws(
    () => openSharedMemory(name),
    (e: unknown) =>
      isCategory("platform")(e) && /no shared memory has that name/.test(String(e)) && /create: true/.test(String(e)),
  );
  assert.throws(() => openSharedMemory(name, 4096), isCategory("platform"));
});

test("openSharedMemory: exclusive refuses an existing name; create without exclusive opens it", async () => {
  await withShared(4096, (memory) => {
    memory.bytes[7] = 7;
    assert.throws(
      () => openSharedMemory(memory.name, 4096, { create: true, exclusive: true }),
      (e: unknown) => isCategory("platform")(e) && /EEXIST/.test(String(e)),
    );
    using again = openSharedMemory(memory.name, 4096, { create: true });
    assert.equal(again.bytes[7], 7);
  });
  assert.deepEqual(temporaries(), [], "no private creation file is left in /dev/shm");
});

test("openSharedMemory: a length past the object's end is refused, never mapped (SIGBUS); create grows it", async () => {
  await withShared(4096, (memory) => {
    assert.throws(
      () => openSharedMemory(memory.name, 4097),
      (e: unknown) => isCategory("limit-exceeded")(e) && /SIGBUS/.test(String(e)),
    );
    using part = openSharedMemory(memory.name, 100);
    assert.equal(part.byteLength, 100);
    using grown = openSharedMemory(memory.name, 3 * 4096, { create: true });
    grown.bytes[3 * 4096 - 1] = 9; // past the old end: the object grew
    using whole = openSharedMemory(memory.name);
    assert.equal(whole.byteLength, 3 * 4096);
    assert.equal(whole.bytes[3 * 4096 - 1], 9);
    assert.equal(memory.byteLength, 4096, "the first mapping keeps its size");
    memory.bytes[4095] = 1;
  });
});

test("SharedMemory.unlink removes the name; open mappings keep working; a re-created name is left alone", () => {
  const name = freshName();
  const first = openSharedMemory(name, 4096, { create: true });
  const second = openSharedMemory(name);
  assert.equal(first.unlink(), true);
  if (LINUX) assert.equal(existsSync(`/dev/shm/${name}`), false);
  assert.throws(() => openSharedMemory(name), isCategory("platform"));
  first.bytes[1] = 5;
  assert.equal(second.bytes[1], 5, "both mappings still share the unlinked object");
  assert.equal(second.unlink(), false, "the name is already gone");
  const replacement = openSharedMemory(name, 4096, { create: true, exclusive: true });
  assert.equal(first.unlink(), false, "the name now belongs to another object");
  assert.equal(replacement.bytes[1], 0, "a new object, not the old one");
  first.close();
  second.close();
  replacement.close();
  assert.equal(replacement.unlink(), true, "unlink works after close");
});

test("SharedMemory.close detaches its views; the mapping is counted in the census until then", () => {
  const name = freshName();
  const memory = openSharedMemory(name, 4096, { create: true });
  const counted = () => censusEntries().filter((e) => e.owner.kind.startsWith("openSharedMemory")).length;
  const before = counted();
  const again = openSharedMemory(name);
  assert.equal(counted(), before + 1);
  const bytes = again.bytes;
  const window = again.view(10, 10);
  again.close();
  assert.equal(counted(), before);
  assert.equal(bytes.length, 0);
  assert.equal(window.length, 0);
  assert.equal(again.name, name);
  assert.throws(() => again.view(0, 1), isCategory("use-after-free"));
  again.close(); // a second close does nothing
  memory.close();
  memory.unlink();
});

test("openSharedMemory: another process unlinking and re-creating the name smaller does not hurt this mapping", {
  skip: !LINUX,
}, () => {
  const name = freshName();
  const memory = openSharedMemory(name, 64 << 10, { create: true });
  memory.bytes[60_000] = 6;
  try {
    const child = runChild(fixture("shared_memory_truncate.ts"), {}, [name, "replace"]);
    assert.equal(child.status, 0, JSON.stringify(child));
    assert.match(child.stdout, /before 6\nacted\nafter 6\nsurvived/);
    assert.equal(memory.bytes[60_000], 6);
  } finally {
    memory.close();
    try {
      openSharedMemory(name).unlink();
    } catch {
      // the child's replacement is already gone
    }
  }
});

test("openSharedMemory: a program that shrinks the very file kills its mappers with SIGBUS (the documented hazard)", {
  skip: !LINUX,
}, () => {
  const name = freshName();
  const memory = openSharedMemory(name, 64 << 10, { create: true });
  try {
    const child = runChild(fixture("shared_memory_truncate.ts"), {}, [name, "shrink"]);
    assert.match(child.stdout, /before 0\nacted/);
    assert.doesNotMatch(child.stdout, /survived/);
    assert.equal(child.signal, "SIGBUS", JSON.stringify({ ...child, stderr: child.stderr.slice(0, 300) }));
  } finally {
    memory.close();
    memory.unlink();
  }
});

test("openSharedMemory: new memory is zero-filled and the object may be larger than the mapping", () => {
  const name = freshName();
  try {
    using memory = openSharedMemory(name, 10_000, { create: true });
    assert.equal(memory.bytes.findIndex((b) => b !== 0), -1);
    if (LINUX) truncateSync(`/dev/shm/${name}`, 20_000); // grown from outside: harmless
    using whole = openSharedMemory(name);
    assert.equal(whole.byteLength, 20_000);
  } finally {
    openSharedMemory(name).unlink();
  }
});
