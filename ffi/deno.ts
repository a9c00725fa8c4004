/**
 * The Deno adapter: `Deno.dlopen` over the shared symbol table. 64-bit results
 * come back from Deno as bigints and are turned into numbers here, so nothing
 * past this file sees a bigint or a pointer object.
 *
 * @module
 */
import { deno, type DenoForeignFunction, type DenoNativeType } from "./_deno_api.ts";
import type { SymbolDefinition } from "./symbols.ts";
import type { FfiAdapter } from "./types.ts";

type AnyFunction = (...args: never[]) => unknown;

const WIDE_RESULTS = new Set(["usize", "i64"]);

// Exact-arity wrappers keep Deno's fast call path for the wrapped function.
function numberResult(f: (...args: unknown[]) => unknown, arity: number): AnyFunction {
  switch (arity) {
    case 0:
      return () => Number(f());
    case 1:
      return (a: unknown) => Number(f(a));
    case 2:
      return (a: unknown, b: unknown) => Number(f(a, b));
    case 3:
      return (a: unknown, b: unknown, c: unknown) => Number(f(a, b, c));
    default:
      return (...args: unknown[]) => Number(f(...args));
  }
}

/** Creates the adapter; call only when running on Deno. */
export function createDenoAdapter(): FfiAdapter {
  const api = deno(); // read once: wrap and addressOf are called per chunk and per lease
  return {
    runtime: "deno",
    open(path, table) {
      const definitions: Record<string, DenoForeignFunction> = {};
      for (const [key, def] of Object.entries(table) as [string, SymbolDefinition][]) {
        definitions[key] = {
          name: def.name,
          parameters: [...def.parameters] as DenoNativeType[],
          result: def.result as DenoNativeType,
          optional: def.optional,
          nonblocking: def.nonblocking,
        };
      }
      const library = api.dlopen(path, definitions);
      const functions: Record<string, AnyFunction | undefined> = {};
      for (const [key, def] of Object.entries(table) as [string, SymbolDefinition][]) {
        const f = library.symbols[key] as ((...args: unknown[]) => unknown) | null | undefined;
        if (f == null) continue;
        functions[key] = WIDE_RESULTS.has(def.result) ? numberResult(f, def.parameters.length) : (f as AnyFunction);
      }
      return functions;
    },
    wrap(address, byteLength) {
      // SAFETY: callers pass an address they own for at least byteLength bytes.
      const pointer = api.UnsafePointer.create(BigInt(address));
      if (pointer === null) throw new RangeError("Cannot wrap the null address");
      return api.UnsafePointerView.getArrayBuffer(pointer, byteLength);
    },
    addressOf(view) {
      return Number(api.UnsafePointer.value(api.UnsafePointer.of(view as Uint8Array)));
    },
  };
}
