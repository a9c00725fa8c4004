// Child process of test/gpu/gpu_buffer_identity_test.ts: objects that only
// look like GPUDevices handed to GpuContext.fromDevice. In Bun, bun-webgpu
// reads native pointers from what it is given, so a look-alike that got in
// (its "buffers" registered as memkit's, then written through the real queue)
// crashed this process: the parent checks the exit status and one line per
// row. Last, a real device with an own createBuffer that forges buffers: the
// context makes its buffers with the runtime's own method.
import { GpuBufferUsage as U, GpuContext, requestGpu, writeGpuBuffer } from "../../mod.ts";

const real = await requestGpu({ label: "look-alike devices" });
const device = real.device;
const forged = () => ({ ptr: 4096, bufferPtr: 4096, __brand: "GPUBuffer", label: "forged", destroy() {} });
const rows: [string, unknown][] = [
  ["plain, the real queue", {
    createBuffer: forged,
    lost: new Promise(() => {}),
    limits: { maxBufferSize: 1 << 20 },
    queue: device.queue,
  }],
  ["plain, no limits", { createBuffer: forged, lost: new Promise(() => {}) }],
  ["plain, empty limits", { createBuffer: forged, lost: new Promise(() => {}), limits: {} }],
  ["a Proxy of the real device", new Proxy(device, {})],
  ["made from the real prototype", Object.create(Object.getPrototypeOf(device))],
  ["the real prototype, a forged pointer", Object.assign(Object.create(Object.getPrototypeOf(device)), { ptr: 4096 })],
];
for (const [name, fake] of rows) {
  let outcome = "accepted";
  try {
    const gpu = GpuContext.fromDevice(fake as GPUDevice, { label: name });
    const buffer = gpu.createBuffer({ size: 64, usage: U.COPY_DST });
    writeGpuBuffer(gpu, buffer, new Float32Array(4)); // through the real queue: a segfault in Bun before
  } catch (error) {
    outcome = (error as Error).name;
  }
  console.log(JSON.stringify({ name, outcome }));
}
// A real device whose own createBuffer forges buffers: never called by memkit.
let called = 0;
Object.defineProperty(device, "createBuffer", {
  value: () => {
    called++;
    return forged();
  },
  configurable: true,
});
const gpu = GpuContext.fromDevice(device, { label: "own createBuffer" });
const buffer = gpu.createBuffer({ size: 64, usage: U.COPY_DST });
const written = writeGpuBuffer(gpu, buffer, new Float32Array(16));
console.log(JSON.stringify({ name: "own createBuffer", called, written }));
await device.queue.onSubmittedWorkDone();
gpu.dispose();
real.dispose();
console.log("END");
