// The leak check at exit, in real child processes: every owner of native
// memory memkit hands out is reported (by owner, then its blocks), on every
// exit path the runtime allows, with the program's exit code kept under
// "fail" unless it was 0, and allocation sites that start at the program's
// own frame.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import process from "node:process";
import { nativeInfo } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

const CHILD = fixture("exit_leaks_child.ts");
const runtime = nativeInfo().runtime;
const OWNERS = ["DynamicArray", "Arena", "SystemAllocator", "PoolAllocator", "mapPages"];
// The fixture's line (1-based) holding `text`, for the allocation sites a report must name.
const SOURCE = readFileSync(CHILD, "utf8").split("\n");
const lineOf = (text: string) => SOURCE.findIndex((line) => line.includes(text)) + 1;

function assertFullReport(stderr: string): void {
  assert.match(stderr, /memkit: 1 leaked block, 24 bytes/, stderr); // the global allocator's own report
  assert.match(stderr, /free each with getAllocator\(\)\.free\(view\)/, stderr);
  // The totals that follow leave the global allocator's block out, and say so.
  assert.match(
    stderr,
    /native memory still held at exit besides the global allocator's blocks above: 5 owners, 5 blocks/,
    stderr,
  );
  for (const owner of OWNERS) assert.match(stderr, new RegExp(`^  ${owner}: 1 block, \\d+ bytes$`, "m"), stderr);
}

for (const mode of ["warn", "fail"] as const) {
  test(`every owner a script leaks is reported at exit, grouped by owner ("${mode}")`, () => {
    const child = runChild(CHILD, {}, ["return", mode, "all"]);
    assertFullReport(child.stderr);
    assert.equal(child.status, mode === "fail" ? 1 : 0, child.stderr);
    // The last line says what happened to the exit code.
    const verdict = mode === "fail"
      ? 'memkit: leaks at exit; exit code set to 1 (leakCheckAtExit: "fail").'
      : 'memkit: leaks at exit; the exit code is unchanged (leakCheckAtExit: "warn").';
    assert.equal(child.stderr.trim().split("\n").at(-1), verdict);
  });
}

test("a program's own DebugAllocator is reported at exit with its blocks in the sizes asked for and their sites", () => {
  const child = runChild(CHILD, {}, ["return", "warn", "debug"]);
  // Its memory as taken from the system (the backing's block, canaries included), then its own list.
  assert.match(child.stderr, /^ {2}DebugAllocator: 1 block, \d+ bytes$/m, child.stderr);
  assert.match(child.stderr, /^ {4}its blocks: 1 leaked block, 1000 bytes$/m, child.stderr);
  assert.match(child.stderr, /^ {6}1000 bytes at 0x[0-9a-f]+, align \d+, age \d+ ms$/m, child.stderr);
  assert.match(child.stderr, new RegExp(`exit_leaks_child\\.ts:${lineOf("debug.alloc(1000)")}`), child.stderr);
  assert.equal(child.status, 0);
});

test("a MEMKIT_TRACE_FRAMES that is not a number of frames is ignored, and the hint says why", () => {
  const child = runChild(CHILD, { MEMKIT_TRACE_FRAMES: "abc" }, ["return", "warn", "all"]);
  assert.match(child.stderr, /MEMKIT_TRACE_FRAMES="abc" is not a number from 1 to 100/);
  assert.equal(child.status, 0);
});

test('"off" prints nothing and keeps the exit code', () => {
  const child = runChild(CHILD, {}, ["return", "off", "all"]);
  assert.equal(child.stderr.trim(), "");
  assert.equal(child.status, 0);
});

for (const what of ["none", "thread arena", "exit listener", "held back"]) {
  test(`a script that gives everything back prints nothing and exits 0 under fail (${what})`, () => {
    const child = runChild(CHILD, {}, ["return", "fail", what]);
    assert.equal(child.stderr.trim(), "");
    assert.equal(child.status, 0);
  });
}

// Each exit path, and the code the process must end with under "fail".
const PATHS: { how: string; code: number; only?: "deno" }[] = [
  { how: "return", code: 1 },
  { how: "process.exit", code: 1 },
  { how: "process.exit(3)", code: 3 },
  { how: "Deno.exit", code: 1, only: "deno" },
  { how: "throw", code: 1 },
  { how: "throw later", code: 1 },
  { how: "reject", code: 1 },
  // The program's own exit listener ends the process (process.exit there skips the listeners after it).
  { how: "exit listener exits", code: 1 },
  { how: "exit listener exits, added first", code: 1 },
  { how: "Deno.exit in an exit listener", code: 1, only: "deno" },
  // The end delayed by a beforeunload listener, then Deno.exit(), which fires unload only.
  { how: "beforeunload, then Deno.exit", code: 1, only: "deno" },
  // 256 ends a process with status 0 (the system keeps 8 bits): "fail" must still fail it.
  { how: "exitCode 256", code: 1 },
  { how: "process.exit(256)", code: 1 },
];
for (const { how, code, only } of PATHS) {
  test(`exit path "${how}": the report is printed and the process ends with ${code}`, (t) => {
    if (only !== undefined && only !== runtime) {
      t.skip(`${how} exists only in ${only}`);
      return;
    }
    const child = runChild(CHILD, {}, [how, "fail", "all"]);
    assertFullReport(child.stderr);
    assert.equal(child.status, code, child.stderr);
  });
}

test("exit from a signal handler: the report is printed and the process ends with 1", async () => {
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  const argv = runtime === "deno"
    ? ["run", "-A", `--config=${config}`, CHILD, "signal", "fail", "all"]
    : ["run", CHILD, "signal", "fail", "all"];
  const child = spawn(process.execPath, argv, { env: { ...process.env, NO_COLOR: "1" } });
  let stdout = "", stderr = "";
  child.stderr.on("data", (chunk) => stderr += chunk);
  let sent = false;
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      if (!sent && stdout.includes("ready")) {
        sent = true; // once: a second signal during the exit would end the process by its default action
        // process.kill, not child.kill: Deno's child_process then reports the signal, not the real exit code.
        process.kill(child.pid!, "SIGTERM");
      }
    });
    child.on("close", (status) => resolve(status));
  });
  assertFullReport(stderr);
  assert.equal(code, 1, `exit code ${code}: ${stderr}`);
});

test("without traces the report says how to turn them on; with MEMKIT_TRACE_FRAMES the program's frame comes first", () => {
  const plain = runChild(CHILD, {}, ["return", "warn", "all"]);
  assert.match(plain.stderr, /MEMKIT_TRACE_FRAMES=8/);
  assert.match(plain.stderr, /stackTraceFrames: 8/);
  const traced = runChild(CHILD, { MEMKIT_TRACE_FRAMES: "3" }, ["return", "warn", "all"]);
  assert.doesNotMatch(traced.stderr, /MEMKIT_TRACE_FRAMES=8/);
  // Every frame shown is the program's: none of memkit's src/ or ffi/ files.
  const frames = traced.stderr.split("\n").filter((line) => /^\s+(created )?at /.test(line));
  assert.ok(frames.length >= 6, traced.stderr);
  for (const frame of frames) assert.match(frame, /exit_leaks_child\.ts:\d+:\d+/, frame);
  // Where each owner was created and, for a block taken by a call of the program, where that call was.
  const system = lineOf("const system = new SystemAllocator();"), block = lineOf("system.alloc(300);");
  const global = lineOf("getAllocator().alloc(24)");
  assert.match(
    traced.stderr,
    new RegExp(`SystemAllocator: 1 block, 300 bytes\\n\\s+created at \\S*exit_leaks_child\\.ts:${system}:`),
  );
  assert.match(
    traced.stderr,
    new RegExp(`300 bytes at 0x[0-9a-f]+, taken [\\d.]+ s before exit\\n\\s+at \\S*exit_leaks_child\\.ts:${block}:`),
  );
  assert.match(traced.stderr, new RegExp(`24 bytes at 0x[0-9a-f]+.*\\n\\s+at \\S*exit_leaks_child\\.ts:${global}:`));
});

test("an uncaught error the program handles is no exit: one report, at the real exit, with its code", () => {
  const child = runChild(CHILD, {}, ["handled", "fail", "all"]);
  assert.match(child.stdout, /went on/);
  assertFullReport(child.stderr);
  assert.equal(child.stderr.split("still held at exit").length, 2, child.stderr); // printed once
  assert.equal(child.status, 1, child.stderr);
});

for (const how of ["throw, handled", "reject, handled"]) {
  test(`a top-level ${how === "throw, handled" ? "throw" : "rejection"} the program handles with process.on("uncaughtException") is no exit: one report, at the real exit`, (t) => {
    // Bun sends an unhandled rejection to no "uncaughtException" listener: its process ends there (and reports).
    if (how === "reject, handled" && runtime !== "deno") {
      t.skip("Bun does not hand an unhandled rejection to uncaughtException listeners");
      return;
    }
    const child = runChild(CHILD, {}, [how, "fail", "all"]);
    assert.match(child.stdout, /went on/);
    assertFullReport(child.stderr);
    assert.equal(child.stderr.split("still held at exit").length, 2, child.stderr); // printed once, at the end
    assert.equal(child.status, 1, child.stderr);
  });
}

test("exit code 256: the verdict says why the exit code was set to 1", (t) => {
  if (runtime !== "deno") {
    t.skip("Bun hands its exit listeners the code the process ends with (0)");
    return;
  }
  const child = runChild(CHILD, {}, ["exitCode 256", "fail", "global"]);
  assert.match(
    child.stderr,
    /exit code set to 1 .*the program's own code 256 would have ended the process with status 0/,
  );
  assert.equal(child.status, 1, child.stderr);
});

test("a DebugAllocator's memory held back for freed blocks (retainMetadata) is no leak; its live block is", () => {
  const child = runChild(CHILD, {}, ["return", "fail", "held back and a leak"]);
  assert.match(child.stderr, /native memory still held at exit: 1 owner, 1 block, \d+ bytes/, child.stderr);
  assert.match(child.stderr, /^ {2}DebugAllocator: 1 block, 232 bytes$/m, child.stderr); // 200 and its canaries
  assert.match(child.stderr, /^ {4}its blocks: 1 leaked block, 200 bytes$/m, child.stderr);
  assert.equal(child.status, 1, child.stderr);
});

test("after deinit(), the next global allocator keeps the configuration (fail, traces)", () => {
  const child = runChild(CHILD, {}, ["return", "fail", "deinit"]);
  assert.match(child.stderr, /memkit: 1 leaked block, 8 bytes/);
  assert.equal(child.status, 1, child.stderr);
});

test("sites taken in a built-in's callback show the program's frames only (no native or anonymous frames)", () => {
  const child = runChild(CHILD, { MEMKIT_TRACE_FRAMES: "3" }, ["return", "warn", "map"]);
  assert.match(child.stderr, /SystemAllocator: 2 blocks, 20 bytes/, child.stderr);
  const frames = child.stderr.split("\n").filter((line) => /^\s+(created )?at /.test(line));
  assert.ok(frames.length >= 3, child.stderr);
  for (const frame of frames) assert.match(frame, /exit_leaks_child\.ts:\d+:\d+/, frame);
});

test("a throwing Error.prepareStackTrace changes nothing: sites are captured, nothing throws", () => {
  const child = runChild(CHILD, { MEMKIT_TRACE_FRAMES: "3" }, ["return", "warn", "prepare"]);
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stderr, /DynamicArray: 1 block, \d+ bytes\n\s+created at \S*exit_leaks_child\.ts:\d+:\d+/);
});

// Workers: each has its own memkit; what a Worker still holds reaches the main thread's report through libmemkit's
// process-wide census table, however the Worker ended.
const WORKER_PARENT = fixture("exit_worker_parent.ts");
for (const how of ["terminate", "close", "running"] as const) {
  test(`a Worker that leaks and then ${how === "running" ? "is still running at exit" : `ends by ${how}`}: reported by name, fail exits 1`, () => {
    const child = runChild(WORKER_PARENT, {}, [how, "fail"]);
    assert.match(child.stdout, /parent done/);
    assert.match(child.stderr, /native memory Workers still held at exit: 1 Worker/, child.stderr);
    const name = runtime === "deno" ? 'Worker "leaky"' : "Worker \\(thread \\d+\\)";
    assert.match(child.stderr, new RegExp(`^  ${name}: 2 blocks, 1049608 bytes$`, "m"), child.stderr);
    assert.equal(child.status, 1, child.stderr);
  });
}

for (const mode of ["fail", "off", "none"] as const) {
  const main = mode === "none" ? "no global allocator" : `leakCheckAtExit "${mode}"`;
  test(`a Worker's own report under "fail" says what decides the exit code, true with a main thread with ${main}`, () => {
    const child = runChild(WORKER_PARENT, {}, ["exit", mode]);
    assert.match(child.stdout, /parent done/);
    // The Worker's own verdict: it cannot set the process's exit code, and what happens without a main check.
    assert.match(child.stderr, /leaks at exit in Worker .*; a Worker cannot set the process's exit code/, child.stderr);
    assert.match(child.stderr, /without one, nothing more is reported and the exit code stays as it is\.$/m);
    if (mode === "fail") {
      assert.match(child.stderr, /native memory Workers still held at exit: 1 Worker/, child.stderr);
      assert.equal(child.status, 1, child.stderr);
    } else {
      assert.doesNotMatch(child.stderr, /Workers still held at exit/, child.stderr);
      assert.equal(child.status, 0, child.stderr);
    }
  });
}

test("a long Worker name in characters of several bytes is cut between characters, and its quote closed", (t) => {
  if (runtime !== "deno") {
    t.skip("Bun's Workers are named by their thread id");
    return;
  }
  const name = `w${"é".repeat(60)}`; // 121 bytes of UTF-8: more than a census slot holds
  const child = runChild(WORKER_PARENT, {}, ["terminate", "fail", name]);
  const line = child.stderr.split("\n").find((l) => l.startsWith('  Worker "w'));
  assert.ok(line !== undefined, child.stderr);
  assert.match(line, /^ {2}Worker "wé+…": 2 blocks, 1049608 bytes$/, line);
  assert.equal(child.status, 1, child.stderr);
});

test("a Worker terminated before the main thread loads memkit is still reported (libmemkit stays loaded)", () => {
  const child = runChild(fixture("exit_worker_late.ts"), {}, []);
  assert.match(child.stdout, /parent done/);
  assert.match(child.stderr, /Workers still held at exit: 1 Worker\n {2}\S.*: 2 blocks, 1049608 bytes/, child.stderr);
  assert.equal(child.status, 1, child.stderr);
});

test("a Worker that leaks under warn keeps exit code 0; one that gave everything back is not reported", () => {
  const warned = runChild(WORKER_PARENT, {}, ["terminate", "warn"]);
  assert.match(warned.stderr, /Workers still held at exit/);
  assert.equal(warned.status, 0, warned.stderr);
  const clean = runChild(WORKER_PARENT, {}, ["clean", "fail"]);
  assert.equal(clean.stderr.trim(), "");
  assert.equal(clean.status, 0);
});

test("a program that replaced console.error still gets the report and the exit code", () => {
  const child = runChild(CHILD, {}, ["return", "fail", "console replaced"]);
  assert.match(child.stderr, /memkit: 1 leaked block, 24 bytes/);
  assert.equal(child.status, 1, child.stderr);
});

test("a program that replaced the built-ins a report is built with (map, sort, split, toString, Map, JSON, Date.now, ...) still gets every leak reported", () => {
  const child = runChild(CHILD, { MEMKIT_TRACE_FRAMES: "3" }, ["return", "fail", "all, built-ins replaced"]);
  assertFullReport(child.stderr);
  assert.match(child.stderr, /24 bytes at 0x[0-9a-f]+, align 16, age \d+ ms/, child.stderr);
  assert.doesNotMatch(child.stderr, /could not list/, child.stderr);
  assert.equal(child.status, 1, child.stderr);
});

test("a program that refuses new process listeners after setting up (process.on replaced) still gets the report", () => {
  const child = runChild(CHILD, {}, ["return", "fail", "all, process.on replaced"]);
  assertFullReport(child.stderr);
  assert.doesNotMatch(child.stderr, /disabled in this sandbox/, child.stderr);
  assert.equal(child.status, 1, child.stderr);
});

test("a program that replaced Array.prototype.push with a no-op still gets the report of native memory", () => {
  const child = runChild(CHILD, {}, ["return", "fail", "push replaced"]);
  assert.match(child.stderr, /^ {2}DynamicArray: 1 block, \d+ bytes$/m, child.stderr);
  assert.equal(child.status, 1, child.stderr);
});

// A program's own DebugAllocator lists its blocks at exit whatever its backing: under the census entry that holds
// their memory (its own, or its backing's, which took it from the system), or under a heading of its own.
const DEBUG_CHILD = fileURLToPath(new URL("./_exit_debug_backing_child.ts", import.meta.url));
const DEBUG_SITE = new RegExp(
  `_exit_debug_backing_child\\.ts:${
    readFileSync(DEBUG_CHILD, "utf8").split("\n").findIndex((line) => line.includes("debug.alloc(100)")) + 1
  }`,
);
const LEAKED_BLOCK = /^ {6}100 bytes at 0x[0-9a-f]+, align 16, age \d+ ms$/m;
const DEBUG_BACKINGS: { backing: string; owner: string; heading: RegExp }[] = [
  { backing: "default", owner: "DebugAllocator", heading: /^ {4}its blocks: 1 leaked block, 100 bytes$/m },
  {
    backing: "pool",
    owner: "PoolAllocator",
    heading: /^ {4}blocks of a DebugAllocator over PoolAllocator: 1 leaked block, 100 bytes$/m,
  },
  {
    backing: "free-list",
    owner: "FreeListAllocator",
    heading: /^ {4}blocks of a DebugAllocator over FreeListAllocator: 1 leaked block, 100 bytes$/m,
  },
  {
    backing: "arena",
    owner: "Arena",
    heading: /^ {4}blocks of a DebugAllocator over Arena: 1 leaked block, 100 bytes$/m,
  },
  {
    // The inner DebugAllocator took the memory from the system; the outer one's block is inside its block.
    backing: "debug",
    owner: "DebugAllocator",
    heading: /^ {4}blocks of a DebugAllocator over DebugAllocator: 1 leaked block, 100 bytes$/m,
  },
  {
    backing: "pool in an arena",
    owner: "Arena",
    heading: /^ {4}blocks of a DebugAllocator over PoolAllocator: 1 leaked block, 100 bytes$/m,
  },
];
for (const { backing, owner, heading } of DEBUG_BACKINGS) {
  test(`a program's DebugAllocator over ${backing} backing lists its leaked block, size and site, at exit`, () => {
    const child = runChild(DEBUG_CHILD, {}, [backing]);
    assert.match(child.stderr, new RegExp(`^ {2}${owner}: 1 block, \\d+ bytes$`, "m"), child.stderr);
    assert.match(child.stderr, heading, child.stderr);
    assert.match(child.stderr, LEAKED_BLOCK, child.stderr);
    assert.match(child.stderr, DEBUG_SITE, child.stderr);
    assert.equal(child.status, 1, child.stderr);
  });
}

test("a program's DebugAllocator over the global allocator lists its blocks under a heading of its own", () => {
  const child = runChild(DEBUG_CHILD, {}, ["global"]);
  // The global allocator's own list names its one block (the DebugAllocator's, canaries included) ...
  assert.match(child.stderr, /^memkit: 1 leaked block, 132 bytes$/m, child.stderr);
  // ... and the DebugAllocator's own list says which block the program left in it.
  assert.match(
    child.stderr,
    /^memkit: blocks a DebugAllocator over the global allocator \(getAllocator\(\)\) still holds at exit \(free each, or deinit\(\) it, before exit\): 1 leaked block, 100 bytes$/m,
    child.stderr,
  );
  assert.match(child.stderr, /^ {2}100 bytes at 0x[0-9a-f]+, align 16, age \d+ ms$/m, child.stderr);
  assert.match(child.stderr, DEBUG_SITE, child.stderr);
  assert.equal(child.status, 1, child.stderr);
});

// Many DebugAllocators with blocks left: the report lists at most 8 under each census owner and at most 8 under
// headings of their own, then one line with how many more, and their blocks and bytes, so the totals stay whole.
const CAP_CHILD = fileURLToPath(new URL("./_exit_cap_child.ts", import.meta.url));
const OWNED_LIST = /^ {4}blocks of a DebugAllocator over PoolAllocator: (\d+) leaked blocks?, (\d+) bytes$/gm;
const OWNED_MORE = /^ {4}… and (\d+) more DebugAllocators? \((\d+) blocks?, (\d+) bytes\)$/gm;
const OWN_HEADING =
  /^memkit: blocks a DebugAllocator over (?:the global allocator \(getAllocator\(\)\)|PoolAllocator) still holds at exit \(free each, or deinit\(\) it, before exit\): (\d+) leaked blocks?, (\d+) bytes$/gm;
const HEADING_MORE =
  /^memkit: … and (\d+) more DebugAllocators? \((\d+) blocks?, (\d+) bytes\) still hold blocks at exit \(free each, or deinit\(\) them, before exit\)$/gm;

/** Each match's numbers. */
const numbers = (text: string, pattern: RegExp) => [...text.matchAll(pattern)].map((m) => m.slice(1).map(Number));

// The fixture's DebugAllocator i leaks 16 bytes, and 32 more in a second block when i is odd.
function assertCapped(
  stderr: string,
  count: number,
  expected: { owned: number; ownedMore: number; headings: number; headingsMore: number },
): void {
  const owned = numbers(stderr, OWNED_LIST), ownedMore = numbers(stderr, OWNED_MORE);
  const headings = numbers(stderr, OWN_HEADING), headingsMore = numbers(stderr, HEADING_MORE);
  assert.equal(owned.length, expected.owned, stderr);
  assert.deepEqual(ownedMore.map(([n]) => n), expected.ownedMore > 0 ? [expected.ownedMore] : [], stderr);
  assert.equal(headings.length, expected.headings, stderr);
  assert.deepEqual(headingsMore.map(([n]) => n), expected.headingsMore > 0 ? [expected.headingsMore] : [], stderr);
  // Listed and counted, every DebugAllocator's blocks and bytes are there once.
  let blocks = 0, bytes = 0;
  for (const [b, n] of [...owned, ...headings]) [blocks, bytes] = [blocks + b, bytes + n];
  for (const [, b, n] of [...ownedMore, ...headingsMore]) [blocks, bytes] = [blocks + b, bytes + n];
  const odd = Math.floor(count / 2);
  assert.deepEqual({ blocks, bytes }, { blocks: count + odd, bytes: 16 * count + 32 * odd }, stderr);
}

for (const count of [8, 9, 300]) {
  test(`${count} DebugAllocators with blocks left over one pool: at most 8 listed under it, the rest counted`, () => {
    const child = runChild(CAP_CHILD, {}, ["pool", String(count)]);
    assert.match(child.stderr, /: 1 owner, \d+ blocks?, \d+ bytes/, child.stderr);
    assert.match(child.stderr, /^ {2}PoolAllocator: \d+ blocks?, \d+ bytes$/m, child.stderr);
    const more = count > 8 ? count - 8 : 0;
    assertCapped(child.stderr, count, { owned: Math.min(count, 8), ownedMore: more, headings: 0, headingsMore: 0 });
    assert.ok(child.stderr.split("\n").length < 60, child.stderr);
    assert.equal(child.status, 1, child.stderr);
  });

  test(`${count} DebugAllocators with blocks left over the global allocator: at most 8 headings, the rest counted`, () => {
    const child = runChild(CAP_CHILD, {}, ["global", String(count)]);
    const more = count > 8 ? count - 8 : 0;
    assertCapped(child.stderr, count, { owned: 0, ownedMore: 0, headings: Math.min(count, 8), headingsMore: more });
    // The global allocator's own list (the DebugAllocators' blocks, canaries included) stops at 50 as well.
    const blocks = count + Math.floor(count / 2);
    assert.match(child.stderr, new RegExp(`^memkit: ${blocks} leaked blocks, \\d+ bytes$`, "m"), child.stderr);
    if (blocks > 50) assert.match(child.stderr, new RegExp(`^ {2}… and ${blocks - 50} more$`, "m"), child.stderr);
    assert.ok(child.stderr.split("\n").length < 90, child.stderr);
    assert.equal(child.status, 1, child.stderr);
  });
}

test("DebugAllocators over 60 pools: those of the 10 owners past the 50 listed get at most 8 headings, the rest counted", () => {
  const child = runChild(CAP_CHILD, {}, ["pools", "60"]);
  assert.match(child.stderr, /^ {2}… and 10 more owners$/m, child.stderr);
  assertCapped(child.stderr, 60, { owned: 50, ownedMore: 0, headings: 8, headingsMore: 2 });
  assert.equal(child.status, 1, child.stderr);
});
