// Turns a failed C call and its errno into an AllocationError that names both.
import { native } from "../../ffi/native.ts";
import { AllocationError, type AllocationErrorCategory } from "./errors.ts";

const LINUX_ERRNO: Record<number, string> = {
  1: "EPERM (operation not permitted)",
  2: "ENOENT (no such file or directory)",
  9: "EBADF (bad file descriptor)",
  11: "EAGAIN (resource temporarily unavailable)",
  12: "ENOMEM (out of memory)",
  13: "EACCES (permission denied)",
  14: "EFAULT (bad address)",
  16: "EBUSY (device or resource busy)",
  19: "ENODEV (no such device)",
  21: "EISDIR (is a directory)",
  22: "EINVAL (invalid argument)",
  23: "ENFILE (too many open files in system)",
  24: "EMFILE (too many open files)",
  27: "EFBIG (file too large)",
  75: "EOVERFLOW (value too large)",
};

const DARWIN_ERRNO: Record<number, string> = {
  ...LINUX_ERRNO,
  11: "EDEADLK (resource deadlock avoided)",
  35: "EAGAIN (resource temporarily unavailable)",
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
