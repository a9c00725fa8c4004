// Headless Chromium driven over the DevTools protocol (a WebSocket, built into
// Deno and Bun): open a page, evaluate expressions in it, take a screenshot.
// Used instead of --dump-dom, which dumps at the load event (before any
// server-sent event arrived) and, with --virtual-time-budget, never finished
// here when the page's server was a child of the test.
import { spawn } from "node:child_process";

export interface Browser {
  /** Evaluates `expression` in the page; its value (JSON-able). */
  evaluate(expression: string): Promise<unknown>;
  /** A PNG of the viewport. */
  screenshot(): Promise<Uint8Array>;
  close(): void;
}

export async function openPage(chromium: string, url: string, width: number, height: number): Promise<Browser> {
  const child = spawn(chromium, [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    `--window-size=${width},${height}`,
    "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..." on stderr.
  const port = await new Promise<number>((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`chromium did not start: ${text.slice(-500)}`)), 30_000);
    child.stderr!.on("data", (chunk) => {
      text += chunk;
      const match = /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on("error", reject);
  });
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    type: string;
    webSocketDebuggerUrl: string;
  }[];
  const socket = new WebSocket(targets.find((t) => t.type === "page")!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let nextId = 1;
  const pending = new Map<number, (message: { result?: unknown; error?: unknown }) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  };
  const call = (method: string, params: object = {}) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (m) => (m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result as never)));
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call("Page.enable");
  await call("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
  await call("Page.navigate", { url });
  return {
    async evaluate(expression) {
      const result = await call("Runtime.evaluate", { expression, returnByValue: true });
      return (result.result as { value?: unknown }).value;
    },
    async screenshot() {
      const result = await call("Page.captureScreenshot", { format: "png" });
      return Uint8Array.from(atob(result.data as string), (c) => c.charCodeAt(0));
    },
    close() {
      socket.close();
      child.kill("SIGKILL");
    },
  };
}
