// resvg's WebAssembly module, initialized once per process: Bun runs every
// test file in one process, and initWasm() refuses a second call.
import { initWasm } from "@resvg/resvg-wasm";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

let ready: Promise<void> | null = null;

/** Resolves once resvg can render (the first call loads the module; later calls share it). */
export function resvgReady(): Promise<void> {
  ready ??= initWasm(
    readFileSync(fileURLToPath(new URL("../../node_modules/@resvg/resvg-wasm/index_bg.wasm", import.meta.url))),
  ).catch((error: unknown) => {
    // Loaded by another copy of this module (a test runner that re-imports): the module is ready all the same.
    if (error instanceof Error && /Already initialized/.test(error.message)) return;
    throw error;
  });
  return ready;
}
