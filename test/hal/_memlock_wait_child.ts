// Run under RLIMIT_MEMLOCK = 64 KiB without CAP_IPC_LOCK (see _locked_memory.ts; allocate_async_outcomes_test.ts):
// with 48 KiB of audio memory held, 32 KiB more is refused by the kernel (mlock, RLIMIT_MEMLOCK). Reports the
// refusal of allocate, of allocateAsync with a short wait (a timeout) and with a long one (served once the 48 KiB
// are given back), and of allocateAsync for more than the whole limit (at once); one JSON line.
import { AllocationError, MemoryInterface, type MemoryType } from "../../mod.ts";

const TYPES: MemoryType[] = ["system", "video", "audio", "network", "shared", "temporary", "stack", "pool"];
const memory = new MemoryInterface({ pressure: false });
const snapshot = () => JSON.stringify([memory.getMemoryStats(), ...TYPES.map((t) => memory.getMemoryStats(t))]);
const describeError = (error: unknown, started: number) => ({
  name: (error as Error).constructor.name,
  category: error instanceof AllocationError ? error.category : null,
  message: (error as Error).message,
  causeCategory: (error as Error).cause instanceof AllocationError
    ? ((error as Error).cause as AllocationError).category
    : null,
  ms: Math.round(performance.now() - started),
});

const held = memory.allocateTyped(48 << 10, "audio");
const before = snapshot();
let started = performance.now();
let sync = null;
try {
  memory.allocateTyped(32 << 10, "audio");
} catch (error) {
  sync = describeError(error, started);
}
const unchanged = snapshot() === before;
started = performance.now();
const short = await memory.allocateAsync({ size: 32 << 10, type: "audio", timeoutMs: 30 }).then(
  () => null,
  (error) => describeError(error, started),
);
started = performance.now();
const beyond = await memory.allocateAsync({ size: 128 << 10, type: "audio", timeoutMs: 5000 }).then(
  () => null,
  (error) => describeError(error, started),
);
const waiting = memory.allocateAsync({ size: 32 << 10, type: "audio", timeoutMs: 5000 });
const given = new Promise<void>((resolve) => setTimeout(() => resolve(memory.deallocate(held)), 20));
const served = await waiting.then((a) => (memory.deallocate(a), true), (error) => describeError(error, started));
await given;
memory.dispose();
console.log(JSON.stringify({ sync, unchanged, short, beyond, served }));
