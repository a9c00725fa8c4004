/**
 * The profiler's live view: a page on 127.0.0.1 that draws snapshots as
 * they arrive (server-sent events), readable only with the token in its URL.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { type MemoryProfiler, profilerState } from "./memory_profiler.ts";
import type { MemorySnapshot } from "./snapshot.ts";
import { LIVE_PAGE } from "./_live_page.ts";

/**
 * Options of {@linkcode serveLiveView}.
 *
 * @example
 * ```ts
 * import type { LiveViewOptions } from "@memkit/memkit";
 *
 * const options: LiveViewOptions = { port: 0 }; // any free port
 * console.log(options.port);
 * ```
 */
export interface LiveViewOptions {
  /**
   * The TCP port on 127.0.0.1 (0: any free port).
   * @default {0}
   */
  port?: number;
  /** The token the URL must carry (at least 16 characters); a random one by default. */
  token?: string;
}

/**
 * A running live view, from {@linkcode serveLiveView}.
 *
 * @example
 * ```ts
 * import { MemoryProfiler, serveLiveView, type LiveView } from "@memkit/memkit";
 *
 * using profiler = new MemoryProfiler({ intervalMs: 100 });
 * const view: LiveView = await serveLiveView(profiler);
 * console.log(`open ${view.url}`);
 * await view.close();
 * ```
 */
export interface LiveView {
  /** The page's address, token included. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The read-only token every request must carry (`?token=`). */
  readonly token: string;
  /**
   * Stops serving and ends open event streams. The profiler is left as it is (its timer, which the view
   * started, keeps running without keeping the process alive): `stop()` or `dispose()` it when done.
   */
  close(): Promise<void>;
}

const OptionsSchema = z.object({
  port: z.number().int("must be an integer").min(0, "must be at least 0").max(65_535, "must be at most 65535")
    .optional(),
  token: z.string().min(16, "must be at least 16 characters").max(256, "must be at most 256 characters").regex(
    /^[A-Za-z0-9_-]+$/,
    "must be letters, digits, '-' or '_'",
  ).optional(),
}).strict();

/**
 * Serves a live view of `profiler` on 127.0.0.1 only: `GET /?token=…` is the
 * page (self-contained: inline script and styles), `GET /events?token=…` a
 * stream of server-sent events, one JSON {@linkcode MemorySnapshot} each
 * (the last 300 kept snapshots first, what the page shows, then each new
 * one; a client that stops reading is let go once 16 MiB wait for it). A
 * request that cannot be parsed gets 400; anything without the token
 * gets 403, anything but GET 405: the view is read-only, and other users of
 * the machine cannot read it without the token. It starts the profiler's
 * timer (through its async iterator) and, unlike the profiler, keeps the
 * process alive until `close()`. Once the profiler is disposed (or stopped by
 * a failing source), open streams end and `/events` answers 204, which tells
 * a browser's EventSource not to reconnect; the page says the profiler stopped.
 * A profiler stopped by a failing source and started again (`start()`) is
 * served again: `/events` streams its snapshots to new requests (reload the
 * page); a disposed one is not.
 *
 * @param profiler The profiler to show.
 * @param options Port and token.
 * @returns The running view, once it listens; rejected with AllocationError("platform") when the port
 *   cannot be bound (in use: pass another, or 0 for any free one).
 * @throws {TypeError} When `profiler` is not a MemoryProfiler, an option is mistyped, or the token is
 *   shorter than 16 characters or not made of letters, digits, '-' and '_'.
 * @throws {RangeError} For a port out of range.
 * @throws {AllocationError} "use-after-free" when the profiler was disposed.
 *
 * @example
 * ```ts
 * import { MemoryProfiler, PoolAllocator, serveLiveView } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pool = new PoolAllocator({ blockSize: 64 });
 * using profiler = new MemoryProfiler({ intervalMs: 50, sources: { pool } });
 * const view = await serveLiveView(profiler);
 * const page = await fetch(view.url);
 * assert.equal(page.status, 200);
 * await page.body?.cancel();
 * assert.equal((await fetch(`http://127.0.0.1:${view.port}/`)).status, 403); // no token
 * await view.close();
 * ```
 */
export function serveLiveView(profiler: MemoryProfiler, options?: LiveViewOptions): Promise<LiveView> {
  const op = "serve the live view";
  // A MemoryProfiler of memkit's, not an object shaped like one: the request handler reads its snapshots,
  // and a look-alike's getter that throws there would be an uncaught exception in the server.
  if (profilerState(profiler) === null) {
    throw new TypeError(`Cannot ${op} as 'profiler' must be a MemoryProfiler: current value is ${describe(profiler)}`);
  }
  // Checked here, synchronously: bad input throws at the call, not in a rejected promise.
  const parsed = parseOptions(OptionsSchema, options, op);
  // The view starts the timer anyway; starting it here makes a disposed profiler throw at the call
  // ("use-after-free") instead of serving a page that never gets a snapshot.
  try {
    profiler.start();
  } catch (error) {
    if (error instanceof AllocationError && error.category === "use-after-free") {
      throw new AllocationError("use-after-free", `Cannot ${op} as this MemoryProfiler was disposed`);
    }
    throw error;
  }
  return start(profiler, parsed.port ?? 0, parsed.token ?? randomToken());
}

async function start(profiler: MemoryProfiler, port: number, token: string): Promise<LiveView> {
  const streams = new Set<ServerResponse>();
  let ended = false;
  // Whether the view serves (until close()), and the loop forwarding the profiler's snapshots (below).
  let open = true;
  let pump: Promise<void>;
  const server: Server = createServer((request, response) => {
    // Whatever a request makes go wrong ends that request, never the process: an exception thrown from a
    // request listener is an uncaught exception (Bun let `GET http://[ HTTP/1.1`, without a token, through).
    try {
      handle(request, response);
    } catch {
      if (!response.headersSent) response.writeHead(400, { "content-type": "text/plain" }).end("bad request\n");
      else response.destroy();
    }
  });

  function handle(request: IncomingMessage, response: ServerResponse): void {
    // A request target that is not a path (`http://[`, which Bun passes on) is refused here, not thrown.
    const url = URL.parse(request.url ?? "/", "http://127.0.0.1");
    if (url === null) {
      response.writeHead(400, { "content-type": "text/plain" }).end("bad request\n");
      return;
    }
    if (request.method !== "GET") {
      response.writeHead(405, { "content-type": "text/plain", allow: "GET" }).end("read-only\n");
      return;
    }
    if (!sameToken(url.searchParams.get("token"), token)) {
      response.writeHead(403, { "content-type": "text/plain" }).end(
        "a token is needed: open the URL the program printed, ?token= included\n",
      );
      return;
    }
    if (url.pathname === "/") {
      response.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
          "connect-src 'self'; img-src data:",
      }).end(LIVE_PAGE);
      return;
    }
    if (url.pathname === "/events") {
      // The profiler stopped on a source's error and was started again since: stream its snapshots again.
      if (ended && open && profiler.running && profilerState(profiler) === "live") {
        ended = false;
        pump = forward();
      }
      // Nothing more will come: 204 is what tells an EventSource to stop reconnecting.
      if (ended) {
        response.writeHead(204, { "cache-control": "no-store" }).end();
        return;
      }
      response.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      // The page keeps the last BACKLOG snapshots: a longer history (up to a million) is not sent to each client.
      for (const snapshot of profiler.snapshots.slice(-BACKLOG)) send(response, snapshot);
      streams.add(response);
      request.on("close", () => streams.delete(response));
      response.on("error", () => streams.delete(response));
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: Error & { code?: string }) => {
      // The runtimes word this differently (Bun: "Failed to start server. Is port N in use?"): one error for both.
      const why = error?.code === "EADDRINUSE" ? "it is in use" : `${error?.code ?? error?.message ?? error}`;
      reject(
        new AllocationError(
          "platform",
          `Cannot serve the live view on 127.0.0.1:${port} as ${why}: pass another port, or 0 for any free one`,
          { cause: error, call: "listen" },
        ),
      );
    });
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : 0;

  // The profiler's snapshots, forwarded to every open stream until close() (again after a source's error
  // once the profiler runs again: see /events).
  const forward = async () => {
    try {
      for await (const snapshot of profiler) {
        if (!open) break;
        for (const stream of streams) {
          send(stream, snapshot);
          // A client that stopped reading (a stalled tab, a paused socket) would have every later snapshot
          // buffered for it, without bound: past SLOW_CLIENT_BYTES it is let go (a browser reconnects).
          if (stream.writableLength > SLOW_CLIENT_BYTES) {
            streams.delete(stream);
            stream.destroy();
          }
        }
      }
    } catch {
      // The profiler stopped on a source's error (readable in profiler.error): nothing more to send.
    }
    // The loop ends on close(), on dispose() or on that error. In the last two, streams left open would
    // wait forever for a snapshot: end them, so the page can say so.
    if (!open) return;
    ended = true;
    for (const stream of streams) stream.end();
    streams.clear();
  };
  pump = forward();

  return {
    url: `http://127.0.0.1:${bound}/?token=${token}`,
    port: bound,
    token,
    async close(): Promise<void> {
      open = false;
      for (const stream of streams) stream.end();
      streams.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive connections (a browser's, fetch's) would hold close() for seconds.
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
      void pump;
    },
  };
}

// Snapshots sent to a new client before the live ones: what the page keeps (KEEP in _live_page.ts).
const BACKLOG = 300;
// Bytes buffered for one client before it is let go: hundreds of snapshots it has not read.
const SLOW_CLIENT_BYTES = 16 << 20;

// The token compared in constant time, so the time an answer takes tells nothing about how much of a guess was right.
function sameToken(given: string | null, token: string): boolean {
  if (given === null || given.length !== token.length) return false;
  const a = new TextEncoder().encode(given), b = new TextEncoder().encode(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(stream: ServerResponse, snapshot: MemorySnapshot): void {
  stream.write(`data: ${JSON.stringify(snapshot)}\n\n`);
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
