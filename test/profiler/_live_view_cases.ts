// The live view's cases that serve HTTP, each run in a child process by
// live_view_test.ts and live_view_end_test.ts (test/fixtures/live_view_case.ts):
// Bun's node:http server has crashed a whole test process at address 0x0
// some time after such a case tore its connections down, and a crash must
// fail one test, not end the suite.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { AllocationError, MemoryProfiler, nativeInfo, PoolAllocator, serveLiveView } from "../../mod.ts";
import { openPage } from "./_cdp.ts";
import { decodePng } from "./_png.ts";
import { fixture, runCaseChildren } from "../_helpers.ts";

/** The Chromium on PATH, if any (its tests are skipped without one). */
export const chromium: string | undefined = ["chromium", "chromium-browser"].find((name) =>
  spawnSync(name, ["--version"], { encoding: "utf8" }).status === 0
);

/** Runs one case of _live_view_cases.ts in a child process; fails with what failed there, or how it died. */
export function inChild(id: string): void {
  const failures = runCaseChildren(fixture("live_view_case.ts"), [id]).get(id);
  assert.deepEqual(failures, [], `case ${id}: ${failures?.join("\n")}`);
}

export const noChromium = chromium === undefined
  ? "no chromium on PATH (apt-get install -y chromium, or .ci/install-chromium)"
  : false;

async function readEvents(url: string, count: number): Promise<unknown[]> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const events: unknown[] = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let end;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const event = text.slice(0, end);
      text = text.slice(end + 2);
      if (event.startsWith("data: ")) events.push(JSON.parse(event.slice(6)));
    }
  }
  await reader.cancel();
  return events;
}

/** Reads `response`'s body to its end (or until `limit` ms pass); resolves with whether it ended and its text. */
async function readToEnd(response: Response, limit: number): Promise<{ ended: boolean; text: string }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), limit)));
  try {
    while (true) {
      const next = await Promise.race([reader.read(), timeout]);
      if (next === "timeout") {
        await reader.cancel();
        return { ended: false, text };
      }
      if (next.done) return { ended: true, text };
      text += decoder.decode(next.value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the demo (`deno task profile`'s script) in a child of this runtime; resolves with its URL. */
function startDemo(): Promise<{ url: string; stop: () => void }> {
  const script = fileURLToPath(new URL("../../examples/profiler_live.ts", import.meta.url));
  const argv = nativeInfo().runtime === "deno"
    ? ["run", "-A", `--config=${fileURLToPath(new URL("../../deno.json", import.meta.url))}`, script]
    : ["run", script];
  const child = spawn(process.execPath, [...argv, "--seconds", "90"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout!.on("data", (chunk) => {
      text += chunk;
      const url = /live view: (http:\S+)/.exec(text)?.[1];
      if (url) resolve({ url, stop: () => child.kill("SIGKILL") });
    });
    child.on("error", reject);
    child.on("close", (status) => reject(new Error(`the demo exited (${status}) before printing its URL: ${text}`)));
  });
}

/** Each case by id: resolves when it holds, rejects with the assertion that failed. */
export const liveViewCases: Record<string, () => Promise<void>> = {
  "token": async () => {
    using pool = new PoolAllocator({ blockSize: 64 });
    using profiler = new MemoryProfiler({ intervalMs: 10, sources: { pool } });
    profiler.capture(); // a kept snapshot, sent first to a new stream
    const view = await serveLiveView(profiler, { token: "a-test-token-0123456789" });
    try {
      assert.equal(view.token, "a-test-token-0123456789");
      assert.match(view.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=a-test-token-0123456789$/);
      const base = `http://127.0.0.1:${view.port}`;
      const page = await fetch(view.url);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /new EventSource\("events" \+ location\.search\)/);
      assert.doesNotMatch(html, /src=|<link/, "self-contained");
      for (const path of ["/", "/events", "/?token=wrong", "/events?token=a-test-token-012345678"]) {
        const response = await fetch(base + path);
        assert.equal(response.status, 403, path);
        await response.body?.cancel();
      }
      const post = await fetch(view.url, { method: "POST", body: "x" });
      assert.equal(post.status, 405);
      await post.body?.cancel();
      const missing = await fetch(`${base}/nothing?token=${view.token}`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
      profiler.stop(); // the kept snapshots so far are all from before the allocation
      const kept = profiler.snapshots.length;
      const block = pool.alloc(64);
      profiler.start();
      const events = await readEvents(`${base}/events?token=${view.token}`, kept + 2) as {
        categoryBreakdown: { pool: number };
      }[];
      // Timed snapshots taken between start() and the stream's connection are kept ones by then, and one read
      // may bring several events: at least kept + 2 arrive, the ones from before the allocation first.
      assert.ok(events.length >= kept + 2, `${events.length} events`);
      assert.ok(events.slice(0, kept).every((e) => e.categoryBreakdown.pool === 0), "the kept snapshots come first");
      assert.ok(
        events.slice(kept).every((e) => e.categoryBreakdown.pool === 64),
        "then the ones taken since, as they come",
      );
      pool.free(block);
    } finally {
      await view.close();
    }
  },
  "demo-page": async () => {
    const demo = await startDemo();
    const page = await openPage(chromium!, demo.url, 900, 600);
    try {
      // Wait (up to 30 s) until the page has drawn what at least 3 events carried.
      const deadline = Date.now() + 30_000;
      let count = 0;
      while (Date.now() < deadline) {
        count = Number(await page.evaluate(`document.getElementById("chart")?.dataset.count ?? "0"`));
        if (count >= 3) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(count >= 3, `the page received snapshots: data-count ${count}`);
      const bars = Number(await page.evaluate(`document.querySelectorAll("#chart rect").length`));
      assert.ok(bars >= 3, `one bar per snapshot: ${bars}`);
      const owners = await page.evaluate(
        `[...document.querySelectorAll("#owners tbody td:first-child")].map((td) => td.textContent).sort()`,
      );
      assert.deepEqual(owners, ["cache", "entities", "frame", "heap"]);
      assert.match(
        String(await page.evaluate(`document.getElementById("status").textContent`)),
        /^\d+ snapshots; latest/,
      );

      const image = decodePng(await page.screenshot());
      assert.equal(image.width, 900);
      assert.equal(image.height, 600);
      let blue = 0, nonWhite = 0;
      for (let i = 0; i < image.pixels.length; i += 4) {
        const [r, g, b] = [image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]];
        if (r < 245 || g < 245 || b < 245) nonWhite++;
        if (Math.abs(r - 0x3b) < 12 && Math.abs(g - 0x6f) < 12 && Math.abs(b - 0xb6) < 12) blue++;
      }
      assert.ok(nonWhite > 2000, `not blank: ${nonWhite} non-white pixels`);
      assert.ok(blue > 100, `the chart's bars are drawn: ${blue} bar-coloured pixels`);
      // Without the token, the page is refused.
      const denied = await fetch(demo.url.replace(/\?token=.*/, ""));
      assert.equal(denied.status, 403);
      await denied.body?.cancel();
    } finally {
      page.close();
      demo.stop();
    }
  },
  "dispose-ends-streams": async () => {
    using pool = new PoolAllocator({ blockSize: 64 });
    const profiler = new MemoryProfiler({ intervalMs: 20, sources: { pool } });
    profiler.capture();
    const view = await serveLiveView(profiler);
    try {
      const events = `http://127.0.0.1:${view.port}/events?token=${view.token}`;
      const stream = await fetch(events);
      assert.equal(stream.status, 200);
      const reading = readToEnd(stream, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      profiler.dispose();
      const { ended, text } = await reading;
      assert.ok(ended, "the stream ended when the profiler was disposed");
      assert.match(text, /^data: \{"timestamp"/, "it carried snapshots before");
      const after = await fetch(events);
      assert.equal(after.status, 204, "nothing more to stream: an EventSource stops reconnecting");
      await after.body?.cancel();
      const page = await fetch(view.url);
      assert.equal(page.status, 200, "the page itself is still served");
      await page.body?.cancel();
    } finally {
      await view.close();
    }
  },
  "source-error": async () => {
    let fail = false;
    const flaky = {
      metrics() {
        if (fail) {
          fail = false;
          throw new Error("transient");
        }
        return { memoryUsage: 1 };
      },
    };
    const profiler = new MemoryProfiler({ intervalMs: 20, sources: { flaky } });
    const view = await serveLiveView(profiler);
    try {
      const events = `http://127.0.0.1:${view.port}/events?token=${view.token}`;
      const stream = await fetch(events);
      assert.equal(stream.status, 200);
      const reading = readToEnd(stream, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 60));
      fail = true;
      const { ended } = await reading;
      assert.ok(ended, "the stream ended when the source failed");
      assert.equal(profiler.running, false);
      const stopped = await fetch(events);
      assert.equal(stopped.status, 204, "stopped: nothing to stream");
      await stopped.body?.cancel();
      profiler.start(); // the program recovers
      const backlog = profiler.snapshots.length;
      const again = await fetch(events);
      assert.equal(again.status, 200, "running again: a stream again");
      // It carries the new snapshots, not only the backlog: read until one more than the backlog came.
      const reader = again.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      const deadline = Date.now() + 20_000;
      while ((text.match(/^data: /gm)?.length ?? 0) <= backlog && Date.now() < deadline) {
        const next = await reader.read();
        if (next.done) break;
        text += decoder.decode(next.value, { stream: true });
      }
      await reader.cancel();
      assert.ok((text.match(/^data: /gm)?.length ?? 0) > backlog, `new snapshots arrive: ${text.length} bytes`);
    } finally {
      await view.close();
      profiler.dispose();
    }
  },
  "port-in-use": async () => {
    using profiler = new MemoryProfiler({ intervalMs: 1000 });
    const first = await serveLiveView(profiler);
    try {
      await assert.rejects(
        serveLiveView(profiler, { port: first.port }),
        (error) =>
          error instanceof AllocationError && error.category === "platform" && error.call === "listen" &&
          error.message ===
            `Cannot serve the live view on 127.0.0.1:${first.port} as it is in use: pass another port, or 0 for any free one`,
      );
    } finally {
      await first.close();
    }
  },
  "scale-and-stop": async () => {
    using pool = new PoolAllocator({ blockSize: 1024 });
    const profiler = new MemoryProfiler({ intervalMs: 50, sources: { pool } });
    const blocks: Uint8Array[] = [];
    const work = setInterval(() => blocks.push(pool.alloc(1024)), 25);
    const view = await serveLiveView(profiler);
    const page = await openPage(chromium!, view.url, 900, 500);
    const until = async (expression: string, what: string) => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (await page.evaluate(expression)) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.fail(`${what}: ${await page.evaluate(`document.getElementById("status").textContent`)}`);
    };
    try {
      await until(`Number(document.getElementById("chart").dataset.count) >= 3`, "the page received snapshots");
      clearInterval(work);
      const labels = await page.evaluate(`[...document.querySelectorAll("#chart text")].map((t) => t.textContent)`);
      assert.ok(Array.isArray(labels) && labels.length === 2, `two scale labels: ${JSON.stringify(labels)}`);
      assert.match(String(labels[0]), /^tallest bar: \d+(\.\d)? KiB native$/);
      assert.match(String(labels[1]), /^the last \d+ snapshots, \d+\.\d s$/);
      profiler.dispose();
      // The browser retries an ended stream after about 3 s, gets 204 and stops.
      await until(
        `document.getElementById("status").textContent.startsWith("the profiler stopped")`,
        "the page says the profiler stopped",
      );
    } finally {
      clearInterval(work);
      page.close();
      await view.close();
      for (const block of blocks) pool.free(block);
    }
  },
};
