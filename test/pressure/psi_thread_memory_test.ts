// A wait on another thread must not write into memory its isolate may free first. Deno's
// non-blocking `poll` writes `revents` when it returns, which can be after the Worker (or test
// module) that started it ended and its buffers were freed: the pollfd lives in native memory.
import assert from "node:assert/strict";
import { test } from "node:test";
import { native } from "../../ffi/native.ts";
import { platformConstants } from "../../ffi/platform.ts";
import { libcSymbols, MEMKIT_SYMBOLS, type SymbolTable } from "../../ffi/symbols.ts";
import { fixture, runChild } from "../_helpers.ts";

test("no call made on another thread takes a JS buffer (Linux and macOS tables, libmemkit)", () => {
  const tables: [string, SymbolTable][] = [["libmemkit", MEMKIT_SYMBOLS]];
  for (const [os, arch] of [["linux", "x86_64"], ["linux", "aarch64"], ["darwin", "x86_64"], ["darwin", "aarch64"]]) {
    tables.push([`libc ${os} ${arch}`, libcSymbols(platformConstants(os, arch)!)]);
  }
  let threaded = 0;
  for (const [name, table] of tables) {
    for (const [key, def] of Object.entries(table)) {
      if (!def.nonblocking) continue;
      threaded++;
      assert.ok(!def.parameters.includes("buffer"), `${name}: ${key} runs on another thread but takes a buffer`);
    }
  }
  assert.ok(threaded > 0, "the poll used by PsiTrigger.wait is declared non-blocking");
});

test(
  "Workers terminated while PsiTrigger.wait polls: the process goes on, waits still answer, and exits 0",
  { skip: native.os !== "linux" },
  () => {
    const result = runChild(fixture("psi_wait_terminated.ts"));
    if (/^skipped:/m.test(result.stdout)) return void console.log(result.stdout.trim());
    assert.equal(result.status, 0, result.stderr);
    // Each wait answers; one says true only when the machine really stalled for the trigger's 150 ms.
    const [, first, second, stalled] =
      /^waits after the terminations: (true|false) (true|false), machine stalled (\d+) µs$/m
        .exec(result.stdout) ?? assert.fail(result.stdout);
    if (first === "true" || second === "true") assert.ok(Number(stalled) >= 150_000, result.stdout);
  },
);
