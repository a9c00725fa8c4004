// Every allocation of a MemoryInterface is one view (its `bytes`), so a request above what one ArrayBuffer
// holds in this runtime (nativeInfo().maxViewBytes: 4 GiB in Bun) can never be served. It is refused at once
// with AllocationError("unsupported") naming that limit, before any native call, and allocateAsync does not
// wait for it. Before, in Bun: a shared request created its /dev/shm object and mapping and left both until
// dispose(); audio, dma-capable and secret requests mapped and mlock'ed every page (13 s, 5.3 GB resident)
// before the refusal; system, video and temporary requests said "it has no room ... wait for memory to be
// freed with allocateAsync", and allocateAsync waited out its whole timeout. LockedPageAllocator and
// SecretAllocator refuse such sizes the same way.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import {
  AllocationError,
  MemoryInterface,
  type MemoryStatus,
  type MemoryType,
  nativeInfo,
  PressureMonitor,
} from "../../mod.ts";
import { checkViewLimit } from "../../src/base/_view_limit.ts";
import { MAX_BLOCK_SIZE } from "../../src/base/_validate.ts";
import { B_SHARED, Backings } from "../../src/hal/_backings.ts";
import { HAS_PROC, runUnderMemlockLimit } from "./_locked_memory.ts";

const { maxViewBytes, pageSize } = nativeInfo();
const over = maxViewBytes + pageSize;
const NO_LIMIT = over > MAX_BLOCK_SIZE && "this runtime views any size memkit maps in one ArrayBuffer";
const RUNTIME = nativeInfo().runtime === "deno" ? "Deno" : "Bun";

// The refusal: "unsupported", naming the runtime's limit and what to do instead.
const viewLimit = (head: RegExp) => (e: unknown) => {
  assert.ok(e instanceof AllocationError, `an AllocationError, not ${e}`);
  assert.equal(e.category, "unsupported", e.message);
  assert.match(e.message, head);
  assert.match(
    e.message,
    new RegExp(
      `needs \\d+ bytes in one view: ${RUNTIME} allows at most ${maxViewBytes} bytes per ArrayBuffer ` +
        `\\(nativeInfo\\(\\)\\.maxViewBytes\\); `,
    ),
  );
  assert.doesNotMatch(e.message, /allocateAsync|timeoutMs|no room/, "no wait can serve it: none is suggested");
  return true;
};

test("the limit is this runtime's nativeInfo().maxViewBytes: at it passes, one byte above is unsupported", () => {
  checkViewLimit(maxViewBytes, "create it", "it", "use less");
  assert.throws(
    () => checkViewLimit(maxViewBytes + 1, "create it", "it", "use less"),
    viewLimit(/^Cannot create it as it needs \d+ bytes in one view: .*; use less$/),
  );
});

test(
  "a request above one view is unsupported at once, names the limit, and changes nothing",
  { skip: NO_LIMIT },
  () => {
    using memory = new MemoryInterface({ pressure: false });
    const before = JSON.stringify(memory.getMemoryStats());
    const cases: [MemoryType, Record<string, unknown>][] = [
      ["system", {}],
      ["video", {}],
      ["temporary", {}],
      ["temporary", { allowFallback: true }],
      ["pool", { allowFallback: true }],
      ["stack", {}],
      ["system", { preferredAllocator: "free-list", allowFallback: true }],
    ];
    for (const [type, extra] of cases) {
      assert.throws(
        () => memory.allocate({ size: over, type, ...extra }),
        viewLimit(new RegExp(`^Cannot allocate ${type} memory as the allocation needs ${over} bytes in one view`)),
      );
    }
    assert.throws(() => memory.allocateTyped(over, "temporary"), viewLimit(/^Cannot allocate temporary memory/));
    assert.throws(() => memory.allocate(over), viewLimit(/^Cannot allocate system memory/));
    assert.equal(JSON.stringify(memory.getMemoryStats()), before, "statistics unchanged");
    assert.equal(memory.getAllocator("arena").stats().failedAllocations, 0, "the arena was never asked");
  },
);

test("allocateAsync does not wait for a request above one view: it rejects with allocate's refusal", {
  skip: NO_LIMIT,
}, async () => {
  using memory = new MemoryInterface({ pressure: false });
  for (const type of ["system", "video", "temporary"] as const) {
    // A long timeout: the old code waited it out ("timeout"); now the refusal comes before any wait.
    await assert.rejects(
      memory.allocateAsync({ size: over, type, timeoutMs: 60_000 }),
      viewLimit(new RegExp(`^Cannot allocate ${type} memory`)),
    );
  }
});

test("video memory just under one view, whose free-list chunk would be over it: refused at once, never waited for", {
  skip: NO_LIMIT,
}, async () => {
  // The heap takes the block plus its alignment (256), rounded to pages: maxViewBytes - 1 needs more than one view.
  const budgets = { video: 2 ** 40 };
  using memory = new MemoryInterface({ pressure: false, budgets });
  const cannot = (e: unknown) =>
    e instanceof RangeError && /free-list heap's chunk for it would be more than one ArrayBuffer holds/.test(e.message);
  assert.throws(() => memory.allocate({ size: maxViewBytes - 1, type: "video" }), cannot);
  await assert.rejects(memory.allocateAsync({ size: maxViewBytes - 1, type: "video", timeoutMs: 60_000 }), cannot);
  assert.equal(memory.getMemoryStats("video").usedBytes, 0);
});

test("allocateAsync refuses a request above one view at once under High pressure too (no wait can serve it)", {
  skip: NO_LIMIT,
}, async () => {
  const total = 8 * 2 ** 30;
  const read = (): MemoryStatus => ({
    totalBytes: total,
    availableBytes: Math.round(total * 0.02), // Critical: requests that may wait are held back before they are tried
    limitBytes: null,
    usedBytes: total - Math.round(total * 0.02),
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events: null,
  });
  using monitor = new PressureMonitor({ read, intervalMs: 3_600_000 });
  using memory = new MemoryInterface({ pressure: monitor });
  await assert.rejects(
    memory.allocateAsync({ size: over, type: "video", flags: ["cacheable"], timeoutMs: 5_000 }),
    viewLimit(/^Cannot allocate video memory as the allocation needs/),
  );
});

test("a shared request above one view creates no /dev/shm object and maps nothing", {
  skip: NO_LIMIT || (!HAS_PROC && "needs /proc and /dev/shm"),
}, () => {
  using memory = new MemoryInterface({ pressure: false });
  const names = () => readdirSync("/dev/shm").filter((n) => n.startsWith("memkit-") || n.startsWith(".memkit-"));
  const shmMaps = () => readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => l.includes("/dev/shm/"));
  const namesBefore = names(), mapsBefore = shmMaps();
  const statsBefore = JSON.stringify(memory.getMemoryStats());
  assert.throws(
    () => memory.allocate({ size: over, type: "shared" }),
    viewLimit(/^Cannot allocate shared memory as .*openSharedMemory\(name, byteLength, \{ create: true \}\)/),
  );
  const name = `mk-view-${crypto.randomUUID().slice(0, 8)}`;
  assert.throws(() => memory.allocate({ size: over, type: "shared", name }), viewLimit(/shared memory/));
  assert.deepEqual(names().filter((n) => !namesBefore.includes(n)), [], "no new name in /dev/shm");
  assert.equal(readdirSync("/dev/shm").includes(name), false, "the name asked for was not created");
  assert.deepEqual(shmMaps().filter((l) => !mapsBefore.includes(l)), [], "no new shared mapping");
  assert.equal(JSON.stringify(memory.getMemoryStats()), statsBefore, "statistics unchanged");
});

test("a shared backing whose bytes cannot be viewed closes and unlinks what it created (all or nothing)", {
  skip: NO_LIMIT || (!HAS_PROC && "needs /proc and /dev/shm"),
}, () => {
  // Past serve()'s check, straight to the backing: the object is created (sparse) and mapped (address space
  // only), then its bytes are refused; nothing of it may stay.
  const backings = new Backings({ stackBytes: 4096, stackCap: null, temporaryBytes: 4096, buddyBytes: 4096 });
  const names = () => readdirSync("/dev/shm").filter((n) => n.startsWith("memkit-") || n.startsWith(".memkit-"));
  const shmMaps = () => readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => l.includes("/dev/shm/"));
  const namesBefore = names(), mapsBefore = shmMaps();
  const name = `mk-view-${crypto.randomUUID().slice(0, 8)}`;
  for (const asked of [undefined, name]) {
    assert.throws(
      () => backings.take(B_SHARED, over, pageSize, asked),
      (e: unknown) => e instanceof AllocationError && e.category === "unsupported",
    );
  }
  assert.deepEqual(names().filter((n) => !namesBefore.includes(n)), [], "no name left in /dev/shm");
  assert.equal(readdirSync("/dev/shm").includes(name), false);
  assert.deepEqual(shmMaps().filter((l) => !mapsBefore.includes(l)), [], "no mapping left");
  assert.equal(backings.sharedBytes(), 0, "nothing recorded");
  backings.dispose();
});

test(
  "locked memory above one view (audio, dma-capable, secret; LockedPageAllocator, SecretAllocator) is refused before any mmap or mlock",
  {
    skip: NO_LIMIT || (!HAS_PROC && "needs a lowered RLIMIT_MEMLOCK"),
  },
  (t) => {
    // Under a 64 KiB lock limit without CAP_IPC_LOCK: code that mapped and locked first fails at mlock, never
    // faulting in gigabytes.
    const child = runUnderMemlockLimit(fileURLToPath(new URL("./_view_limit_child.ts", import.meta.url)), 64);
    if ("skip" in child) return t.skip(child.skip);
    assert.equal(child.status, 0, JSON.stringify(child));
    const report = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
    const heads: Record<string, RegExp> = {
      audio: /^Cannot allocate audio memory as the allocation needs/,
      dma: /^Cannot allocate system memory with the flag "dma-capable" as the allocation needs/,
      secret: /^Cannot allocate system memory with the flag "secret" as the allocation needs/,
      lockedAlloc: /^Cannot allocate \d+ bytes in the LockedPageAllocator as the block needs/,
      lockedResize: /^Cannot resize to \d+ bytes in the LockedPageAllocator as the block needs/,
      secretAlloc: /^Cannot allocate \d+ bytes in the SecretAllocator as the block needs/,
      secretResize: /^Cannot resize to \d+ bytes in the SecretAllocator as the block needs/,
    };
    for (const [name, head] of Object.entries(heads)) {
      const r = report[name];
      assert.deepEqual(r.calls, [], `${name}: no mmap or mlock (${r.message})`);
      viewLimit(head)(new AllocationError(r.category, r.message));
    }
    for (const name of ["lockedTryAlloc", "secretTryAlloc"]) {
      assert.equal(report[name].returned, null, `${name} returns null for the same refusal`);
      assert.deepEqual(report[name].calls, [], `${name}: no mmap or mlock`);
    }
    assert.equal(report.statsUnchanged, true, "the interface's statistics are unchanged");
    assert.equal(report.blocksKept, true, "a refused resize keeps the old block");
    assert.deepEqual(report.failed, [3, 3], "each allocator counts its refusals as failed allocations");
  },
);
