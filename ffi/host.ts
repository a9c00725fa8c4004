/**
 * Host services the loader needs (environment, permissions), answered without
 * ever triggering a Deno permission prompt: a permission that is not granted
 * reads as "not available".
 *
 * @module
 */

import { isMainThread as nodeIsMainThread, threadId } from "node:worker_threads";
import { deno } from "./_deno_api.ts";

/** Which runtime this is. */
export function detectRuntime(): "deno" | "bun" | null {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") return "bun";
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") return "deno";
  return null;
}

type DenoPermission =
  | { name: "env"; variable?: string }
  | { name: "run"; command?: string }
  | { name: "read"; path?: string }
  | { name: "write"; path?: string }
  | { name: "ffi"; path?: string }
  | { name: "sys"; kind?: string };

/** True when the runtime lets us use this capability without asking. */
export function granted(permission: DenoPermission): boolean {
  if (detectRuntime() !== "deno") return true;
  try {
    return deno().permissions.querySync(permission).state === "granted";
  } catch {
    return false;
  }
}

/** An environment variable, or undefined when unset or not readable. */
export function readEnv(name: string): string | undefined {
  if (!granted({ name: "env", variable: name })) return undefined;
  const process = (globalThis as { process?: { env: Record<string, string | undefined> } }).process;
  if (detectRuntime() === "deno") return deno().env.get(name);
  return process?.env[name];
}

/** Operating system name in memkit's spelling ("linux", "darwin", ...). */
export function hostOs(): string {
  if (detectRuntime() === "deno") return deno().build.os;
  return (globalThis as unknown as { process: { platform: string } }).process.platform;
}

/** CPU architecture in memkit's spelling ("x86_64", "aarch64", ...). */
export function hostArch(): string {
  if (detectRuntime() === "deno") return deno().build.arch;
  const arch = (globalThis as unknown as { process: { arch: string } }).process.arch;
  return arch === "x64" ? "x86_64" : arch === "arm64" ? "aarch64" : arch;
}

/**
 * Runs `callback` once when the process exits, with the exit code when the
 * runtime tells it (else null: read currentExitCode()). Deno: `unload` (a
 * return, `Deno.exit`, `process.exit`, an exit from a signal handler) and an
 * uncaught error or unhandled rejection that no earlier listener prevented
 * (Deno fires no `unload` then; the process ends with code 1). Bun:
 * `process.on("exit")`, which covers every path.
 */
export function onProcessExit(callback: (code: number | null) => void): void {
  let ran = false;
  if (detectRuntime() === "deno") {
    const onUnload = () => {
      if (ran) return;
      ran = true;
      callback(null);
    };
    globalThis.addEventListener("unload", onUnload);
    // When the program ends by returning, Deno fires unload and then
    // node:process "exit": run in the last "exit" listener instead, so memory
    // the program frees in its own exit listeners counts as freed. (process.exit()
    // fires "exit" before unload, so unload is already last; Deno.exit() fires
    // unload only.)
    globalThis.addEventListener("beforeunload", (event) => {
      if (event.defaultPrevented) return;
      const process = nodeProcess();
      if (process === null) return;
      try {
        process.removeListener("exit", onUnload);
        process.on("exit", onUnload);
      } catch {
        return; // a process object the program froze: stay with unload
      }
      globalThis.removeEventListener("unload", onUnload);
    });
    // No unload follows an uncaught error: report it here, unless the program
    // handles it (an earlier listener prevented it, or node:process handlers,
    // which Deno registers after this listener). A later listener that prevents
    // it keeps the process alive, and unload then checks again.
    let reportedError = false; // one report per death: a Worker's error can fire both events
    const onError = (event: Event, handlers: string) => {
      if (event.defaultPrevented || ran || reportedError || nodeHandlers(handlers) > 0) return;
      reportedError = true;
      callback(1);
    };
    globalThis.addEventListener("error", (event) => onError(event, "uncaughtException"));
    globalThis.addEventListener("unhandledrejection", (event) => onError(event, "unhandledRejection"));
    return;
  }
  const process = (globalThis as unknown as {
    process: {
      on(event: string, f: (code: number) => void): void;
      removeListener(event: string, f: (code: number) => void): void;
    };
  }).process;
  const onExit = (code: number) => {
    if (ran) return;
    ran = true;
    callback(typeof code === "number" ? code : null);
  };
  process.on("exit", onExit);
  // As in Deno: at the end of a program that returns, be the last exit listener.
  process.on("beforeExit", () => {
    try {
      process.removeListener("exit", onExit);
      process.on("exit", onExit);
    } catch {
      process.on("exit", onExit); // a process object the program froze: keep (or restore) the listener
    }
  });
}

interface NodeProcess {
  on(event: string, f: (code: number) => void): void;
  removeListener(event: string, f: (code: number) => void): void;
  listenerCount?(event: string): number;
}

// The global node:process object, where the runtime has one.
function nodeProcess(): NodeProcess | null {
  return (globalThis as { process?: NodeProcess }).process ?? null;
}

// How many node:process listeners the program added for `event`.
function nodeHandlers(event: string): number {
  const process = (globalThis as { process?: { listenerCount?(event: string): number } }).process;
  try {
    return process?.listenerCount?.(event) ?? 0;
  } catch {
    return 0;
  }
}

/** Sets the exit code the process will end with. */
export function setExitCode(code: number): void {
  if (detectRuntime() === "deno") deno().exitCode = code;
  else (globalThis as unknown as { process: { exitCode: number } }).process.exitCode = code;
}

/** The exit code the process would end with now (0 unless the program set one). */
export function currentExitCode(): number {
  if (detectRuntime() === "deno") return deno().exitCode;
  const code = (globalThis as unknown as { process: { exitCode?: number | string } }).process.exitCode;
  return typeof code === "number" ? code : Number(code ?? 0) || 0;
}

/** Asks the runtime for a full garbage collection; false when it does not allow it. */
export function requestGC(): boolean {
  const bun = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun;
  if (bun) {
    bun.gc(true);
    return true;
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === "function") {
    gc();
    return true;
  }
  return false;
}

/** Lets a timer not keep the process alive. */
export function unrefTimer(timer: unknown): void {
  if (detectRuntime() === "deno") deno().unrefTimer(timer as number);
  else (timer as { unref?: () => void }).unref?.();
}

/**
 * How a report names this thread: null on the main thread, else the Worker's
 * name (Deno: the `name` option; Bun does not expose it, so its thread id).
 */
export function workerLabel(): string | null {
  if (detectRuntime() === "deno") {
    if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "undefined") return null;
    const name = (globalThis as { name?: unknown }).name;
    return typeof name === "string" && name.length > 0 ? `Worker "${name}"` : "a Worker";
  }
  return nodeIsMainThread ? null : `Worker (thread ${threadId})`;
}
