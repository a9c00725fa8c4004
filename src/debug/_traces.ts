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
import { native } from "../../ffi/native.ts";
import { INTERNAL_MARGIN, userFrames } from "../base/_call_site.ts";

/** An unformatted trace: V8 formats `stack` when it is first read; JavaScriptCore has it at once. */
export interface Trace {
  stack?: string;
  /** Frames to drop from the top (only when captured without `captureStackTrace`). */
  skip?: number;
}

type CaptureStackTrace = (target: object, entry?: unknown) => void;
const captureStackTrace = (Error as unknown as { captureStackTrace?: CaptureStackTrace }).captureStackTrace;
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
   * The current stack, from the caller of `entry` outwards. `depth` is the
   * number of memkit frames between this call and `entry` (itself included),
   * used only where `Error.captureStackTrace` is missing.
   */
  capture(entry: unknown, depth: number): Trace {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    const holder: Trace = errorTarget ? new Error() : {};
    if (captureStackTrace !== undefined) {
      Error.stackTraceLimit = this.frames + INTERNAL_MARGIN;
      captureStackTrace(holder, entry);
    } else {
      Error.stackTraceLimit = this.frames + INTERNAL_MARGIN + depth + 1;
      holder.stack = new Error().stack;
      holder.skip = depth + 1;
    }
    Error.stackTraceLimit = limit;
    return holder;
  }

  /** `trace` as indented lines, one frame each, or undefined when there is none. */
  format(trace: Trace | null | undefined): string | undefined {
    if (trace === null || trace === undefined) return undefined;
    const stack = trace.stack;
    if (typeof stack !== "string") return undefined;
    const lines = userFrames(stack, this.frames, trace.skip ?? 0);
    return lines.length > 0 ? lines.join("\n") : undefined;
  }
}

/** `title:` and `trace` indented under it, for error messages; "" without a trace. */
export function indentTrace(title: string, trace: string | undefined): string {
  return trace ? `\n  ${title}:\n    ${trace.replaceAll("\n", "\n    ")}` : "";
}
