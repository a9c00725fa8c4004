// The live view: its HTTP surface (token, read-only, the event stream of
// snapshots) in the runtime under test, then the page in a real browser:
// headless Chromium loads it, the test reads the DOM it built from the
// events and looks at a screenshot's pixels. The page comes from the demo of
// `deno task profile`, run in a child process of the same runtime. Without
// Chromium the browser test is skipped with the reason printed
// (.ci/install-chromium installs it).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { MemoryProfiler, nativeInfo, PoolAllocator, serveLiveView } from "../../mod.ts";
import { openPage } from "./_cdp.ts";
import { decodePng } from "./_png.ts";

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

test("live view: the token guards every path, only GET is served, events are snapshots", async () => {
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
});

const chromium = ["chromium", "chromium-browser"].find((name) =>
  spawnSync(name, ["--version"], { encoding: "utf8" }).status === 0
);

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

test(
  "live view in headless Chromium: the demo's page draws the snapshots it receives",
  {
    skip: chromium === undefined ? "no chromium on PATH (apt-get install -y chromium, or .ci/install-chromium)" : false,
  },
  async () => {
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
);
