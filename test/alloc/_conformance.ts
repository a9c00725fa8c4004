// Shared parts of the allocator conformance suite (what Zig's `testAllocator*`
// functions are for Zig): the allocators under test ("subjects"), the parents
// and children of chains, a seeded randomized model run that any allocator can
// be put through, and the list of tests known to fail today.
//
// Environment:
//   MEMKIT_LONG=1   randomized runs of at least 50,000 operations (default: a short run)
//   MEMKIT_ALL=1    run the tests in KNOWN_FAILING too, instead of skipping them
//   MEMKIT_SEED=n   override the seed of every randomized run (decimal or 0x hex)
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import {
  addressOf,
  AllocationError,
  type Allocator,
  type AllocatorStats,
  Arena,
  type ArenaResetMode,
  type ArenaScope,
  BuddyAllocator,
  DebugAllocator,
  FailingAllocator,
  FreeListAllocator,
  type Handle,
  LockedPageAllocator,
  nativeInfo,
  PoolAllocator,
  SecretAllocator,
  StackAllocator,
  type StackMarker,
  SystemAllocator,
  type TypedArray,
  type TypedArrayConstructor,
} from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

export const LONG: boolean = process.env.MEMKIT_LONG === "1";
export const ALL: boolean = process.env.MEMKIT_ALL === "1";
export const PAGE: number = nativeInfo().pageSize;
/** Operations per randomized run. */
export const OPS: number = LONG ? 50_000 : 1_500;
/** Operations per randomized run over a chain. */
export const CHAIN_OPS: number = LONG ? 50_000 : 1_000;

/**
 * Tests that fail today. They are registered as skipped unless MEMKIT_ALL=1.
 * Remove a name when its test passes on both runtimes.
 */
export const KNOWN_FAILING: ReadonlySet<string> = new Set<string>([]);

/** Registers a test, skipped when it is known to fail (unless MEMKIT_ALL=1). */
export function conformanceTest(name: string, fn: () => void | Promise<void>): void {
  const known = KNOWN_FAILING.has(name);
  const skip = !ALL && known ? "known failing: issue 11" : false;
  test(name, { skip }, async () => {
    await fn();
    if (known) {
      console.log(`conformance: "${name}" passes now: remove it from KNOWN_FAILING in test/alloc/_conformance.ts`);
    }
  });
}

/** Whether a registered test will run (not skipped). */
export function willRun(name: string): boolean {
  return ALL || !KNOWN_FAILING.has(name);
}

/** A seed for a run, stable per name, or MEMKIT_SEED. */
export function seedFor(name: string): number {
  const forced = process.env.MEMKIT_SEED;
  if (forced) return Number(forced) >>> 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h || 1;
}

// ------------------------------------------------------------------ errors

/** Asserts that `fn` throws an AllocationError of `category` (and a message matching `message`). */
export function throwsAllocation(fn: () => unknown, category: string, message?: RegExp, what = ""): AllocationError {
  let thrown: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (error) {
    thrown = error;
    threw = true;
  }
  const label = what ? `${what}: ` : "";
  if (!threw) assert.fail(`${label}expected AllocationError("${category}"), but nothing was thrown`);
  if (!(thrown instanceof AllocationError)) {
    assert.fail(`${label}expected AllocationError("${category}"), got ${describeError(thrown)}`);
  }
  assert.equal(
    thrown.category,
    category,
    `${label}expected AllocationError("${category}"), got ${describeError(thrown)}`,
  );
  if (message) assert.match(thrown.message, message, `${label}message of ${describeError(thrown)}`);
  return thrown;
}

/** Asserts that `fn` throws a RangeError. */
export function throwsRange(fn: () => unknown, what = ""): void {
  try {
    fn();
  } catch (error) {
    if (error instanceof RangeError) return;
    assert.fail(`${what ? what + ": " : ""}expected RangeError, got ${describeError(error)}`);
  }
  assert.fail(`${what ? what + ": " : ""}expected RangeError, but nothing was thrown`);
}

/** `Class("category"): message` for an error, for failure messages. */
export function describeError(error: unknown): string {
  if (error instanceof AllocationError) return `AllocationError("${error.category}"): ${error.message}`;
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return `a thrown ${typeof error} ${String(error)}`;
}

/** Calls `dispose()` (and `deinit()`) where they exist, ignoring errors: teardown after a test. */
export function disposeQuietly(...allocators: unknown[]): void {
  for (const a of allocators) {
    if (typeof a !== "object" || a === null) continue;
    const o = a as { dispose?: () => void; deinit?: () => unknown };
    try {
      if (typeof o.dispose === "function") o.dispose();
      else if (typeof o.deinit === "function") o.deinit();
    } catch {
      // teardown only
    }
  }
}

// ------------------------------------------------------------------ subjects

export type Family = "system" | "arena" | "stack" | "pool" | "buddy" | "free-list" | "debug" | "failing";

/** What the randomized run and the property tests may ask of an allocator. */
export interface Caps {
  /** Largest size asked for (a pool: its blockSize). */
  maxSize: number;
  /** Largest alignment asked for (a pool: its align). */
  maxAlign: number;
  /** Only the top block may be freed or resized (a stack, or a debug allocator over one). */
  lifo: boolean;
  /** Arena frees: the most recent block rolls back, others are ignored but stay counted. */
  arena: null | { safety: boolean };
  /** Freed views read as length 0 (checked in the randomized run). */
  detachesOnFree: boolean;
  /** Views it handed out read as length 0 after dispose (false for a debug allocator with detachFreed: false). */
  viewsDieOnDispose: boolean;
  /** Stack markers in the randomized run. */
  markers: boolean;
  /** FreeList handles and defragment() in the randomized run. */
  handles: boolean;
  /** Running out of memory is acceptable (a small chain): the operation must then change nothing. */
  tolerateOom: boolean;
}

export interface Built {
  allocator: Allocator;
  /** Everything the allocator was built over, disposed after it. */
  backings: unknown[];
}

export interface Subject {
  name: string;
  family: Family;
  /** For debug and failing subjects, the family underneath. */
  base: Family;
  make(): Built;
  caps: Caps;
}

const BASE_CAPS: Caps = {
  maxSize: 32_768,
  maxAlign: PAGE,
  lifo: false,
  arena: null,
  detachesOnFree: false,
  viewsDieOnDispose: true,
  markers: false,
  handles: false,
  tolerateOom: false,
};

interface BaseSpec {
  name: string;
  family: Family;
  make(): Allocator;
  caps: Partial<Caps>;
}

/** The allocators that are subjects on their own and backings of the debug subjects. */
export const BASES: BaseSpec[] = [
  { name: "SystemAllocator", family: "system", make: () => new SystemAllocator(), caps: { detachesOnFree: true } },
  {
    name: "Arena(safety)",
    family: "arena",
    make: () => new Arena({ capacity: 64 << 10, safety: true }),
    caps: { arena: { safety: true } },
  },
  {
    name: "Arena(no safety)",
    family: "arena",
    make: () => new Arena({ capacity: 64 << 10, safety: false }),
    caps: { arena: { safety: false } },
  },
  {
    name: "StackAllocator",
    family: "stack",
    make: () => new StackAllocator({ capacity: 16 << 20 }),
    caps: { lifo: true, markers: true },
  },
  {
    name: "PoolAllocator",
    family: "pool",
    make: () => new PoolAllocator({ blockSize: 64 << 10, align: PAGE, blocksPerChunk: 16 }),
    caps: { maxSize: 64 << 10 },
  },
  {
    name: "BuddyAllocator",
    family: "buddy",
    make: () => new BuddyAllocator({ capacity: 32 << 20, minBlockSize: 16 }),
    caps: {},
  },
  {
    name: "FreeListAllocator",
    family: "free-list",
    make: () => new FreeListAllocator({ capacity: 1 << 20 }),
    caps: { handles: true },
  },
  // Every block of these two is at least one locked page: tolerateOom keeps the randomized run's live bytes
  // small (a few hundred blocks, ~1 MiB locked), well inside an unprivileged RLIMIT_MEMLOCK of 8 MiB.
  {
    name: "LockedPageAllocator",
    family: "system",
    make: () => new LockedPageAllocator(),
    caps: { detachesOnFree: true, tolerateOom: true },
  },
  {
    name: "SecretAllocator",
    family: "system",
    make: () => new SecretAllocator(),
    caps: { detachesOnFree: true, tolerateOom: true },
  },
];

function baseSubject(spec: BaseSpec): Subject {
  return {
    name: spec.name,
    family: spec.family,
    base: spec.family,
    make: () => ({ allocator: spec.make(), backings: [] }),
    caps: { ...BASE_CAPS, ...spec.caps },
  };
}

function debugSubject(spec: BaseSpec, detachFreed: boolean): Subject {
  const baseCaps = { ...BASE_CAPS, ...spec.caps };
  return {
    name: `DebugAllocator(${spec.name}${detachFreed ? ", detachFreed" : ""})`,
    family: "debug",
    base: spec.family,
    make: () => {
      const backing = spec.make();
      const allocator = new DebugAllocator(backing, detachFreed ? { detachFreed: true } : {});
      return { allocator, backings: [backing] };
    },
    caps: {
      ...BASE_CAPS,
      maxSize: baseCaps.maxSize,
      maxAlign: baseCaps.maxAlign,
      lifo: baseCaps.lifo,
      detachesOnFree: detachFreed,
      viewsDieOnDispose: detachFreed,
    },
  };
}

/** Every allocator the per-subject properties run on. */
export const SUBJECTS: Subject[] = [
  ...BASES.map(baseSubject),
  ...BASES.map((b) => debugSubject(b, true)),
  ...BASES.map((b) => debugSubject(b, false)),
  {
    name: "FailingAllocator(SystemAllocator)",
    family: "failing",
    base: "system",
    make: () => {
      const backing = new SystemAllocator();
      return {
        allocator: new FailingAllocator(backing, { failAfter: Number.MAX_SAFE_INTEGER }),
        backings: [backing],
      };
    },
    caps: { ...BASE_CAPS, detachesOnFree: true },
  },
];

// ------------------------------------------------------------------ chains

export interface ParentSpec {
  name: string;
  make(): Allocator;
  /** Frees of the child's chunks must be LIFO. */
  lifo: boolean;
  /** A free gives the bytes back (false for arenas, which only roll back the most recent block). */
  returnsFrees: boolean;
  /** Ways this parent can release memory a child took from it. */
  releases: Release[];
}

export type Release = "reset-free-all" | "reset-retain" | "scope-end" | "rewind" | "stack-reset" | "deinit" | "dispose";

export const PARENTS: ParentSpec[] = [
  {
    name: "SystemAllocator",
    make: () => new SystemAllocator(),
    lifo: false,
    returnsFrees: true,
    releases: ["dispose"],
  },
  {
    name: "Arena(safety)",
    make: () => new Arena({ capacity: 1 << 20, safety: true }),
    lifo: false,
    returnsFrees: false,
    releases: ["reset-free-all", "reset-retain", "scope-end", "dispose"],
  },
  {
    name: "Arena(no safety)",
    make: () => new Arena({ capacity: 1 << 20, safety: false }),
    lifo: false,
    returnsFrees: false,
    releases: ["reset-free-all", "reset-retain", "scope-end", "dispose"],
  },
  {
    name: "FreeListAllocator",
    make: () => new FreeListAllocator({ capacity: 1 << 20 }),
    lifo: false,
    returnsFrees: true,
    releases: ["dispose"],
  },
  {
    name: "BuddyAllocator(16 MiB)",
    make: () => new BuddyAllocator({ capacity: 16 << 20 }),
    lifo: false,
    returnsFrees: true,
    releases: ["dispose"],
  },
  {
    name: "PoolAllocator(64 KiB blocks, align 4096)",
    make: () => new PoolAllocator({ blockSize: 64 << 10, align: 4096 }),
    lifo: false,
    returnsFrees: true,
    releases: ["dispose"],
  },
  {
    name: "StackAllocator",
    make: () => new StackAllocator({ capacity: 4 << 20 }),
    lifo: true,
    returnsFrees: true,
    releases: ["rewind", "stack-reset", "dispose"],
  },
  {
    name: "DebugAllocator(SystemAllocator)",
    make: () => new DebugAllocator(new SystemAllocator()),
    lifo: false,
    returnsFrees: true,
    releases: ["deinit", "dispose"],
  },
  {
    name: "LockedPageAllocator",
    make: () => new LockedPageAllocator(),
    lifo: false,
    returnsFrees: true,
    releases: ["dispose"],
  },
  {
    name: "SecretAllocator",
    make: () => new SecretAllocator(),
    lifo: false,
    returnsFrees: true,
    releases: ["dispose"],
  },
];

export interface ChildSpec {
  name: string;
  make(parent: Allocator): Allocator;
  caps(parent: ParentSpec): Caps;
}

const CHAIN_CAPS: Caps = { ...BASE_CAPS, maxSize: 2048, maxAlign: 256, tolerateOom: true };

export const CHILDREN: ChildSpec[] = [
  {
    name: "Arena",
    make: (backing) => new Arena({ backing, capacity: 16 << 10 }),
    caps: () => ({ ...CHAIN_CAPS, arena: { safety: true } }),
  },
  {
    name: "StackAllocator",
    make: (backing) => new StackAllocator({ backing, capacity: 64 << 10 }),
    caps: () => ({ ...CHAIN_CAPS, lifo: true, markers: true }),
  },
  {
    name: "PoolAllocator",
    make: (backing) => new PoolAllocator({ backing, blockSize: 256, blocksPerChunk: 64 }),
    caps: () => ({ ...CHAIN_CAPS, maxSize: 256, maxAlign: 16 }),
  },
  {
    name: "BuddyAllocator",
    make: (backing) => new BuddyAllocator({ backing, capacity: 64 << 10 }),
    caps: () => ({ ...CHAIN_CAPS }),
  },
  {
    name: "FreeListAllocator",
    make: (backing) => new FreeListAllocator({ backing, capacity: 16 << 10 }),
    caps: () => ({ ...CHAIN_CAPS, handles: true }),
  },
  {
    // The chain rule for its views needs each block's own buffer (with the default, views of the backing's
    // memory read as length 0 when the backing detaches them: test/debug/debug_chains_test.ts).
    name: "DebugAllocator",
    make: (backing) => new DebugAllocator(backing, { detachFreed: true }),
    caps: (parent) => ({ ...CHAIN_CAPS, lifo: parent.lifo, detachesOnFree: true }),
  },
];

// ------------------------------------------------------------------ the randomized model run

interface Block {
  id: number;
  byte: number;
  size: number;
  /** Alignment the block must keep, also across resize. */
  align: number;
  /** What was handed out (free and resize get this, or a prefix of it). */
  view: ArrayBufferView;
  bytes: Uint8Array;
  words: Uint32Array | null;
  address: number;
  /** Arena: freed out of order; still counted and still holding its memory. */
  dead: boolean;
  handle: Handle | null;
}

const CTORS: TypedArrayConstructor<TypedArray>[] = [
  Uint8Array,
  Int16Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
] as unknown as TypedArrayConstructor<TypedArray>[];

function byteView(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** First byte of `b` that lost its pattern, -2 for a wrong length, -1 when intact. */
function damaged(b: Block): number {
  const v = b.bytes;
  if (v.length !== b.size) return -2;
  const n = b.size, x = b.byte;
  const off = v.byteOffset;
  const head = Math.min(n, (4 - (off & 3)) & 3);
  for (let i = 0; i < head; i++) if (v[i] !== x) return i;
  const count = (n - head) >>> 2;
  if (count > 0) {
    b.words ??= new Uint32Array(v.buffer, off + head, count);
    const w = b.words;
    if (w.length !== count) return -2;
    const xw = Math.imul(x, 0x01010101) >>> 0;
    for (let i = 0; i < count; i++) {
      if (w[i] !== xw) {
        for (let j = head + i * 4; j < head + i * 4 + 4; j++) if (v[j] !== x) return j;
      }
    }
  }
  for (let i = head + count * 4; i < n; i++) if (v[i] !== x) return i;
  return -1;
}

function randomSize(next: () => number, max: number): number {
  const r = below(next, 100);
  let size: number;
  if (r < 3) size = 0;
  else if (r < 68) size = 1 + below(next, 256);
  else if (r < 93) size = 257 + below(next, 3840);
  else size = 4097 + below(next, 28_672);
  if (size > max) size = below(next, max + 1);
  return size;
}

function log2(n: number): number {
  return 31 - Math.clz32(n);
}

function isOom(error: unknown): boolean {
  return error instanceof AllocationError &&
    (error.category === "out-of-memory" || error.category === "limit-exceeded");
}

/**
 * Puts `allocator` through `ops` seeded random operations and checks it
 * against a model after every one: every live block keeps its bytes and its
 * alignment, no two blocks overlap, stats() agree on live blocks and bytes;
 * at the end everything is returned (allocatedBytes 0). Throws with the
 * seed and step on the first disagreement.
 */
export function randomRun(allocator: Allocator, caps: Caps, seed: number, ops: number, label: string): void {
  const next = xorshift32(seed);
  const blocks: Block[] = []; // in allocation order
  const empties: { view: ArrayBufferView; scopes: number }[] = [];
  const markers: { marker: StackMarker; depth: number }[] = [];
  const scopes: { handle: ArenaScope; start: number }[] = [];
  let mostRecent: Block | null = null; // arena: the block free() rolls back
  let nextId = 1;
  let liveBytes = 0;
  let served = 0; // successful allocations, so a run cannot pass by failing every one
  let step = -1;
  let op = "start";
  const arena = caps.arena;
  const stack = allocator as unknown as StackAllocator;
  const heap = allocator as unknown as FreeListAllocator;
  const arenaAllocator = allocator as unknown as Arena;
  const maxAlignLog = log2(Math.min(caps.maxAlign, PAGE));
  const LIVE_BYTES_SOFT_CAP = caps.tolerateOom ? 24 << 10 : 512 << 10;

  const counted = () => blocks.length; // arena: dead blocks stay counted
  const alive = () => blocks.filter((b) => !b.dead);
  const fail = (message: string): never => {
    throw new Error(message);
  };

  const record = (view: ArrayBufferView, size: number, align: number, handle: Handle | null = null): Block => {
    const bytes = byteView(view);
    if (bytes.length !== size) fail(`${op}: got ${bytes.length} bytes, asked for ${size}`);
    const address = addressOf(bytes);
    if (address % align !== 0) fail(`${op}: address ${address} (0x${address.toString(16)}) is not aligned to ${align}`);
    const block: Block = {
      id: nextId,
      byte: 1 + (nextId % 255),
      size,
      align,
      view,
      bytes,
      words: null,
      address,
      dead: false,
      handle,
    };
    nextId++;
    served++;
    overlapCheck(block);
    bytes.fill(block.byte);
    blocks.push(block);
    liveBytes += size;
    if (arena) mostRecent = block;
    return block;
  };

  const overlapCheck = (fresh: Block) => {
    if (fresh.size === 0) return;
    const lo = fresh.address, hi = fresh.address + fresh.size;
    for (const b of blocks) {
      if (b === fresh || b.size === 0) continue;
      if (b.address < hi && lo < b.address + b.size) {
        fail(
          `${op}: new block [0x${lo.toString(16)}, +${fresh.size}) overlaps live block #${b.id} ` +
            `[0x${b.address.toString(16)}, +${b.size})${b.dead ? " (freed out of order, still held)" : ""}`,
        );
      }
    }
  };

  const removeAt = (index: number) => {
    const [b] = blocks.splice(index, 1);
    liveBytes -= b.size;
    if (mostRecent === b) mostRecent = null;
    if (caps.markers) {
      for (let i = markers.length - 1; i >= 0; i--) if (markers[i].depth > blocks.length) markers.splice(i, 1);
    }
    return b;
  };

  // Arena frees: the most recent block rolls back, others stay counted.
  // Only the most recent block's own view rolls it back: another view of it (a prefix) cannot be told from a
  // view kept from a block rolled back before, so its free is counted and ignored like any other.
  const arenaFree = (b: Block, ownView = true) => {
    if (b === mostRecent && ownView) removeAt(blocks.indexOf(b));
    else b.dead = true;
  };

  const pickBlock = (): Block | null => {
    const candidates = caps.lifo ? blocks.slice(-1) : alive();
    if (candidates.length === 0) return null;
    if (arena && mostRecent !== null && below(next, 2) === 0) return mostRecent;
    return candidates[below(next, candidates.length)];
  };

  const pickAlign = (): number | undefined => {
    if (below(next, 3) === 0) return undefined;
    return 1 << below(next, maxAlignLog + 1);
  };

  const doAlloc = () => {
    const want = randomSize(next, caps.maxSize);
    const align = pickAlign();
    const kind = below(next, 20);
    if (want === 0 || kind === 0) {
      op = `alloc(0${align === undefined ? "" : `, ${align}`})`;
      const v = allocator.alloc(0, align);
      if (v.length !== 0 || v.byteLength !== 0) fail(`${op}: got a view of ${v.byteLength} bytes`);
      empties.push({ view: v, scopes: scopes.length });
      return;
    }
    if (kind < 4) {
      const ctor = CTORS[below(next, CTORS.length)];
      const bpe = ctor.BYTES_PER_ELEMENT;
      const length = Math.max(1, Math.floor(want / bpe));
      const a = align === undefined ? undefined : Math.max(align, bpe);
      op = `array(${ctor.name}, ${length}${a === undefined ? "" : `, ${a}`})`;
      let arr: TypedArray;
      try {
        arr = allocator.array(ctor, length, a);
      } catch (error) {
        if (caps.tolerateOom && isOom(error)) return;
        throw error;
      }
      if (arr.length !== length) fail(`${op}: got ${arr.length} elements`);
      record(arr, length * bpe, a ?? bpe);
      return;
    }
    if (kind < 8) {
      op = `tryAlloc(${want}${align === undefined ? "" : `, ${align}`})`;
      const v = allocator.tryAlloc(want, align);
      if (v === null) {
        if (caps.tolerateOom) return;
        fail(`${op}: returned null`);
      }
      record(v!, want, align ?? 16);
      return;
    }
    if (caps.handles && kind < 10) {
      op = `handle(${want})`;
      let h: Handle;
      try {
        h = heap.handle(want);
      } catch (error) {
        if (caps.tolerateOom && isOom(error)) return;
        throw error;
      }
      record(h.bytes, want, 16, h);
      return;
    }
    op = `alloc(${want}${align === undefined ? "" : `, ${align}`})`;
    let v: Uint8Array;
    try {
      v = allocator.alloc(want, align);
    } catch (error) {
      if (caps.tolerateOom && isOom(error)) return;
      throw error;
    }
    record(v, want, align ?? 16);
  };

  const doFree = () => {
    const b = pickBlock();
    if (b === null) return doAlloc();
    if (b.handle !== null) {
      op = `handle #${b.id}.free()`;
      if (b.handle.pinned && below(next, 2) === 0) {
        op = `handle #${b.id}.unpin()`;
        b.handle.unpin();
        return;
      }
      b.handle.free();
      removeAt(blocks.indexOf(b));
      return;
    }
    const prefix = b.size > 4 && below(next, 10) === 0;
    op = `free(block #${b.id} of ${b.size} bytes${prefix ? ", through a 4-byte prefix view" : ""})`;
    const damage = damaged(b);
    if (damage !== -1) fail(`${op}: block damaged before the free (${damage})`);
    allocator.free(prefix ? new Uint8Array(b.view.buffer, b.view.byteOffset, 4) : b.view);
    if (arena) arenaFree(b, !prefix);
    else removeAt(blocks.indexOf(b));
    if (caps.detachesOnFree && b.bytes.length !== 0) fail(`${op}: the freed view still has ${b.bytes.length} bytes`);
  };

  const doResize = () => {
    const b = pickBlock();
    if (b === null || b.handle !== null) return doAlloc();
    const r = below(next, 10);
    const newSize = r === 0 ? 0 : r === 1 ? b.size : randomSize(next, caps.maxSize) || 1;
    op = `resize(block #${b.id} of ${b.size} bytes aligned ${b.align}, ${newSize})`;
    const wasMostRecent = b === mostRecent;
    let fresh: Uint8Array;
    try {
      fresh = allocator.resize(b.view, newSize);
    } catch (error) {
      if (caps.tolerateOom && isOom(error)) {
        const damage = damaged(b);
        if (damage !== -1) fail(`${op}: failed (${describeError(error)}) and damaged the block (${damage})`);
        return;
      }
      throw error;
    }
    if (fresh.length !== newSize) fail(`${op}: got ${fresh.length} bytes`);
    const kept = Math.min(b.size, newSize);
    for (let i = 0; i < kept; i++) {
      if (fresh[i] !== b.byte) fail(`${op}: byte ${i} is ${fresh[i]}, was ${b.byte} before the resize`);
    }
    if (newSize === 0) {
      empties.push({ view: fresh, scopes: scopes.length });
      if (arena) arenaFree(b);
      else removeAt(blocks.indexOf(b));
      return;
    }
    const address = addressOf(fresh);
    if (address % b.align !== 0) {
      fail(`${op}: the block moved to ${address} (${address % b.align} mod ${b.align}), losing its alignment`);
    }
    if (arena) {
      if (wasMostRecent && address === b.address) {
        // in place
        liveBytes += newSize - b.size;
        b.size = newSize;
        b.view = fresh;
        b.bytes = fresh;
        b.words = null;
        b.bytes.fill(b.byte);
        return;
      }
      b.dead = true; // the old block stays counted until the scope's end or reset
      const moved = record(fresh, newSize, b.align);
      moved.byte = b.byte;
      fresh.fill(b.byte);
      return;
    }
    const at = blocks.indexOf(b);
    liveBytes += newSize - b.size;
    b.size = newSize;
    b.view = fresh;
    b.bytes = fresh;
    b.words = null;
    b.address = address;
    overlapCheck(b);
    fresh.fill(b.byte);
    if (at < 0) fail(`${op}: lost the block`);
  };

  const doMark = () => {
    if (below(next, 2) === 0 || markers.length === 0) {
      op = "mark()";
      markers.push({ marker: stack.mark(), depth: blocks.length });
      return;
    }
    const i = below(next, markers.length);
    const { marker, depth } = markers[i];
    op = `rewind(marker at depth ${depth} of ${blocks.length})`;
    stack.rewind(marker);
    while (blocks.length > depth) removeAt(blocks.length - 1);
  };

  const doScope = () => {
    const r = below(next, 20);
    if (r < 10 && scopes.length < 6) {
      op = "scope()";
      scopes.push({ handle: arenaAllocator.scope(), start: blocks.length });
      mostRecent = null;
      return;
    }
    if (r < 19 && scopes.length > 0) {
      const depth = below(next, scopes.length);
      op = `scope.end() at depth ${depth + 1} of ${scopes.length}`;
      scopes[depth].handle.end();
      const released = blocks.splice(scopes[depth].start);
      for (const b of released) {
        liveBytes -= b.size;
        if (arena!.safety && b.bytes.length !== 0) {
          fail(`${op}: a view released by the scope's end still has ${b.bytes.length} bytes (safety is on)`);
        }
      }
      scopes.length = depth;
      // Empty views made inside the ended scopes went with them.
      for (let i = empties.length - 1; i >= 0; i--) if (empties[i].scopes > depth) empties.splice(i, 1);
      mostRecent = null;
      return;
    }
    const modes: ArenaResetMode[] = ["free-all", "retain-capacity", { retainLimit: 128 << 10 }];
    const mode = modes[below(next, modes.length)];
    op = `reset(${JSON.stringify(mode)})`;
    arenaAllocator.reset(mode);
    for (const b of blocks.splice(0)) {
      if ((arena!.safety || mode === "free-all") && b.bytes.length !== 0) {
        fail(`${op}: a released view still has ${b.bytes.length} bytes`);
      }
    }
    liveBytes = 0;
    scopes.length = 0;
    empties.length = 0;
    mostRecent = null;
  };

  const doDefragment = () => {
    op = "defragment()";
    const handles = blocks.filter((b) => b.handle !== null);
    if (handles.length > 0 && below(next, 3) === 0) {
      const h = handles[below(next, handles.length)];
      op = `handle #${h.id}.pin()`;
      h.handle!.pin();
      return;
    }
    const before = handles.map((b) => ({ b, address: b.address, view: b.bytes, pinned: b.handle!.pinned }));
    heap.defragment();
    for (const { b, address, view, pinned } of before) {
      const now = b.handle!.bytes;
      const moved = addressOf(now) !== address;
      if (moved && pinned) fail(`${op}: pinned handle #${b.id} moved`);
      if (moved && view.length !== 0) {
        fail(`${op}: handle #${b.id} moved but its old view still has ${view.length} bytes`);
      }
      b.view = now;
      b.bytes = now;
      b.words = null;
      b.address = addressOf(now);
    }
    const ranges = blocks.filter((b) => b.size > 0).sort((x, y) => x.address - y.address);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i - 1].address + ranges[i - 1].size > ranges[i].address) {
        fail(`${op}: blocks #${ranges[i - 1].id} and #${ranges[i].id} overlap after defragment()`);
      }
    }
  };

  const checkAll = () => {
    for (const b of blocks) {
      if (b.dead) continue;
      const damage = damaged(b);
      if (damage === -2) fail(`${op}: live block #${b.id} now has ${b.bytes.length} bytes, expected ${b.size}`);
      if (damage >= 0) {
        fail(
          `${op}: live block #${b.id} (${b.size} bytes at 0x${b.address.toString(16)}) was clobbered: byte ${damage} ` +
            `is ${b.bytes[damage]}, expected ${b.byte}`,
        );
      }
    }
    const s = allocator.stats();
    if (s.liveAllocations !== counted()) {
      fail(`${op}: stats().liveAllocations is ${s.liveAllocations}, the model has ${counted()}`);
    }
    if (s.allocatedBytes !== liveBytes) {
      fail(`${op}: stats().allocatedBytes is ${s.allocatedBytes}, the model has ${liveBytes}`);
    }
    if (s.totalAllocations - s.totalFrees !== s.liveAllocations) {
      fail(
        `${op}: totalAllocations ${s.totalAllocations} - totalFrees ${s.totalFrees} != liveAllocations ${s.liveAllocations}`,
      );
    }
  };

  try {
    for (step = 0; step < ops; step++) {
      const r = below(next, 100);
      const heavy = liveBytes > LIVE_BYTES_SOFT_CAP || blocks.length > 200;
      if (r < (heavy ? 20 : 45)) doAlloc();
      else if (r < 72) doFree();
      else if (r < 86) doResize();
      else if (r < 92 && empties.length > 0) {
        op = "free(an empty view)";
        allocator.free(empties.splice(below(next, empties.length), 1)[0].view);
      } else if (caps.markers && r < 98) doMark();
      else if (arena && r < 98) doScope();
      else if (caps.handles && r < 93) doDefragment();
      else doAlloc();
      checkAll();
    }
    step = ops;
    op = "returning everything";
    for (const e of empties) allocator.free(e.view);
    if (arena) {
      for (const s of scopes) s.handle.end();
      arenaAllocator.reset();
      blocks.length = 0;
      liveBytes = 0;
    } else {
      while (blocks.length > 0) {
        const b = blocks[blocks.length - 1];
        if (b.handle !== null) {
          while (b.handle.pinned) b.handle.unpin();
          b.handle.free();
        } else allocator.free(b.view);
        removeAt(blocks.length - 1);
      }
    }
    const s = allocator.stats();
    if (s.allocatedBytes !== 0 || s.liveAllocations !== 0) {
      fail(`${op}: at the end stats() still has ${s.liveAllocations} blocks, ${s.allocatedBytes} bytes`);
    }
    if (served < ops / 5) fail(`only ${served} of ${ops} operations allocated anything: the run proves little`);
  } catch (error) {
    const message = error instanceof Error && !(error instanceof AllocationError) && error.constructor === Error
      ? error.message
      : `${op}: ${describeError(error)}`;
    throw new Error(
      `${label}: randomized run failed at step ${step} of ${ops} (seed 0x${seed.toString(16)}; rerun with ` +
        `MEMKIT_SEED=0x${seed.toString(16)}): ${message}`,
      { cause: error },
    );
  }
}

/** stats() without the fields that change with time. */
export function stableStats(a: Allocator): Omit<AllocatorStats, never> {
  const s = { ...a.stats() } as AllocatorStats & { avgAllocationNs?: number };
  delete s.avgAllocationNs;
  return s;
}
