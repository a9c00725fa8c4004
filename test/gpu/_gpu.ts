// WebGPU for tests on either runtime: Deno's own navigator.gpu, or in Bun
// the npm package bun-webgpu (Dawn), whose setupGlobals() installs
// navigator.gpu. Both reach the GPU through Vulkan; on a machine without one,
// Mesa's lavapipe (a CPU driver: `bash .ci/install-vulkan`) serves.
//
// A test file awaits testGpu() at its top and skips its GPU tests, printing
// why, when there is no adapter; with MEMKIT_REQUIRE_GPU=1 (CI sets it once
// the driver is installed) no adapter is a failure instead, so a broken
// driver cannot pass as a skip.
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** A device for tests, and what it runs on. */
export interface TestGpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  runtime: "deno" | "bun";
  /** The adapter's description (e.g. "llvmpipe ..." for lavapipe). */
  description: string;
}

/** The device, or why there is none. */
export type TestGpuResult = { gpu: TestGpu; reason: null } | { gpu: null; reason: string };

// Features a test may use when the adapter has them (shader-f16 for f16 fields).
const OPTIONAL_FEATURES: GPUFeatureName[] = ["shader-f16"];

let shared: Promise<TestGpuResult> | null = null;

// Mesa's Vulkan loader wants a private runtime directory; a CI shell may have none.
function ensureRuntimeDir(): void {
  if (process.env.XDG_RUNTIME_DIR) return;
  const dir = join(tmpdir(), `memkit-xdg-${process.pid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

async function gpuObject(): Promise<{ gpu: GPU | null; runtime: "deno" | "bun"; reason: string }> {
  const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  if (!isBun) {
    const gpu = (navigator as unknown as { gpu?: GPU }).gpu ?? null;
    return { gpu, runtime: "deno", reason: "this Deno has no navigator.gpu" };
  }
  // A specifier in a variable: Deno's type checker never follows it (the package's types need bun:ffi).
  const name = "bun-webgpu";
  let setupGlobals: () => Promise<void>;
  try {
    ({ setupGlobals } = await import(name));
  } catch (error) {
    return { gpu: null, runtime: "bun", reason: `bun-webgpu could not be loaded (npm install): ${error}` };
  }
  if ((navigator as unknown as { gpu?: GPU }).gpu === undefined) await setupGlobals();
  return { gpu: (navigator as unknown as { gpu?: GPU }).gpu ?? null, runtime: "bun", reason: "" };
}

async function open(): Promise<TestGpuResult> {
  ensureRuntimeDir();
  const { gpu, runtime, reason } = await gpuObject();
  if (gpu === null) return { gpu: null, reason };
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (error) {
    return { gpu: null, reason: `requestAdapter() failed: ${error}` };
  }
  if (adapter === null) {
    return { gpu: null, reason: "no WebGPU adapter (no Vulkan driver? `bash .ci/install-vulkan` installs lavapipe)" };
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((feature) => adapter.features.has(feature));
  const device = await adapter.requestDevice({ requiredFeatures });
  const info = adapter.info as GPUAdapterInfo | undefined;
  const description = [info?.description, info?.vendor, info?.architecture].filter(Boolean).join(" ") || "unknown";
  return { gpu: { adapter, device, runtime, description }, reason: null };
}

// Once, on a 2-core machine running several GPU processes at once, a Deno test child found no device (its
// setup failed, cause unrecorded): a second try after a pause, saying so on stderr, before a failure counts.
async function openWithRetry(): Promise<TestGpuResult> {
  let first: TestGpuResult | Error;
  try {
    first = await open();
    if (first.gpu !== null) return first;
  } catch (error) {
    first = error as Error;
  }
  const said = first instanceof Error ? `${first}` : first.reason;
  process.stderr.write(`test GPU: no device on the first try (${said}); trying once more in 1 s\n`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return await open();
}

/**
 * The shared test device (one per process; requested on first use with every
 * optional feature the adapter has), or why there is none. A device that was
 * lost is replaced on the next call.
 */
export async function testGpu(): Promise<TestGpuResult> {
  if (shared !== null) {
    const result = await shared;
    if (result.gpu === null || !isLost(result.gpu.device)) return result;
  }
  shared = openWithRetry();
  const result = await shared;
  if (result.gpu !== null) {
    const device = result.gpu.device;
    lost.set(device, false);
    device.lost.then(() => lost.set(device, true));
  } else if (process.env.MEMKIT_REQUIRE_GPU === "1") {
    throw new Error(`MEMKIT_REQUIRE_GPU=1 but there is no GPU device: ${result.reason}`);
  } else {
    console.log(`GPU tests skipped: ${result.reason}`);
  }
  return result;
}

const lost = new WeakMap<GPUDevice, boolean>();
function isLost(device: GPUDevice): boolean {
  return lost.get(device) === true;
}

/** Copies `size` bytes of `buffer` from `offset` into a fresh Uint8Array (through a MAP_READ staging buffer). */
export async function readBack(
  device: GPUDevice,
  buffer: GPUBuffer,
  offset: number,
  size: number,
): Promise<Uint8Array> {
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = new Uint8Array(size);
    copy.set(new Uint8Array(staging.getMappedRange()));
    staging.unmap();
    return copy;
  } finally {
    staging.destroy();
  }
}

/**
 * Runs `fn` with validation errors captured: resolves to its result, or
 * rejects with the device's first validation error (a shader that does not
 * compile, a binding that does not fit).
 */
export async function validated<T>(device: GPUDevice, fn: () => T): Promise<T> {
  device.pushErrorScope("validation");
  let result: T;
  let thrown: { error: unknown } | null = null;
  try {
    result = fn();
  } catch (error) {
    thrown = { error };
  }
  // The scope is popped whatever happened; a validation error explains more than what it caused.
  const invalid = await device.popErrorScope();
  if (invalid !== null) throw new Error(`WebGPU validation error: ${invalid.message}`);
  if (thrown !== null) throw thrown.error;
  return result!;
}
