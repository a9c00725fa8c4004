// The hostile-argument suite (issue 10: "Tests that catch the whole kind"),
// generated from the exports of mod.ts. For every exported function, every
// exported class (its constructor, its static methods, and every method and
// getter of a healthy instance, found through the prototype chain) and the
// objects they hand out (Mapping, Handle, ArenaScope), each argument position
// gets hostile values: typed arrays that lie about their length, Proxies,
// throwing and re-entrant hooks, BigInt, NaN, detached and shrunk views, ...
//
// test/fixtures/hostile_child.ts runs the cases of one group in a child
// process (a crash there fails one group, naming the case that was running)
// and prints one line per case; test/hostile_test.ts judges every line:
//   (a) the child exits normally;
//   (b) the call returns, or throws TypeError, RangeError or AllocationError
//       whose message is memkit's own, not the engine's (ENGINE_MESSAGES);
//   (c) the instance is still usable afterwards (a healthy follow-up works),
//       or, when the call legitimately ended it, the follow-up throws
//       AllocationError("use-after-free").
//
// A new export needs an entry in CLASSES, FUNCTIONS, NAMESPACES or CONSTANTS
// (the suite fails until it has one); its methods are found on their own.
// Methods without an entry in their class's `args` get no healthy arguments
// (positions past the first are then tried with undefined before them).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import * as memkit from "../mod.ts";
import {
  AllocationError,
  Arena,
  BuddyAllocator,
  BudgetPriority,
  DebugAllocator,
  DynamicArray,
  FailingAllocator,
  FramePool,
  FreeListAllocator,
  GpuBufferPool,
  GpuBufferUsage,
  GpuContext,
  GpuStagingRing,
  GpuSuballocator,
  GpuUniformRing,
  initAllocator,
  LockedPageAllocator,
  malloc,
  mapFile,
  mapPages,
  MemoryBudget,
  MemoryInterface,
  MemoryProfiler,
  openSharedMemory,
  PoolAllocator,
  PressureLevel,
  PressureMonitor,
  PsiTrigger,
  PurgeableBuffer,
  readGpuBuffer,
  readMemoryStatus,
  RegionAllocator,
  ResourceCache,
  ResourceHeap,
  respondToPressure,
  SecretAllocator,
  SharedDynamicArray,
  SIMDArray,
  StackAllocator,
  struct,
  SystemAllocator,
  VirtualAllocator,
} from "../mod.ts";
import { testGpu } from "./gpu/_gpu.ts";

// deno-lint-ignore no-explicit-any
type Any = any;
/** Any function or class. */
type Callable = (...args: Any[]) => Any;

// ------------------------------------------------------------------ hostile values

/** Thrown by the hooks of hostile values; seen outside memkit only if memkit ran the hook. */
export class HostileError extends Error {
  constructor(what: string) {
    super(`hostile ${what}`);
    this.name = "HostileError";
  }
}

/** What a hostile value may do to the case's receiver. */
export interface Ctx {
  /** A healthy operation on the receiver (its follow-up), or a healthy call of the function. */
  reenter(): void;
  /** Ends the receiver (dispose, free, unmap); null when the case has nothing to end. */
  end: (() => void) | null;
  reentered: boolean;
  ended: boolean;
}

/** One kind of hostile value. */
export interface Hostile {
  name: string;
  make(ctx: Ctx): unknown;
  /** Part of the representative subset used for later argument positions and option fields. */
  subset?: boolean;
  /**
   * memkit may legitimately run this user code (a Proxy trap, a getter of a
   * plain object, an iterator, a callback), so a HostileError it throws may
   * pass through unchanged. Coercion hooks (valueOf, toString,
   * Symbol.toPrimitive) and own getters of typed arrays must never run.
   */
  mayRun?: boolean;
  /** Only for cases whose receiver can be ended. */
  needsEnd?: boolean;
}

const HUGE = 2 ** 40;

function ownProperty(prop: string, value: unknown, view: ArrayBufferView = new Uint8Array(16)): ArrayBufferView {
  Object.defineProperty(view, prop, { value, configurable: true });
  return view;
}

class LiarLength extends Uint8Array {
  override get length(): number {
    return 1 << 26;
  }
}

class LiarAll extends Uint8Array {
  override get length(): number {
    return 1 << 26;
  }
  override get byteLength(): number {
    return 1 << 26;
  }
  override get byteOffset(): number {
    return HUGE;
  }
  override get buffer(): ArrayBuffer {
    return new ArrayBuffer(8);
  }
}

class LiarFloat32 extends Float32Array {
  override get length(): number {
    return 1 << 26;
  }
  override get byteLength(): number {
    return 1 << 28;
  }
}

function throwingTraps(target: object): object {
  const trap = (name: string) => () => {
    throw new HostileError(`Proxy ${name} trap`);
  };
  return new Proxy(target, {
    get: trap("get"),
    has: trap("has"),
    ownKeys: trap("ownKeys"),
    getOwnPropertyDescriptor: trap("getOwnPropertyDescriptor"),
    getPrototypeOf: trap("getPrototypeOf"),
    set: trap("set"),
    defineProperty: trap("defineProperty"),
    deleteProperty: trap("deleteProperty"),
  });
}

const GETTER_NAMES = [
  "length",
  "byteLength",
  "byteOffset",
  "buffer",
  "size",
  "capacity",
  "alloc",
  "free",
  "resize",
  "kind",
  "then",
  "onAlloc",
  "protection",
  "id",
  "pos",
  "a",
  "b",
];

function throwingGetters(target: object = {}): object {
  for (const name of GETTER_NAMES) {
    Object.defineProperty(target, name, {
      enumerable: true,
      configurable: true,
      get() {
        throw new HostileError(`getter ${name}`);
      },
    });
  }
  return target;
}

function hook<K extends PropertyKey>(key: K, body: () => unknown): Record<K, () => unknown> {
  return { [key]: body } as Record<K, () => unknown>;
}

function resizableView(tracking: boolean): Uint8Array {
  const buffer = new ArrayBuffer(64, { maxByteLength: 128 });
  const view = tracking ? new Uint8Array(buffer, 16) : new Uint8Array(buffer, 16, 32);
  buffer.resize(8); // now out of bounds: its real length is 0
  return view;
}

function freedNativeView(): Uint8Array {
  const system = new SystemAllocator();
  const view = system.alloc(64);
  system.free(view); // detached, over memory given back to libc
  return view;
}

// An allocator written by a user, which lies about what it hands out.
function lyingAllocator(): object {
  const liar = () => ownProperty("byteLength", HUGE, ownProperty("length", HUGE, new Uint8Array(64))) as Uint8Array;
  return {
    kind: "system",
    alloc: liar,
    tryAlloc: liar,
    array: () => new Float32Array(4),
    free() {},
    resize: liar,
    owns: () => true,
    stats: () => ({}),
  };
}

function disposedAllocator(): object {
  const allocator = new FreeListAllocator({ capacity: 4096 });
  allocator.dispose();
  return allocator;
}

function endArguments(...args: unknown[]): void {
  for (const arg of args) {
    const target = arg as Record<string, unknown> | null;
    if (target === null || typeof target !== "object") continue;
    for (const method of ["dispose", "unmap", "close", "deinit"]) {
      if (typeof target[method] === "function") {
        (target[method] as () => void)();
        break;
      }
    }
  }
}

/** Every hostile value; all of them go to the first argument of everything. */
export const HOSTILE: readonly Hostile[] = [
  { name: "typed array with own length 2^40", subset: true, make: () => ownProperty("length", HUGE) },
  { name: "typed array with own byteLength 2^40", subset: true, make: () => ownProperty("byteLength", HUGE) },
  { name: "typed array with own byteOffset 2^40", make: () => ownProperty("byteOffset", HUGE) },
  {
    name: "typed array with own buffer of 1 MiB",
    make: () => ownProperty("buffer", new ArrayBuffer(1 << 20)),
  },
  {
    name: "DataView with own byteLength 2^40",
    make: () => ownProperty("byteLength", HUGE, new DataView(new ArrayBuffer(16))),
  },
  { name: "Uint8Array subclass whose length getter lies", subset: true, make: () => new LiarLength(16) },
  { name: "Uint8Array subclass whose length/byteLength/byteOffset/buffer lie", make: () => new LiarAll(16) },
  { name: "Float32Array subclass whose length/byteLength lie", subset: true, make: () => new LiarFloat32(4) },
  {
    name: "typed array with throwing own getters",
    make: () => {
      const view = new Uint8Array(16);
      for (const name of ["length", "byteLength", "byteOffset", "buffer", "constructor"]) {
        Object.defineProperty(view, name, {
          get() {
            throw new HostileError(`typed array own getter ${name}`);
          },
        });
      }
      return view;
    },
  },
  {
    name: "Proxy around a Uint8Array (lying length)",
    subset: true,
    mayRun: true,
    make: () =>
      new Proxy(new Uint8Array(16), {
        get: (t, k) => (k === "length" || k === "byteLength" ? HUGE : Reflect.get(t, k)),
      }),
  },
  {
    name: "Proxy around a Float32Array (throwing traps)",
    mayRun: true,
    make: () => throwingTraps(new Float32Array(4)),
  },
  {
    name: "Proxy around a plain object (every property 2^40)",
    mayRun: true,
    make: () => new Proxy({}, { get: (_, k) => (typeof k === "symbol" ? undefined : HUGE) }),
  },
  { name: "Proxy around a plain object (throwing traps)", subset: true, mayRun: true, make: () => throwingTraps({}) },
  { name: "object with throwing getters", subset: true, mayRun: true, make: () => throwingGetters() },
  {
    name: "valueOf throws",
    subset: true,
    make: () =>
      hook("valueOf", () => {
        throw new HostileError("valueOf");
      }),
  },
  {
    name: "toString throws",
    make: () =>
      hook("toString", () => {
        throw new HostileError("toString");
      }),
  },
  {
    name: "Symbol.toPrimitive throws",
    make: () =>
      hook(Symbol.toPrimitive, () => {
        throw new HostileError("Symbol.toPrimitive");
      }),
  },
  {
    name: "valueOf re-enters the receiver",
    subset: true,
    make: (ctx) =>
      hook("valueOf", () => {
        ctx.reenter();
        return 64;
      }),
  },
  {
    name: "toString re-enters the receiver",
    make: (ctx) =>
      hook("toString", () => {
        ctx.reenter();
        return "read-write";
      }),
  },
  {
    name: "Symbol.toPrimitive ends the receiver",
    needsEnd: true,
    make: (ctx) =>
      hook(Symbol.toPrimitive, () => {
        ctx.end!();
        return 64;
      }),
  },
  { name: "BigInt 64n", subset: true, make: () => 64n },
  { name: "-0", make: () => -0 },
  { name: "NaN", subset: true, make: () => NaN },
  { name: "Infinity", make: () => Infinity },
  { name: "-Infinity", make: () => -Infinity },
  { name: "2^53", subset: true, make: () => 2 ** 53 },
  { name: "2^64", make: () => 2 ** 64 },
  { name: "1e308", make: () => 1e308 },
  { name: "-1", subset: true, make: () => -1 },
  { name: "-2^53", make: () => -(2 ** 53) },
  { name: "0.5", make: () => 0.5 },
  { name: 'string "64"', subset: true, make: () => "64" },
  { name: "empty string", make: () => "" },
  { name: "string with NUL", make: () => "a\0b" },
  { name: "null", subset: true, make: () => null },
  { name: "undefined", subset: true, make: () => undefined },
  { name: "symbol", subset: true, make: () => Symbol("hostile") },
  { name: "true", make: () => true },
  {
    name: "detached view (buffer.transfer(0))",
    subset: true,
    make: () => {
      const view = new Uint8Array(64);
      view.buffer.transfer(0);
      return view;
    },
  },
  { name: "freed native view (memkit SystemAllocator)", make: freedNativeView },
  { name: "view over a resizable ArrayBuffer shrunk after the view", subset: true, make: () => resizableView(false) },
  { name: "length-tracking view over a shrunk resizable ArrayBuffer", make: () => resizableView(true) },
  { name: "view over a SharedArrayBuffer", subset: true, make: () => new Uint8Array(new SharedArrayBuffer(64)) },
  {
    name: "view over a growable SharedArrayBuffer",
    make: () => new Float32Array(new SharedArrayBuffer(64, { maxByteLength: 128 })),
  },
  { name: "empty Uint8Array", make: () => new Uint8Array(0) },
  { name: "BigInt64Array", make: () => new BigInt64Array(4) },
  { name: "frozen empty object", subset: true, make: () => Object.freeze({}) },
  { name: "frozen array [64, 16]", make: () => Object.freeze([64, 16]) },
  { name: "array with holes [64, , 16]", subset: true, make: () => [64, , 16] },
  {
    name: "sparse array of length 2^32 - 1",
    make: () => {
      const array: number[] = [];
      array.length = 2 ** 32 - 1;
      return array;
    },
  },
  { name: "array-like { length: 2^40 }", make: () => ({ length: HUGE, 0: 1 }) },
  { name: "object with a null prototype", make: () => Object.create(null) },
  {
    name: "function that throws",
    subset: true,
    mayRun: true,
    make: () => () => {
      throw new HostileError("function");
    },
  },
  {
    name: "function that re-enters the receiver",
    mayRun: true,
    make: (ctx) => () => ctx.reenter(),
  },
  {
    name: "function that ends the receiver",
    mayRun: true,
    needsEnd: true,
    make: (ctx) => () => ctx.end!(),
  },
  { name: "function that disposes its arguments", mayRun: true, make: () => endArguments },
  {
    name: "iterable whose iterator throws",
    mayRun: true,
    make: () => ({
      [Symbol.iterator]() {
        throw new HostileError("iterator");
      },
    }),
  },
  { name: "allocator whose blocks lie about their length", make: lyingAllocator },
  { name: "disposed FreeListAllocator", make: disposedAllocator },
];

/** The representative subset for positions after the first and for option fields. */
export const SUBSET: readonly Hostile[] = HOSTILE.filter((h) => h.subset);

// ------------------------------------------------------------------ tables

/** Something whose members get hostile arguments: an instance of a class, or an object one hands out. */
export interface SubjectSpec<T = Any> {
  /** A healthy instance (register extra cleanup with `later`). */
  make(): T;
  /** A healthy follow-up operation; throws unless the instance is usable. */
  check(x: T): void;
  /** Members that legitimately end the instance when they return (named as in case names). */
  ends?: string[];
  /** Ends it from inside a hostile hook (without it, hostile values that end the receiver do not apply). */
  end?(x: T): void;
  /** Healthy arguments per member. */
  args?: Record<string, (x: T) => unknown[]>;
  /** Releases it after a case (default: `[Symbol.dispose]` when it has one). */
  cleanup?(x: T): void;
}

/** An exported class: how to construct a healthy instance, and that instance as a subject. */
export interface ClassSpec<T = Any> extends SubjectSpec<T> {
  /** The documented constructor arguments of a healthy instance. */
  ctorArgs(): unknown[];
  /** The constructor is private in TypeScript (instances come from a static factory). */
  privateConstructor?: string;
}

/** An exported function (or a static method, or a namespace member). */
export interface FunctionSpec {
  /** Healthy arguments. */
  args(): unknown[];
  /** A healthy follow-up (default: a call with `args()`, its result released). */
  check?(): void;
  /** Releases what a call returned (default: unsubscribe functions are called, disposables disposed). */
  cleanup?(result: unknown): void;
  /** Runs before each case (process-wide state). */
  before?(): void;
}

const cleanups: (() => void)[] = [];
/** Registers cleanup for the current case (a backing or another array made for it). */
function later(f: () => void): void {
  cleanups.push(f);
}

function expect(condition: boolean, what: string): void {
  if (!condition) throw new Error(`follow-up check failed: ${what}`);
}

const Rec = struct({ id: "u32", pos: "f32x3" });
const rec = () => ({ id: 1, pos: [1, 2, 3] });

function allocatorSubject<T extends memkit.Allocator & { dispose(): void }>(
  make: () => T,
  ctorArgs: () => unknown[],
  extra: Record<string, (x: T) => unknown[]> = {},
  ends: string[] = [],
): ClassSpec<T> {
  return {
    ctorArgs,
    make,
    check(x) {
      const view = x.alloc(64);
      expect(view.length === 64, `alloc(64) gave ${view.length} bytes`);
      view[63] = 1;
      x.free(view);
    },
    ends: ["dispose", "[Symbol.dispose]", ...ends],
    end: (x) => x.dispose(),
    args: {
      alloc: () => [64, 16],
      tryAlloc: () => [64, 16],
      array: () => [Float32Array, 4, 16],
      free: (x) => [x.alloc(64)],
      resize: (x) => [x.alloc(64), 32],
      owns: (x) => [x.alloc(64)],
      ...extra,
    },
    cleanup: (x) => x.dispose(),
  };
}

function arraySubject<T extends DynamicArray<Any>>(
  make: () => T,
  ctorArgs: () => unknown[],
  value: () => unknown,
  extra: Record<string, (x: T) => unknown[]> = {},
): ClassSpec<T> {
  const filled = (x: T) => {
    x.push(value());
    return x;
  };
  return {
    ctorArgs,
    make,
    check(x) {
      const length = x.push(value());
      expect(length === x.length && length > 0, `push returned ${length}`);
      expect(JSON.stringify(x.get(length - 1)) === JSON.stringify(value()), "get(length - 1) reads the value pushed");
      x.pop();
    },
    ends: ["free", "[Symbol.dispose]"],
    end: (x) => x.free(),
    args: {
      view: () => [Float32Array],
      push: () => [value()],
      pushMany: () => [[value(), value()]],
      get: (x) => [filled(x).length - 1],
      set: (x) => [filled(x).length - 1, value()],
      remove: (x) => [filled(x).length - 1],
      swapRemove: (x) => [filled(x).length - 1],
      reserve: () => [16],
      ...extra,
    },
    cleanup: (x) => x.free(),
  };
}

function simdOther(): SIMDArray {
  const other = new SIMDArray("f32x3");
  other.pushMany([[1, 2, 3], [4, 5, 6]]);
  later(() => other.free());
  return other;
}

let tmpDir: string | null = null;
/** A small file for mapFile (removed by `removeTempFiles`). */
export function tempFile(): string {
  tmpDir ??= mkdtempSync(`${tmpdir()}/memkit-hostile-`);
  const path = `${tmpDir}/data.bin`;
  writeFileSync(path, new Uint8Array(8192).fill(7));
  return path;
}

export function removeTempFiles(): void {
  if (tmpDir !== null) rmSync(tmpDir, { recursive: true, force: true });
  tmpDir = null;
}

/** A fresh name for openSharedMemory (each case creates its own object and unlinks it). */
function sharedName(): string {
  return `mk-hostile-${crypto.randomUUID().slice(0, 12)}`;
}

function mappingSubject(make: () => memkit.Mapping): SubjectSpec<memkit.Mapping> {
  return {
    make,
    check(x) {
      expect(x.read(0, 1).length === 1, "read(0, 1) gives one byte");
      if (x.protection === "read-write") {
        x.bytes[0] = 9;
        expect(x.read(0, 1)[0] === 9, "a store through bytes is read back");
      }
    },
    ends: ["unmap", "[Symbol.dispose]"],
    end: (x) => x.unmap(),
    args: {
      view: () => [0, 16],
      read: () => [0, 16],
      protect: () => ["read-write"],
      advise: () => ["normal"],
    },
    cleanup: (x) => x.unmap(),
  };
}

// ---- budgets, caches and reclaimable memory

const tokenBudget = new WeakMap<memkit.BudgetToken, MemoryBudget>();

function budgetOptions(): memkit.MemoryBudgetOptions {
  return {
    physicalBytes: 1 << 20,
    fractions: { normal: 1, warning: 1 / 2, critical: 1 / 4 },
    categories: ["ui", "cache"],
  };
}

/** A token of 64 bytes in "ui" from a budget of its own (the follow-up compares the budget's count). */
function budgetToken(): memkit.BudgetToken {
  const budget = new MemoryBudget(budgetOptions());
  const token = budget.request(64, "ui", BudgetPriority.High)!;
  tokenBudget.set(token, budget);
  return token;
}

const frameFormat = (): memkit.FrameFormat => ({ width: 16, height: 4, bytesPerPixel: 4 });

/** A frame pool for a derived subject (disposed after the case). */
function framePool(): FramePool {
  const pool = new FramePool({ maxFrames: 9 });
  later(() => pool.dispose());
  return pool;
}

function resourceHeap(): ResourceHeap {
  const heap = new ResourceHeap({ capacity: 1 << 16 });
  later(() => heap.dispose());
  return heap;
}

/** What respondToPressure acts on, released after the case (the monitor is never started). */
function pressureTargets(): [PressureMonitor, memkit.PressureTargets] {
  const monitor = new PressureMonitor({ intervalMs: 1000 });
  const budget = new MemoryBudget(budgetOptions());
  const cache = new ResourceCache<string, number>({ maxBytes: 4096, budget, category: "cache" });
  cache.set("a", 1, { size: 64 });
  const pool = new FramePool();
  const heap = new ResourceHeap({ capacity: 1 << 16 });
  later(() => {
    monitor.stop();
    cache.dispose();
    pool.dispose();
    heap.dispose();
  });
  return [monitor, { budget, caches: [cache], framePools: [pool], heaps: [heap], gc: false, thermal: false }];
}

// ---- GPU

/** Groups whose cases need a GPU device: the child opens one (test/gpu/_gpu.ts) before planning them. */
export const GPU_GROUPS: readonly string[] = [
  "requestGpu",
  "GpuContext",
  "createGpuBufferFrom",
  "writeGpuBuffer",
  "readGpuBuffer",
  "GpuBufferPool",
  "GpuStagingRing",
  "GpuSuballocator",
  "GpuUniformRing",
];

let gpuDevice: GPUDevice | null = null;
let noGpu = "no GPU device was opened for this group";

/** Opens the child's shared device; without one the GPU cases are skipped as unavailable (a failure with MEMKIT_REQUIRE_GPU=1). */
async function openGpu(): Promise<void> {
  const result = await testGpu();
  if (result.gpu !== null) gpuDevice = result.gpu.device;
  else noGpu = result.reason;
}

/** A context over the child's device, disposed (with its buffers, never the device) after the case. */
function gpuContext(): GpuContext {
  if (gpuDevice === null) throw new AllocationError("unsupported", `no GPU device here: ${noGpu}`);
  const gpu = GpuContext.fromDevice(gpuDevice, { label: "hostile" });
  later(() => gpu.dispose());
  return gpu;
}

const stagingTarget = new WeakMap<GpuStagingRing, GPUBuffer>();

const COPY_BOTH = GpuBufferUsage.STORAGE | GpuBufferUsage.COPY_DST | GpuBufferUsage.COPY_SRC;

/** A buffer of 64 bytes that can be written and read back, in a fresh context. */
function gpuBuffer(gpu: GpuContext = gpuContext()): GPUBuffer {
  return gpu.createBuffer({ size: 64, usage: COPY_BOTH, label: "hostile" });
}

/**
 * A healthy read as a follow-up: the checks before the first await are synchronous; a later rejection
 * (none is expected) is reported as an error outside the call, like an unhandled one. Its context
 * lives until the read settles.
 */
function readBackFollowUp(): void {
  if (gpuDevice === null) throw new AllocationError("unsupported", `no GPU device here: ${noGpu}`);
  const gpu = GpuContext.fromDevice(gpuDevice, { label: "hostile read" });
  readGpuBuffer(gpu, gpuBuffer(gpu), new Float32Array(16))
    .catch((error) => asyncErrors.push(error))
    .finally(() => gpu.dispose());
}

/** Every exported class: how to construct a healthy instance, its follow-up, what ends it. */
export const CLASSES: Record<string, ClassSpec> = {
  AllocationError: {
    ctorArgs: () => ["leak", "a hostile test", { call: "malloc", errno: 12 }],
    make: () => new AllocationError("leak", "a hostile test", { call: "malloc", errno: 12 }),
    check: (x: AllocationError) => expect(x.category === "leak" && String(x).includes("hostile"), "category, message"),
  },
  SystemAllocator: allocatorSubject(() => new SystemAllocator({ zero: true }), () => [{ zero: true }]),
  Arena: allocatorSubject(() => new Arena({ capacity: 65536 }), () => [{ capacity: 65536 }], {
    clone: () => [new Float32Array(4)],
    reset: () => ["free-all"],
    observe: () => [{ onAlloc() {}, onFree() {}, onScopeEnter() {}, onScopeExit() {} }],
  }),
  StackAllocator: allocatorSubject(() => new StackAllocator({ capacity: 65536 }), () => [{ capacity: 65536 }], {
    rewind: (x) => [x.mark()],
  }),
  PoolAllocator: allocatorSubject(
    () => new PoolAllocator({ blockSize: 64, maxBlocks: 1024 }),
    () => [{ blockSize: 64, maxBlocks: 1024 }],
  ),
  BuddyAllocator: allocatorSubject(() => new BuddyAllocator({ capacity: 65536 }), () => [{ capacity: 65536 }]),
  FreeListAllocator: allocatorSubject(() => new FreeListAllocator({ capacity: 65536 }), () => [{ capacity: 65536 }], {
    handle: () => [64],
    defragment: () => [() => {}],
  }),
  DebugAllocator: allocatorSubject(
    () => new DebugAllocator(new SystemAllocator(), { poison: true }),
    () => [new SystemAllocator(), { poison: true }],
    {},
    ["deinit"],
  ),
  FailingAllocator: allocatorSubject(
    () => new FailingAllocator(new SystemAllocator(), { failAfter: 1e9 }),
    () => [new SystemAllocator(), { failAfter: 1e9 }],
  ),
  LockedPageAllocator: allocatorSubject(() => new LockedPageAllocator({ zero: true }), () => [{ zero: true }]),
  SecretAllocator: allocatorSubject(() => new SecretAllocator(), () => []),
  DynamicArray: arraySubject(() => new DynamicArray(Rec, { capacity: 4 }), () => [Rec, { capacity: 4 }], rec),
  SIMDArray: arraySubject(
    () => {
      const x = new SIMDArray("f32x3", { capacity: 4 });
      x.pushMany([[1, 2, 3], [4, 5, 6]]);
      return x;
    },
    () => ["f32x3", { capacity: 4 }],
    () => [1, 2, 3],
    {
      scale: () => [2],
      add: () => [simdOther()],
      sub: () => [simdOther()],
      axpy: () => [2, simdOther()],
      magnitudes: (x) => [new Float32Array(x.length)],
      dot: (x) => [simdOther(), new Float32Array(x.length)],
    },
  ),
  SharedDynamicArray: {
    ctorArgs: () => [Rec, { maxCapacity: 64 }],
    make: () => new SharedDynamicArray(Rec, { maxCapacity: 64 }),
    check(x: SharedDynamicArray<Any>) {
      const length = x.push(rec());
      expect(JSON.stringify(x.get(length - 1)) === JSON.stringify(rec()), "get(length - 1) reads the value pushed");
      x.pop();
    },
    args: {
      push: () => [rec()],
      pushMany: () => [[rec(), rec()]],
      set: (x) => [x.push(rec()) - 1, rec()],
      get: (x) => [x.push(rec()) - 1],
    },
  },
  PressureMonitor: {
    ctorArgs: () => [{ intervalMs: 1000, hysteresis: 2 }],
    make: () => new PressureMonitor({ intervalMs: 1000, hysteresis: 2 }),
    check(x: PressureMonitor) {
      const level = x.refresh();
      expect(level === x.level && level >= 0 && level <= 4, `refresh() gave ${level}`);
    },
    args: { on: () => [1, () => {}], off: () => [1] },
    cleanup: (x: PressureMonitor) => x.stop(),
  },
  MemoryInterface: {
    ctorArgs: () => [{ budgets: { pool: 1 << 20, temporary: 1 << 20 }, pressure: false }],
    make: () => new MemoryInterface({ budgets: { pool: 1 << 20, temporary: 1 << 20 }, pressure: false }),
    check(x: MemoryInterface) {
      const a = x.allocateTyped(64, "pool");
      expect(a.bytes.length === 64 && x.isValidPointer(a.address), "allocateTyped(64, 'pool') gives a valid block");
      a.bytes[63] = 1;
      x.deallocate(a);
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: MemoryInterface) => x.dispose(),
    args: {
      allocate: () => [{ size: 64, type: "pool", alignment: 16, flags: ["zero"], allowFallback: true }],
      allocateAsync: () => [{ size: 64, type: "temporary", flags: ["cacheable"], timeoutMs: 10 }],
      allocateTyped: () => [64, "pool", 16, ["zero"]],
      deallocate: (x: MemoryInterface) => [x.allocateTyped(64, "pool")],
      getMemoryStats: () => ["pool"],
      registerPressureCallback: () => [2, () => {}],
      unregisterPressureCallback: () => [1],
      getAllocator: () => ["pool"],
      defragment: () => [() => {}],
      defragmentAllocator: () => ["free-list"],
      isValidPointer: (x: MemoryInterface) => [x.allocateTyped(64, "pool").bytes],
      getAllocationInfo: (x: MemoryInterface) => [x.allocateTyped(64, "pool").address],
    },
    cleanup: (x: MemoryInterface) => x.dispose(),
  },
  RegionAllocator: {
    ctorArgs: () => [{ capacity: 65536 }],
    make: () => new RegionAllocator({ capacity: 65536 }),
    check(x: RegionAllocator) {
      const samples = x.allocateAudioData(16);
      samples[15] = 1;
      expect(samples.length === 16, "allocateAudioData(16) gives 16 samples");
      x.deallocate(samples);
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: RegionAllocator) => x.dispose(),
    args: {
      region: () => ["vertex"],
      allocateVertexData: () => [4, Rec],
      allocateUniformData: () => [4, Rec],
      allocateAudioData: () => [16],
      allocateAlignedBuffer: () => [4, 64, "f32"],
      deallocate: (x: RegionAllocator) => [x.allocateAudioData(16)],
    },
    cleanup: (x: RegionAllocator) => x.dispose(),
  },
  MemoryProfiler: {
    ctorArgs: () => [{ intervalMs: 1000, sources: { pool: new PoolAllocator({ blockSize: 64 }) }, history: 16 }],
    make: () => new MemoryProfiler({ intervalMs: 1000, sources: { global: "global" }, history: 16 }),
    check(x: MemoryProfiler) {
      const snapshot = x.capture();
      expect(snapshot.totalAllocated >= 0 && x.snapshots.length > 0, "capture() records a snapshot");
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: MemoryProfiler) => x.dispose(),
    args: {
      capture: () => [{ gc: false }],
      leakSuspicion: () => [{ window: 3 }],
      report: () => [tempFile().replace(/data\.bin$/, "report.html")],
    },
    cleanup: (x: MemoryProfiler) => x.dispose(),
  },
  PsiTrigger: {
    privateConstructor: "PsiTrigger.open()",
    ctorArgs: () => [-1, "/proc/pressure/memory"],
    make: () => PsiTrigger.open(),
    check: (x: PsiTrigger) => expect(typeof x.fired() === "boolean", "fired() gives a boolean"),
    ends: ["close", "[Symbol.dispose]"],
    end: (x: PsiTrigger) => x.close(),
    args: { wait: () => [0] },
    cleanup: (x: PsiTrigger) => x.close(),
  },
  MemoryBudget: {
    ctorArgs: () => [budgetOptions()],
    make: () => new MemoryBudget(budgetOptions()),
    check(x: MemoryBudget) {
      const used = x.usedBytes;
      const token = x.request(64, "ui", BudgetPriority.Critical);
      expect(token !== null && x.usedBytes === used + 64, "request(64, 'ui') is granted and counted");
      token!.release();
      expect(x.usedBytes === used, "release() gives the 64 bytes back");
    },
    args: {
      request: () => [64, "ui", BudgetPriority.Normal],
      accepts: () => ["ui"],
      addReclaimer: () => [() => 0, { priority: BudgetPriority.Low }],
      adaptToPressure: () => [PressureLevel.Medium],
      adaptToThermalState: () => ["fair"],
    },
  },
  BudgetToken: {
    privateConstructor: "MemoryBudget.prototype.request",
    ctorArgs: () => [64, "ui", BudgetPriority.Normal, () => {}],
    make: budgetToken,
    check(x: memkit.BudgetToken) {
      const budget = tokenBudget.get(x)!;
      expect(
        x.size === 64 && x.category === "ui" && budget.usedBytes === (x.released ? 0 : 64),
        "size, category, and the budget's count",
      );
    },
  },
  ResourceCache: {
    ctorArgs: () => [{ maxBytes: 4096, budget: new MemoryBudget(budgetOptions()), category: "cache", dispose() {} }],
    make() {
      const cache = new ResourceCache<string, unknown>({ maxBytes: 4096 });
      cache.set("a", new Uint8Array(8), { size: 64, cost: 2 });
      return cache;
    },
    check(x: ResourceCache<string, unknown>) {
      expect(x.set("check", 1, { size: 64 }) && x.get("check") === 1, "set('check') then get('check')");
      expect(x.delete("check") && x.bytes <= x.maxBytes, "delete('check'), bytes within maxBytes");
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: ResourceCache<string, unknown>) => x.dispose(),
    args: {
      get: () => ["a"],
      has: () => ["a"],
      set: () => ["b", 2, { size: 64, cost: 1 }],
      delete: () => ["a"],
      trim: () => [0.5],
      prefetch: () => [[{ key: "p", probability: 0.9 }], (key: string) => ({ value: key, size: 64 })],
    },
    cleanup: (x: ResourceCache<string, unknown>) => x.dispose(),
  },
  PurgeableBuffer: {
    ctorArgs: () => [4096, { restore: (bytes: Uint8Array) => bytes.fill(1) }],
    make: () => new PurgeableBuffer(4096, { restore: (bytes) => bytes.fill(1) }),
    check(x: PurgeableBuffer) {
      if (x.volatile) x.makeNonVolatile();
      x.bytes[4095] = 3;
      expect(x.bytes.length === 4096 && x.bytes[4095] === 3, "bytes (non-volatile) are read back");
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: PurgeableBuffer) => x.dispose(),
    cleanup: (x: PurgeableBuffer) => x.dispose(),
  },
  FramePool: {
    ctorArgs: () => [{ maxFrames: 9, maxBytes: 1 << 20 }],
    make: () => new FramePool({ maxFrames: 9, maxBytes: 1 << 20 }),
    check(x: FramePool) {
      const set = x.acquireFrameSet(frameFormat());
      expect(set !== null && set.next.bytes.length >= 256, "acquireFrameSet gives three frames");
      set!.next.bytes[0] = 1;
      set!.release();
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: FramePool) => x.dispose(),
    args: {
      acquireFrameSet: () => [frameFormat()],
      release: (x: FramePool) => [x.acquireFrameSet(frameFormat())],
      adaptToPressure: () => [PressureLevel.High],
    },
    cleanup: (x: FramePool) => x.dispose(),
  },
  ResourceHeap: {
    ctorArgs: () => [{ capacity: 1 << 16 }],
    make() {
      const heap = new ResourceHeap({ capacity: 1 << 16 });
      heap.allocate(256, { aliasable: true, name: "kept" })!.bytes.fill(7);
      return heap;
    },
    check(x: ResourceHeap) {
      const resource = x.allocate(64, { alignment: 16, name: "check" });
      expect(resource !== null && resource.bytes.length === 64, "allocate(64) gives 64 bytes");
      resource!.bytes[63] = 1;
      resource!.release();
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: ResourceHeap) => x.dispose(),
    args: {
      allocate: () => [64, { alignment: 16, aliasable: true, name: "r" }],
      maxAvailableSize: () => [16],
      alias: (x: ResourceHeap) => [x.allocate(128, { aliasable: true })!, x.allocate(64)!],
      free: (x: ResourceHeap) => [x.allocate(64)!],
    },
    cleanup: (x: ResourceHeap) => x.dispose(),
  },
  VirtualAllocator: {
    ctorArgs: () => [{ capacity: 1 << 16, strategy: "tlsf" }],
    make() {
      const range = new VirtualAllocator({ capacity: 1 << 16, strategy: "tlsf" });
      range.allocate(256, 256);
      return range;
    },
    check(x: VirtualAllocator) {
      const block = x.allocate(64, 16);
      expect(block !== null && block.size === 64 && block.offset % 16 === 0 && x.owns(block), "allocate(64, 16)");
      x.free(block!);
    },
    args: {
      allocate: () => [64, 16],
      free: (x: VirtualAllocator) => [x.allocate(64)!],
      owns: (x: VirtualAllocator) => [x.allocate(64)!],
    },
  },
  GpuContext: {
    privateConstructor: "GpuContext.fromDevice() or requestGpu()",
    ctorArgs: () => [gpuContext().device, null, { label: "hostile" }, false],
    make: gpuContext,
    check(x: GpuContext) {
      const buffer = gpuBuffer(x);
      expect(x.owns(buffer) && x.sizeOf(buffer) === 64, "createBuffer(64) is owned and sized");
      x.destroyBuffer(buffer);
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: GpuContext) => x.dispose(),
    args: {
      createBuffer: () => [{ size: 64, usage: COPY_BOTH, label: "hostile", mappedAtCreation: false }],
      destroyBuffer: (x: GpuContext) => [gpuBuffer(x)],
      owns: (x: GpuContext) => [gpuBuffer(x)],
      sizeOf: (x: GpuContext) => [gpuBuffer(x)],
      onLost: () => [() => {}],
      checkAlive: () => ["check"],
      bufferRecord: (x: GpuContext) => [gpuBuffer(x), GpuBufferUsage.COPY_DST, "COPY_DST", "check"],
    },
    cleanup: (x: GpuContext) => x.dispose(),
  },
  GpuBufferPool: {
    ctorArgs: () => [gpuContext(), { maxIdleBytes: 1 << 20, label: "hostile" }],
    make: () => new GpuBufferPool(gpuContext(), { maxIdleBytes: 1 << 20 }),
    check(x: GpuBufferPool) {
      const buffer = x.acquire(64, COPY_BOTH);
      expect(buffer.size >= 64, "acquire(64) gives a buffer of at least 64 bytes");
      x.release(buffer);
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: GpuBufferPool) => x.dispose(),
    args: {
      acquire: () => [64, COPY_BOTH],
      release: (x: GpuBufferPool) => [x.acquire(64, COPY_BOTH)],
      trim: () => [0],
    },
    cleanup: (x: GpuBufferPool) => x.dispose(),
  },
  GpuStagingRing: {
    ctorArgs: () => [gpuContext(), { chunkBytes: 4096 }],
    make() {
      const gpu = gpuContext();
      const ring = new GpuStagingRing(gpu, { chunkBytes: 4096 });
      stagingTarget.set(ring, gpuBuffer(gpu));
      return ring;
    },
    check(x: GpuStagingRing) {
      x.upload(stagingTarget.get(x)!, 0, new Float32Array(16));
      x.flush();
      expect(x.stats().uploadedBytes >= 64, "upload(64 bytes) and flush()");
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: GpuStagingRing) => x.dispose(),
    args: {
      upload: (x: GpuStagingRing) => [stagingTarget.get(x)!, 0, new Float32Array(16)],
    },
    cleanup: (x: GpuStagingRing) => x.dispose(),
  },
  GpuSuballocator: {
    ctorArgs: () => [gpuContext(), { usage: COPY_BOTH, blockBytes: 1 << 16, alignment: 256, strategy: "tlsf" }],
    make: () => new GpuSuballocator(gpuContext(), { usage: COPY_BOTH, blockBytes: 1 << 16 }),
    check(x: GpuSuballocator) {
      const slice = x.allocate(64, 256);
      expect(slice.size === 64 && slice.offset % 256 === 0, "allocate(64, 256)");
      x.free(slice);
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: GpuSuballocator) => x.dispose(),
    args: {
      allocate: () => [64, 256],
      free: (x: GpuSuballocator) => [x.allocate(64)],
    },
    cleanup: (x: GpuSuballocator) => x.dispose(),
  },
  GpuUniformRing: {
    ctorArgs: () => [gpuContext(), { capacity: 4096, label: "hostile" }],
    make: () => new GpuUniformRing(gpuContext(), { capacity: 4096 }),
    check(x: GpuUniformRing) {
      if (x.used >= 4096 - 256) x.reset();
      const offset = x.push(new Float32Array(16));
      expect(offset % 256 === 0 && x.offsetOf(offset, 0) === offset, "push(64 bytes) at a multiple of 256");
    },
    ends: ["dispose", "[Symbol.dispose]"],
    end: (x: GpuUniformRing) => x.dispose(),
    args: {
      push: () => [new Float32Array(16)],
      offsetOf: () => [0, 0],
    },
    cleanup: (x: GpuUniformRing) => x.dispose(),
  },
};

/** Objects the exports hand out, tested with the export that makes them. */
export const DERIVED: Record<string, Record<string, SubjectSpec>> = {
  FreeListAllocator: {
    Handle: {
      make() {
        const heap = new FreeListAllocator({ capacity: 65536 });
        later(() => heap.dispose());
        const hole = heap.handle(32);
        const handle = heap.handle(64);
        hole.free(); // a hole below it, so defragment() moves it
        return handle;
      },
      check(x: memkit.Handle) {
        x.bytes[0] = 5;
        expect(x.bytes[0] === 5 && x.size === 64 && !x.freed, "bytes, size, freed");
      },
      ends: ["free"],
      end: (x: memkit.Handle) => x.free(),
      cleanup() {},
    },
  },
  Arena: {
    ArenaScope: {
      make() {
        const arena = new Arena({ capacity: 65536 });
        later(() => arena.dispose());
        const scope = arena.scope();
        arena.alloc(64);
        return scope;
      },
      check: (x: memkit.ArenaScope) => expect(x.stats().allocations >= 0, "stats()"),
    },
  },
  MemoryInterface: {
    MemoryAllocation: {
      make() {
        const memory = new MemoryInterface({ pressure: false });
        later(() => memory.dispose());
        return memory.allocateTyped(64, "pool");
      },
      check(x: memkit.MemoryAllocation) {
        x.bytes[0] = 5;
        expect(x.bytes[0] === 5 && x.size === 64 && x.address % 64 === 0, "bytes, size, address");
      },
      cleanup() {},
    },
  },
  ResourceHeap: {
    HeapResource: {
      make: () => resourceHeap().allocate(256, { aliasable: true, name: "derived" })!,
      check(x: memkit.HeapResource) {
        x.bytes[255] = 5;
        expect(x.bytes[255] === 5 && x.size === 256 && x.state === "live", "bytes, size, state");
      },
      ends: ["release", "[Symbol.dispose]"],
      end: (x: memkit.HeapResource) => x.release(),
      cleanup() {},
    },
  },
  FramePool: {
    FrameSet: {
      make: () => framePool().acquireFrameSet(frameFormat())!,
      check(x: memkit.FrameSet) {
        x.next.bytes[0] = 5;
        expect(x.next.bytes[0] === 5 && x.frames.length === 3, "next.bytes, frames");
      },
      ends: ["release", "[Symbol.dispose]"],
      end: (x: memkit.FrameSet) => x.release(),
      cleanup() {},
    },
    Frame: {
      make: () => framePool().acquireFrameSet(frameFormat())!.current,
      check(x: memkit.Frame) {
        x.row(3)[0] = 5;
        expect(x.row(3)[0] === 5 && x.plane(0).length === x.planeBytes, "row(3), plane(0)");
      },
      args: { plane: () => [0], row: () => [1, 0] },
      cleanup() {},
    },
  },
  respondToPressure: {
    PressureResponse: {
      make: () => respondToPressure(...pressureTargets()),
      check: (x: memkit.PressureResponse) => expect(x.stats().state === "normal", "stats().state"),
    },
  },
  mapPages: { Mapping: mappingSubject(() => mapPages(8192)) },
  mapFile: { Mapping: mappingSubject(() => mapFile(tempFile())) },
  openSharedMemory: {
    SharedMemory: {
      ...mappingSubject(() => {
        const memory = openSharedMemory(sharedName(), 8192, { create: true });
        later(() => memory.unlink());
        return memory;
      }),
      ends: ["unmap", "close", "[Symbol.dispose]"],
    },
  },
};

function releaseResult(result: unknown): void {
  if (typeof result === "function") {
    result(); // an unsubscribe function
    return;
  }
  if (result === null || typeof result !== "object" || ArrayBuffer.isView(result)) return;
  const r = result as Record<PropertyKey, unknown>;
  if (typeof r[Symbol.dispose] === "function") (r[Symbol.dispose] as () => void)();
  else if (typeof r[Symbol.asyncIterator] === "function" && typeof r.return === "function") {
    (r.return as () => Promise<unknown>)().catch(() => {});
  }
}

/** Healthy global allocator state before each case of its group. */
function freshGlobal(): void {
  initAllocator({ leakCheckAtExit: "off" });
}

const u8 = () => new Uint8Array(64);

/** Every exported function, static method and namespace member. */
export const FUNCTIONS: Record<string, FunctionSpec> = {
  addressOf: { args: () => [u8()] },
  nativeInfo: { args: () => [] },
  nativeReady: { args: () => [] },
  mapPages: { args: () => [8192, { protection: "read-write", populate: false }] },
  mapFile: { args: () => [tempFile(), { write: false, shared: false }] },
  openSharedMemory: {
    args: () => [sharedName(), 4096, { create: true }],
    cleanup(result) {
      const memory = result as memkit.SharedMemory;
      memory.close();
      memory.unlink();
    },
  },
  fragmentation: { args: () => [[64, 32, 16]] },
  leakSuspicion: { args: () => [[], { window: 5 }] },
  heatmap: {
    args: () => [[new MemoryProfiler({ sources: [] }).capture()], { width: 200, rowHeight: 10, peakFraction: 0.5 }],
  },
  blockMap: { args: () => [new SystemAllocator().dump(), { width: 200, maxChunks: 4 }] },
  serveLiveView: {
    args: () => [new MemoryProfiler({ sources: [], intervalMs: 1000 }), { port: 0 }],
    cleanup(result) {
      // A server that started is closed; a refused call left nothing to close.
      (result as Promise<memkit.LiveView>).then((view) => view.close(), () => {});
    },
  },
  workerArena: {
    // One arena per thread, made on the first call: what it returns must not be disposed.
    args: () => [{ capacity: 65536 }],
    check() {
      const arena = memkit.workerArena();
      arena.free(arena.alloc(64));
    },
    cleanup() {},
  },
  leakCheck: { args: () => [(a: memkit.Allocator) => a.free(a.alloc(16)), new SystemAllocator()] },
  readMemoryStatus: { args: () => [] },
  pressureLevel: { args: () => [readMemoryStatus(), { low: 0.5, medium: 0.25 }] },
  readThermalState: { args: () => [] },
  struct: { args: () => [{ a: "f32", b: "u8" }, { packed: false }] },
  audioArray: { args: () => [] },
  uniformArray: { args: () => [Rec] },
  vertexArray: { args: () => [Rec] },
  initAllocator: { before: freshGlobal, args: () => [{ leakCheckAtExit: "off", enableSafety: true }] },
  deinit: { before: freshGlobal, args: () => [] },
  getAllocator: { before: freshGlobal, args: () => [], cleanup() {} },
  getMemStats: { before: freshGlobal, args: () => [] },
  checkForLeaks: { before: freshGlobal, args: () => [] },
  printMemStats: { before: freshGlobal, args: () => [] },
  malloc: {
    before: freshGlobal,
    args: () => [64],
    cleanup: (address) => memkit.cFree(address as number, 64),
  },
  cRealloc: {
    before: freshGlobal,
    args: () => [malloc(64), 64, 128],
    cleanup: (address) => memkit.cFree(address as number, 128),
  },
  cFree: { before: freshGlobal, args: () => [malloc(64), 64] },
  onGC: { args: () => [() => {}] },
  gcHint: { args: () => [] },
  "PsiTrigger.open": { args: () => [{ kind: "some", stallUs: 150_000, windowUs: 2_000_000 }] },
  "SharedDynamicArray.attach": {
    args: () => [new SharedDynamicArray(Rec, { maxCapacity: 8 }).buffer, Rec],
  },
  respondToPressure: { args: () => pressureTargets() },
  requestGpu: {
    args: () => [{ label: "hostile", powerPreference: "low-power" }],
    cleanup(result) {
      // A device that was opened is destroyed with its context; a refused call left nothing.
      (result as Promise<GpuContext>).then((gpu) => gpu.dispose(), () => {});
    },
  },
  "GpuContext.fromDevice": {
    args: () => [gpuContext().device, { label: "hostile" }],
    cleanup: (result) => (result as GpuContext).dispose(),
  },
  createGpuBufferFrom: {
    args: () => [gpuContext(), new Float32Array([1, 2, 3, 4]), COPY_BOTH, "hostile"],
    cleanup() {}, // the case's context destroys it
  },
  writeGpuBuffer: {
    args() {
      const gpu = gpuContext();
      return [gpu, gpuBuffer(gpu), new Uint32Array(8), { offset: 16, ranges: [{ first: 1, count: 2 }] }];
    },
  },
  readGpuBuffer: {
    args() {
      const gpu = gpuContext();
      return [gpu, gpuBuffer(gpu), new Float32Array(8), { offset: 16 }];
    },
    check: readBackFollowUp,
  },
  "simd.copy": { args: () => [u8(), u8()] },
  "simd.fill": { args: () => [u8(), 7] },
  "simd.compare": { args: () => [u8(), u8()] },
  "simd.equals": { args: () => [u8(), u8()] },
};

/** Exported objects whose members are functions (each one needs an entry in FUNCTIONS). */
export const NAMESPACES: readonly string[] = ["simd"];

/** Exported constants: no function to call. */
export const CONSTANTS: readonly string[] = ["PressureLevel", "MemoryAlignment", "BudgetPriority", "GpuBufferUsage"];

/** Exports that change process-wide state share a child of their own, away from the others. */
export const SHARED_GROUPS: Record<string, readonly string[]> = {
  "global allocator": [
    "initAllocator",
    "deinit",
    "getAllocator",
    "getMemStats",
    "checkForLeaks",
    "printMemStats",
    "malloc",
    "cRealloc",
    "cFree",
  ],
  "gc hooks": ["onGC", "gcHint"],
};

// ------------------------------------------------------------------ discovery

const MOD = memkit as unknown as Record<string, unknown>;

function isClass(value: unknown): boolean {
  return typeof value === "function" && /^class\b/.test(Function.prototype.toString.call(value));
}

/** Static methods of a class (own and inherited from memkit classes, not from built-ins like Error), by name. */
function staticMethods(ctor: Callable): string[] {
  const names: string[] = [];
  for (let c = ctor; isClass(c); c = Object.getPrototypeOf(c)) {
    for (const key of Object.getOwnPropertyNames(c)) {
      if (["length", "name", "prototype"].includes(key) || names.includes(key)) continue;
      const d = Object.getOwnPropertyDescriptor(c, key)!;
      if (typeof d.value === "function") names.push(key);
    }
  }
  return names;
}

/** What the tables miss or name in vain; empty when every export has its entry. */
export function tableProblems(): string[] {
  const problems: string[] = [];
  const wanted = new Set<string>();
  for (const [name, value] of Object.entries(MOD)) {
    if (CONSTANTS.includes(name)) {
      if (typeof value === "function") problems.push(`${name} is listed as a constant but is a function`);
      continue;
    }
    if (isClass(value)) {
      if (!CLASSES[name]) problems.push(`class ${name} has no entry in CLASSES (how to construct a healthy one)`);
      for (const s of staticMethods(value as Callable)) wanted.add(`${name}.${s}`);
    } else if (typeof value === "function") {
      wanted.add(name);
    } else if (NAMESPACES.includes(name)) {
      for (const [key, member] of Object.entries(value as object)) {
        if (typeof member === "function") wanted.add(`${name}.${key}`);
      }
    } else {
      problems.push(`export ${name} (${typeof value}) is in none of CLASSES, FUNCTIONS, NAMESPACES, CONSTANTS`);
    }
  }
  for (const name of wanted) if (!FUNCTIONS[name]) problems.push(`function ${name} has no entry in FUNCTIONS`);
  for (const name of Object.keys(FUNCTIONS)) if (!wanted.has(name)) problems.push(`FUNCTIONS.${name}: no such export`);
  for (const name of Object.keys(CLASSES)) if (!isClass(MOD[name])) problems.push(`CLASSES.${name}: no such class`);
  for (const name of [...NAMESPACES, ...CONSTANTS]) if (!(name in MOD)) problems.push(`${name}: no such export`);
  for (const name of Object.keys(DERIVED)) if (!(name in MOD)) problems.push(`DERIVED.${name}: no such export`);
  return problems;
}

/** The groups, each run in its own child: one per export, and the shared ones. */
export function groups(): string[] {
  const shared = new Set(Object.values(SHARED_GROUPS).flat());
  const names = Object.keys(MOD).filter((n) => !shared.has(n) && !CONSTANTS.includes(n)).sort();
  return [...names, ...Object.keys(SHARED_GROUPS)];
}

function resolve(path: string): Callable {
  let value: unknown = MOD;
  for (const part of path.split(".")) value = (value as Record<string, unknown>)[part];
  return value as Callable;
}

function memberName(key: PropertyKey): string {
  if (typeof key !== "symbol") return String(key);
  const d = key.description ?? "";
  return `[${d}]`;
}

interface Member {
  name: string;
  key: PropertyKey;
  kind: "method" | "getter";
  length: number;
}

function membersOf(instance: object): Member[] {
  const found: Member[] = [];
  const seen = new Set<PropertyKey>();
  for (let p = Object.getPrototypeOf(instance); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const key of Reflect.ownKeys(p)) {
      if (key === "constructor" || seen.has(key)) continue;
      seen.add(key);
      const d = Object.getOwnPropertyDescriptor(p, key)!;
      if (d.get) found.push({ name: memberName(key), key, kind: "getter", length: 0 });
      else if (typeof d.value === "function") {
        found.push({ name: memberName(key), key, kind: "method", length: d.value.length });
      }
    }
  }
  return found;
}

// ------------------------------------------------------------------ cases

/** What a call did: returned, or threw (class, category, message, whether it is a hostile hook's own error). */
export interface Outcome {
  ok: boolean;
  cls?: string;
  category?: string;
  message?: string;
  hostile?: boolean;
  pending?: boolean;
}

/** One line of the child's output per case. */
export interface CaseResult {
  name: string;
  call: Outcome;
  /** The follow-up before the call's result is released. */
  probe: Outcome;
  /** The follow-up after everything the call returned is released. */
  after: Outcome;
  /** Errors reported outside the call while the case ran (uncaught in a microtask, unhandled rejections). */
  reported: Outcome[];
  /** The receiver was legitimately ended (an ending member returned, or a hostile hook ended it). */
  ended: boolean;
  /** A hook the call installed ended it during the first follow-up (which may then fail in any allowed way). */
  endedByProbe: boolean;
  /** A hostile hook ended it while the call ran, and the call returned normally anyway. */
  endedDuringCall: boolean;
  mayRun: boolean;
}

interface Variant {
  name: string;
  make(ctx: Ctx, healthy: unknown): unknown;
  mayRun?: boolean;
  needsEnd?: boolean;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

// Variants of a healthy options object or record: each field hostile, getters, frozen, Proxy.
function objectVariants(sample: Record<string, unknown>): Variant[] {
  const variants: Variant[] = [];
  for (const key of Object.keys(sample)) {
    for (const h of SUBSET) {
      variants.push({
        name: `.${key}=${h.name}`,
        mayRun: h.mayRun,
        needsEnd: h.needsEnd,
        make: (ctx, healthy) => ({ ...(healthy as object), [key]: h.make(ctx) }),
      });
    }
    const getter = (name: string, body: (ctx: Ctx, value: unknown) => unknown, extra: Partial<Variant> = {}) =>
      variants.push({
        name: `.${key} ${name}`,
        mayRun: true,
        ...extra,
        make: (ctx, healthy) => {
          const copy = { ...(healthy as Record<string, unknown>) };
          const value = copy[key];
          Object.defineProperty(copy, key, { enumerable: true, get: () => body(ctx, value) });
          return copy;
        },
      });
    getter("getter throws", () => {
      throw new HostileError(`getter ${key}`);
    });
    getter("getter re-enters the receiver", (ctx, value) => {
      ctx.reenter();
      return value;
    });
    getter("getter ends the receiver", (ctx, value) => {
      ctx.end!();
      return value;
    }, { needsEnd: true });
  }
  variants.push(
    { name: " frozen", make: (_, healthy) => Object.freeze({ ...(healthy as object) }) },
    {
      name: " with a null prototype",
      make: (_, healthy) => Object.assign(Object.create(null), healthy),
    },
    { name: " in a Proxy", mayRun: true, make: (_, healthy) => new Proxy({ ...(healthy as object) }, {}) },
    { name: " with an extra field", make: (_, healthy) => ({ ...(healthy as object), hostileExtra: 1 }) },
  );
  return variants;
}

// Variants of a healthy array argument: holes, element getters, Proxy, frozen, huge sparse length.
function arrayVariants(): Variant[] {
  const element = (name: string, body: (ctx: Ctx, value: unknown) => unknown, extra: Partial<Variant> = {}) => ({
    name: ` element 0 ${name}`,
    mayRun: true,
    ...extra,
    make: (ctx: Ctx, healthy: unknown) => {
      const copy = [...(healthy as unknown[])];
      const value = copy[0];
      Object.defineProperty(copy, 0, { enumerable: true, get: () => body(ctx, value) });
      return copy;
    },
  });
  return [
    {
      name: " with a hole at 0",
      make: (_, healthy) => {
        const copy = [...(healthy as unknown[])];
        delete copy[0];
        return copy;
      },
    },
    element("getter throws", () => {
      throw new HostileError("element getter");
    }),
    element("getter re-enters the receiver", (ctx, value) => {
      ctx.reenter();
      return value;
    }),
    element("getter ends the receiver", (ctx, value) => {
      ctx.end!();
      return value;
    }, { needsEnd: true }),
    { name: " in a Proxy", mayRun: true, make: (_, healthy) => new Proxy([...(healthy as unknown[])], {}) },
    { name: " frozen", make: (_, healthy) => Object.freeze([...(healthy as unknown[])]) },
    {
      name: " with length 2^32 - 1",
      make: (_, healthy) => {
        const copy = [...(healthy as unknown[])];
        copy.length = 2 ** 32 - 1;
        return copy;
      },
    },
  ];
}

/** A planned case: which argument lists to build and how to call. */
interface Plan {
  name: string;
  /** Why this case cannot run on this machine (reported as skipped). */
  unavailable?: string;
  mayRun: boolean;
  needsEnd: boolean;
  /** The subject whose instance is the receiver, if any. */
  subject?: SubjectSpec;
  /** The member whose return ends the receiver. */
  ending: boolean;
  /** Builds the arguments (given the receiver and its healthy arguments). */
  build(ctx: Ctx, healthy: unknown[]): unknown[];
  healthy(receiver: unknown): unknown[];
  invoke(receiver: unknown, args: unknown[]): unknown;
  /** The follow-up for cases without a receiver. */
  follow?(): void;
  before?(): void;
  release(result: unknown): void;
}

// The positions and values of one callable: all values at position 0, the subset later,
// and variants of option objects, records and arrays among the healthy arguments.
function argumentPlans(
  label: string,
  length: number,
  sample: unknown[],
  base: Omit<Plan, "name" | "mayRun" | "needsEnd" | "build">,
): Plan[] {
  const plans: Plan[] = [];
  const positions = Math.max(length, sample.length, 1);
  for (let p = 0; p < positions; p++) {
    for (const h of p === 0 ? HOSTILE : SUBSET) {
      plans.push({
        ...base,
        name: `${label} arg${p}=${h.name}`,
        mayRun: !!h.mayRun,
        needsEnd: !!h.needsEnd,
        build(ctx, healthy) {
          const args = Array.from({ length: positions }, (_, i) => healthy[i]);
          args[p] = h.make(ctx);
          return args;
        },
      });
    }
    const value = sample[p];
    const variants = isPlainObject(value) ? objectVariants(value) : Array.isArray(value) ? arrayVariants() : [];
    for (const v of variants) {
      plans.push({
        ...base,
        name: `${label} arg${p}${v.name}`,
        mayRun: !!v.mayRun,
        needsEnd: !!v.needsEnd,
        build(ctx, healthy) {
          const args = Array.from({ length: positions }, (_, i) => healthy[i]);
          args[p] = v.make(ctx, healthy[p]);
          return args;
        },
      });
    }
  }
  return plans;
}

const UNAVAILABLE: Omit<Plan, "name"> = {
  mayRun: false,
  needsEnd: false,
  ending: false,
  build: () => [],
  healthy: () => [],
  invoke: () => undefined,
  release: () => {},
};

function defaultCleanup(x: unknown): void {
  const dispose = (x as Record<symbol, unknown> | null)?.[Symbol.dispose];
  if (typeof dispose === "function") dispose.call(x);
}

function runCleanups(): void {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch {
      // already released
    }
  }
}

// A facility this machine lacks (no PSI, no permission, no GPU): reported as skipped, never silently.
function unavailable(name: string, error: unknown): Plan {
  if (!(error instanceof AllocationError) || !["platform", "unsupported"].includes(error.category)) throw error;
  return { ...UNAVAILABLE, name, unavailable: `unavailable here: ${error.message}` };
}

function subjectPlans(label: string, subject: SubjectSpec): Plan[] {
  let instance: unknown;
  try {
    instance = subject.make();
  } catch (error) {
    runCleanups();
    return [unavailable(`${label} (every member)`, error)];
  }
  const members = membersOf(instance as object);
  const plans: Plan[] = [];
  for (const member of members) {
    const full = `${label}.${member.name}`;
    const ending = (subject.ends ?? []).includes(member.name);
    const healthy = (x: unknown) => subject.args?.[member.name]?.(x) ?? [];
    if (member.kind === "getter") {
      plans.push({
        name: `${full} (getter)`,
        mayRun: false,
        needsEnd: false,
        subject,
        ending,
        build: () => [],
        healthy: () => [],
        invoke: (x) => (x as Record<PropertyKey, unknown>)[member.key],
        release: releaseResult,
      });
      continue;
    }
    let sample: unknown[] = [];
    try {
      sample = healthy(instance);
    } catch {
      // planned without a sample; the case reports the failure when it builds its arguments
    }
    plans.push(...argumentPlans(full, member.length, sample, {
      subject,
      ending,
      healthy,
      invoke: (x, args) => (x as Record<PropertyKey, (...a: unknown[]) => unknown>)[member.key](...args),
      release: releaseResult,
    }));
  }
  try {
    (subject.cleanup ?? defaultCleanup)(instance);
  } catch {
    // released by its cleanup already
  }
  runCleanups();
  return plans;
}

function functionPlans(path: string, spec: FunctionSpec): Plan[] {
  const fn = resolve(path);
  spec.before?.();
  let sample: unknown[];
  try {
    sample = spec.args();
  } catch (error) {
    return [unavailable(`${path} (every case)`, error)];
  }
  const release = spec.cleanup ?? releaseResult;
  const follow = spec.check ?? (() => release(fn(...spec.args())));
  return argumentPlans(path, fn.length, sample, {
    ending: false,
    healthy: () => spec.args(),
    invoke: (_, args) => fn(...args),
    follow,
    before: spec.before,
    release,
  });
}

function classPlans(name: string): Plan[] {
  const spec = CLASSES[name];
  const ctor = MOD[name] as new (...args: unknown[]) => unknown;
  const plans: Plan[] = [];
  let ctorSample: unknown[];
  try {
    ctorSample = spec.ctorArgs();
  } catch (error) {
    runCleanups();
    return [unavailable(`${name} (every member)`, error)];
  }
  // The constructor: hostile arguments; the follow-up constructs and checks a healthy instance.
  plans.push(...argumentPlans(`new ${name}`, ctor.length, ctorSample, {
    ending: false,
    healthy: () => spec.ctorArgs(),
    invoke: (_, args) => new ctor(...args),
    follow() {
      const x = spec.make();
      try {
        spec.check(x);
      } finally {
        (spec.cleanup ?? defaultCleanup)(x);
      }
    },
    // A private constructor's objects are not released: what they hold is not theirs.
    release: spec.privateConstructor ? () => {} : (x) => (spec.cleanup ?? defaultCleanup)(x),
  }));
  for (const s of staticMethods(ctor as unknown as Callable)) {
    plans.push(...functionPlans(`${name}.${s}`, FUNCTIONS[`${name}.${s}`]));
  }
  plans.push(...subjectPlans(name, spec));
  for (const [label, derived] of Object.entries(DERIVED[name] ?? {})) plans.push(...subjectPlans(label, derived));
  return plans;
}

/** The planned cases of a group, by name (for counting and for KNOWN_FAILING). */
function plansOf(group: string): (Plan & { export: string })[] {
  const exports = SHARED_GROUPS[group] ?? [group];
  const all: (Plan & { export: string })[] = [];
  for (const name of exports) {
    const plans: Plan[] = [];
    const value = MOD[name];
    if (isClass(value)) plans.push(...classPlans(name));
    else if (typeof value === "function") {
      plans.push(...functionPlans(name, FUNCTIONS[name]));
      for (const [label, derived] of Object.entries(DERIVED[name] ?? {})) {
        plans.push(...subjectPlans(`${label} (${name})`, derived));
      }
    } else if (NAMESPACES.includes(name)) {
      for (const key of Object.keys(value as object).sort()) {
        plans.push(...functionPlans(`${name}.${key}`, FUNCTIONS[`${name}.${key}`]));
      }
    }
    all.push(...plans.map((plan) => ({ ...plan, export: name })));
  }
  return all;
}

const ALLOWED = ["TypeError", "RangeError", "AllocationError"];

function outcomeOf(error: unknown): Outcome {
  const e = error as { message?: unknown; constructor?: { name?: string } } | null;
  const cls = error instanceof AllocationError
    ? "AllocationError"
    : error instanceof HostileError
    ? "HostileError"
    : error instanceof RangeError
    ? "RangeError"
    : error instanceof TypeError
    ? "TypeError"
    : error instanceof Error
    ? (e?.constructor?.name ?? "Error")
    : `thrown ${typeof error}`;
  let message: string;
  try {
    message = String(e?.message ?? error);
  } catch {
    message = "(unprintable)";
  }
  return {
    ok: false,
    cls,
    category: error instanceof AllocationError ? error.category : undefined,
    message: message.length > 400 ? `${message.slice(0, 400)}…` : message,
    hostile: error instanceof HostileError,
  };
}

async function settle(value: unknown): Promise<Outcome> {
  if (value instanceof Promise || (value !== null && typeof (value as { then?: unknown })?.then === "function")) {
    const promise = Promise.resolve(value as Promise<unknown>);
    promise.catch(() => {}); // a late rejection is not an unhandled one
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => resolve({ ok: true, pending: true }), 1000);
    });
    try {
      return await Promise.race([promise.then(() => ({ ok: true }), outcomeOf), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
  return { ok: true };
}

function attempt(f: () => void): Outcome {
  try {
    f();
    return { ok: true };
  } catch (error) {
    return outcomeOf(error);
  }
}

/** What the child prints. */
export type Line =
  | { type: "start"; name: string }
  | { type: "case"; result: CaseResult }
  | { type: "skip"; name: string; reason: string }
  | { type: "done"; ran: number; skipped: number; perExport: Record<string, number> };

async function runPlan(plan: Plan): Promise<CaseResult> {
  plan.before?.();
  const subject = plan.subject;
  const receiver = subject ? subject.make() : undefined;
  const follow = subject ? () => subject.check(receiver) : plan.follow!;
  const endIt = subject?.end;
  let reentering = false;
  const ctx: Ctx = {
    reentered: false,
    ended: false,
    reenter() {
      // Once at a time: a hook memkit calls on every operation (an observer's getter) must not recurse forever.
      if (reentering) return;
      reentering = true;
      ctx.reentered = true;
      try {
        follow();
      } finally {
        reentering = false;
      }
    },
    end: endIt
      ? () => {
        ctx.ended = true;
        endIt(receiver);
      }
      : null,
  };
  let call: Outcome;
  let result: unknown = undefined;
  try {
    const args = plan.build(ctx, plan.healthy(receiver));
    result = plan.invoke(receiver, args);
    // A sync iterator: take a few steps, as a for-of would.
    if (
      result !== null && typeof result === "object" && typeof (result as Iterator<unknown>).next === "function" &&
      typeof (result as Record<symbol, unknown>)[Symbol.iterator] === "function"
    ) {
      for (let i = 0; i < 3; i++) if ((result as Iterator<unknown>).next().done) break;
    }
    call = await settle(result);
  } catch (error) {
    call = outcomeOf(error);
  }
  const endedDuringCall = ctx.ended && call.ok && !plan.ending;
  const ended = ctx.ended || (plan.ending && call.ok);
  await Promise.resolve(); // errors memkit reports from a microtask (an observer's) belong to this case
  const probe = attempt(follow);
  // A hook the call installed (an observer) may end the receiver during the follow-up itself.
  const endedByProbe = !ended && ctx.ended;
  const released = call.ok && result !== undefined ? attempt(() => plan.release(result)) : { ok: true };
  const after = released.ok ? attempt(follow) : released;
  if (subject) attempt(() => (subject.cleanup ?? defaultCleanup)(receiver));
  runCleanups();
  await Promise.resolve();
  const reported = asyncErrors.splice(0).map(outcomeOf);
  return { name: plan.name, call, probe, after, reported, ended, endedByProbe, endedDuringCall, mayRun: plan.mayRun };
}

// Errors thrown outside any call (memkit rethrows an observer's error in a microtask), by case.
const asyncErrors: unknown[] = [];

/** Catches errors reported outside any call (uncaught in a microtask, unhandled rejections) for the case running. */
export function catchReportedErrors(): void {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  if (deno) {
    globalThis.addEventListener("error", (event) => {
      asyncErrors.push((event as ErrorEvent).error);
      event.preventDefault();
    });
    globalThis.addEventListener("unhandledrejection", (event) => {
      asyncErrors.push((event as PromiseRejectionEvent).reason);
      event.preventDefault();
    });
  } else {
    process.on("uncaughtException", (error) => asyncErrors.push(error));
    process.on("unhandledRejection", (reason) => asyncErrors.push(reason));
  }
}

/** Runs every case of `group` (in the child), writing one line per case through `emit`. */
export async function runGroup(
  group: string,
  emit: (line: Line) => void,
  skip: ReadonlySet<string>,
): Promise<void> {
  let ran = 0, skipped = 0;
  const perExport: Record<string, number> = {};
  try {
    if (GPU_GROUPS.includes(group)) await openGpu();
    const plans = plansOf(group);
    for (const plan of plans) {
      if (skip.has(plan.name)) {
        emit({ type: "skip", name: plan.name, reason: "KNOWN_FAILING" });
        skipped++;
        continue;
      }
      if (plan.unavailable) {
        emit({ type: "skip", name: plan.name, reason: plan.unavailable });
        skipped++;
        continue;
      }
      if (plan.needsEnd && !(plan.subject?.end)) {
        emit({ type: "skip", name: plan.name, reason: "no receiver to end" });
        skipped++;
        continue;
      }
      emit({ type: "start", name: plan.name });
      emit({ type: "case", result: await runPlan(plan) });
      ran++;
      perExport[plan.export] = (perExport[plan.export] ?? 0) + 1;
    }
  } finally {
    removeTempFiles();
    // Leave no global allocator behind: its exit check must not print or set the exit code.
    if (SHARED_GROUPS[group]?.includes("initAllocator")) {
      initAllocator({ leakCheckAtExit: "off" });
      memkit.deinit();
    }
  }
  emit({ type: "done", ran, skipped, perExport });
}

// ------------------------------------------------------------------ judging (in the parent)

/**
 * Messages that come from the engine, a runtime or a library inside memkit,
 * never from memkit's own checks: seeing one means a hostile value got past
 * memkit's validation.
 */
export const ENGINE_MESSAGES: readonly RegExp[] = [
  /detached ArrayBuffer/i, // V8: "Cannot perform Construct on a detached ArrayBuffer"
  /Cannot perform /, // V8: "Cannot perform %TypedArray%.prototype.set on ..."
  /Underlying ArrayBuffer has been detached/i, // JSC
  /is not a function/, // V8 and JSC ("x is not a function. (In 'x()', ...)")
  /is not a constructor/,
  /is not iterable/,
  /is not an object/, // JSC: "undefined is not an object (evaluating ...)"
  /Cannot read propert/, // V8: "Cannot read properties of undefined"
  /Cannot set propert/,
  /Cannot create property/,
  /Cannot assign to read only/,
  /Attempted to assign to readonly/,
  /not extensible/,
  /Cannot (re)?define property/,
  /Cannot convert (a |an )?(BigInt|Symbol|symbol|undefined or null|object)/i,
  /Cannot mix BigInt/,
  /Conversion from 'BigInt'/,
  /Invalid mix of BigInt/,
  /Do not know how to serialize/,
  /Invalid typed array length/,
  /Invalid array length/,
  /Array buffer allocation failed/,
  /Invalid DataView length/,
  /out of bounds/i, // V8 "offset is out of bounds", JSC "Out of bounds access"
  /outside the bounds/, // V8: "Start offset N is outside the bounds of the buffer"
  /Length out of range/, // JSC
  /Buffer is already detached/, // JSC
  /length larger than/, // JSC: "length larger than (2 ** 53) - 1"
  /length cannot be negative/, // JSC
  /requires that input parameter not be null/, // JSC: Object.entries(null)
  /No default value/, // JSC: ToPrimitive of an object without valueOf/toString
  /Maximum call stack/,
  /incompatible receiver/, // V8
  /Receiver should be/, // JSC
  /called on (a )?non-/, // V8: "... called on non-object"
  /on proxy: /, // V8 Proxy invariant messages
  /Proxy object's/, // JSC
  /trap returned/,
  /Invalid FFI/i, // Deno FFI
  /to a pointer/, // Bun FFI
  /argument must be/, // node-style (ERR_INVALID_ARG_TYPE) messages
  /Invalid input/, // zod
  /must be a nonoptional/, // zod's name for a required value
  /expected \w+, received/, // zod
  /Reduce of empty array/,
  /Cannot destructure/,
  /cannot be invoked without 'new'/,
  /Class constructor/,
];

/** The engine pattern a message matches, if any. */
export function engineMessage(message: string | undefined): RegExp | null {
  if (message === undefined) return null;
  return ENGINE_MESSAGES.find((p) => p.test(message)) ?? null;
}

function describeOutcome(o: Outcome): string {
  if (o.ok) return o.pending ? "returned (promise still pending after 1 s)" : "returned";
  return `${o.cls}${o.category ? `("${o.category}")` : ""}: ${o.message}`;
}

/** Why an outcome of the call (or a follow-up allowed to fail) is wrong, or null. */
function wrongThrow(o: Outcome, mayRun: boolean): string | null {
  if (o.ok) return null;
  if (o.hostile) return mayRun ? null : `memkit ran a coercion hook or an own getter of a view: ${o.message}`;
  if (!ALLOWED.includes(o.cls!)) return `threw ${describeOutcome(o)}`;
  if (o.cls !== "AllocationError" || !/use-after-free/.test(o.category ?? "")) {
    const pattern = engineMessage(o.message);
    if (pattern) return `the engine's message leaks (${pattern}): ${describeOutcome(o)}`;
  }
  return null;
}

function isUseAfterFree(o: Outcome): boolean {
  return !o.ok && o.cls === "AllocationError" && o.category === "use-after-free";
}

/** Why a case fails (b) or (c), or null when it passes. */
export function judge(r: CaseResult): string | null {
  const call = wrongThrow(r.call, r.mayRun);
  if (call) return `call: ${call}`;
  for (const o of r.reported) {
    // Only a hostile hook's own error may surface outside the call (an observer that throws is reported so).
    if (!(o.hostile && r.mayRun)) return `an error surfaced outside the call (uncaught): ${describeOutcome(o)}`;
  }
  if (r.ended) {
    if (!isUseAfterFree(r.probe)) {
      return `ended, but the follow-up did not throw AllocationError("use-after-free"): ${describeOutcome(r.probe)}`;
    }
    if (!isUseAfterFree(r.after)) {
      return `ended, but the follow-up after release did not throw use-after-free: ${describeOutcome(r.after)}`;
    }
    return null;
  }
  if (r.endedByProbe) {
    // The follow-up ran user code that ended the receiver mid-way: whatever it saw, the next one must refuse.
    if (!isUseAfterFree(r.after)) {
      return `ended during the follow-up, but the next one did not throw use-after-free: ${describeOutcome(r.after)}`;
    }
    return null;
  }
  const probe = wrongThrow(r.probe, r.mayRun);
  if (probe) return `follow-up: ${probe}`;
  if (!r.after.ok) return `not usable afterwards: the follow-up ${describeOutcome(r.after)}`;
  return null;
}

/** The observed outcome of a case, for KNOWN_FAILING and reports. */
export function summarize(r: CaseResult): string {
  return `call ${describeOutcome(r.call)}; follow-up ${describeOutcome(r.after)}`;
}

/** A bug the suite found, with the cases it fails. */
export interface KnownBug {
  id: string;
  /** What is wrong, and where. */
  bug: string;
  /** A minimal reproduction. */
  repro: string;
  /** What the reproduction does on each runtime. */
  observed: { deno: string; bun: string };
  /** Cases that fail on both runtimes. */
  cases: readonly string[];
  denoOnly?: readonly string[];
  bunOnly?: readonly string[];
}

/**
 * Cases that fail today: real bugs in src/, to be fixed there (never by
 * weakening the judge). Skipped unless MEMKIT_ALL=1; the test says when one
 * passes, so its entry can go.
 */
export const KNOWN_BUGS: readonly KnownBug[] = [];

/** Every known-failing case on `runtime`, with its bug and the outcome observed there. */
export function knownFailing(runtime: "deno" | "bun"): Map<string, string> {
  const known = new Map<string, string>();
  for (const b of KNOWN_BUGS) {
    const only = runtime === "deno" ? b.denoOnly : b.bunOnly;
    for (const name of [...b.cases, ...(only ?? [])]) known.set(name, `${b.id}: ${b.observed[runtime]}`);
  }
  return known;
}

/** The KNOWN_FAILING list: case name → bug and observed outcome (on Deno / on Bun). */
export const KNOWN_FAILING: Readonly<Record<string, string>> = Object.fromEntries(
  KNOWN_BUGS.flatMap((b) =>
    [...b.cases, ...(b.denoOnly ?? []), ...(b.bunOnly ?? [])].map((name) => [
      name,
      `${b.id}: ${b.bug} (Deno: ${b.observed.deno}; Bun: ${b.observed.bun})`,
    ])
  ),
);
