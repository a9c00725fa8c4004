// How a live view ends, and how it refuses to start: a profiler disposed
// while the view serves ends the open event streams and /events answers 204
// (which tells a browser's EventSource to stop reconnecting; before, streams
// stayed open forever with nothing more to come); a profiler disposed before
// is refused at the call; a port in use is memkit's AllocationError("platform")
// with the same message in both runtimes (before: each runtime's own Error).
// In Chromium, when available, the page shows its chart's scale and says the
// profiler stopped.
// Each case that serves runs in a child process of its own
// (test/profiler/_live_view_cases.ts says why).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, MemoryProfiler, serveLiveView } from "../../mod.ts";
import { inChild, noChromium } from "./_live_view_cases.ts";

test("live view: disposing the profiler ends open streams, and /events then answers 204", () =>
  inChild("dispose-ends-streams"));

test("live view: a source's error ends open streams; once the profiler is started again, /events streams again", () =>
  inChild("source-error"));

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

test("live view: a port in use is AllocationError('platform') naming the port and what to do", () =>
  inChild("port-in-use"));

test(
  "live view in headless Chromium: the chart states its scale, and the page says when the profiler stopped",
  { skip: noChromium },
  () => inChild("scale-and-stop"),
);
