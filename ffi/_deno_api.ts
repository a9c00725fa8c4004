/**
 * The part of Deno's global `Deno` namespace memkit calls, declared here by
 * hand (as ffi/bun.ts declares `bun:ffi`): a Bun project that type-checks
 * memkit's sources (`bun run --check`, tsc) has no Deno types, and would
 * stop at every `Deno.` name. Read only after detectRuntime() said "deno".
 *
 * @module
 */

/** A parameter or result type of Deno's FFI ("u32", "buffer", "pointer", ...). */
export type DenoNativeType = string;

/** One symbol for `Deno.dlopen`. */
export interface DenoForeignFunction {
  name?: string;
  parameters: DenoNativeType[];
  result: DenoNativeType;
  optional?: boolean;
  nonblocking?: boolean;
}

/** An opaque pointer object of Deno's FFI (null is the null address). */
export type DenoPointer = object | null;

/** What memkit uses of `Deno`. */
export interface DenoApi {
  permissions: { querySync(descriptor: { name: string }): { state: string } };
  env: { get(name: string): string | undefined };
  build: { os: string; arch: string };
  exitCode: number;
  unrefTimer(id: number): void;
  dlopen(
    path: string,
    symbols: Record<string, DenoForeignFunction>,
  ): { symbols: Record<string, unknown>; close(): void };
  UnsafePointer: {
    create(value: bigint): DenoPointer;
    of(view: ArrayBufferView): DenoPointer;
    value(pointer: DenoPointer): bigint | number;
  };
  UnsafePointerView: { getArrayBuffer(pointer: NonNullable<DenoPointer>, byteLength: number): ArrayBuffer };
}

/** The `Deno` namespace of the running Deno. */
export function deno(): DenoApi {
  return (globalThis as unknown as { Deno: DenoApi }).Deno;
}
