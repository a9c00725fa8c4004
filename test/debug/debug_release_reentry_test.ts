// A DebugAllocator is the parent of whatever holds one of its blocks: a child allocator built over it through an
// Allocator written in JavaScript, an array, a lease. Its free or resize of such a block (the program's own call)
// tells the holder, as every other allocator does (test/alloc/backing_reentry_test.ts), through the shared
// mechanism of src/alloc/_lease.ts: the DebugAllocator is busy while it tells (every call but owns and stats is
// refused, "unsupported", a dispose too), and what a revoked child gives back waits until the free or resize is
// made, then goes back as an ordinary free. Before, a child's give-back of its other chunks was refused (the
// DebugAllocator was still calling its backing when the backing's holders were told) and those chunks stayed
// allocated, a leak the exit report showed; a holder's calls back into it were not refused; with retainMetadata
// a child kept using a block the DebugAllocator had freed (its holder was never told); and a holder of a block a
// stack resized in place was not told that its memory changed. The cases run in child processes
// (test/debug/_release_reentry_child.ts): a crash fails the case it happened in.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type Allocator,
  Arena,
  DebugAllocator,
  type DebugAllocatorOptions,
  PoolAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { leaseBlock } from "../../src/alloc/_lease.ts";
import { outcome, runCaseChildren } from "../_helpers.ts";
import { caseIds } from "./_release_reentry_child.ts";

const ids = caseIds();
let results: Map<string, string[]> | null = null;

// One test per mode and operation; its cases are the holder (a child through its backing, a lease) × the call back.
const groups = new Map<string, string[]>();
for (const id of ids) {
  const [mode, op] = id.split(" | ");
  const key = `${mode} | ${op}`;
  groups.set(key, [...(groups.get(key) ?? []), id]);
}

for (const [key, members] of groups) {
  const [mode, op] = key.split(" | ");
  test(`a DebugAllocator (${mode}) calls back into it while its ${op} of a held block tells the holder: refused while it tells, the child's other chunk goes back after, nothing leaks (child process)`, () => {
    results ??= runCaseChildren(fileURLToPath(new URL("./_release_reentry_child.ts", import.meta.url)), ids);
    const failures = members.flatMap((id) => (results!.get(id) ?? ["did not run"]).map((f) => `${id}: ${f}`));
    assert.deepEqual(failures, []);
  });
}

// The case the exit report showed, in one process: a PoolAllocator over a DebugAllocator through an Allocator in
// JavaScript. The program frees one of the pool's chunks through the DebugAllocator; the pool is revoked and gives
// its other chunk back, which the DebugAllocator now takes (before: refused, "unsupported", and kept as a leak).
for (
  const options of [{}, { detachFreed: true }, { safety: false }, { retainMetadata: true }] as DebugAllocatorOptions[]
) {
  test(`a PoolAllocator over a DebugAllocator (${JSON.stringify(options)}) through a JavaScript backing: revoked by the free of one chunk, it gives the other back`, () => {
    const system = new SystemAllocator();
    const debug = new DebugAllocator(system, options);
    const chunks: Uint8Array[] = [];
    const backing = {
      kind: "system",
      alloc: (size: number, align?: number) => chunks[chunks.push(debug.alloc(size, align)) - 1],
      tryAlloc: (size: number, align?: number) => {
        const chunk = debug.tryAlloc(size, align);
        if (chunk !== null) chunks.push(chunk);
        return chunk;
      },
      array: debug.array.bind(debug),
      free: (view: ArrayBufferView) => debug.free(view),
      resize: debug.resize.bind(debug),
      owns: debug.owns.bind(debug),
      stats: debug.stats.bind(debug),
    } as unknown as Allocator;
    const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 4, backing });
    const blocks = Array.from({ length: 8 }, () => pool.alloc(64)); // two chunks
    assert.equal(chunks.length, 2);
    debug.free(chunks[1]);
    assert.equal(blocks[0].length, 0, "the pool's views outlived the free of its chunk");
    assert.equal(outcome(() => pool.alloc(64)), "use-after-free");
    assert.deepEqual(debug.leaks(), [], "the pool's other chunk stayed allocated in the DebugAllocator");
    assert.equal(debug.stats().liveAllocations, 0);
    assert.equal(debug.deinit(), "ok");
    system.dispose();
  });
}

// The backing releases memory of the DebugAllocator's by itself (an arena's reset): the DebugAllocator retires its
// blocks there and tells their holders, busy meanwhile. Before, a holder's dispose() called as it was told ended
// the DebugAllocator halfway through its retirement.
test("a DebugAllocator whose backing resets: a holder of one of its blocks told of it cannot call back in", () => {
  for (const options of [{}, { detachFreed: true }] as DebugAllocatorOptions[]) {
    const arena = new Arena({ capacity: 1 << 16 });
    const debug = new DebugAllocator(arena, options);
    const held = debug.alloc(64);
    const seen: string[] = [];
    leaseBlock(debug, held, {
      revoke: () => {
        seen.push(outcome(() => debug.dispose()), outcome(() => debug.alloc(32)), outcome(() => debug.stats()));
      },
    });
    arena.reset();
    assert.deepEqual(seen, ["unsupported", "unsupported", "ok"]);
    assert.equal(outcome(() => debug.free(held)), "use-after-free"); // retired: the reset released it
    assert.equal(debug.stats().liveAllocations, 0);
    assert.equal(debug.deinit(), "ok");
    arena.dispose();
  }
});
