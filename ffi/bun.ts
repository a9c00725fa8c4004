/**
 * The Bun adapter: derives a `bun:ffi` table from the shared symbol table.
 * `bun:ffi` is loaded with Bun's `import.meta.require`, so Deno's module graph
 * and JSR's publish analysis never see it; its types are declared here by hand.
 *
 * @module
 */
import { intrinsic } from "./boundary.ts";
import type { NativeType, SymbolDefinition } from "./symbols.ts";
import type { FfiAdapter } from "./types.ts";

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  toArrayBuffer(address: number, byteOffset: number, byteLength: number): ArrayBuffer;
  ptr(view: ArrayBufferView): number;
}

// 64-bit results as "fast" types: numbers when they fit in 2^53, which every
// user-space address and size does; the rest (MAP_FAILED) is normalized below.
const BUN_TYPES: Record<NativeType, string> = {
  void: "void",
  i32: "i32",
  u32: "u32",
  i64: "i64_fast",
  usize: "u64_fast",
  f32: "f32",
  f64: "f64",
  buffer: "ptr",
};

function numberResult(f: (...args: unknown[]) => unknown): (...args: unknown[]) => number {
  return (...args) => {
    const r = f(...args);
    return typeof r === "bigint" ? Number(r) : r as number;
  };
}

/** Loads `bun:ffi` and creates the adapter; call only when running on Bun. */
export function createBunAdapter(): FfiAdapter {
  const ffi = (import.meta as unknown as { require(id: string): BunFfi }).require("bun:ffi");
  return {
    runtime: "bun",
    open(path, table) {
      const definitions: Record<string, { args: string[]; returns: string }> = {};
      const entries = Object.entries(table) as [string, SymbolDefinition][];
      const missing = new Set<string>();
      let library;
      for (;;) {
        for (const [key, def] of entries) {
          const cName = def.name ?? key;
          if (missing.has(cName) || def.nonblocking) continue; // bun:ffi has no worker-thread calls
          definitions[cName] = {
            args: def.parameters.map((t) => BUN_TYPES[t]),
            returns: BUN_TYPES[def.result],
          };
        }
        try {
          library = ffi.dlopen(path, definitions);
          break;
        } catch (error) {
          // Bun has no optional symbols: drop a missing optional one and retry.
          const text = String(error);
          const absent = entries.find(([key, def]) =>
            def.optional && !missing.has(def.name ?? key) && text.includes(def.name ?? key)
          );
          if (!absent) throw error;
          const name = absent[1].name ?? absent[0];
          missing.add(name);
          delete definitions[name];
        }
      }
      const functions: Record<string, ((...args: never[]) => unknown) | undefined> = {};
      for (const [key, def] of entries) {
        if (def.nonblocking) continue;
        const f = library.symbols[def.name ?? key];
        if (!f) continue;
        functions[key] = def.result === "usize" || def.result === "i64" ? numberResult(f) : f;
      }
      return functions;
    },
    wrap(address, byteLength) {
      // SAFETY: callers pass an address they own for at least byteLength bytes.
      return ffi.toArrayBuffer(address, 0, byteLength);
    },
    addressOf(view) {
      // Small JS-heap typed arrays may move until their buffer is materialized;
      // the intrinsic getter does that whatever a subclass or own property says.
      intrinsic.range(view);
      return ffi.ptr(view);
    },
  };
}
