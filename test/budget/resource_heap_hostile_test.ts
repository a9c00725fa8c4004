// ResourceHeap against callers that lie: own properties, Proxies and objects
// made from a resource's prototype change nothing memkit trusts (its state is
// private), and a resource whose buffer was transferred away keeps its memory
// for good. Each group runs in a child process: a regression here is a crash.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runChild } from "../_helpers.ts";
import { outcomes } from "./_budget_hostile.ts";

test("resource state is private: own properties, Proxies and forged resources change nothing (t17, t18, t20, t10)", () => {
  const seen = outcomes("heap-forged");
  for (const key of ["size", "state", "aliasable", "aliasOf", "name", "alignment"]) {
    assert.equal(seen.get(`assign ${key}`), "TypeError", `${key} is read-only`);
  }
  assert.equal(seen.get("bytes after own size"), "ok 16");
  assert.equal(seen.get("touch after own size"), "ok true");
  assert.equal(seen.get("released with own state live: bytes"), "use-after-free");
  assert.equal(seen.get("released with own state live: release"), "double-free");
  for (const step of ["forged bytes", "forged offset", "forged release", "forged free", "forged construct"]) {
    assert.equal(seen.get(step), "TypeError", step);
  }
  for (const step of ["alias to a Proxy", "alias from a Proxy", "free a Proxy", "proxy bytes"]) {
    assert.equal(seen.get(step), "TypeError", step);
  }
  assert.equal(seen.get("alias larger later"), "RangeError");
  assert.equal(seen.get("b intact after refusals"), "ok live 8192 live");
  assert.equal(seen.get("alias with own aliasable"), "unsupported");
  assert.equal(seen.get("free another heap's with own heap"), "mismatched-allocator");
  assert.equal(seen.get("compact with own baseAddress"), "ok true");
  assert.equal(seen.get("offset with own baseAddress"), "ok true");
  assert.equal(seen.get("allocate over own capacity"), "RangeError");
  assert.equal(seen.get("x intact"), `ok ${0x5a}`);
});

test("a resource whose buffer was transferred away keeps its memory: free and alias throw corruption (t02)", () => {
  const seen = outcomes("heap-transfer");
  assert.equal(seen.get("release stolen"), "corruption");
  assert.equal(seen.get("free stolen"), "corruption");
  assert.equal(seen.get("stolen still live"), "ok live 1");
  assert.equal(seen.get("bytes of stolen"), "corruption");
  assert.equal(seen.get("stolen untouched by later resources"), "ok true");
  assert.equal(seen.get("alias into stolen"), "corruption");
  assert.equal(seen.get("alias left both"), `ok live live ${0xcd} true`);
  assert.equal(seen.get("alias from stolen later"), "corruption");
  assert.equal(seen.get("alias left both (later)"), "ok live live");
  assert.equal(seen.get("read stolen after dispose"), "ok true");
});

test("allocate({ into }) a resource whose buffer was transferred away throws corruption and changes nothing", () => {
  const child = runChild(fileURLToPath(new URL("./_heap_into_child.ts", import.meta.url)));
  assert.equal(child.signal, null, `crashed: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(child.stdout.trim().split("\n"), [
    "allocate into a stolen resource: corruption",
    "stats unchanged: ok true",
    "first still live: ok live",
    "stolen buffer intact: ok true",
    "a fresh resource elsewhere: ok true",
    "DONE",
  ]);
});
