// The one place that knows where WebGPU comes from on each runtime: Deno has
// navigator.gpu built in; Bun gets it from the npm package bun-webgpu (Dawn),
// whose setupGlobals() installs navigator.gpu. Everything else in src/gpu/
// uses the standard GPU objects only.
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { types } from "node:util";
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../base/errors.ts";

/** The npm package that gives Bun WebGPU. */
export const BUN_PACKAGE = "bun-webgpu";

const DRIVER_HINT = "install a Vulkan driver (on Debian/Ubuntu without a GPU: Mesa's lavapipe, " +
  "`apt-get install mesa-vulkan-drivers`, Mesa 25 or later for Bun) and set XDG_RUNTIME_DIR";

// The WebGPU constants, fixed by the specification: used instead of the
// globals (GPUBufferUsage, GPUMapMode), which Bun only has after setupGlobals().
export const Usage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  INDEX: 0x10,
  VERTEX: 0x20,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  INDIRECT: 0x100,
  QUERY_RESOLVE: 0x200,
} as const;
export const MAP_READ_MODE = 0x1;
export const MAP_WRITE_MODE = 0x2;

/** The runtime, as the GPU family reports it. */
export const gpuRuntime: "deno" | "bun" = native.runtime;

// Mesa's Vulkan loader wants a private runtime directory; a service or CI shell may have none.
function ensureRuntimeDir(): void {
  try {
    if (process.env.XDG_RUNTIME_DIR) return;
    const dir = join(tmpdir(), `memkit-xdg-${process.pid}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  } catch {
    // Without the permission the driver may still work (it only warns).
  }
}

let bunSetup: Promise<string | null> | null = null;

// Installs navigator.gpu in Bun once; the reason when it cannot.
function setupBun(): Promise<string | null> {
  bunSetup ??= (async () => {
    // A specifier in a variable: Deno's type checker never follows it (the package's types need bun:ffi).
    const name = BUN_PACKAGE;
    try {
      const mod = await import(name) as { setupGlobals(): Promise<void> };
      if ((navigator as unknown as { gpu?: GPU }).gpu === undefined) await mod.setupGlobals();
      return null;
    } catch (error) {
      return `the npm package ${BUN_PACKAGE} could not be loaded (${
        error instanceof Error ? error.message : String(error)
      }): run \`bun add ${BUN_PACKAGE}\` (or npm install ${BUN_PACKAGE})`;
    }
  })();
  return bunSetup;
}

/** The runtime's GPU object. @throws {AllocationError} "unsupported" when this runtime has no WebGPU. */
export async function gpuEntry(): Promise<GPU> {
  ensureRuntimeDir();
  if (gpuRuntime === "bun") {
    const reason = await setupBun();
    if (reason !== null) throw new AllocationError("unsupported", `Cannot use the GPU in Bun as ${reason}`);
  }
  const gpu = (navigator as unknown as { gpu?: GPU }).gpu;
  if (gpu === undefined) {
    throw new AllocationError(
      "unsupported",
      gpuRuntime === "deno"
        ? "Cannot use the GPU as this Deno has no navigator.gpu (Deno 2 has WebGPU built in; older versions need --unstable-webgpu)"
        : `Cannot use the GPU as ${BUN_PACKAGE} installed no navigator.gpu`,
    );
  }
  return gpu;
}

/**
 * Whether `adapter` really reaches a GPU or a driver: Dawn (Bun) offers its
 * null backend when no driver is found, whose results read back as garbage.
 */
export function isRealAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info as (GPUAdapterInfo & { backendType?: number }) | undefined;
  return info?.device !== "null-backend" && info?.backendType !== 1;
}

/** The error for no usable adapter, saying what to install. */
export function noAdapterError(detail: string): AllocationError {
  const runtime = gpuRuntime === "bun" ? `Bun (through ${BUN_PACKAGE})` : "Deno";
  return new AllocationError("unsupported", `Cannot use the GPU in ${runtime} as ${detail}: ${DRIVER_HINT}`);
}

/** A short text naming the adapter ("llvmpipe ..." on lavapipe). */
export function adapterDescription(adapter: GPUAdapter | null): string {
  const info = adapter?.info as GPUAdapterInfo | undefined;
  return [info?.description, info?.vendor, info?.architecture].filter(Boolean).join(" ") || "unknown";
}

// ------------------------------------------------------------ real devices and buffers

// Which objects are WebGPU's own. A GpuContext hands its device's buffers to
// WebGPU, and in Bun bun-webgpu reads a native pointer from whatever object it
// is given (a look-alike device or buffer is a segfault): so only a real
// GPUDevice is wrapped, its buffers are made by the runtime's own createBuffer
// (not an own property the program set on the device), and only a real
// GPUBuffer is registered.
//
// Deno: WebGPU's getters check the brand of `this` (on anything else, a Proxy
// or an object made from the prototype included, they throw "expected
// GPUDevice"); they are captured when this module loads, before the program
// can change them. Bun: bun-webgpu's classes are plain JS, with public fields
// and no brand: a device must have exactly the prototype of the package's own
// GPUDevice class (never a Proxy) and the fields its constructor sets. An
// object built field by field from that prototype, with a forged pointer,
// cannot be told apart there (bun-webgpu's own methods crash on it too).

/** What memkit calls on a device, taken from its class rather than from the object. */
export interface DeviceIntrinsics {
  readonly prototype: object;
  /** Returns for a real device; throws for anything else (Deno). Null where there is no brand (Bun). */
  readonly brand: ((this: unknown) => unknown) | null;
  readonly createBuffer: (this: GPUDevice, descriptor: GPUBufferDescriptor) => GPUBuffer;
  readonly limits: (this: GPUDevice) => GPUSupportedLimits;
}

function getterOf(prototype: object | undefined, name: string): ((this: unknown) => unknown) | null {
  for (let p = prototype ?? null; p !== null; p = Object.getPrototypeOf(p)) {
    const descriptor = Object.getOwnPropertyDescriptor(p, name);
    if (descriptor !== undefined) return descriptor.get ?? null;
  }
  return null;
}

function intrinsicsOf(
  prototype: object | undefined,
  brand: ((this: unknown) => unknown) | null,
): DeviceIntrinsics | null {
  if (prototype === undefined) return null;
  const createBuffer = Object.getOwnPropertyDescriptor(prototype, "createBuffer")?.value;
  const limits = getterOf(prototype, "limits");
  if (typeof createBuffer !== "function" || limits === null) return null;
  return { prototype, brand, createBuffer, limits } as DeviceIntrinsics;
}

type WebGpuGlobals = { GPUDevice?: { prototype: object }; GPUBuffer?: { prototype: object } };
const denoGlobals = gpuRuntime === "deno" ? globalThis as WebGpuGlobals : {};
const denoDevice = intrinsicsOf(denoGlobals.GPUDevice?.prototype, getterOf(denoGlobals.GPUDevice?.prototype, "label"));
const denoBufferBrand = getterOf(denoGlobals.GPUBuffer?.prototype, "size");

let bunDevice: DeviceIntrinsics | null | undefined;

// bun-webgpu's GPUDevice class, from the package itself (not the global the program may have replaced): a
// device exists, so the package is loaded, and Bun's require() gives the same module, synchronously.
function bunIntrinsics(): DeviceIntrinsics | null {
  if (bunDevice !== undefined) return bunDevice;
  try {
    const require = (import.meta as unknown as { require(name: string): unknown }).require;
    const name = BUN_PACKAGE;
    const mod = require(name) as { globalConstructors?: { GPUDevice?: { prototype: object } } };
    bunDevice = intrinsicsOf(mod.globalConstructors?.GPUDevice?.prototype, null);
  } catch {
    bunDevice = null;
  }
  return bunDevice;
}

/** The device class's own methods on this runtime, or null when there is none. */
function deviceIntrinsics(): DeviceIntrinsics | null {
  return gpuRuntime === "deno" ? denoDevice : bunIntrinsics();
}

/**
 * The methods memkit calls on `device` (a real one: checked by isGpuDevice, or requested by memkit itself),
 * taken from its class rather than from the object, so an own `createBuffer` or `limits` the program set on
 * the device changes nothing. A device memkit requested from another copy of bun-webgpu than the one it
 * loads has its own prototype's.
 */
export function nativeMethodsOf(device: GPUDevice): DeviceIntrinsics {
  const intrinsics = deviceIntrinsics();
  if (intrinsics !== null && (intrinsics.brand !== null || Object.getPrototypeOf(device) === intrinsics.prototype)) {
    return intrinsics;
  }
  return intrinsicsOf(Object.getPrototypeOf(device), null) ?? {
    prototype: Object.getPrototypeOf(device),
    brand: null,
    createBuffer: device.createBuffer,
    limits: function (this: GPUDevice) {
      return this.limits;
    },
  };
}

function ownValue(target: object, name: string): unknown {
  return Object.getOwnPropertyDescriptor(target, name)?.value;
}

/** Whether `value` is a real GPUDevice of this runtime's WebGPU (see above). No code of the object runs. */
export function isGpuDevice(value: unknown): value is GPUDevice {
  if (typeof value !== "object" || value === null) return false;
  const intrinsics = deviceIntrinsics();
  if (intrinsics === null) return false;
  if (intrinsics.brand !== null) {
    try {
      intrinsics.brand.call(value);
      return true;
    } catch {
      return false;
    }
  }
  return !types.isProxy(value) && Object.getPrototypeOf(value) === intrinsics.prototype &&
    typeof ownValue(value, "devicePtr") === "number" && typeof ownValue(value, "_destroyed") === "boolean";
}

/**
 * Whether the runtime says `device` (a real one) was destroyed: bun-webgpu keeps a flag; Deno's WebGPU has
 * nothing to ask (memkit knows of the destroy() calls it followed).
 */
export function destroyedNatively(device: GPUDevice): boolean {
  return gpuRuntime === "bun" && ownValue(device, "_destroyed") === true;
}

/** Whether `value` is a real GPUBuffer of this runtime's WebGPU. No code of the object runs. */
export function isGpuBuffer(value: unknown): value is GPUBuffer {
  if (typeof value !== "object" || value === null) return false;
  if (denoBufferBrand !== null) {
    try {
      denoBufferBrand.call(value);
      return true;
    } catch {
      return false;
    }
  }
  // A Deno without the GPUBuffer global cannot be asked (its WebGPU checks the buffers it is given itself).
  if (gpuRuntime === "deno") return true;
  return !types.isProxy(value) && typeof ownValue(value, "bufferPtr") === "number" &&
    ownValue(value, "__brand") === "GPUBuffer";
}
