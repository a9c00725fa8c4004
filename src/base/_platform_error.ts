// Turns a failed C call and its errno into an AllocationError that names both.
import { constants } from "node:os";
import { native } from "../../ffi/native.ts";
import { AllocationError, type AllocationErrorCategory } from "./errors.ts";

// 1 to 34 are the same on Linux and macOS (both from early Unix); the rest differ.
const COMMON_ERRNO: Record<number, string> = {
  1: "EPERM (operation not permitted)",
  2: "ENOENT (no such file or directory)",
  4: "EINTR (interrupted system call)",
  5: "EIO (input/output error)",
  9: "EBADF (bad file descriptor)",
  12: "ENOMEM (out of memory)",
  13: "EACCES (permission denied)",
  14: "EFAULT (bad address)",
  16: "EBUSY (device or resource busy)",
  17: "EEXIST (file exists)",
  19: "ENODEV (no such device)",
  20: "ENOTDIR (not a directory)",
  21: "EISDIR (is a directory)",
  22: "EINVAL (invalid argument)",
  23: "ENFILE (too many open files in system)",
  24: "EMFILE (too many open files)",
  27: "EFBIG (file too large)",
  28: "ENOSPC (no space left on device)",
  30: "EROFS (read-only file system)",
};

const LINUX_ERRNO: Record<number, string> = {
  ...COMMON_ERRNO,
  11: "EAGAIN (resource temporarily unavailable)",
  36: "ENAMETOOLONG (file name too long)",
  40: "ELOOP (too many levels of symbolic links)",
  75: "EOVERFLOW (value too large)",
};

const DARWIN_ERRNO: Record<number, string> = {
  ...COMMON_ERRNO,
  11: "EDEADLK (resource deadlock avoided)",
  35: "EAGAIN (resource temporarily unavailable)",
  62: "ELOOP (too many levels of symbolic links)",
  63: "ENAMETOOLONG (file name too long)",
  84: "EOVERFLOW (value too large)",
};

/** "ENOMEM (out of memory)" for 12 on Linux, or "errno 123". */
export function errnoName(errno: number): string {
  const table = native.os === "darwin" ? DARWIN_ERRNO : LINUX_ERRNO;
  return table[errno] ?? `errno ${errno}`;
}

/** Reads errno now (call right after the failing call) and builds the error. */
export function platformError(
  call: string,
  detail: string,
  category: AllocationErrorCategory = "platform",
): AllocationError {
  const errno = native.errno();
  return new AllocationError(category, `${call}(${detail}) failed with ${errnoName(errno)}`, { call, errno });
}

/**
 * A file-system call the runtime made (node:fs) that failed with an error
 * code, as a "platform" AllocationError naming the call and its errno (the
 * code's number on this system); any other error (Deno's NotCapable for a
 * missing permission) is returned as it is.
 */
export function fileSystemError(error: unknown, call: string, what: string): unknown {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return error;
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  const name = errno !== undefined && errnoName(errno).startsWith(code) ? errnoName(errno) : code;
  return new AllocationError("platform", `Cannot ${what}: ${call} failed with ${name}`, { cause: error, call, errno });
}
