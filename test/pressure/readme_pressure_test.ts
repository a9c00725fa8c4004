// Issue 12 item 10: README's memory-pressure example, copied as written,
// watches instead of exiting at once (the monitor's timer is unref'd, so the
// example keeps the process alive itself), ends by itself and on SIGINT; and
// a started monitor alone does not keep a process alive. (`deno task test`
// also type-checks and runs every README block with `deno test --doc`.)
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { nativeInfo } from "../../mod.ts";
import { endChild, pressureFixture, runPlaced, runtimeArgv, startPlaced, waitForLine } from "./_children.ts";

/** The README's memory-pressure example, importing this checkout's mod.ts. */
function readmeExample(): string {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const start = readme.indexOf("### Memory pressure\n");
  assert.ok(start >= 0, "README has a Memory pressure section");
  const section = readme.slice(start, readme.indexOf("\n### ", start + 1));
  const block = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes("start()"));
  assert.ok(block, "the section has a ts example that starts a monitor");
  const mod = pathToFileURL(new URL("../../mod.ts", import.meta.url).pathname).href;
  return block.replaceAll('"@memkit/memkit"', JSON.stringify(mod));
}

function withExample<T>(run: (script: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(`${tmpdir()}/memkit-readme-`);
  const script = `${dir}/pressure_example.ts`;
  writeFileSync(script, readmeExample());
  return Promise.resolve(run(script)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test("README's pressure example runs as written: it watches until its own timer ends it", async () => {
  await withExample((script) => {
    const child = runPlaced(runtimeArgv(script));
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /watching memory pressure until Ctrl-C/);
    // Printed after the await: the process stayed alive, with the monitor, for the whole wait.
    assert.match(child.stdout, /stopped watching \(2 s passed\): level \d, \d+ bytes available/);
  });
});

test("README's pressure example stops watching on SIGINT and ends normally", async () => {
  await withExample(async (script) => {
    const child = startPlaced(runtimeArgv(script));
    let out = "";
    child.stdout!.on("data", (chunk) => (out += chunk));
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.on("exit", (code, signal) => resolve([code, signal]))
    );
    try {
      await waitForLine(child, /watching memory pressure/, 60_000);
      child.kill("SIGINT");
      const [code, signal] = await exited;
      // Printed after the await, for the signal: it was handled, and the program went on to its end.
      assert.match(out, /stopped watching \(Ctrl-C\): level \d/);
      // Deno's node:child_process reports the signal it sent instead of the child's exit code (a child that traps
      // SIGINT and exits 3 reads as (null, "SIGINT") there, as (3, null) in Bun): check the code where it is told.
      if (nativeInfo().runtime === "bun") assert.deepEqual([code, signal], [0, null]);
    } finally {
      await endChild(child);
    }
  });
});

test("a started monitor alone does not keep the process alive; awaiting a timer does", () => {
  const run = (...args: string[]) => {
    const child = runPlaced(runtimeArgv(pressureFixture("watch_alone.ts"), args));
    assert.equal(child.status, 0, child.stderr);
    return JSON.parse(child.stdout.trim().split("\n").at(-1)!).readings as number;
  };
  assert.equal(run(), 1, "only the constructor's reading: the process ended before the first 50 ms tick");
  const kept = run("keep-alive");
  assert.ok(kept >= 2, `kept alive for 1 s at a 50 ms interval, the monitor read ${kept} times`);
});
