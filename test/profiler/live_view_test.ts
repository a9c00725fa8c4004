// The live view: its HTTP surface (token, read-only, the event stream of
// snapshots) in the runtime under test, then the page in a real browser:
// headless Chromium loads it, the test reads the DOM it built from the
// events and looks at a screenshot's pixels. The page comes from the demo of
// `deno task profile`, run in a child process of the same runtime. Without
// Chromium the browser test is skipped with the reason printed
// (.ci/install-chromium installs it). Each case runs in a child process of
// its own (test/profiler/_live_view_cases.ts says why).
import { test } from "node:test";
import { inChild, noChromium } from "./_live_view_cases.ts";

test("live view: the token guards every path, only GET is served, events are snapshots", () => inChild("token"));

test(
  "live view in headless Chromium: the demo's page draws the snapshots it receives",
  { skip: noChromium },
  () => inChild("demo-page"),
);
