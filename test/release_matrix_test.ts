// The release matrix for the owners of storage that are not arrays (issue 10,
// the safety model: an owner knows when its storage is gone; test/arrays/release_matrix_test.ts covers the arrays): a
// Handle (FreeListAllocator.handle()) and a Mapping (mapPages / mapFile). For
// each way its storage can be released (the handle's free(), the heap's
// dispose(), the heap's backing released at any depth; a mapping's unmap() or
// dispose) every public member either works or throws
// AllocationError("use-after-free"), and views taken before read as length 0.
// Ways that only restrict or move the storage (protect("none" | "read"),
// defragment()) keep the owner working, with AllocationError("unsupported")
// where documented. Nothing crashes the process or lets the engine's
// "detached ArrayBuffer" error through. Each combination runs in a child
// process (test/fixtures/release_matrix_child.ts); a crash fails one test and
// names the member that was running.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { nativeInfo } from "../mod.ts";
import { fixture } from "./_helpers.ts";

const HANDLE_RELEASES = [
  "handle.free()",
  "heap.dispose()",
  "heap[Symbol.dispose]()",
  "heap in a using block that ends",
  "heap.dispose() inside defragment()",
  "backing Arena reset()",
  "backing Arena reset(), safety false",
  "backing Arena reset('retain-capacity')",
  "backing Arena scope end",
  "backing Arena scope end, safety false",
  "backing Arena dispose()",
  "backing FreeListAllocator dispose()",
  "backing StackAllocator reset()",
  "backing StackAllocator dispose()",
  "backing DebugAllocator deinit()",
  "backing DebugAllocator deinit(), safety false",
  "backing global allocator: initAllocator() again",
  "backing global allocator: deinit()",
] as const;
const HANDLE_MOVES = ["defragment() moved it", "defragment() with it pinned"] as const;

const MAPPING_OWNERS = ["mapPages", "mapFile", "mapFile write+shared"] as const;
const MAPPING_RELEASES = ["unmap()", "[Symbol.dispose]()", "a using block that ends", "unmap() twice"] as const;
const MAPPING_PROTECTS = ['protect("none")', 'protect("read")'] as const;
const MAPPING_RESTORED = 'protect("none") then protect("read-write")';

/**
 * Combinations that fail today (real bugs; MEMKIT_ALL=1 runs them). None at
 * the time of writing; add one with the outcome it showed, never by
 * loosening `expected`.
 */
export const KNOWN_FAILING: Readonly<Record<string, string>> = {};

const runAll = process.env.MEMKIT_ALL === "1";
const OK = /^ok /;
const UAF = /^uaf$/;
const unsupported = /^AllocationError\(unsupported\): /;
const platform = /^AllocationError\(platform\): /;

/** What `member` may give after `way`; a member not listed (a new one) gets the `other` rule. */
function expected(owner: string, way: string, member: string): RegExp[] {
  if (owner === "Handle") {
    if ((HANDLE_RELEASES as readonly string[]).includes(way)) {
      const rules: Record<string, RegExp[]> = {
        "bytes": [UAF],
        "size": [UAF],
        "pin()": [UAF],
        "unpin()": [UAF],
        "contents": [UAF],
        "freed": [/^ok true$/],
        "pinned": [/^ok (true|false)$/],
        // A second free of a freed handle is a double free; of a handle whose heap is gone, use after free.
        "free()": way === "handle.free()" ? [/^AllocationError\(double-free\): /] : [UAF],
        "free() twice": way === "handle.free()" ? [/^AllocationError\(double-free\): /] : [UAF],
        "view taken before": [/^ok 0$/],
      };
      return rules[member] ?? [OK, UAF];
    }
    const pinned = way === "defragment() with it pinned";
    const rules: Record<string, RegExp[]> = {
      "bytes": [/^ok Uint8Array\(64\)$/],
      "size": [/^ok 64$/],
      "pin()": [/^ok undefined$/],
      "unpin()": pinned ? [/^ok undefined$/] : [/^RangeError: Cannot unpin as the Handle is not pinned/],
      "contents": [/^ok \[1,2,3,4\]$/],
      "freed": [/^ok false$/],
      "pinned": [pinned ? /^ok true$/ : /^ok false$/],
      "free()": [/^ok undefined$/],
      "free() twice": [/^AllocationError\(double-free\): /],
      // A moved handle's old views are detached; a pinned one's stay.
      "view taken before": [pinned ? /^ok 64$/ : /^ok 0$/],
    };
    return rules[member] ?? [OK];
  }
  const detachedBefore: Record<string, RegExp[]> = {
    "bytes taken before": [/^ok 0$/],
    "window taken before": [/^ok 0$/],
    "bytes taken before, index 0": [/^ok undefined$/],
  };
  if ((MAPPING_RELEASES as readonly string[]).includes(way)) {
    const rules: Record<string, RegExp[]> = {
      "address": [/^ok \d+$/],
      "byteLength": [/^ok 0$/],
      "protection": [/^ok "(none|read|read-write)"$/],
      "bytes": [/^ok Uint8Array\(0\)$/], // documented: an empty, detached view after unmap()
      "unmap()": [/^ok undefined$/],
      "[Symbol.dispose]()": [/^ok undefined$/],
      "contents": [UAF],
      ...detachedBefore,
    };
    return rules[member] ?? [UAF];
  }
  const none = way === 'protect("none")';
  const restored = way === MAPPING_RESTORED;
  const rules: Record<string, RegExp[]> = {
    "address": [/^ok \d+$/],
    "byteLength": [/^ok 8192$/],
    "protection": [restored ? /^ok "read-write"$/ : none ? /^ok "none"$/ : /^ok "read"$/],
    "bytes": [restored ? /^ok Uint8Array\(8192\)$/ : unsupported],
    "view()": [restored ? /^ok Uint8Array\(16\)$/ : unsupported],
    "read()": [none ? unsupported : /^ok Uint8Array\(16\)$/],
    "contents": [none ? unsupported : /^ok \[1,2,3,4\]$/],
    "protect()": [/^ok undefined$/],
    // The kernel may refuse these (mlock of an inaccessible range, RLIMIT_MEMLOCK): "platform", as documented.
    "advise()": [/^ok undefined$/, platform],
    "lock()": [/^ok undefined$/, platform],
    "unlock()": [/^ok undefined$/, platform],
    "sync()": [/^ok undefined$/, platform],
    "unmap()": [/^ok undefined$/],
    "[Symbol.dispose]()": [/^ok undefined$/],
    ...detachedBefore, // lowering the protection detached them, and going back does not revive them
  };
  return rules[member] ?? (restored ? [OK] : [OK, unsupported, platform]);
}

interface Child {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

const configPath = fileURLToPath(new URL("../deno.json", import.meta.url));
let running = 0;
const queue: (() => void)[] = [];
function runChild(args: string[]): Promise<Child> {
  return new Promise((resolve) => {
    const start = () => {
      running++;
      const script = fixture("release_matrix_child.ts");
      const argv = nativeInfo().runtime === "deno"
        ? ["run", "-A", `--config=${configPath}`, script, ...args]
        : ["run", script, ...args];
      const child = spawn(process.execPath, argv, { env: { ...process.env, NO_COLOR: "1" } });
      let stdout = "", stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("close", (status, signal) => {
        clearTimeout(timer);
        running--;
        queue.shift()?.();
        resolve({ status, signal, stdout, stderr });
      });
    };
    if (running < 4) start();
    else queue.push(start);
  });
}

const COMBINATIONS: [string, string][] = [
  ...[...HANDLE_RELEASES, ...HANDLE_MOVES].map((way): [string, string] => ["Handle", way]),
  ...MAPPING_OWNERS.flatMap((owner) =>
    [...MAPPING_RELEASES, ...MAPPING_PROTECTS, MAPPING_RESTORED].map((way): [string, string] => [owner, way])
  ),
];

const pending = new Map<string, Promise<Child>>();
for (const [owner, way] of COMBINATIONS) {
  const name = `${owner} after ${way}`;
  if (runAll || !(name in KNOWN_FAILING)) pending.set(name, runChild([owner, way]));
}

for (const [owner, way] of COMBINATIONS) {
  const name = `${owner} after ${way}`;
  const known = name in KNOWN_FAILING;
  test(
    `release matrix: ${name}: every member works or throws use-after-free (child process)`,
    { skip: known && !runAll ? `KNOWN_FAILING: ${KNOWN_FAILING[name]} (MEMKIT_ALL=1 runs it)` : false },
    async () => {
      const child = await pending.get(name)!;
      const lines = child.stdout.split("\n");
      const started = lines.filter((l) => l.startsWith("START ")).map((l) => JSON.parse(l.slice(6)) as string);
      const results = lines.filter((l) => l.startsWith("MEMBER ")).map((l) =>
        JSON.parse(l.slice(7)) as { member: string; outcome: string }
      );
      const crash = `the child ${child.signal ? `was killed by ${child.signal}` : `exited with ${child.status}`} ` +
        `while running member ${started.length > results.length ? started.at(-1) : "(none)"}:\n${child.stderr}`;
      assert.equal(child.signal, null, crash);
      assert.equal(child.status, 0, crash);
      assert.ok(lines.includes("DONE"), crash);
      // At least the members of today's Handle / Mapping, plus the views taken before.
      assert.ok(results.length >= (owner === "Handle" ? 10 : 17), `only ${results.length} members ran`);
      const wrong = results.filter(({ member, outcome }) =>
        !expected(owner, way, member).some((rule) => rule.test(outcome)) ||
        /detached ArrayBuffer|Cannot perform|out-of-bounds/.test(outcome)
      ).map(({ member, outcome }) => `${member}: ${outcome} (expected ${expected(owner, way, member).join(" or ")})`);
      assert.deepEqual(wrong, [], `${name}: members that neither worked nor threw use-after-free`);
      if (known) console.log(`release matrix: "${name}" passes now: remove it from KNOWN_FAILING`);
    },
  );
}
