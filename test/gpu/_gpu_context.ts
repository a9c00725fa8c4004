// A fresh GpuContext per test over the process's shared test device
// (test/gpu/_gpu.ts decides whether a GPU exists, and fails in CI when it
// should and does not): each test sees only its own buffers in the accounting.
import { GpuContext } from "../../src/gpu/gpu_context.ts";
import { testGpu } from "./_gpu.ts";

const { gpu, reason } = await testGpu();

/** Why GPU tests skip (false when a device exists): `test(name, { skip: skipGpu }, ...)`. */
export const skipGpu: string | false = gpu === null ? reason : false;

/** A new context over the shared device (call only when `skipGpu` is false). */
export function context(label = "test"): GpuContext {
  if (gpu === null) throw new Error(`no GPU: ${reason}`);
  return GpuContext.fromDevice(gpu.device, { label });
}
