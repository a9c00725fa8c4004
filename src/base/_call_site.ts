// Stack frames as a reader of a leak report wants them: the program's own
// frames first, memkit's frames (its src/, ffi/ and mod.ts, wherever memkit
// was loaded from: a checkout, JSR, node_modules) dropped.

// memkit's root, as a URL (Deno frames name files by URL) and as a path (Bun's name them by path).
const ROOT_URL = new URL("../../", import.meta.url).href;
const ROOT_PATH = ROOT_URL.startsWith("file://") ? decodeURIComponent(new URL(ROOT_URL).pathname) : null;
const INTERNAL = [ROOT_URL, ...(ROOT_PATH === null ? [] : [ROOT_PATH])].flatMap((root) => [
  `${root}src/`,
  `${root}ffi/`,
  `${root}mod.ts`,
]);

/** Extra frames captured so that `frames` remain once memkit's own are dropped. */
export const INTERNAL_MARGIN = 12;

/** Whether a formatted stack line is a frame of memkit's own code, the runtime's or a built-in's (`Array.map`). */
export function isInternalFrame(line: string): boolean {
  if (line.includes("ext:") || line.includes("node:internal") || line.includes("(native:")) return true;
  if (line.endsWith("(<anonymous>)") || line.endsWith("(native)")) return true;
  for (const prefix of INTERNAL) if (line.includes(prefix)) return true;
  return false;
}

/** The first `frames` lines of `stack` (after its message line) outside memkit, trimmed. */
export function userFrames(stack: string, frames: number, skip = 0): string[] {
  const out: string[] = [];
  const lines = stack.split("\n");
  for (let i = 1 + skip; i < lines.length && out.length < frames; i++) {
    const line = lines[i].trim();
    if (line.length === 0 || !line.startsWith("at ") || isInternalFrame(line)) continue;
    out.push(line);
  }
  return out;
}

/**
 * The current call site: up to `frames` frames outside memkit, one per line,
 * or null when there are none. The program's `Error.prepareStackTrace` is set
 * aside meanwhile (it may throw or return call sites instead of text), and a
 * capture the program made impossible (a frozen `stackTraceLimit`) is null.
 */
export function captureSite(frames: number): string | null {
  const ErrorCtor = Error as { prepareStackTrace?: unknown; stackTraceLimit: number };
  let stack: unknown;
  try {
    const prepare = ErrorCtor.prepareStackTrace;
    const limit = ErrorCtor.stackTraceLimit;
    ErrorCtor.prepareStackTrace = undefined;
    ErrorCtor.stackTraceLimit = frames + INTERNAL_MARGIN;
    try {
      stack = new Error().stack;
    } finally {
      ErrorCtor.stackTraceLimit = limit;
      ErrorCtor.prepareStackTrace = prepare;
    }
  } catch {
    return null;
  }
  if (typeof stack !== "string") return null;
  const lines = userFrames(stack, frames);
  return lines.length > 0 ? lines.join("\n") : null;
}
