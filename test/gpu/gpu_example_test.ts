// examples/gpu_particles.ts, run as written in a child process of the
// runtime running this test.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runChild } from "../_helpers.ts";
import { skipGpu } from "./_gpu_context.ts";

test("examples/gpu_particles.ts: 60 frames of 10k particles from one pooled buffer, checked by a compute pass", {
  skip: skipGpu,
}, () => {
  const child = runChild(fileURLToPath(new URL("../../examples/gpu_particles.ts", import.meta.url)));
  assert.equal(child.status, 0, child.stderr);
  assert.equal(
    child.stdout,
    [
      "frames: 60, particles: 10000",
      "bytes uploaded: 9600000", // 60 frames × 10,000 × 16 bytes
      "vertex buffers created: 1, reused: 59",
      "GPU and CPU distances agree: true",
      "",
    ].join("\n"),
  );
});
