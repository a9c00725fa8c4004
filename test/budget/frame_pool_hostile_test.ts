// FramePool and PurgeableBuffer against callers that lie or steal: frame and
// frame-set state is private (own properties, Proxies and objects made from a
// prototype are TypeErrors or change nothing), a frame whose buffer was
// transferred away is never reused or unmapped (its release throws
// "corruption"), a PurgeableBuffer whose buffer was transferred away never
// becomes volatile, and a refused acquire changes nothing. Each group runs in
// a child process: a regression here is a crash.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { nativeInfo } from "../../mod.ts";
import { outcomes } from "./_budget_hostile.ts";

test("frames and frame sets: private geometry, forged or proxied sets and frames are TypeErrors (t12, t18)", () => {
  const seen = outcomes("frame-forged");
  for (
    const step of [
      "release a forged set",
      "release a Proxy of a set",
      "release a Proxy of a frame",
      "forged set release()",
      "forged set current",
      "forged frame bytes",
      "construct a frame",
      "assign frames",
      "assign byteLength",
      "assign planeBytes",
      "assign rowBytes",
      "assign format",
    ]
  ) assert.equal(seen.get(step), "TypeError", step);
  assert.equal(seen.get("set still held"), "ok 3 false");
  assert.equal(seen.get("bytes after own byteLength"), "ok 1024");
  assert.equal(seen.get("plane after own planeBytes"), "ok 1024");
  assert.equal(seen.get("purgeable bytes after own byteLength"), "ok 4096");
});

test("a frame or PurgeableBuffer whose buffer was transferred away keeps its memory (t01, t03)", () => {
  const seen = outcomes("frame-transfer");
  assert.equal(seen.get("set release with a stolen frame"), "corruption");
  assert.equal(seen.get("in use after refusal"), "ok 3", "nothing was released");
  assert.equal(seen.get("bytes of the stolen frame"), "corruption");
  assert.equal(seen.get("release next"), "ok");
  assert.equal(seen.get("release previous"), "ok");
  assert.equal(seen.get("release stolen frame"), "corruption");
  assert.equal(seen.get("trim and pressure"), "ok true");
  assert.equal(seen.get("stolen untouched by later sets"), "ok true");
  assert.equal(seen.get("read stolen after dispose"), "ok true");
  assert.equal(seen.get("purgeable makeVolatile after theft"), "corruption");
  assert.equal(seen.get("purgeable still non-volatile"), "ok false");
  assert.equal(seen.get("purgeable bytes after theft"), "corruption");
  assert.equal(seen.get("purgeable dispose"), "ok");
  assert.equal(seen.get("read stolen purgeable after dispose"), "ok true");
});

// With overcommit_memory=1 the kernel grants 96 TiB of address space and there is no refusal to observe.
const grantsAll = (() => {
  try {
    return readFileSync("/proc/sys/vm/overcommit_memory", "utf8").trim() === "1";
  } catch {
    return false;
  }
})();

test("acquireFrameSet refused by the OS changes nothing: no format listed, no idle frame unmapped (t12 a)", {
  skip: grantsAll ? "vm.overcommit_memory=1: the OS refuses no mapping" : false,
}, () => {
  const seen = outcomes("frame-refused");
  // A 32 TiB frame is more than one ArrayBuffer holds in Bun (4 GiB): refused as "unsupported" before any
  // mapping; where the runtime has no such limit the OS refuses it.
  const frameBytes = 2 ** 45;
  assert.equal(seen.get("huge format"), frameBytes > nativeInfo().maxViewBytes ? "unsupported" : "out-of-memory");
  assert.equal(seen.get("stats unchanged"), "ok true");
});
