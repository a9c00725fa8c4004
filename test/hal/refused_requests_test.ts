// A refused MemoryInterface request changes nothing, and says so in the interface's words (adversarial
// findings hal3 2 and 3).
//
// Found: an "out-of-memory" refusal (a request the system cannot map) made the backing allocator it was
// refused by (the video heap, the temporary arena, with their first 1 MiB chunk) and kept it: getMemoryStats
// changed (allocationEfficiency 1 → 0) after a call that threw. And the kernel's ENOMEM for audio,
// dma-capable, secret and shared memory came out as the inner allocator's own message ("Cannot allocate … in
// the LockedPageAllocator: mmap(…) failed with ENOMEM", for shared memory a message naming a made-up name),
// where every other refusal says the type, the size and what would serve it.
//
// The sizes are 2^47 - 2^30 bytes: no process has that much address space free in one piece, so every
// runtime and overcommit setting refuses them. In Bun they are above what one ArrayBuffer holds and are
// refused ("unsupported") before any allocator is asked: the stats part holds there too.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type AllocationRequest, MemoryInterface, nativeInfo } from "../../mod.ts";

const SIZE = 2 ** 47 - 2 ** 30;
const TYPES = ["system", "video", "audio", "network", "shared", "temporary", "stack", "pool"] as const;
const MAPPED = nativeInfo().maxViewBytes >= SIZE; // Deno: the request reaches the kernel
const HAS_SHM = nativeInfo().os === "linux" || nativeInfo().os === "darwin";

/** Every type's stats and the overall ones, as one string. */
function snapshot(memory: MemoryInterface): string {
  return JSON.stringify([memory.getMemoryStats(), ...TYPES.map((t) => memory.getMemoryStats(t))]);
}

const REQUESTS: [string, AllocationRequest][] = [
  ["video", { size: SIZE, type: "video" }],
  ["temporary", { size: SIZE, type: "temporary" }],
  ["the temporary flag", { size: SIZE, flags: ["temporary"] }],
  ["system from the arena", { size: SIZE, preferredAllocator: "arena" }],
  ["system from the free-list heap", { size: SIZE, preferredAllocator: "free-list" }],
  ["video with fallback", { size: SIZE, type: "video", allowFallback: true }],
  ["temporary with fallback", { size: SIZE, type: "temporary", allowFallback: true }],
  ["system", { size: SIZE }],
  ["audio", { size: SIZE, type: "audio" }],
  ["dma-capable", { size: SIZE, flags: ["dma-capable"] }],
  ["secret", { size: SIZE, flags: ["secret"] }],
  ...(HAS_SHM ? [["shared", { size: SIZE, type: "shared" }] as [string, AllocationRequest]] : []),
];

test("a refused request leaves every type's stats and the overall ones as they were", async () => {
  for (const [label, request] of REQUESTS) {
    for (const how of ["allocate", "allocateAsync", "allocateAsync, timeoutMs 20"] as const) {
      using memory = new MemoryInterface({ pressure: false });
      const before = snapshot(memory);
      const call = how === "allocate"
        ? Promise.resolve().then(() => memory.allocate(request))
        : memory.allocateAsync(how === "allocateAsync" ? request : { ...request, timeoutMs: 20 });
      await assert.rejects(call, AllocationError, `${label}, ${how}`);
      assert.equal(snapshot(memory), before, `${label}, ${how}: the stats changed`);
    }
  }
  // The same for the fast paths of allocateTyped (the first temporary block makes the arena).
  using memory = new MemoryInterface({ pressure: false });
  const before = snapshot(memory);
  assert.throws(() => memory.allocateTyped(SIZE, "temporary"), AllocationError);
  assert.throws(() => memory.allocateTyped(SIZE, "video"), AllocationError);
  assert.equal(snapshot(memory), before, "allocateTyped: the stats changed");
});

// (Blocks stay live meanwhile: a FreeListAllocator whose tryAlloc misses merges the blocks freed last, which
// changes its fragmentation figure though no memory changes hands; that is the heap's own, src/alloc.)
test("a refused request leaves allocators made before as they were, and they still serve", () => {
  using memory = new MemoryInterface({ pressure: false });
  const held = (["video", "temporary", "pool", "audio"] as const).map((type) => memory.allocateTyped(64, type));
  const before = snapshot(memory);
  for (const [label, request] of REQUESTS) {
    assert.throws(() => memory.allocate(request), AllocationError, label);
    assert.equal(snapshot(memory), before, `${label}: the stats changed`);
  }
  for (const a of held) memory.deallocate(a);
  for (const type of ["video", "temporary", "pool", "audio"] as const) {
    memory.deallocate(memory.allocateTyped(64, type));
  }
});

test("the kernel's refusal of audio, dma-capable, secret and shared memory says the type, the size and what to do", {
  skip: !MAPPED && "sizes above one view are refused before the kernel is asked (view_limit_test.ts)",
}, async () => {
  using memory = new MemoryInterface({ pressure: false });
  const cases: [string, AllocationRequest, string][] = [
    ["audio", { size: SIZE, type: "audio" }, `${SIZE} bytes of audio memory`],
    [
      "dma-capable",
      { size: SIZE, flags: ["dma-capable"] },
      `${SIZE} bytes of system memory with the flag "dma-capable"`,
    ],
    ["secret", { size: SIZE, flags: ["secret"] }, `${SIZE} bytes of system memory with the flag "secret"`],
    ...(HAS_SHM
      ? [
        ["shared", { size: SIZE, type: "shared" }, `${SIZE} bytes of shared memory`] as [
          string,
          AllocationRequest,
          string,
        ],
        [
          "shared, named",
          { size: SIZE, type: "shared", name: `mk-enomem-${crypto.randomUUID().slice(0, 8)}` },
          `${SIZE} bytes of shared memory`,
        ] as [string, AllocationRequest, string],
      ]
      : []),
    ["system (for comparison)", { size: SIZE }, `${SIZE} bytes of system memory`],
  ];
  for (const [label, request, what] of cases) {
    assert.throws(() => memory.allocate(request), (e: unknown) => {
      assert.ok(e instanceof AllocationError, `${label}: ${e}`);
      assert.equal(e.category, "out-of-memory", label);
      assert.ok(e.message.startsWith(`Cannot allocate ${what} from the system allocator: `), `${label}: ${e.message}`);
      assert.match(e.message, /\(wait for memory to be freed with allocateAsync\(\{ \.\.\., timeoutMs \}\)\)$/, label);
      assert.doesNotMatch(e.message, /LockedPageAllocator|SecretAllocator|memkit-|\) \(/, label);
      if (label !== "system (for comparison)") {
        assert.match(e.message, /ENOMEM/, label);
        assert.ok(e.cause instanceof AllocationError && e.cause.category === "out-of-memory", `${label}: the cause`);
      }
      return true;
    }, label);
    // More than the process may ever use (and not a sparse shared mapping): no wait can cure it, so
    // allocateAsync with a timeout fails at once, saying so.
    if (!label.startsWith("shared") && SIZE > memory.platform.totalBytes) {
      const refused = await memory.allocateAsync({ ...request, timeoutMs: 60_000 }).then(
        () => assert.fail(`${label}: served`),
        (e: unknown) => e as AllocationError,
      );
      assert.ok(refused instanceof AllocationError && refused.category === "out-of-memory", `${label}: ${refused}`);
      assert.match(refused.message, /is more than the \d+ bytes this process may use/, label);
      assert.ok(refused.cause instanceof AllocationError && refused.cause.category === "out-of-memory", label);
      continue;
    }
    // Waiting may cure it (memory given back): allocateAsync with a timeout waits, then says "timeout".
    const started = performance.now();
    const error = await memory.allocateAsync({ ...request, timeoutMs: 30 }).then(
      () => assert.fail(`${label}: served`),
      (e: unknown) => e as AllocationError,
    );
    assert.ok(error instanceof AllocationError && error.category === "timeout", `${label}: ${error}`);
    assert.ok(performance.now() - started >= 25, `${label}: it waited`);
    assert.ok(
      error.message.startsWith(`Cannot allocate ${what} from the system allocator within 30 ms: `),
      error.message,
    );
    assert.ok(error.cause instanceof AllocationError && error.cause.category === "out-of-memory", `${label}: cause`);
  }
  assert.equal(memory.getMemoryStats().allocationCount, 0);
});
