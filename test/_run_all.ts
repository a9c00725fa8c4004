// `deno task test`: runs the whole suite under Deno (tests and JSDoc/README
// examples) and under Bun, then prints one line with the totals of both.
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

interface Run {
  name: string;
  command: string;
  args: string[];
  count(output: string): { passed: number; failed: number } | null;
}

const runs: Run[] = [
  {
    name: "deno",
    command: bin("deno"),
    args: ["test", "-A", "--doc", "--v8-flags=--expose-gc", "test/", "mod.ts", "src/", "README.md"],
    count(output) {
      const m = [...output.matchAll(/(?:ok|FAILED) \| (\d+) passed(?: \([^)]*\))? \| (\d+) failed/g)].at(-1);
      return m ? { passed: Number(m[1]), failed: Number(m[2]) } : null;
    },
  },
  {
    name: "bun",
    command: bin("bun"),
    // Bun reads a test timeout only from the command line (it ignores bunfig.toml's).
    args: ["test", "--timeout", "120000"],
    count(output) {
      const passed = [...output.matchAll(/^\s*(\d+) pass$/gm)].at(-1);
      const failed = [...output.matchAll(/^\s*(\d+) fail$/gm)].at(-1);
      return passed && failed ? { passed: Number(passed[1]), failed: Number(failed[1]) } : null;
    },
  },
];

function execute(run: Run): Promise<{ output: string; code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    const child = spawn(run.command, run.args, { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
    let output = "";
    const tee = (chunk: Uint8Array) => {
      output += new TextDecoder().decode(chunk);
      process.stdout.write(chunk);
    };
    child.stdout.on("data", tee);
    child.stderr.on("data", tee);
    child.on("close", (code, signal) => resolve({ output, code, signal }));
  });
}

// Deno 2.9.6 with Mesa's Vulkan driver loaded aborts at exit in about one
// `deno test` run in ten, after it printed its summary: a thread's malloc
// teardown meets a heap glibc finds corrupted while exit() runs the driver
// stack's finalizers. A test that only calls navigator.gpu.requestAdapter(),
// without memkit, does it as often (docs/deno-exit-abort.md). Such a run (every
// test passed, then SIGABRT with one of glibc's heap messages) is run once more,
// saying so; a second one, or any other failure, fails.
const GLIBC_HEAP_ABORT = /^(corrupted size vs\. prev_size.*|malloc_consolidate\(\): .*|free\(\): .*|double free .*)$/m;
function abortedAfterPassing(
  run: Run,
  output: string,
  signal: string | null,
  counts: { passed: number; failed: number } | null,
): string | null {
  if (run.name !== "deno" || signal !== "SIGABRT" || counts === null || counts.failed !== 0) return null;
  const summaryEnd = output.lastIndexOf(" failed");
  const message = GLIBC_HEAP_ABORT.exec(output.slice(summaryEnd));
  return message === null ? null : message[1];
}

let passed = 0;
let failed = 0;
const summary: string[] = [];
for (const run of runs) {
  console.log(`\n=== ${run.name} ${run.args.join(" ")}`);
  let { output, code, signal } = await execute(run);
  let counts = run.count(output);
  const exitAbort = abortedAfterPassing(run, output, signal, counts);
  if (exitAbort !== null) {
    console.log(
      `\n=== ${run.name}: all ${counts!.passed} tests passed, then the process aborted at exit ("${exitAbort}"), ` +
        `the runtime's exit crash with a Vulkan driver loaded (docs/deno-exit-abort.md); running it once more`,
    );
    summary.push(`${run.name}: first run ${counts!.passed} passed, then aborted at exit ("${exitAbort}"); run again`);
    ({ output, code, signal } = await execute(run));
    counts = run.count(output);
  }
  if (counts === null) {
    // A runner that crashed before reporting counts as one failure.
    summary.push(`${run.name}: no result (exit code ${code}${signal === null ? "" : `, ${signal}`})`);
    failed++;
    continue;
  }
  if (code !== 0 && counts.failed === 0) counts.failed = 1;
  summary.push(`${run.name}: ${counts.passed} passed, ${counts.failed} failed`);
  passed += counts.passed;
  failed += counts.failed;
}
console.log(`\n${summary.join("\n")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
