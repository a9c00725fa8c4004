// WGSL names (issue 17, adversarial finding 7): a field named like a WGSL
// reserved word (`type`, `target`, `self` ...) or a struct named like a
// predeclared type (`f32`, `vec4f`) is a TypeError naming it, since the
// declaration would not compile; what is accepted compiles on the device,
// including nested struct names derived from a reserved word.
import assert from "node:assert/strict";
import { test } from "node:test";
import { struct } from "../../src/arrays/struct.ts";
import { context, skipGpu } from "./_gpu_context.ts";

const storage = { layout: "wgsl-storage" } as const;
// The names the adversarial pass found compiling nowhere.
const RESERVED = ["type", "target", "self", "set", "shared", "static", "new", "do", "layout", "module", "pass", "this"]
  .concat(["as", "mut", "ref", "NULL", "Self", "null"]);

test("wgslDeclaration: reserved field names and predeclared struct names are TypeErrors", () => {
  for (const name of RESERVED) {
    assert.throws(() => struct({ [name]: "f32" }, storage).wgslDeclaration("S"), {
      name: "TypeError",
      message: new RegExp(`field '${name}'.*reserved word`),
    }, name);
    assert.throws(() => struct({ x: "f32" }, storage).wgslDeclaration(name), { name: "TypeError" }, `struct ${name}`);
  }
  for (const name of ["f32", "vec3", "vec4f", "mat4x4f", "array", "atomic", "sampler", "texture_2d", "bool"]) {
    assert.throws(() => struct({ x: "f32" }, storage).wgslDeclaration(name), {
      name: "TypeError",
      message: /predeclared WGSL type/,
    }, name);
  }
});

test("wgslDeclaration: accepted names compile, a derived nested name that spells a reserved word is numbered", {
  skip: skipGpu,
}, async () => {
  using gpu = context();
  const Inner = struct({ v: "f32" }, storage);
  const cases: [string, string, string][] = [
    // Field names WGSL allows although they name types or address spaces.
    ["S", `${struct({ f32: "f32", vec3: "f32", uniform: "f32", read: "f32" }, storage).wgslDeclaration("S")}`, "s.f32"],
    ["thread", struct({ local: Inner }, storage).wgslDeclaration("thread"), "s.local.v"],
  ];
  // "thread" + "_" + "local" spells the reserved thread_local: the nested struct gets another name.
  assert.doesNotMatch(cases[1][1], /struct thread_local\s/);
  for (const [name, declaration, member] of cases) {
    const code = `${declaration}\n@group(0) @binding(0) var<storage, read_write> s: ${name};\n` +
      `@compute @workgroup_size(1) fn main() { ${member} = 1.0; }`;
    gpu.device.pushErrorScope("validation");
    const module = gpu.device.createShaderModule({ code });
    gpu.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    const error = await gpu.device.popErrorScope();
    assert.equal(error, null, `${code}\n${error?.message}`);
  }
});
