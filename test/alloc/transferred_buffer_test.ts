// A buffer memkit made over native memory, transferred away by its user
// (buffer.transfer(), or a postMessage transfer list), still reaches that
// memory: memkit must never free or unmap it afterwards, whatever releases
// it (a free, a dispose, a chain's reset), and say so instead of letting the
// engine's "detached ArrayBuffer" error through. Each case runs in a child
// process that reads every page through the stolen buffer at the end.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fixture, runChild } from "../_helpers.ts";

const cases: Record<string, RegExp> = {
  system: /free: corruption\nresize: corruption\n/,
  debug: /free: ok\n/,
  mapping: /protect: corruption\nprotection read-write\n/,
  pool: /alloc: corruption\nalloc again: use-after-free\n/,
  arena: /alloc: corruption\n/,
  "arena-scope": /^/,
  handle: /free: ok\n/,
  chain: /pool alloc: use-after-free\n/,
};

for (const [how, expected] of Object.entries(cases)) {
  test(`a transferred buffer keeps its memory: ${how} (child process)`, () => {
    const child = runChild(fixture("transferred_buffer.ts"), {}, [how]);
    assert.equal(child.signal, null, `killed by ${child.signal}:\n${child.stdout}\n${child.stderr}`);
    assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`);
    assert.match(child.stdout, expected);
    assert.match(child.stdout, /READ OK \d+ true/);
    assert.doesNotMatch(child.stdout + child.stderr, /detached ArrayBuffer|already detached|Receiver is detached/);
  });
}
