// The one place that knows where WebGPU comes from on each runtime: Deno has
// navigator.gpu built in; Bun gets it from the npm package bun-webgpu (Dawn),
// whose setupGlobals() installs navigator.gpu. Everything else in src/gpu/
// uses the standard GPU objects only.
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
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
