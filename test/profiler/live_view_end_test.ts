// How a live view ends, and how it refuses to start: a profiler disposed
// while the view serves ends the open event streams and /events answers 204
// (which tells a browser's EventSource to stop reconnecting; before, streams
// stayed open forever with nothing more to come); a profiler disposed before
// is refused at the call; a port in use is memkit's AllocationError("platform")
// with the same message in both runtimes (before: each runtime's own Error).
// In Chromium, when available, the page shows its chart's scale and says the
// profiler stopped.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { AllocationError, MemoryProfiler, PoolAllocator, serveLiveView } from "../../mod.ts";
import { openPage } from "./_cdp.ts";

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

test("live view: disposing the profiler ends open streams, and /events then answers 204", async () => {
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
});

test("live view: a source's error ends open streams; once the profiler is started again, /events streams again", async () => {
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
});

test("live view: a disposed profiler is refused at the call, before anything listens", () => {
  const profiler = new MemoryProfiler();
  profiler.dispose();
  assert.throws(
    () => serveLiveView(profiler),
    (error) =>
      error instanceof AllocationError && error.category === "use-after-free" &&
      /Cannot serve the live view as this MemoryProfiler was disposed/.test(error.message),
  );
});

test("live view: a port in use is AllocationError('platform') naming the port and what to do", async () => {
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
});

const chromium = ["chromium", "chromium-browser"].find((name) =>
  spawnSync(name, ["--version"], { encoding: "utf8" }).status === 0
);

test(
  "live view in headless Chromium: the chart states its scale, and the page says when the profiler stopped",
  {
    skip: chromium === undefined ? "no chromium on PATH (apt-get install -y chromium, or .ci/install-chromium)" : false,
  },
  async () => {
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
);
