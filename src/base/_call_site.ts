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

/** Whether a formatted stack line is a frame of memkit's own code (or a runtime-internal frame). */
export function isInternalFrame(line: string): boolean {
  if (line.includes("ext:") || line.includes("node:internal")) return true;
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

/** The current call site: up to `frames` frames outside memkit, one per line, or null when there are none. */
export function captureSite(frames: number): string | null {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = frames + INTERNAL_MARGIN;
  const stack = new Error().stack;
  Error.stackTraceLimit = limit;
  if (typeof stack !== "string") return null;
  const lines = userFrames(stack, frames);
  return lines.length > 0 ? lines.join("\n") : null;
}
