// macOS memory status: decoders for the structures the kernel fills in
// (offsets from xnu's headers),
// and the reader that calls sysctlbyname, host_statistics64 and
// proc_pid_rusage through FFI. The decoders are tested on synthetic buffers
// here; the FFI calls can only run on macOS.
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../base/errors.ts";
import type { MemoryStatus } from "./memory_status.ts";

/** `struct vm_statistics64` (152 bytes, natural alignment), page counts. */
export interface VmStatistics64 {
  free: number;
  active: number;
  inactive: number;
  wire: number;
  purgeable: number;
  speculative: number;
  swapouts: number;
  compressor: number;
  external: number;
  internal: number;
}

/** HOST_VM_INFO64 and its count in 32-bit words. */
export const HOST_VM_INFO64 = 4;
export const HOST_VM_INFO64_COUNT = 38;
/** proc_pid_rusage flavor RUSAGE_INFO_V0 and the offset of ri_phys_footprint. */
export const RUSAGE_INFO_V0 = 0;
const RUSAGE_PHYS_FOOTPRINT = 72;

/** Decodes `struct vm_statistics64` from the bytes host_statistics64 wrote. */
export function decodeVmStatistics64(bytes: Uint8Array): VmStatistics64 {
  if (bytes.byteLength < 152) throw new RangeError(`vm_statistics64 needs 152 bytes: got ${bytes.byteLength}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (offset: number) => view.getUint32(offset, true);
  const u64 = (offset: number) => Number(view.getBigUint64(offset, true));
  return {
    free: u32(0),
    active: u32(4),
    inactive: u32(8),
    wire: u32(12),
    purgeable: u32(88),
    speculative: u32(92),
    swapouts: u64(120),
    compressor: u32(128),
    external: u32(136),
    internal: u32(140),
  };
}

/** The process's phys_footprint from a `struct rusage_info_v0` (96 bytes). */
export function decodeRusageFootprint(bytes: Uint8Array): number {
  if (bytes.byteLength < 96) throw new RangeError(`rusage_info_v0 needs 96 bytes: got ${bytes.byteLength}`);
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 96).getBigUint64(RUSAGE_PHYS_FOOTPRINT, true));
}

/** Available bytes, Activity Monitor's way: memsize − ((internal − purgeable) + wire + compressor) pages. */
export function darwinAvailable(vm: VmStatistics64, pageSize: number, memsize: number): number {
  const used = (Math.max(0, vm.internal - vm.purgeable) + vm.wire + vm.compressor) * pageSize;
  return Math.max(0, memsize - used);
}

/**
 * The kernel's own verdict (`kern.memorystatus_vm_pressure_level`: 1 normal,
 * 2 warn, 4 critical) as PSI-like percentages, so pressureLevel() can raise
 * the level from it: warn reads as `some` 10 % (Medium), critical as `full`
 * 25 % (Critical). Normal adds nothing: "memory can be nearly full while the
 * kernel is under no pressure".
 */
export function kernelLevelAsPsi(level: number): MemoryStatus["psi"] {
  if (level >= 4) return { some10: 100, some60: 100, full10: 25, full60: 25 };
  if (level >= 2) return { some10: 10, some60: 10, full10: 0, full60: 0 };
  return { some10: 0, some60: 0, full10: 0, full60: 0 };
}

function sysctlNumber(name: string, bytes: 4 | 8): number {
  const libc = native.libc;
  const out = new Uint8Array(8);
  const length = new BigUint64Array([BigInt(bytes)]);
  const cName = new TextEncoder().encode(`${name}\0`);
  if (libc.sysctlbyname!(cName, out, new Uint8Array(length.buffer), 0, 0) !== 0) {
    throw new AllocationError("platform", `sysctlbyname("${name}") failed`);
  }
  const view = new DataView(out.buffer);
  return bytes === 4 ? view.getInt32(0, true) : Number(view.getBigUint64(0, true));
}

let host = 0;

/** Reads the memory status on macOS through FFI. */
export function readDarwinStatus(): MemoryStatus {
  const libc = native.libc;
  if (!libc.sysctlbyname || !libc.host_statistics64 || !libc.mach_host_self || !libc.proc_pid_rusage) {
    throw new AllocationError("unsupported", "Cannot read the memory status: the macOS functions are missing");
  }
  const memsize = sysctlNumber("hw.memsize", 8);
  const kernelLevel = sysctlNumber("kern.memorystatus_vm_pressure_level", 4);
  host ||= libc.mach_host_self(); // each call returns a new send right: call it once
  const info = new Uint8Array(HOST_VM_INFO64_COUNT * 4);
  const count = new Uint32Array([HOST_VM_INFO64_COUNT]);
  if (libc.host_statistics64(host, HOST_VM_INFO64, info, new Uint8Array(count.buffer)) !== 0) {
    throw new AllocationError("platform", "host_statistics64(HOST_VM_INFO64) failed");
  }
  const vm = decodeVmStatistics64(info);
  const rusage = new Uint8Array(96);
  const footprint = libc.proc_pid_rusage(libc.getpid!(), RUSAGE_INFO_V0, rusage) === 0
    ? decodeRusageFootprint(rusage)
    : 0;
  const available = darwinAvailable(vm, native.pageSize, memsize);
  return {
    totalBytes: memsize,
    availableBytes: available,
    limitBytes: null,
    usedBytes: memsize - available,
    rssBytes: footprint,
    psi: kernelLevelAsPsi(kernelLevel),
    source: "darwin",
    events: null,
    limitFile: null,
    totalSource: "sysctl",
  };
}
