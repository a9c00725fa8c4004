// SecretAllocator: a store one byte past a block kills the process (guard
// page), the pages are locked and marked "do not dump" (smaps shows lo and
// dd), and every byte is zero before the pages go back to the kernel.
import assert from "node:assert/strict";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import { addressOf, LockedPageAllocator, nativeInfo, SecretAllocator } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";
import { HAS_PROC, lockedBytes, mappingAt } from "./_locked_memory.ts";

const PAGE = nativeInfo().pageSize;

test("SecretAllocator: a native store one byte past the end kills the process with SIGSEGV", () => {
  const past = runChild(fixture("secret_overflow.ts"), {}, ["past"]);
  assert.match(past.stdout, /before/);
  assert.doesNotMatch(past.stdout, /after/, "the store past the end never returned");
  // Linux raises SIGSEGV for a store into a PROT_NONE page; macOS may raise SIGBUS for the same fault.
  const expected = nativeInfo().os === "darwin" ? ["SIGSEGV", "SIGBUS"] : ["SIGSEGV"];
  assert.ok(expected.includes(past.signal!), JSON.stringify({ ...past, stderr: past.stderr.slice(0, 400) }));
  // The control: the block's own last byte, through the same raw view, is fine.
  const last = runChild(fixture("secret_overflow.ts"), {}, ["last"]);
  assert.equal(last.status, 0, JSON.stringify(last));
  assert.match(last.stdout, /after/);
});

test("SecretAllocator: a block ends at its upper guard page and starts inside its data pages", () => {
  using secrets = new SecretAllocator();
  for (const [size, align] of [[64, 16], [1, 1], [PAGE, 16], [PAGE + 32, 32], [100, 64]]) {
    const block = secrets.alloc(size, align);
    const address = addressOf(block);
    assert.equal(address % align, 0);
    const end = Math.ceil((address + size) / PAGE) * PAGE; // the guard page
    assert.ok(end - (address + size) < align, `alloc(${size}, ${align}) ends ${end - address - size} bytes short`);
    if (HAS_PROC) {
      const { below, at, above } = mappingAt(address);
      assert.equal(at.perms, "rw-p");
      assert.equal(at.end, end);
      assert.ok(at.start <= address && address - at.start < PAGE, "the start is in the first data page");
      assert.equal(above?.start, end, "a mapping starts right at the end");
      assert.equal(above?.perms, "---p", "the page after the block is inaccessible");
      assert.equal(below?.end, at.start);
      assert.equal(below?.perms, "---p", "the page before the block is inaccessible");
    }
    secrets.free(block);
  }
});

test(
  "SecretAllocator: smaps shows the pages locked (lo) and excluded from core dumps (dd)",
  { skip: !HAS_PROC },
  () => {
    using secrets = new SecretAllocator();
    const before = lockedBytes();
    const key = secrets.alloc(64);
    const { below, at, above } = mappingAt(addressOf(key));
    assert.ok(at.flags.includes("dd"), `data VmFlags: ${at.flags.join(" ")}`);
    assert.ok(at.flags.includes("lo"), `data VmFlags: ${at.flags.join(" ")}`);
    assert.ok(below!.flags.includes("dd") && above!.flags.includes("dd"), "guard pages are not dumped either");
    assert.equal(lockedBytes() - before, PAGE, "one page locked; guard pages are not");
    assert.equal(secrets.stats().capacityBytes, PAGE);
    // The control: an ordinary locked page is not marked dd.
    using locked = new LockedPageAllocator();
    const plain = locked.alloc(64);
    assert.ok(!mappingAt(addressOf(plain)).at.flags.includes("dd"));
    locked.free(plain);
    secrets.free(key);
    assert.equal(lockedBytes(), before);
  },
);

// Watches munmap: for each mapping about to go back, what its data pages hold at that moment.
function watchUnmaps(guard: number): { seen: Map<number, Uint8Array>; restore(): void } {
  const libc = native.libc as unknown as Record<string, (...args: number[]) => number>;
  const original = libc.munmap;
  const seen = new Map<number, Uint8Array>();
  libc.munmap = (address: number, length: number) => {
    // SAFETY: the pages are still mapped here; the copy is taken before the real munmap.
    const data = new Uint8Array(native.wrap(address + guard, length - 2 * guard));
    seen.set(address + guard, data.slice());
    return original(address, length);
  };
  return { seen, restore: () => void (libc.munmap = original) };
}

test("SecretAllocator: free, a moving resize and dispose zero every byte before the pages are unmapped", () => {
  const watch = watchUnmaps(PAGE);
  try {
    const secrets = new SecretAllocator();
    const a = secrets.alloc(64);
    a.fill(0xaa);
    const aPage = Math.floor(addressOf(a) / PAGE) * PAGE;
    secrets.free(a);
    assert.ok(watch.seen.has(aPage), "free unmapped the block's pages");
    assert.equal(watch.seen.get(aPage)!.findIndex((b) => b !== 0), -1, "free wiped them first");

    let b = secrets.alloc(3 * PAGE);
    b.fill(0xbb);
    const bPage = addressOf(b);
    b = secrets.resize(b, 100);
    assert.equal(b[99], 0xbb, "the contents moved");
    assert.equal(watch.seen.get(bPage)!.findIndex((x) => x !== 0), -1, "the old pages were wiped");

    const c = secrets.alloc(PAGE);
    c.fill(0xcc);
    const cPage = addressOf(c);
    b.fill(0xdd);
    const bNow = Math.floor(addressOf(b) / PAGE) * PAGE;
    secrets.dispose();
    assert.equal(c.length, 0);
    for (const page of [cPage, bNow]) {
      assert.ok(watch.seen.has(page), "dispose unmapped every block");
      assert.equal(watch.seen.get(page)!.findIndex((x) => x !== 0), -1, "dispose wiped every block");
    }
  } finally {
    watch.restore();
  }
  // The control: the same watch sees a LockedPageAllocator's bytes as they were (it does not wipe).
  const plain = watchUnmaps(0);
  try {
    const locked = new LockedPageAllocator();
    const d = locked.alloc(64);
    d.fill(0xee);
    const dPage = addressOf(d);
    locked.free(d);
    assert.equal(plain.seen.get(dPage)![0], 0xee);
    locked.dispose();
  } finally {
    plain.restore();
  }
});

test("SecretAllocator: blocks are zero-filled, resize keeps contents, alloc(0) holds nothing", () => {
  using secrets = new SecretAllocator();
  const key = secrets.array(Uint32Array, 8);
  assert.equal(key.findIndex((x) => x !== 0), -1);
  key.fill(0xdeadbeef);
  const bytes = secrets.resize(key, 64);
  assert.equal(key.length, 0, "moved: the old view is detached");
  assert.equal(new Uint32Array(bytes.buffer, bytes.byteOffset, 8)[7], 0xdeadbeef);
  assert.equal(bytes.subarray(32).findIndex((x) => x !== 0), -1);
  const empty = secrets.alloc(0);
  assert.equal(secrets.stats().liveAllocations, 1);
  secrets.free(empty);
  secrets.free(bytes);
  assert.equal(secrets.stats().liveAllocations, 0);
});
