// Shared test helpers: a seeded PRNG, and running a script in a child process
// of the same runtime (Deno or Bun) to observe crashes and exit codes.
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { AllocationError, nativeInfo } from "../mod.ts";

/** xorshift32 with a fixed seed: the same sequence on every run and runtime. */
export function xorshift32(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** A random integer in [0, n). */
export function below(next: () => number, n: number): number {
  return next() % n;
}

/** What `fn` did: `ok` when it returned, else the category of the AllocationError it threw (or the error's name). */
export function outcome(fn: () => unknown, ok = "ok"): string {
  try {
    fn();
    return ok;
  } catch (error) {
    return error instanceof AllocationError ? error.category : (error as Error).name;
  }
}

/** Absolute path of a file in test/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

export interface ChildResult {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` with the runtime running this test, with extra environment. */
export function runChild(
  script: string,
  env: Record<string, string> = {},
  args: string[] = [],
  timeoutMs = 120_000,
): ChildResult {
  const runtime = nativeInfo().runtime;
  const configPath = fileURLToPath(new URL("../deno.json", import.meta.url));
  const argv = runtime === "deno" ? ["run", "-A", `--config=${configPath}`, script, ...args] : ["run", script, ...args];
  const result = spawnSync(process.execPath, argv, {
    env: { ...process.env, NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: timeoutMs,
  });
  return {
    status: result.status,
    signal: result.signal,
    stdout: result.stdout ?? "",
    stderr: result.stderr ?? "",
  };
}

/** Runs `make` as on a host that disallows code generation from strings (the checked DataView path of the arrays). */
export function withoutCodegen<T>(make: () => T): T {
  const allowed = globalThis.Function;
  globalThis.Function = function () {
    throw new EvalError("code generation from strings disallowed");
  } as unknown as FunctionConstructor;
  try {
    return make();
  } finally {
    globalThis.Function = allowed;
  }
}

/**
 * Runs the cases `ids` of a case script in child processes of this runtime. The script prints one JSON line
 * `{ begin: id }` as a case starts and `{ id, failures }` when it ends; a case that crashes the process fails (named
 * with the signal and the end of stderr), and the cases after it run in a fresh process. Each id maps to its
 * failures (none: it passed).
 */
export function runCaseChildren(script: string, ids: string[]): Map<string, string[]> {
  const results = new Map<string, string[]>();
  let remaining = ids;
  while (remaining.length > 0) {
    const child = runChild(script, {}, remaining);
    let begun: string | null = null;
    for (const line of child.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      const value = JSON.parse(line) as { begin?: string; id?: string; failures?: string[] };
      if (value.begin !== undefined) begun = value.begin;
      else if (value.id !== undefined) {
        results.set(value.id, value.failures ?? []);
        begun = null;
      }
    }
    const how = child.signal !== null ? `signal ${child.signal}` : `exit code ${child.status}`;
    const stderr = child.stderr.trim().split("\n").slice(-4).join(" | ");
    if (begun !== null) results.set(begun, [`the process died (${how}) in this case: ${stderr}`]);
    else if (child.status !== 0 || child.signal !== null) {
      // It ended badly between cases: every case not reported fails, or it would loop.
      for (const id of remaining) if (!results.has(id)) results.set(id, [`the process ended with ${how}: ${stderr}`]);
    }
    remaining = remaining.filter((id) => !results.has(id));
  }
  return results;
}
