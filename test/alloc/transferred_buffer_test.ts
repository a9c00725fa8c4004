// A buffer memkit made over native memory, transferred away by its user
// (buffer.transfer(), or a postMessage transfer list), still reaches that
// memory: memkit must never free or unmap it afterwards, whatever releases
// it (a free, a dispose, a chain's reset), and say so instead of letting the
// engine's "detached ArrayBuffer" error through; and memory such a buffer
// reaches is never handed out again, by the allocator that found the theft or
// any allocator in its chain (which ends with "corruption" rather than reuse it).
// Each case runs in a child process that reads every page through the stolen
// buffer at the end.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fixture, runChild } from "../_helpers.ts";

const cases: Record<string, RegExp> = {
  system: /free: corruption\nresize: corruption\n/,
  debug: /free: corruption\n/,
  mapping: /protect: corruption\nprotection read-write\n/,
  "mapping-window": /close: ok\nprotect: corruption\nprotect again: corruption\nprotection read-write\n/,
  pool: /alloc: corruption\nalloc again: corruption\n/,
  arena: /alloc: (corruption|ok)\naliased: false\n/,
  "arena-scope": /scope end: ok\nscope: corruption\nalloc: corruption\nreset: corruption\n/,
  handle: /free: corruption\n/,
  chain: /pool alloc: use-after-free\n/,
  "parent-keeps":
    /free-list aliased: false\nbuddy aliased: false\narena aliased: false\nstack aliased: false\npool aliased: false\n/,
  // (A pool's resize keeps the block where it is: a new view of the same block, nothing given back.)
  "parent-free-forged": new RegExp(
    [["free-list", "corruption"], ["buddy", "corruption"], ["pool", "ok"]]
      .map(([n, resize]) => `${n} free: corruption\\n${n} resize: ${resize}\\n${n} aliased: false\\nREAD OK`)
      .join(".*\\n"),
  ),
  "parent-reset":
    /stack reset: ok\nstack alloc: corruption\nstack aliased: false\narena reset: ok\narena aliased: false\n/,
  "mapping-retry": /protect: corruption\nprotect again: corruption\nprotection read-write\nbytes \d+ view 16 reads 7\n/,
  "handle-reread": /bytes again 1048576\nfree: corruption\n/,
  defragment: /defragment: ok\naliased: false\n/,
  "array-reread": /bytes again 8\nfree: corruption\n/,
  "debug-unreachable": /collected: true\ndispose: ok\n/,
  counters: new RegExp(
    ["pool", "free-list", "buddy", "stack", "arena"].map((n) => `${n} alloc: corruption\\n${n} counters unchanged\\n`)
      .join(""),
  ),
  "detach-freed": /pool free: corruption\npool live 1\ndebug free: corruption\n/,
  "debug-unreachable-release": /system dispose: ok\narena reset: ok\narena aliased: false\n/,
  "arena-scope-after-steal": /alloc in scope: corruption\nscope end: ok\narena aliased: false\n/,
  "arena-segment-steal": /alloc: (corruption|ok)\naliased: false\n/,
  "arena-nested-steal": /alloc in inner scope: corruption\ninner end: ok\nouter end: ok\narena aliased: false\n/,
  "handle-after-steal": /handle: corruption\nheap aliased: false\n/,
  "debug-no-safety-resize": /resize: corruption\nresize again: corruption\nbacking live 1\n/,
  "patched-after-load": /internal views seen: 0\n/,
  "system-leased-resize": /resize: ok\naliased: false 64\n/,
};

for (const [how, expected] of Object.entries(cases)) {
  test(`a transferred buffer keeps its memory: ${how} (child process)`, () => {
    const child = runChild(fixture("transferred_buffer.ts"), { DENO_V8_FLAGS: "--expose-gc" }, [how]);
    assert.equal(child.signal, null, `killed by ${child.signal}:\n${child.stdout}\n${child.stderr}`);
    assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`);
    assert.match(child.stdout, expected);
    assert.match(child.stdout, /READ OK \d+ true/);
    assert.doesNotMatch(child.stdout + child.stderr, /detached ArrayBuffer|already detached|Receiver is detached/);
  });
}
