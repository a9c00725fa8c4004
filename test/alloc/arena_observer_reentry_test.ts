// An Arena's observers run after the whole public call they observe, never in
// the middle of one: what an observer does there (free the block it is told
// about, reset, allocate, open a scope) is an ordinary call after a finished
// operation and cannot change what the operation returns or leave it half
// done. And a block whose ArrayBuffer was transferred away is never freed or
// reused: its free throws "corruption" and the arena ends (child processes:
// a wrong release would unmap memory a stolen buffer still reads).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Arena } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

for (const safety of [true, false]) {
  const label = `safety: ${safety}`;

  test(`Arena: a copying resize tells onAlloc once the copy is made and counted (${label})`, () => {
    const arena = new Arena({ capacity: 1 << 16, safety });
    const old = arena.alloc(64).fill(7);
    arena.alloc(16); // `old` is no longer the most recent block: resize copies it
    const seen: { copied: boolean; ignored: number; owned: boolean }[] = [];
    let mine = null as Uint8Array | null;
    arena.observe({
      onAlloc(view) {
        if (seen.length !== 0) return; // its own allocation below
        seen.push({ copied: view.every((b) => b === 7), ignored: arena.stats().ignoredFrees, owned: arena.owns(view) });
        // Free the block it is told about and take its place: resize must not write into this one.
        arena.free(view);
        mine = arena.alloc(64).fill(0x55);
      },
    });
    const grown = arena.resize(old, 64);
    assert.deepEqual(seen, [{ copied: true, ignored: 1, owned: true }]);
    assert.ok(mine !== null);
    assert.ok(mine.every((b) => b === 0x55), "resize copied into a block an observer allocated");
    assert.equal(grown.length, 64);
    arena.dispose();
  });

  test(`Arena: an observer that resets inside clone or array sees a finished call (${label})`, () => {
    const arena = new Arena({ capacity: 1 << 16, safety });
    const seen: number[] = [];
    const stop = arena.observe({
      onAlloc(view) {
        seen.push(view.length === 16 ? -1 : view[0]); // array(Int32Array, 4): its bytes are not set
        arena.reset();
      },
    });
    const floats = arena.clone(new Float64Array([1.5, 2.5, 3.5]));
    assert.ok(floats instanceof Float64Array);
    const bytes = arena.clone(new Uint8Array([9, 8]));
    assert.ok(bytes instanceof Uint8Array);
    const ints = arena.array(Int32Array, 4);
    assert.ok(ints instanceof Int32Array);
    // Each copy was made before its observer ran (the first byte of 1.5 as a float64 is 0).
    assert.deepEqual(seen, [new Uint8Array(new Float64Array([1.5]).buffer)[0], 9, -1]);
    // Then each reset released it, by the ordinary rules: detached with safety, readable without.
    assert.equal(ints.length, safety ? 0 : 4);
    assert.equal(arena.stats().allocatedBytes, 0);
    stop();
    assert.equal(arena.alloc(8).length, 8);
    arena.dispose();
  });

  test(`Arena: array() and clone() tell onAlloc of their bytes; the returned view stays the block's own (${label})`, () => {
    const arena = new Arena({ capacity: 1 << 16, safety });
    const frees: boolean[] = [];
    const told: Uint8Array[] = [];
    arena.observe({
      onAlloc(view) {
        told.push(view);
        arena.free(view); // another view of the block for a typed array: counted, not rolled back
      },
      onFree: (_view, rolledBack) => frees.push(rolledBack),
    });
    for (const make of [() => arena.array(Float64Array, 4), () => arena.clone(new Float32Array([1, 2]))]) {
      frees.length = 0;
      const typed = make();
      assert.equal(typed.length > 0, true);
      assert.equal(told.at(-1)!.byteOffset, typed.byteOffset);
      assert.equal(told.at(-1)!.byteLength, typed.byteLength);
      const { liveAllocations } = arena.stats();
      arena.free(typed); // the block's own view still rolls it back
      assert.deepEqual(frees, [false, true]);
      assert.equal(arena.stats().liveAllocations, liveAllocations - 1);
    }
    // For a Uint8Array the view told about is the one returned: the observer's free rolls it back.
    frees.length = 0;
    const bytes = arena.array(Uint8Array, 8);
    assert.equal(told.at(-1), bytes);
    assert.deepEqual(frees, [true]);
    arena.dispose();
  });

  test(`Arena: scopes a scope's end or reset ends are told once all have ended (${label})`, () => {
    const arena = new Arena({ capacity: 1 << 16, safety });
    let opened = null as ReturnType<Arena["scope"]> | null;
    let kept = null as Uint8Array | null;
    const exits: number[] = [];
    const stop = arena.observe({
      onScopeExit(scope) {
        exits.push(scope.depth);
        if (opened === null) {
          opened = arena.scope(); // in the middle of the end this would be ended with the others
          kept = arena.alloc(32).fill(3);
        }
      },
    });
    const outer = arena.scope();
    arena.scope();
    outer.end();
    assert.deepEqual(exits, [2, 1]);
    assert.equal(opened?.active, true);
    assert.equal(arena.stats().scopeDepth, 1);
    assert.ok(kept !== null);
    assert.equal(kept.length, 32);
    assert.ok(arena.owns(kept));

    // reset(): the scopes it ends are told after it, so what the observer allocates then stays allocated.
    stop();
    let during = null as Uint8Array | null;
    arena.observe({
      onScopeExit() {
        during ??= arena.alloc(48).fill(4);
      },
    });
    arena.scope();
    arena.reset();
    assert.equal(arena.stats().scopeDepth, 0);
    assert.ok(during !== null);
    assert.equal(during.length, 48);
    assert.ok(during.every((b) => b === 4));
    assert.equal(arena.stats().allocatedBytes, 48);
    arena.dispose();
  });
}

const transfers: Record<string, RegExp> = {
  "free-oversized-last": /free: corruption\nalloc: corruption\naliased: false\n/,
  "free-oversized-earlier": /free: corruption\nalloc: corruption\naliased: false\n/,
  // The most recent block of a regular chunk rolls back unchecked (a check would cost every free); the next
  // allocation, from the memory the stolen buffer reaches, finds the theft.
  "free-regular-last": /free: ok\nalloc: corruption\naliased: false\n/,
  "resize-oversized-last": /resize: corruption\nalloc: corruption\naliased: false\n/,
  "scope-oversized": /scope end: ok\nalloc: corruption\naliased: false\n/,
  "scope-regular": /scope end: ok\nalloc: corruption\naliased: false\n/,
  "reset-oversized": /reset: ok\nalloc: corruption\naliased: false\n/,
  "reset-free-all-oversized": /reset: ok\nalloc: corruption\naliased: false\n/,
};

for (const [how, expected] of Object.entries(transfers)) {
  for (const safety of ["safe", "unsafe"]) {
    test(`Arena: a block whose buffer was transferred away, ${how} (${safety}, child process)`, () => {
      const child = runChild(fixture("arena_transfer_free.ts"), {}, [how, safety]);
      assert.equal(child.signal, null, `killed by ${child.signal}:\n${child.stdout}\n${child.stderr}`);
      assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`);
      assert.match(child.stdout, expected);
      assert.match(child.stdout, /READ OK \d+ true/);
      assert.doesNotMatch(child.stdout + child.stderr, /detached ArrayBuffer|already detached|Receiver is detached/);
    });
  }
}
