// Running fixture scripts in child processes of this runtime, optionally
// inside a cgroup v1 memory group and/or with a file bind-mounted over
// /proc/meminfo in a private mount namespace (what LXCFS does to containers),
// and making and removing v1 memory groups for the real-hierarchy tests.
import { type ChildProcess, spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseMountinfo } from "../../src/pressure/_proc_parsers.ts";
import { nativeInfo } from "../../mod.ts";

/** Absolute path of a script in test/pressure/fixtures. */
export function pressureFixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

/** The command line that runs `script` with the runtime running this test. */
export function runtimeArgv(script: string, args: string[] = []): string[] {
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  return nativeInfo().runtime === "deno"
    ? [process.execPath, "run", "-A", `--config=${config}`, script, ...args]
    : [process.execPath, "run", script, ...args];
}

/** Where the child goes before it becomes the runtime (the shell execs it, so the pid stays). */
export interface Placement {
  /** A cgroup v1 directory to join. */
  cgroup?: string;
  /** A file to bind-mount over /proc/meminfo, in a mount namespace of the child's own. */
  meminfo?: string;
}

function wrap(
  argv: string[],
  placement: Placement,
): { command: string; args: string[]; env: Record<string, string | undefined> } {
  const steps: string[] = [];
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1" };
  if (placement.cgroup) {
    steps.push('echo $$ > "$MEMKIT_TEST_PROCS"');
    env.MEMKIT_TEST_PROCS = `${placement.cgroup}/cgroup.procs`;
  }
  if (placement.meminfo) {
    steps.push('mount --bind "$MEMKIT_TEST_MEMINFO" /proc/meminfo');
    env.MEMKIT_TEST_MEMINFO = placement.meminfo;
  }
  const shell = ["sh", "-c", [...steps, 'exec "$@"'].join(" && "), "sh", ...argv];
  // unshare without --fork execs the shell in place: same pid, own mount namespace.
  const full = placement.meminfo ? ["unshare", "--mount", "--propagation", "private", ...shell] : shell;
  return { command: full[0], args: full.slice(1), env };
}

/** Runs a command line to completion, placed as asked. */
export function runPlaced(argv: string[], placement: Placement = {}): SpawnSyncReturns<string> {
  const { command, args, env } = wrap(argv, placement);
  return spawnSync(command, args, { env, encoding: "utf8", timeout: 120_000 });
}

/** Starts a command line, placed as asked, with piped stdio. */
export function startPlaced(argv: string[], placement: Placement = {}): ChildProcess {
  const { command, args, env } = wrap(argv, placement);
  return spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
}

/** Resolves with the first stdout line matching `pattern`; rejects if the child exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "", err = "";
    const timer = setTimeout(
      () => reject(new Error(`no line matching ${pattern} in ${timeoutMs} ms: ${err}`)),
      timeoutMs,
    );
    child.stderr!.on("data", (chunk) => (err += chunk));
    child.stdout!.on("data", (chunk) => {
      out += chunk;
      const line = out.split("\n").find((l) => pattern.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? signal}) before printing ${pattern}: ${err}`));
    });
  });
}

/** Closes a child's stdin, then kills it if it has not exited within `graceMs`; resolves once it has exited. */
export function endChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin?.end();
  });
}

/** The cgroup v1 memory controller's mount point, or why it cannot be used for a test. */
export function writableMemoryV1(): { mountPoint: string } | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: "not root" };
  const mounts = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
  if (!mounts.v1) {
    return { reason: "no cgroup v1 memory controller mounted (cgroup v2 hierarchies are covered by fixtures)" };
  }
  if (!existsSync(`${mounts.v1.mountPoint}/memory.limit_in_bytes`)) {
    return { reason: `${mounts.v1.mountPoint} has no memory.limit_in_bytes` };
  }
  return { mountPoint: mounts.v1.mountPoint };
}

/** Creates a v1 memory group (with a limit when given); throws when the kernel refuses. */
export function makeGroup(path: string, limitBytes?: number): void {
  mkdirSync(path);
  try {
    if (limitBytes !== undefined) writeFileSync(`${path}/memory.limit_in_bytes`, String(limitBytes));
  } catch (error) {
    rmdirSync(path);
    throw error;
  }
}

/** Removes groups, deepest first; a group still emptying (EBUSY) is retried for a few seconds. */
export async function removeGroups(paths: string[]): Promise<void> {
  for (const path of [...paths].sort((a, b) => b.length - a.length)) {
    for (let attempt = 0; existsSync(path); attempt++) {
      try {
        rmdirSync(path);
      } catch (error) {
        if (attempt >= 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

/** Whether this process may make a private mount namespace and bind-mount over /proc/meminfo. */
export function canBindMeminfo(): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: "not root" };
  const probe = spawnSync(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", "mount --bind /proc/meminfo /proc/meminfo"],
    { encoding: "utf8" },
  );
  if (probe.error) return { ok: false, reason: `unshare: ${probe.error.message}` };
  if (probe.status !== 0) return { ok: false, reason: `unshare/mount refused: ${probe.stderr.trim()}` };
  return { ok: true };
}
