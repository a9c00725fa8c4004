// The error for pages the kernel would not lock: it names RLIMIT_MEMLOCK, the
// limit this process runs under, what it already holds locked, and how to
// raise the limit, so the fix is in the message rather than in a man page.
import { readFileSync } from "node:fs";
import { granted, native } from "../../ffi/native.ts";
import { errnoName } from "../base/_platform_error.ts";
import { AllocationError } from "../base/errors.ts";
import { byteCount } from "./_words.ts";

/** The soft and hard RLIMIT_MEMLOCK in bytes (null: unlimited), or null when getrlimit fails. */
export function memlockLimit(): { soft: number | null; hard: number | null } | null {
  const limits = new Uint8Array(16);
  if (native.libc.getrlimit(native.platform.RLIMIT_MEMLOCK, limits) !== 0) return null;
  const [soft, hard] = new BigUint64Array(limits.buffer);
  // RLIM_INFINITY is 2^64 - 1 on Linux and 2^63 - 1 on macOS: both far above any real limit.
  const bytes = (value: bigint) => (value >= 1n << 62n ? null : Number(value));
  return { soft: bytes(soft), hard: bytes(hard) };
}

/** Bytes this process has locked now (VmLck), where /proc says so. */
export function lockedBytes(): number | null {
  if (native.os !== "linux" || !granted({ name: "read", path: "/proc/self/status" })) return null;
  try {
    const match = /^VmLck:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Whether this process holds CAP_IPC_LOCK (Linux): the kernel then locks past RLIMIT_MEMLOCK. */
export function canLockPastLimit(): boolean {
  if (native.os !== "linux" || !granted({ name: "read", path: "/proc/self/status" })) return false;
  try {
    const match = /^CapEff:\s+([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match !== null && (BigInt(`0x${match[1]}`) & (1n << 14n)) !== 0n; // CAP_IPC_LOCK is capability 14
  } catch {
    return false;
  }
}

/**
 * The largest block of whole pages this process may still lock: the soft
 * RLIMIT_MEMLOCK less what it has locked (VmLck), rounded down to pages;
 * Infinity when there is no limit (unlimited, CAP_IPC_LOCK, or it cannot be read).
 */
export function lockableBytes(): number {
  if (native.libcError) return Infinity;
  const limit = memlockLimit();
  if (limit === null || limit.soft === null || canLockPastLimit()) return Infinity;
  const left = Math.max(0, limit.soft - (lockedBytes() ?? 0));
  return Math.floor(left / native.pageSize) * native.pageSize;
}

function amount(bytes: number | null): string {
  if (bytes === null) return "unlimited";
  return bytes % 1024 === 0 && bytes !== 0 ? `${bytes / 1024} KiB` : byteCount(bytes);
}

/**
 * The AllocationError("platform") for an `mlock` of `length` bytes that
 * failed with `errno` (read right after the call).
 */
export function memlockError(length: number, errno: number): AllocationError {
  const limit = memlockLimit();
  const held = lockedBytes();
  const facts = limit === null
    ? "RLIMIT_MEMLOCK could not be read"
    : `RLIMIT_MEMLOCK here is ${amount(limit.soft)} (hard limit ${amount(limit.hard)})` +
      (held === null ? "" : ` and this process already has ${amount(held)} locked`);
  const how = native.os === "darwin"
    ? "raise it with `ulimit -l <KiB>` in the shell that starts the program, or `launchctl limit memlock`"
    : "raise it with `ulimit -l <KiB>` in the shell that starts the program (up to the hard limit), " +
      "`prlimit --pid <pid> --memlock=<bytes>:<bytes>`, `LimitMEMLOCK=` in a systemd unit, a `memlock` line in " +
      "/etc/security/limits.conf, or `docker run --ulimit memlock=<bytes>`; a process with CAP_IPC_LOCK has no limit";
  return new AllocationError(
    "platform",
    `the kernel refused to lock ${byteCount(length)} in RAM: mlock failed with ${errnoName(errno)}; ` +
      `${facts}; ${how}`,
    { call: "mlock", errno },
  );
}
