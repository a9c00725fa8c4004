// `_view_limit_child.ts` (view_limit_test.ts runs it in Bun, under RLIMIT_MEMLOCK = 64 KiB without
// CAP_IPC_LOCK, so that code that maps and locks before it refuses fails at mlock instead of faulting in
// gigabytes): asks for locked memory one page above what one ArrayBuffer holds (nativeInfo().maxViewBytes),
// through a MemoryInterface (audio, dma-capable, secret) and through LockedPageAllocator and SecretAllocator
// (alloc, tryAlloc, resize); records what each call did and every libc call it made; prints one JSON report.
import { AllocationError, LockedPageAllocator, MemoryInterface, nativeInfo, SecretAllocator } from "../../mod.ts";
import { spyOnNativeCalls } from "../_native_hooks.ts";

const over = nativeInfo().maxViewBytes + nativeInfo().pageSize;
const memory = new MemoryInterface({ pressure: false });
const locked = new LockedPageAllocator();
const secret = new SecretAllocator();
const lockedBlock = locked.alloc(100);
const secretBlock = secret.alloc(100);

const cases: Record<string, () => unknown> = {
  audio: () => memory.allocate({ size: over, type: "audio" }),
  dma: () => memory.allocate({ size: over, flags: ["dma-capable"] }),
  secret: () => memory.allocate({ size: over, flags: ["secret"] }),
  lockedAlloc: () => locked.alloc(over),
  lockedTryAlloc: () => locked.tryAlloc(over),
  lockedResize: () => locked.resize(lockedBlock, over),
  secretAlloc: () => secret.alloc(over),
  secretTryAlloc: () => secret.tryAlloc(over),
  secretResize: () => secret.resize(secretBlock, over),
};

const statsBefore = JSON.stringify(memory.getMemoryStats());
const report: Record<string, unknown> = {};
for (const [name, call] of Object.entries(cases)) {
  const spy = spyOnNativeCalls();
  let outcome: Record<string, unknown>;
  try {
    outcome = { returned: call() === null ? null : "a block" };
  } catch (error) {
    outcome = {
      category: error instanceof AllocationError ? error.category : String(error),
      message: error instanceof Error ? error.message : "",
    };
  } finally {
    spy.restore();
  }
  report[name] = { ...outcome, calls: spy.calls.filter((c) => c === "mmap" || c === "mlock") };
}
report.statsUnchanged = JSON.stringify(memory.getMemoryStats()) === statsBefore;
report.blocksKept = lockedBlock.length === 100 && secretBlock.length === 100;
report.failed = [locked.stats().failedAllocations, secret.stats().failedAllocations];
locked.dispose();
secret.dispose();
memory.dispose();
console.log(JSON.stringify(report));
