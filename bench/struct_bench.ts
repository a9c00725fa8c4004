// GPU records from JavaScript (issue 17 part A): pushing 1M particles laid out
// for a WGSL storage buffer, { pos: vec3<f32>, mass: f32, vel: vec3<f32>,
// id: u32 } in 32 bytes, against a hand-written typed-array buffer with the
// same bytes, the C layout of the same fields (48 bytes: C pads each f32x3 to
// 16), and the same 32 bytes as two nested records.
import { DynamicArray, struct } from "../mod.ts";
import { compare, do_not_optimize } from "./_ratios.ts";

const N = 1_000_000;
const Particle = struct({ pos: "f32x3", mass: "f32", vel: "f32x3", id: "u32" }, { layout: "wgsl-storage" });
const CParticle = struct({ pos: "f32x3", mass: "f32", vel: "f32x3", id: "u32" });
const Body = struct({ pos: "f32x3", mass: "f32" }, { layout: "wgsl-storage" });
const Motion = struct({ vel: "f32x3", id: "u32" }, { layout: "wgsl-storage" });
const Nested = struct({ body: Body, motion: Motion }, { layout: "wgsl-storage" });

compare("push 1M WGSL particles (32 B)", "hand-written Float32Array doubling buffer", {
  "hand-written Float32Array doubling buffer": () => {
    let floats = new Float32Array(16 * 8);
    let ids = new Uint32Array(floats.buffer);
    let length = 0;
    for (let i = 0; i < N; i++) {
      if ((length + 1) * 8 > floats.length) {
        const bigger = new Float32Array(floats.length * 2);
        bigger.set(floats);
        floats = bigger;
        ids = new Uint32Array(bigger.buffer);
      }
      const pos = [i, i + 1, i + 2], vel = [0.5, 0.5, i];
      const at = length++ * 8;
      floats[at] = pos[0];
      floats[at + 1] = pos[1];
      floats[at + 2] = pos[2];
      floats[at + 3] = 1;
      floats[at + 4] = vel[0];
      floats[at + 5] = vel[1];
      floats[at + 6] = vel[2];
      ids[at + 7] = i;
    }
    do_not_optimize(floats);
  },
  "DynamicArray(WGSL particle).push": () => {
    const particles = new DynamicArray(Particle);
    for (let i = 0; i < N; i++) particles.push({ pos: [i, i + 1, i + 2], mass: 1, vel: [0.5, 0.5, i], id: i });
    particles.free();
  },
  "DynamicArray(C-layout particle, 48 B).push": () => {
    const particles = new DynamicArray(CParticle);
    for (let i = 0; i < N; i++) particles.push({ pos: [i, i + 1, i + 2], mass: 1, vel: [0.5, 0.5, i], id: i });
    particles.free();
  },
  "DynamicArray(nested { body, motion }).push": () => {
    const particles = new DynamicArray(Nested);
    for (let i = 0; i < N; i++) {
      particles.push({ body: { pos: [i, i + 1, i + 2], mass: 1 }, motion: { vel: [0.5, 0.5, i], id: i } });
    }
    particles.free();
  },
});
