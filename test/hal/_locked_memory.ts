// Shared by the tests of the locked allocators: what the kernel says this
// process has locked, its mappings, and running a fixture under a lowered
// RLIMIT_MEMLOCK in a child process of the same runtime.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { nativeInfo } from "../../mod.ts";
import type { ChildResult } from "../_helpers.ts";

/** Whether /proc tells locked bytes and mappings (Linux). */
export const HAS_PROC: boolean = nativeInfo().os === "linux";

/** VmLck of this process, in bytes. */
export function lockedBytes(): number {
  return Number(/^VmLck:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
}

/** One mapping of /proc/self/smaps: its range, permissions and VmFlags. */
export interface SmapsEntry {
  start: number;
  end: number;
  perms: string;
  flags: string[];
}

/** Every mapping of this process, in address order. */
export function smaps(): SmapsEntry[] {
  const entries: SmapsEntry[] = [];
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line);
    if (range) {
      entries.push({ start: parseInt(range[1], 16), end: parseInt(range[2], 16), perms: range[3], flags: [] });
    } else if (line.startsWith("VmFlags:") && entries.length > 0) {
      entries[entries.length - 1].flags = line.slice(8).trim().split(/\s+/);
    }
  }
  return entries;
}

/** The mapping that holds `address`, and its neighbours below and above. */
export function mappingAt(address: number): { below?: SmapsEntry; at: SmapsEntry; above?: SmapsEntry } {
  const all = smaps();
  const i = all.findIndex((e) => e.start <= address && address < e.end);
  if (i < 0) throw new Error(`no mapping holds 0x${address.toString(16)}`);
  return { below: all[i - 1], at: all[i], above: all[i + 1] };
}

function commandExists(command: string): boolean {
  return spawnSync(command, ["--version"], { encoding: "utf8" }).status === 0;
}

/**
 * Runs `fixture` (a path) with this test's runtime under RLIMIT_MEMLOCK =
 * `kib` KiB. Root has CAP_IPC_LOCK, which ignores the limit: the child then
 * runs through `setpriv` with that capability dropped. Returns a reason to
 * skip when that cannot be arranged.
 */
export function runUnderMemlockLimit(fixture: string, kib: number): ChildResult | { skip: string } {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (root && !commandExists("setpriv")) return { skip: "running as root without setpriv to drop CAP_IPC_LOCK" };
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  const runtime = nativeInfo().runtime === "deno" ? ["run", "-A", `--config=${config}`, fixture] : ["run", fixture];
  const shell = ["sh", "-c", `ulimit -l ${kib} && exec "$0" "$@"`, process.execPath, ...runtime];
  const argv = root ? ["setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", ...shell] : shell;
  const result = spawnSync(argv[0], argv.slice(1), {
    env: { ...process.env, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: result.status, signal: result.signal, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}
