// Objects that pass `instanceof` without being memkit's own (a Proxy of a real monitor, budget, cache, frame
// pool or heap, or an object made from the class's prototype) are refused where they are given, with memkit's
// TypeError: before, they failed later on the classes' private fields with the engine's TypeError (for
// respondToPressure, in a microtask at the first warning, which ended the process), and a ResourceCache
// constructor refused its monitor after it had registered its reclaimer with the budget.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BudgetPriority,
  FramePool,
  MemoryBudget,
  PressureLevel,
  type PressureLevelValue,
  type PressureListener,
  PressureMonitor,
  ResourceCache,
  ResourceHeap,
  respondToPressure,
} from "../../mod.ts";
import { reading } from "../_pressure_readings.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;
const fakes = <T extends object>(real: T, ctor: { prototype: T }): [string, T][] => [
  ["a Proxy of one", new Proxy(real, {})],
  ["an object from its prototype", Object.create(ctor.prototype)],
];
const refused = (name: string, what: string) => ({
  name: "TypeError",
  message: new RegExp(`'${name}' must (be|hold only) an? ${what}`),
});

test("a monitor that is not a real PressureMonitor is memkit's TypeError, and the cache registers nothing", () => {
  const real = new PressureMonitor({ read: () => reading(PressureLevel.None) });
  for (const [how, fake] of fakes(real, PressureMonitor)) {
    assert.ok(fake instanceof PressureMonitor, how);
    const budget = new MemoryBudget({ physicalBytes: 2000, fractions: { normal: 0.5 }, minimumBytes: 0 });
    assert.throws(
      () => new ResourceCache({ maxBytes: 100, budget, pressure: fake }),
      refused("pressure", "PressureMonitor"),
      how,
    );
    budget.request(1000, "other", BudgetPriority.Low);
    assert.equal(budget.request(10, "ui", BudgetPriority.High), null);
    assert.equal(budget.stats().reclaimCalls, 0, `${how}: the refused cache left no reclaimer behind`);
    assert.throws(
      () => new MemoryBudget({ physicalBytes: 1000, pressure: fake }),
      refused("pressure", "PressureMonitor"),
      how,
    );
    assert.throws(() => respondToPressure(fake, {}), refused("monitor", "PressureMonitor"), how);
  }
});

test("a budget that is not a real MemoryBudget is refused by ResourceCache and respondToPressure", () => {
  const monitor = new PressureMonitor({ read: () => reading(PressureLevel.None) });
  for (const [how, fake] of fakes(new MemoryBudget({ physicalBytes: 1000 }), MemoryBudget)) {
    assert.throws(() => new ResourceCache({ maxBytes: 100, budget: fake }), refused("budget", "MemoryBudget"), how);
    assert.throws(() => respondToPressure(monitor, { budget: fake }), refused("budget", "MemoryBudget"), how);
  }
});

test("respondToPressure refuses proxied caches, frame pools and heaps at call time", () => {
  const monitor = new PressureMonitor({ read: () => reading(PressureLevel.None) });
  using cache = new ResourceCache<string, number>({ maxBytes: 100 });
  using pool = new FramePool();
  using heap = new ResourceHeap({ capacity: 4096 });
  const cases: [string, string, object, { prototype: object }][] = [
    ["caches", "ResourceCache", cache, ResourceCache],
    ["framePools", "FramePool", pool, FramePool],
    ["heaps", "ResourceHeap", heap, ResourceHeap],
  ];
  for (const [key, name, real, ctor] of cases) {
    for (const [how, fake] of fakes(real, ctor)) {
      assert.throws(() => respondToPressure(monitor, any({ [key]: [real, fake] })), {
        name: "TypeError",
        message: new RegExp(`'${key}.1' must hold only ${name} objects`),
      }, `${key}: ${how}`);
    }
    // The real ones are taken.
    respondToPressure(monitor, any({ [key]: [real] })).stop();
  }
});

test("respondToPressure's messages: 'targets' named, 'an array', a target's class named", () => {
  const monitor = new PressureMonitor({ read: () => reading(PressureLevel.None) });
  using cache = new ResourceCache<number, number>({ maxBytes: 10 });
  for (const bad of [null, "x", 5, [cache]]) {
    assert.throws(() => respondToPressure(monitor, any(bad)), {
      name: "TypeError",
      message: /^Cannot respond to pressure as 'targets' must be an object/,
    }, String(bad));
  }
  assert.throws(() => respondToPressure(monitor, any({ caches: new Set([cache]) })), {
    name: "TypeError",
    message: /'caches' must be an array: current value is a Set/,
  });
  assert.throws(() => respondToPressure(monitor, any({ framePools: [cache] })), {
    name: "TypeError",
    message: /'framePools.0' must hold only FramePool objects .*: current value is a ResourceCache$/,
  });
  for (
    const [object, name] of [[cache, "ResourceCache"], [new FramePool(), "FramePool"], [monitor, "PressureMonitor"]]
  ) {
    assert.equal(Object.prototype.toString.call(object), `[object ${name}]`);
  }
});

test("MemoryInterface, GpuContext and GpuBufferPool refuse a monitor or budget that is not a real one", async () => {
  const { MemoryInterface } = await import("../../mod.ts");
  const real = new PressureMonitor({ read: () => reading(PressureLevel.None) });
  for (const [how, fake] of fakes(real, PressureMonitor)) {
    assert.throws(() => new MemoryInterface({ pressure: fake }), refused("pressure", "PressureMonitor"), how);
  }
  const { context, skipGpu } = await import("../gpu/_gpu_context.ts");
  if (skipGpu) return; // (the GPU tests fail in CI when a device should exist and does not)
  const { GpuBufferPool, GpuContext } = await import("../../mod.ts");
  using gpu = context();
  for (const [how, fake] of fakes(real, PressureMonitor)) {
    assert.throws(() => new GpuBufferPool(gpu, { pressure: fake }), refused("pressure", "PressureMonitor"), how);
  }
  const budget = new MemoryBudget({ physicalBytes: 1 << 20, categories: ["gpu"] });
  for (const [how, fake] of fakes(budget, MemoryBudget)) {
    assert.throws(
      () => GpuContext.fromDevice(gpu.device, { budget: fake }),
      refused("budget", "MemoryBudget"),
      how,
    );
  }
});

test("a subclass of the monitor or budget that refuses a registration leaves nothing registered by a failed constructor", async () => {
  class PickyMonitor extends PressureMonitor {
    registered: number[] = [];
    removed: number[] = [];
    override on(level: PressureLevelValue, callback: PressureListener): number {
      if (level === PressureLevel.Critical) throw new Error("no Critical listeners");
      const id = super.on(level, callback);
      this.registered.push(id);
      return id;
    }
    override off(id: number): void {
      this.removed.push(id);
      super.off(id);
    }
  }
  const monitor = new PickyMonitor({ read: () => reading(PressureLevel.None) });
  const budget = new MemoryBudget({ physicalBytes: 2000, fractions: { normal: 0.5 }, minimumBytes: 0 });
  assert.throws(() => new ResourceCache({ maxBytes: 100, budget, pressure: monitor }), /no Critical listeners/);
  assert.deepEqual(monitor.removed, monitor.registered);
  assert.equal(monitor.registered.length, 1);
  budget.request(1000, "default", BudgetPriority.High); // the whole total: a cache left registered is asked
  assert.equal(budget.stats().reclaimCalls, 0);

  const { context, skipGpu } = await import("../gpu/_gpu_context.ts");
  if (skipGpu) return;
  const { GpuBufferPool } = await import("../../mod.ts");
  using gpu = context();
  monitor.registered.length = monitor.removed.length = 0;
  assert.throws(() => new GpuBufferPool(gpu, { pressure: monitor }), /no Critical listeners/);
  assert.deepEqual(monitor.removed, monitor.registered);
  assert.equal(monitor.registered.length, 1);
});
