// Device acquisition and GPU memory accounting: bytes by usage, live buffers
// with creation sites, the budget's "gpu" category, device loss, the leak
// report at exit, and the failure rows (no driver, no bun-webgpu) in child
// processes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { census } from "../../src/base/_native_census.ts";
import { MemoryBudget } from "../../src/budget/memory_budget.ts";
import { BudgetToken } from "../../src/budget/budget_token.ts";
import { nativeInfo } from "../../src/base/native_info.ts";
import { GpuBufferUsage as U, GpuContext, requestGpu } from "../../src/gpu/gpu_context.ts";
import { runChild } from "../_helpers.ts";
import { context, skipGpu } from "./_gpu_context.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

test("requestGpu: a real adapter (not Dawn's null backend) and a device that accounts for its buffers", {
  skip: skipGpu,
}, async () => {
  using gpu = await requestGpu({ label: "own" });
  assert.equal(gpu.runtime, nativeInfo().runtime);
  assert.notEqual(gpu.description, "unknown");
  const vertex = gpu.createBuffer({ size: 4096, usage: U.VERTEX | U.COPY_DST });
  const uniform = gpu.createBuffer({ size: 512, usage: U.UNIFORM | U.COPY_DST });
  const readback = gpu.createBuffer({ size: 64, usage: U.MAP_READ | U.COPY_DST });
  const storage = gpu.createBuffer({ size: 1024, usage: U.STORAGE | U.VERTEX }); // VERTEX wins: first matching
  let stats = gpu.memoryStats();
  assert.equal(stats.bytes, 4096 + 512 + 64 + 1024);
  assert.equal(stats.buffers, 4);
  assert.deepEqual(stats.byUsage.vertex, { bytes: 4096 + 1024, buffers: 2 });
  assert.deepEqual(stats.byUsage.uniform, { bytes: 512, buffers: 1 });
  assert.deepEqual(stats.byUsage.readback, { bytes: 64, buffers: 1 });
  gpu.destroyBuffer(vertex);
  gpu.destroyBuffer(storage);
  stats = gpu.memoryStats();
  assert.equal(stats.bytes, 576);
  assert.equal(stats.peakBytes, 4096 + 512 + 64 + 1024);
  assert.equal(stats.created, 4);
  assert.equal(stats.destroyed, 2);
  assert.deepEqual(gpu.liveBuffers().map((b) => b.usage), ["COPY_DST|UNIFORM", "MAP_READ|COPY_DST"]);
  assert.throws(() => gpu.destroyBuffer(vertex), TypeError); // twice
  gpu.destroyBuffer(uniform);
  gpu.destroyBuffer(readback);
});

test("GpuContext: live buffers carry their creation site when sites are traced", { skip: skipGpu }, () => {
  using gpu = context();
  const saved = census.frames;
  census.frames = 8;
  try {
    gpu.createBuffer({ size: 16, usage: U.STORAGE, label: "traced" });
  } finally {
    census.frames = saved;
  }
  gpu.createBuffer({ size: 16, usage: U.STORAGE, label: "untraced" });
  const [traced, untraced] = gpu.liveBuffers();
  assert.match(traced.site ?? "", /gpu_context_test\.ts/);
  assert.equal(untraced.site, null);
});

test(
  "GpuContext: buffers are charged to the budget's gpu category; a refusal creates nothing",
  { skip: skipGpu },
  () => {
    const budget = new MemoryBudget({
      physicalBytes: 1 << 20,
      fractions: { normal: 1 / 4, warning: 1 / 4, critical: 1 / 4 },
    });
    using gpu = context();
    using charged = GpuContext.fromDevice(gpu.device, { budget });
    const a = charged.createBuffer({ size: 200_000, usage: U.STORAGE });
    assert.equal(budget.stats().categories.gpu.usedBytes, 200_000);
    assert.throws(() => charged.createBuffer({ size: 100_000, usage: U.STORAGE }), {
      name: "AllocationError",
      category: "limit-exceeded",
    });
    assert.equal(charged.memoryStats().buffers, 1);
    assert.equal(budget.stats().categories.gpu.usedBytes, 200_000);
    charged.destroyBuffer(a);
    assert.equal(budget.stats().categories.gpu.usedBytes, 0);
    const strict = new MemoryBudget({ physicalBytes: 1 << 20, categories: ["textures"] });
    assert.throws(
      () => GpuContext.fromDevice(gpu.device, { budget: strict }),
      /category "gpu": add "gpu" to its categories/,
    );
    // Whether "gpu" is accepted is asked with accepts(), not by a request: a subclass whose request() answers
    // something else was refused as if the category were (with the engine's "release is not a function").
    class Counting extends MemoryBudget {
      override request(): never {
        return 0 as never;
      }
    }
    using counted = GpuContext.fromDevice(gpu.device, { budget: new Counting({ physicalBytes: 1 << 20 }) });
    assert.equal(counted.memoryStats().buffers, 0);
  },
);

test(
  "GpuContext: a lost device drops its buffers from the accounting and refuses new ones",
  { skip: skipGpu },
  async () => {
    const gpu = await requestGpu({ label: "doomed" });
    const budget = new MemoryBudget({ physicalBytes: 1 << 24 });
    const charged = GpuContext.fromDevice(gpu.device, { budget });
    const a = gpu.createBuffer({ size: 1024, usage: U.STORAGE });
    charged.createBuffer({ size: 2048, usage: U.VERTEX });
    let reason = "";
    gpu.onLost((r) => (reason = r));
    gpu.device.destroy();
    await gpu.device.lost;
    await Promise.resolve();
    for (const [ctx, lost] of [[gpu, 1], [charged, 1]] as const) {
      const stats = ctx.memoryStats();
      assert.equal(stats.bytes, 0);
      assert.equal(stats.buffers, 0);
      assert.equal(stats.lostBuffers, lost);
      assert.equal(stats.lost, true);
    }
    assert.equal(budget.stats().categories.gpu.usedBytes, 0);
    assert.match(reason, /lost/);
    assert.throws(() => gpu.createBuffer({ size: 16, usage: U.STORAGE }), {
      name: "AllocationError",
      category: "use-after-free",
      message: /lost/,
    });
    gpu.destroyBuffer(a); // forgotten already: a no-op, not an error
    gpu.dispose();
    charged.dispose();
  },
);

test(
  "a MemoryBudget subclass's request(): anything but a token it granted is refused; a token's own release never runs",
  {
    skip: skipGpu,
  },
  () => {
    using gpu = context();
    let answer: (budget: MemoryBudget, size: number) => unknown = () => null;
    class Odd extends MemoryBudget {
      override request(size: number): never {
        return answer(this, size) as never;
      }
    }
    const budget = new Odd({ physicalBytes: 1 << 20 });
    using charged = GpuContext.fromDevice(gpu.device, { budget });
    // A real token, even for other bytes (a subclass may charge whole pages): kept, and given back on destroy.
    let kept: BudgetToken | null = null;
    answer = (b) => (kept = MemoryBudget.prototype.request.call(b, 4096, "gpu"));
    const paged = charged.createBuffer({ size: 1000, usage: U.STORAGE });
    assert.equal(budget.usedBytes, 4096);
    // Before: a non-token was kept, and destroyBuffer threw "record.token?.release is not a function" half-way
    // (the buffer forgotten, its bytes still counted, the GPU buffer never destroyed).
    const rows: [string, (budget: MemoryBudget, size: number) => unknown][] = [
      ["a plain object", () => ({ release() {} })],
      ["a number", () => 1],
      ["an object made from BudgetToken.prototype", () => Object.create(BudgetToken.prototype)],
      ["a token released already", (b, size) => {
        const token = MemoryBudget.prototype.request.call(b, size, "gpu")!;
        token.release();
        return token;
      }],
      ["a token a buffer holds already", () => kept],
    ];
    for (const [name, make] of rows) {
      answer = make;
      const created = charged.memoryStats().created;
      assert.throws(() => charged.createBuffer({ size: 1024, usage: U.STORAGE }), {
        name: "TypeError",
        message: /request\(\) must answer null or a BudgetToken it granted/,
      }, name);
      assert.equal(charged.memoryStats().created, created, `${name}: nothing created`);
      assert.equal(budget.usedBytes, 4096, `${name}: nothing charged or given back`);
    }
    charged.destroyBuffer(paged);
    assert.equal(budget.usedBytes, 0);
    // A real token whose own `release` throws: memkit gives the bytes back through BudgetToken's own method.
    let ran = 0;
    answer = (b, size) => {
      const token = MemoryBudget.prototype.request.call(b, size, "gpu")!;
      Object.defineProperty(token, "release", {
        value: () => {
          ran++;
          throw new Error("own release");
        },
      });
      return token;
    };
    const a = charged.createBuffer({ size: 1024, usage: U.STORAGE });
    charged.createBuffer({ size: 2048, usage: U.STORAGE });
    assert.equal(budget.usedBytes, 3072);
    charged.destroyBuffer(a);
    assert.deepEqual([charged.memoryStats().bytes, charged.memoryStats().buffers, budget.usedBytes], [2048, 1, 2048]);
    charged.dispose();
    assert.deepEqual([charged.memoryStats().bytes, charged.memoryStats().buffers, budget.usedBytes], [0, 0, 0]);
    assert.equal(ran, 0, "the token's own release never ran");
  },
);

test("GpuContext bad input: each row its error, the context still usable", { skip: skipGpu }, () => {
  using gpu = context();
  const max = gpu.device.limits.maxBufferSize;
  const rows: [string, () => unknown, RegExp | { name: string }][] = [
    ["descriptor not an object", () => gpu.createBuffer(5 as never), { name: "TypeError" }],
    ["size a string", () => gpu.createBuffer({ size: "1" as never, usage: U.STORAGE }), { name: "TypeError" }],
    ["size negative", () => gpu.createBuffer({ size: -4, usage: U.STORAGE }), { name: "RangeError" }],
    ["size fractional", () => gpu.createBuffer({ size: 1.5, usage: U.STORAGE }), { name: "RangeError" }],
    ["size past maxBufferSize", () => gpu.createBuffer({ size: max + 4, usage: U.STORAGE }), { name: "RangeError" }],
    ["usage 0", () => gpu.createBuffer({ size: 4, usage: 0 }), { name: "RangeError" }],
    ["usage unknown bits", () => gpu.createBuffer({ size: 4, usage: 0x400 }), { name: "RangeError" }],
    ["MAP_READ with VERTEX", () => gpu.createBuffer({ size: 4, usage: U.MAP_READ | U.VERTEX }), /MAP_READ/],
    ["MAP_WRITE with COPY_DST", () => gpu.createBuffer({ size: 4, usage: U.MAP_WRITE | U.COPY_DST }), /MAP_WRITE/],
    ["mapped size not words", () => gpu.createBuffer({ size: 6, usage: U.STORAGE, mappedAtCreation: true }), {
      name: "RangeError",
    }],
    ["unknown option", () => gpu.createBuffer({ size: 4, usage: U.STORAGE, shared: true } as never), /shared/],
    ["destroy a non-buffer", () => gpu.destroyBuffer({} as never), { name: "TypeError" }],
    ["destroy another context's buffer", () => {
      using other = context("other");
      gpu.destroyBuffer(other.createBuffer({ size: 4, usage: U.STORAGE }));
    }, { name: "TypeError" }],
    ["fromDevice of a non-device", () => GpuContext.fromDevice({} as never), { name: "TypeError" }],
    ["fromDevice, budget not a budget", () => GpuContext.fromDevice(gpu.device, { budget: {} as never }), {
      name: "TypeError",
    }],
    ["onLost not a function", () => gpu.onLost(1 as never), { name: "TypeError" }],
  ];
  for (const [name, run, expected] of rows) {
    assert.throws(run, expected as never, name);
    assert.equal(gpu.memoryStats().buffers, 0, name);
  }
  gpu.createBuffer({ size: 4, usage: U.STORAGE }); // still usable
  assert.equal(gpu.memoryStats().bytes, 4);
});

test("requestGpu bad input: options of the wrong type, a feature the adapter lacks", { skip: skipGpu }, async () => {
  await assert.rejects(requestGpu(3 as never), TypeError);
  await assert.rejects(requestGpu({ powerPreference: "fast" as never }), TypeError);
  await assert.rejects(requestGpu({ requiredFeatures: ["no-such-feature"] }), /no-such-feature/);
});

// Hides every driver the adapters could use: Vulkan's (lavapipe) and EGL's (wgpu's GL fallback in Deno).
const NO_DRIVER = {
  VK_ICD_FILENAMES: "/nonexistent",
  VK_DRIVER_FILES: "/nonexistent",
  __EGL_VENDOR_LIBRARY_FILENAMES: "/nonexistent",
};

test("no driver: requestGpu throws AllocationError('unsupported') naming what to install; the rest of memkit works", () => {
  const child = runChild(fixture("gpu_unsupported.ts"), NO_DRIVER);
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split("\n");
  assert.match(
    lines[0],
    /^unsupported: Cannot use the GPU in (Deno|Bun \(through bun-webgpu\)) as .*mesa-vulkan-drivers/,
  );
  assert.equal(lines.at(-1), "allocator still works: 8");
});

test("Bun without bun-webgpu: AllocationError('unsupported') naming the package", {
  skip: nativeInfo().runtime !== "bun" ? "bun-webgpu is Bun's only" : false,
}, () => {
  const result = spawnSync(process.execPath, [
    "--preload",
    fixture("hide_bun_webgpu.ts"),
    fixture("gpu_unsupported.ts"),
  ], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.match(
    lines[0],
    /^unsupported: Cannot use the GPU in Bun as the npm package bun-webgpu could not be loaded .*bun add bun-webgpu/,
  );
  assert.equal(lines.at(-1), "allocator still works: 8");
});

test("leak report at exit: a buffer never destroyed is listed with its size, usage and creation site", {
  skip: skipGpu,
}, () => {
  const child = runChild(fixture("gpu_leak_at_exit.ts"));
  assert.equal(child.stdout.trim(), "live: 1 (terrain, 4096 bytes)");
  assert.equal(child.status, 1, child.stderr); // leakCheckAtExit: "fail"
  assert.match(child.stderr, /GPU buffers never destroyed: 1 buffer, 4096 bytes/);
  assert.match(child.stderr, /leaky renderer: buffer "terrain", 4096 bytes, COPY_DST\|VERTEX/);
  assert.match(child.stderr, /created .*gpu_leak_at_exit\.ts/);
  assert.doesNotMatch(child.stderr, /camera/);
});
