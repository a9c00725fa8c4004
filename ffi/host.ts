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

// Built-ins the exit hooks call while the process ends, as they were when
// memkit loaded: a program may replace them before it exits.
const apply = Reflect.apply;
const getDescriptor = Object.getOwnPropertyDescriptor;
const defaultPrevented = typeof Event === "function"
  ? getDescriptor(Event.prototype, "defaultPrevented")?.get
  : undefined;

type Listener = (...args: never[]) => void;

/** The node:process methods the exit hooks call, as they were when the hooks were installed. */
interface NodeProcessHooks {
  readonly process: object;
  on(event: string, listener: Listener): boolean;
  removeListener(event: string, listener: Listener): boolean;
  /** How many listeners the program added for `event` (0 when it cannot be told). */
  count(event: string): number;
}

// Each onProcessExit callback, once guarded: run by an exit that skips the
// remaining exit listeners (see guardExplicitExits).
const explicitExitRunners: ((code: number | null) => void)[] = [];
let explicitExitsGuarded = false;
// The exit code memkit asked for while an explicit exit runs its callbacks (see guardExplicitExits).
let requestedExitCode: number | null = null;

/**
 * Runs `callback` once when the process exits, with the exit code when the
 * runtime tells it (else null: read currentExitCode()), after the program's
 * own exit listeners where the runtime allows. Deno: `unload` (a return,
 * `Deno.exit`, `process.exit`, an exit from a signal handler), moved to the
 * last node:process "exit" listener at the end of a program that returns, and
 * an uncaught error or unhandled rejection that no earlier listener prevented
 * and no node:process handler takes (Deno fires no `unload` then; the process
 * ends with code 1). Bun: `process.on("exit")`, which covers every path,
 * moved last at `beforeExit`. Either: an exit that skips the remaining exit
 * listeners (`process.exit()` called in one, `Deno.exit()`) runs it on its way
 * out. Nothing a program replaces after this call (process.on, listenerCount,
 * Event.prototype.defaultPrevented) can stop it or make it throw.
 */
export function onProcessExit(callback: (code: number | null) => void): void {
  let ran = false;
  const run = (code: number | null) => {
    if (ran) return;
    ran = true;
    callback(code);
  };
  const hooks = nodeProcessHooks();
  explicitExitRunners[explicitExitRunners.length] = run;
  guardExplicitExits(hooks);
  if (detectRuntime() === "deno") {
    // A program that returns ends with beforeunload (not prevented), beforeExit, unload, then node:process
    // "exit": run in the last "exit" listener then, so memory the program frees in its own exit listeners
    // counts as freed. Every other unload (Deno.exit(), and process.exit() through it) has no "exit" after it
    // (process.exit() fired it before), so unload is last: run there. `ending` says a return's end is under way:
    // set by beforeExit, cleared by a task that runs after it (beforeExit listeners that scheduled work).
    let ending = false;
    const onExit = () => run(null);
    if (hooks !== null) {
      hooks.on("beforeExit", () => {
        ending = true;
        try {
          unrefTimer(setTimeout(() => ending = false, 0));
        } catch {
          // No timer: the end is under way all the same.
        }
      });
    }
    globalThis.addEventListener("unload", () => {
      if (ran) return;
      if (ending && hooks !== null) {
        hooks.removeListener("exit", onExit);
        if (hooks.on("exit", onExit)) return;
      }
      run(null);
    });
    // No unload follows an uncaught error: report it here, unless the program
    // handles it (an earlier listener prevented it, or node:process handlers,
    // which Deno registers after this listener and which take an unhandled
    // rejection too when no "unhandledRejection" listener does). A later
    // listener that prevents it keeps the process alive, and unload then checks again.
    let reportedError = false; // one report per death: a Worker's error can fire both events
    const onError = (event: Event, rejection: boolean) => {
      if (ran || reportedError || prevented(event)) return;
      const handlers = hooks === null ? 0 : hooks.count("uncaughtException") +
        (rejection ? hooks.count("unhandledRejection") : 0) + captureCallbacks(hooks.process);
      if (handlers > 0) return;
      reportedError = true;
      callback(1);
    };
    globalThis.addEventListener("error", (event) => onError(event, false));
    globalThis.addEventListener("unhandledrejection", (event) => onError(event, true));
    return;
  }
  const onExit = (code: number) => run(typeof code === "number" ? code : null);
  hooks?.on("exit", onExit);
  // As in Deno: at the end of a program that returns, be the last exit listener.
  hooks?.on("beforeExit", () => {
    if (ran) return;
    hooks.removeListener("exit", onExit);
    hooks.on("exit", onExit); // re-added even when the removal failed: at worst it runs where it was
  });
}

/**
 * Runs every onProcessExit callback on an exit that would skip them: Node's
 * `process.exit()` called inside an "exit" listener ends the process at once
 * through `process.reallyExit` (both runtimes), and Deno's `Deno.exit()` fires
 * no node:process event, nor `unload` when it has fired already. The first
 * of each (signal-exit's approach) is wrapped once: a callback runs, then the
 * exit goes on, with the exit code a callback set.
 */
function guardExplicitExits(hooks: NodeProcessHooks | null): void {
  if (explicitExitsGuarded) return;
  explicitExitsGuarded = true;
  const guard = (target: object, key: string, codeAt: number) => {
    try {
      const original = (target as Record<string, unknown>)[key];
      if (typeof original !== "function") return;
      (target as Record<string, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
        const code = args[codeAt];
        requestedExitCode = null;
        for (let i = 0; i < explicitExitRunners.length; i++) {
          try {
            explicitExitRunners[i](typeof code === "number" ? code : null);
          } catch {
            // One callback's failure must not keep the process from ending, nor the others from running.
          }
        }
        const requested = requestedExitCode;
        requestedExitCode = null;
        if (requested !== null) args[codeAt] = requested;
        return apply(original, this, args);
      };
    } catch {
      // A frozen process or Deno namespace: exits there go through the listeners only.
    }
  };
  if (hooks !== null) guard(hooks.process, "reallyExit", 0);
  if (detectRuntime() === "deno") guard(deno(), "exit", 0);
}

// Whether an earlier listener prevented `event` (read through the getter captured at load).
function prevented(event: Event): boolean {
  try {
    return defaultPrevented !== undefined ? apply(defaultPrevented, event, []) === true : event.defaultPrevented;
  } catch {
    return false;
  }
}

// 1 when the program set process.setUncaughtExceptionCaptureCallback(), which takes uncaught errors too.
function captureCallbacks(process: object): number {
  try {
    const has = (process as { hasUncaughtExceptionCaptureCallback?: () => boolean })
      .hasUncaughtExceptionCaptureCallback;
    return typeof has === "function" && apply(has, process, []) === true ? 1 : 0;
  } catch {
    return 0;
  }
}

// The global node:process object's methods, captured now, or null where the runtime has no such object.
function nodeProcessHooks(): NodeProcessHooks | null {
  const process = (globalThis as { process?: unknown }).process;
  if (typeof process !== "object" || process === null) return null;
  let on: unknown, removeListener: unknown, listenerCount: unknown;
  try {
    const methods = process as Record<string, unknown>;
    on = methods.on;
    removeListener = methods.removeListener;
    listenerCount = methods.listenerCount;
  } catch {
    return null;
  }
  if (typeof on !== "function" || typeof removeListener !== "function") return null;
  // Each call says whether it worked: a process object the program froze or broke must not make a hook throw.
  const call = (method: unknown, args: unknown[]): boolean => {
    try {
      apply(method as (...a: unknown[]) => unknown, process, args);
      return true;
    } catch {
      return false;
    }
  };
  return {
    process,
    on: (event, listener) => call(on, [event, listener]),
    removeListener: (event, listener) => call(removeListener, [event, listener]),
    count: (event) => {
      try {
        const n = typeof listenerCount === "function" ? apply(listenerCount, process, [event]) : 0;
        return typeof n === "number" ? n : 0;
      } catch {
        return 0;
      }
    },
  };
}

/** Sets the exit code the process will end with (also when it ends by an explicit exit running the callbacks). */
export function setExitCode(code: number): void {
  requestedExitCode = code;
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
