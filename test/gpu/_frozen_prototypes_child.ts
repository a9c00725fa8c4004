// Child process of test/gpu/gpu_outside_calls_test.ts: the program freezes
// GPUBuffer.prototype ("buffer") or GPUDevice.prototype ("device") before
// memkit first sees a buffer or a device, so memkit cannot wrap the
// prototype's destroy(). WebGPU's own destroy() must still be followed at
// once (each object memkit creates or wraps gets a wrapper of its own).
// Prints one JSON line of what it saw, then END.
import process from "node:process";
import {
  GpuBufferPool,
  GpuBufferUsage as U,
  GpuContext,
  GpuStagingRing,
  readGpuBuffer,
  requestGpu,
  writeGpuBuffer,
} from "../../mod.ts";

const which = process.argv.at(-1);
if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
  const name = "bun-webgpu"; // in a variable: Deno's type checker never follows it
  await (await import(name)).setupGlobals();
}
const adapter = await (navigator as unknown as { gpu: GPU }).gpu.requestAdapter();
const raw = await adapter!.requestDevice();
const freeze = (instance: object) => {
  for (let p = Object.getPrototypeOf(instance); p !== null; p = Object.getPrototypeOf(p)) {
    if (Object.hasOwn(p, "destroy")) Object.freeze(p);
  }
};
const outcome = (run: () => unknown): string => {
  try {
    run();
    return "ok";
  } catch (error) {
    return (error as { category?: string }).category ?? (error as Error).name;
  }
};
const seen: Record<string, unknown> = {};
if (which === "buffer") {
  const probe = raw.createBuffer({ size: 4, usage: U.COPY_DST });
  freeze(probe);
  probe.destroy();
  const gpu = await requestGpu({ label: "frozen buffer prototype" });
  const victim = gpu.createBuffer({ size: 64, usage: U.COPY_DST | U.COPY_SRC, label: "victim" });
  victim.destroy();
  seen.owned = gpu.owns(victim);
  seen.bytes = gpu.memoryStats().bytes;
  seen.write = outcome(() => writeGpuBuffer(gpu, victim, new Float32Array(4)));
  seen.read = await readGpuBuffer(gpu, victim, new Float32Array(4)).then(() => "ok", (e) => e.category);
  // A destroyed target in a ring's frame: left out, the other upload arrives.
  const ring = new GpuStagingRing(gpu);
  const innocent = gpu.createBuffer({ size: 16, usage: U.COPY_DST | U.COPY_SRC, label: "innocent" });
  const doomed = gpu.createBuffer({ size: 16, usage: U.COPY_DST, label: "doomed" });
  ring.upload(innocent, 0, new Float32Array([1, 2, 3, 4]));
  ring.upload(doomed, 0, new Float32Array([5, 6, 7, 8]));
  doomed.destroy();
  ring.flush();
  const back = new Float32Array(4);
  await readGpuBuffer(gpu, innocent, back);
  seen.innocent = [...back];
  const pool = new GpuBufferPool(gpu);
  const pooled = pool.acquire(256, U.STORAGE);
  pooled.destroy();
  seen.release = outcome(() => pool.release(pooled));
  pool.dispose();
  ring.dispose();
  seen.live = gpu.liveBuffers().map((b) => b.label);
  gpu.dispose();
} else {
  freeze(raw);
  const gpu = await requestGpu({ label: "frozen device prototype" });
  gpu.createBuffer({ size: 64, usage: U.STORAGE });
  gpu.device.destroy();
  seen.lost = gpu.lost;
  seen.bytes = gpu.memoryStats().bytes;
  seen.create = outcome(() => gpu.createBuffer({ size: 64, usage: U.STORAGE }));
  seen.wrap = outcome(() => GpuContext.fromDevice(gpu.device));
  // The program's own device (its prototype frozen before memkit saw it): followed through the instance.
  const mine = GpuContext.fromDevice(raw, { label: "mine" });
  mine.createBuffer({ size: 64, usage: U.STORAGE });
  raw.destroy();
  seen.mineLost = mine.lost;
  seen.mineBytes = mine.memoryStats().bytes;
  gpu.dispose();
  mine.dispose();
}
console.log(JSON.stringify(seen));
console.log("END");
