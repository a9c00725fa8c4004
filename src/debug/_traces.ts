// Allocation (and first-free) stack traces: captured unformatted, for one
// allocation in `sampleEvery`, and formatted only when a report needs them.
//
// memkit's own frames are never recorded: `Error.captureStackTrace(holder,
// entry)` (V8 and JavaScriptCore) omits every frame from `entry`, the public
// function the user called, inwards. The entry's frame must therefore be on
// the stack: JavaScriptCore eliminates the frames of calls in tail position
// (`return f()`, and also `const r = f(); return r;` in Bun), so every entry
// does something after the call that leads to the capture. Bun finds the
// entry by its name, so no function between the capture and the entry may
// share the entry's name (the engine's methods are allocBlock, freeBlock, ...,
// not alloc, free, ...). Where `captureStackTrace` is missing, a plain Error
// is captured and the counted number of frames between the capture and the
// entry is dropped.
//
// A public function that calls another (array() calls alloc()) leaves memkit
// frames above the entry, and JavaScriptCore may drop the entry's caller, so
// a few more frames are captured than kept and memkit's own are dropped when
// the trace is formatted: the program's frame comes first.
//
// A capture never throws and is taken before the allocator changes anything
// (the callers capture first, then ask the backing): a program that hardened
// its realm (`Object.freeze(Error)`: stackTraceLimit cannot be set) or made
// `Error.stackTraceLimit` an accessor gets its traces at its own limit, or
// none, never an allocation recorded but not handed out. Formatting reads the
// stack with the program's `Error.prepareStackTrace` set aside (it may throw,
// or return call sites); a trace that cannot be read is no trace.
import { native } from "../../ffi/native.ts";
import { INTERNAL_MARGIN, userFrames } from "../base/_call_site.ts";
import { join } from "./_builtins.ts";

/** An unformatted trace: V8 formats `stack` when it is first read; JavaScriptCore has it at once. */
export interface Trace {
  stack?: string;
  /** Frames to drop from the top (only when captured without `captureStackTrace`). */
  skip?: number;
}

type CaptureStackTrace = (target: object, entry?: unknown) => void;
// Error as memkit loaded it (a program may put another class in the global later), and its statics.
const ErrorClass = Error;
const statics = Error as unknown as {
  stackTraceLimit: unknown;
  prepareStackTrace?: unknown;
  captureStackTrace?: CaptureStackTrace;
};
const captureStackTrace = statics.captureStackTrace;
// What the trace is captured into. Measured (8 frames): V8 is fastest with a
// plain object (1.2 µs; an Error costs its own capture first, 2.8 µs);
// JavaScriptCore formats a plain object's stack at once (1.5 µs) but an
// Error's lazily (0.36 µs with the Error made).
const errorTarget = native.runtime === "bun";

/** Captures and formats the traces of one allocator. */
export class Tracer {
  /** Frames kept per trace (0: tracing is off). */
  readonly frames: number;
  /** One allocation in this many is traced. */
  readonly sampleEvery: number;

  constructor(frames: number, sampleEvery: number) {
    this.frames = frames;
    this.sampleEvery = sampleEvery;
  }

  /** Whether the allocation with id `id` is traced. */
  sampled(id: number): boolean {
    return this.frames > 0 && id % this.sampleEvery === 0;
  }

  /**
   * The current stack, from the caller of `entry` outwards, or null when the
   * runtime would not give it; never throws. `depth` is the number of memkit
   * frames between this call and `entry` (itself included), used only where
   * `Error.captureStackTrace` is missing.
   */
  capture(entry: unknown, depth: number): Trace | null {
    let limit: unknown;
    let limited = false;
    try {
      limit = statics.stackTraceLimit;
      statics.stackTraceLimit = 0;
      limited = true;
    } catch {
      // A frozen Error: its stackTraceLimit stays, and the trace is captured at that depth.
    }
    try {
      const holder: Trace = errorTarget ? new ErrorClass() : {};
      if (captureStackTrace !== undefined) {
        if (limited) statics.stackTraceLimit = this.frames + INTERNAL_MARGIN;
        captureStackTrace(holder, entry);
      } else {
        if (limited) statics.stackTraceLimit = this.frames + INTERNAL_MARGIN + depth + 1;
        holder.stack = new ErrorClass().stack;
        holder.skip = depth + 1;
      }
      return holder;
    } catch {
      return null;
    } finally {
      if (limited) restore("stackTraceLimit", limit);
    }
  }

  /** `trace` as indented lines, one frame each, or undefined when there is none (or it cannot be read). */
  format(trace: Trace | null | undefined): string | undefined {
    if (trace === null || trace === undefined) return undefined;
    const stack = readStack(trace);
    if (typeof stack !== "string") return undefined;
    try {
      const lines = userFrames(stack, this.frames, trace.skip ?? 0);
      return lines.length > 0 ? join(lines, "\n") : undefined;
    } catch {
      return undefined; // built-ins the program replaced broke the formatting: no trace rather than no report
    }
  }
}

// The formatted stack of `trace` (undefined when reading it throws), formatted
// by the runtime: the program's Error.prepareStackTrace is set aside where it
// can be.
function readStack(trace: Trace): unknown {
  let prepare: unknown;
  let aside = false;
  try {
    prepare = statics.prepareStackTrace;
    statics.prepareStackTrace = undefined;
    aside = true;
  } catch {
    // A frozen Error: the program's own formatting runs, and whatever it does is caught below.
  }
  try {
    return trace.stack;
  } catch {
    return undefined;
  } finally {
    if (aside) restore("prepareStackTrace", prepare);
  }
}

// Puts back a static of Error that capture() or readStack() set aside.
function restore(key: "stackTraceLimit" | "prepareStackTrace", value: unknown): void {
  try {
    statics[key] = value;
  } catch {
    // Frozen meanwhile (by code that ran inside the capture): nothing to put back.
  }
}

/** `title:` and `trace` indented under it, for error messages; "" without a trace. */
export function indentTrace(title: string, trace: string | undefined): string {
  return trace ? `\n  ${title}:\n    ${trace.replaceAll("\n", "\n    ")}` : "";
}
