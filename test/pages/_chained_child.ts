// Run in a child process by the chain tests over memory memkit makes outside its allocators
// (test/pages/mapping_chains_test.ts, test/budget/budget_chains_test.ts, test/hal/hal_chains_test.ts): a
// failure here may be a segfault. Each case builds an allocator (an Arena, a DynamicArray) over a small
// Allocator written in JavaScript that passes on memory memkit made (a mapping, a window, a frame, a
// purgeable buffer, a resource, shared memory), then memkit releases or reuses that memory. The chained
// view must read as length 0, the chain's next use must throw AllocationError("use-after-free"), and a
// later owner of the memory must keep its bytes. With "reverse", the chain is disposed first, then the
// memory released: nothing may throw or crash. Prints {"begin": id} before each case and
// {"id", "ok", "failures"} after it.
import process from "node:process";
import { zeroStats } from "../../src/alloc/_zero_stats.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import {
  addressOf,
  AllocationError,
  type Allocator,
  Arena,
  DynamicArray,
  FramePool,
  mapFile,
  mapPages,
  MemoryInterface,
  openSharedMemory,
  PurgeableBuffer,
  ResourceHeap,
} from "../../mod.ts";

const SIZE = 1 << 16;

/** The memory a case hands the chain, and what memkit then does to it. */
interface Source {
  /** `size` bytes of memkit-made memory (the JavaScript backing passes this on). */
  give(size: number): Uint8Array;
  /** memkit releases or reuses that memory. */
  release(): void;
  /**
   * After `release`, a later owner of the same memory, filled with 0x42, or null when the memory is gone.
   * Checked untouched after the chain's views were written.
   */
  later?(): Uint8Array | null;
  /** Ends whatever is left (after the checks). */
  cleanup?(): void;
  /** What the chain's use-after-free message must name (the program's own call). */
  names?: string;
}

let tmp: string | null = null;

const SOURCES: Record<string, () => Source> = {
  "mapPages bytes, unmap()": () => {
    const m = mapPages(SIZE);
    return { give: (n) => m.bytes.subarray(0, n), release: () => m.unmap(), names: "Mapping.unmap()" };
  },
  "mapPages view(), unmap()": () => {
    const m = mapPages(SIZE);
    return { give: (n) => m.view(0, n), release: () => m.unmap() };
  },
  "mapPages bytes, [Symbol.dispose]()": () => {
    const m = mapPages(SIZE);
    return { give: (n) => m.bytes.subarray(0, n), release: () => m[Symbol.dispose]() };
  },
  "mapPages window(), close()": () => {
    const m = mapPages(SIZE);
    const w = m.window(0, SIZE);
    return {
      give: (n) => w.bytes.subarray(0, n),
      release: () => w.close(),
      later: () => m.bytes.fill(0x42),
      cleanup: () => m.unmap(),
      names: "MappingWindow.close()",
    };
  },
  "mapPages window(), unmap()": () => {
    const m = mapPages(SIZE);
    const w = m.window(0, SIZE);
    return { give: (n) => w.bytes.subarray(0, n), release: () => m.unmap() };
  },
  'mapPages bytes, protect("read")': () => {
    const m = mapPages(SIZE);
    return {
      give: (n) => m.bytes.subarray(0, n),
      release: () => m.protect("read"),
      cleanup: () => m.unmap(),
      names: 'Mapping.protect("read")',
    };
  },
  'mapPages bytes, protect("none")': () => {
    const m = mapPages(SIZE);
    return { give: (n) => m.bytes.subarray(0, n), release: () => m.protect("none"), cleanup: () => m.unmap() };
  },
  "mapFile bytes, unmap()": () => {
    tmp ??= mkdtempSync(`${tmpdir()}/memkit-chain-`);
    const path = `${tmp}/data.bin`;
    writeFileSync(path, new Uint8Array(SIZE));
    const m = mapFile(path, { write: true, shared: true });
    return { give: (n) => m.bytes.subarray(0, n), release: () => m.unmap() };
  },
  "FramePool frame, released to the pool and handed to the next acquire": () => {
    const pool = new FramePool();
    const format = { width: SIZE / 4, height: 1, bytesPerPixel: 4 };
    const set = pool.acquireFrameSet(format)!;
    let address = 0;
    return {
      give: (n) => {
        address = set.current.address;
        return set.current.bytes.subarray(0, n);
      },
      release: () => set.release(),
      later: () => {
        const next = pool.acquireFrameSet(format)!;
        const frames = [next.current, next.next, next.previous];
        for (const frame of frames) frame.bytes.fill(0x42);
        return frames.find((frame) => frame.address === address)?.bytes ?? null;
      },
      cleanup: () => pool.dispose(),
      names: "FramePool.release()",
    };
  },
  "FramePool frame, FramePool.dispose()": () => {
    const pool = new FramePool();
    const set = pool.acquireFrameSet({ width: SIZE / 4, height: 1, bytesPerPixel: 4 })!;
    return { give: (n) => set.next.bytes.subarray(0, n), release: () => pool.dispose(), names: "FramePool.dispose()" };
  },
  "PurgeableBuffer, makeVolatile()": () => {
    const buffer = new PurgeableBuffer(SIZE);
    return {
      give: (n) => buffer.bytes.subarray(0, n),
      release: () => buffer.makeVolatile(),
      cleanup: () => buffer.dispose(),
      names: "PurgeableBuffer.makeVolatile()",
    };
  },
  "PurgeableBuffer, dispose()": () => {
    const buffer = new PurgeableBuffer(SIZE);
    return {
      give: (n) => buffer.bytes.subarray(0, n),
      release: () => buffer.dispose(),
      names: "PurgeableBuffer.dispose()",
    };
  },
  "ResourceHeap resource, release(), its space reused": () => {
    const heap = new ResourceHeap({ capacity: SIZE * 2 });
    const resource = heap.allocate(SIZE, { alignment: 4096 })!;
    const offset = resource.offset;
    return {
      give: (n) => resource.bytes.subarray(0, n),
      release: () => resource.release(),
      later: () => {
        const next = heap.allocate(SIZE, { alignment: 4096 })!;
        if (next.offset !== offset) throw new Error("the heap placed the next resource elsewhere");
        return next.bytes.fill(0x42);
      },
      cleanup: () => heap.dispose(),
      names: "ResourceHeap.free()",
    };
  },
  "ResourceHeap resource, alias(first, later): first's memory": () => {
    const heap = new ResourceHeap({ capacity: SIZE * 3 });
    const first = heap.allocate(SIZE, { alignment: 4096, aliasable: true })!;
    const second = heap.allocate(SIZE, { alignment: 4096 })!;
    return {
      give: (n) => first.bytes.subarray(0, n),
      release: () => heap.alias(first, second),
      later: () => second.bytes.fill(0x42),
      cleanup: () => heap.dispose(),
      names: "ResourceHeap.alias()",
    };
  },
  "ResourceHeap resource, alias(first, later): later's own memory, its space reused": () => {
    const heap = new ResourceHeap({ capacity: SIZE * 3 });
    const first = heap.allocate(SIZE, { alignment: 4096, aliasable: true })!;
    const second = heap.allocate(SIZE, { alignment: 4096 })!;
    const offset = second.offset;
    return {
      give: (n) => second.bytes.subarray(0, n),
      release: () => heap.alias(first, second),
      later: () => {
        const next = heap.allocate(SIZE, { alignment: 4096 })!;
        if (next.offset !== offset) throw new Error("the heap placed the next resource elsewhere");
        return next.bytes.fill(0x42);
      },
      cleanup: () => heap.dispose(),
    };
  },
  "ResourceHeap resource, allocate({ into })": () => {
    const heap = new ResourceHeap({ capacity: SIZE * 2 });
    const first = heap.allocate(SIZE, { alignment: 4096, aliasable: true })!;
    let next: Uint8Array | null = null;
    return {
      give: (n) => first.bytes.subarray(0, n),
      release: () => {
        next = heap.allocate(SIZE, { alignment: 4096, into: first })!.bytes;
      },
      later: () => next!.fill(0x42),
      cleanup: () => heap.dispose(),
      names: "ResourceHeap.allocate({ into })",
    };
  },
  "ResourceHeap, dispose(), a new heap at the same address": () => {
    const heap = new ResourceHeap({ capacity: SIZE * 2 });
    const resource = heap.allocate(SIZE, { alignment: 4096 })!;
    let next: ResourceHeap | null = null;
    return {
      give: (n) => resource.bytes.subarray(0, n),
      release: () => heap.dispose(),
      later: () => {
        next = new ResourceHeap({ capacity: SIZE * 2 });
        return next.allocate(SIZE, { alignment: 4096 })!.bytes.fill(0x42); // often the same memory
      },
      cleanup: () => next?.dispose(),
      names: "ResourceHeap.dispose()",
    };
  },
  "openSharedMemory bytes, close()": () => {
    const name = `memkit-chain-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    const memory = openSharedMemory(name, SIZE, { create: true, exclusive: true });
    return {
      give: (n) => memory.bytes.subarray(0, n),
      release: () => memory.close(),
      cleanup: () => memory.unlink(),
      names: "SharedMemory.close()",
    };
  },
  'MemoryInterface "shared" allocation, deallocate()': () => {
    const memory = new MemoryInterface({ pressure: false });
    const a = memory.allocate({ size: SIZE, type: "shared" });
    return {
      give: (n) => a.bytes.subarray(0, n),
      release: () => memory.deallocate(a),
      cleanup: () => memory.dispose(),
      names: "MemoryInterface.deallocate()",
    };
  },
  'MemoryInterface "shared" allocation, dispose()': () => {
    const memory = new MemoryInterface({ pressure: false });
    const a = memory.allocate({ size: SIZE, type: "shared" });
    return { give: (n) => a.bytes.subarray(0, n), release: () => memory.dispose(), names: "MemoryInterface.dispose()" };
  },
  'MemoryInterface "secret" allocation, dispose()': () => {
    const memory = new MemoryInterface({ pressure: false });
    const a = memory.allocate({ size: SIZE, flags: ["secret"] });
    return { give: (n) => a.bytes.subarray(0, n), release: () => memory.dispose(), names: "MemoryInterface.dispose()" };
  },
  'MemoryInterface "dma-capable" (locked) allocation, dispose()': () => {
    const memory = new MemoryInterface({ pressure: false });
    const a = memory.allocate({ size: 4096, flags: ["dma-capable"] });
    return { give: (n) => a.bytes.subarray(0, n), release: () => memory.dispose(), names: "MemoryInterface.dispose()" };
  },
  'MemoryInterface "temporary" allocation, endFrame()': () => {
    const memory = new MemoryInterface({ pressure: false });
    const a = memory.allocate({ size: SIZE, type: "temporary" });
    return {
      give: (n) => a.bytes.subarray(0, n),
      release: () => memory.endFrame(),
      cleanup: () => memory.dispose(),
      names: "MemoryInterface.endFrame()",
    };
  },
};

/** The holders: what an allocator over the JavaScript backing hands out, and its next use. */
const HOLDERS: Record<string, (backing: Allocator) => { view: Uint8Array; use: () => unknown; end: () => void }> = {
  "an Arena": (backing) => {
    const arena = new Arena({ capacity: 4096, growth: "fixed", backing });
    const view = arena.alloc(1024).fill(7);
    return { view, use: () => arena.alloc(16), end: () => arena.dispose() };
  },
  "a DynamicArray": (backing) => {
    const array = new DynamicArray<number>("u32", { allocator: backing, capacity: 64 });
    array.push(7);
    return { view: array.bytes, use: () => array.get(0), end: () => array[Symbol.dispose]() };
  },
};

/** An Allocator written in JavaScript that passes on what `give` returns, once; its free keeps the memory. */
function passOn(give: (size: number) => Uint8Array): Allocator {
  let given: Uint8Array | null = null;
  const backing = {
    kind: "system",
    alloc(size: number) {
      const view = backing.tryAlloc(size);
      if (view === null) throw new RangeError("the backing gave its one block already");
      return view;
    },
    tryAlloc(size: number) {
      if (given !== null) return null;
      return given = give(size);
    },
    array() {
      throw new Error("not used");
    },
    free() {},
    resize() {
      throw new Error("not used");
    },
    owns: (view: ArrayBufferView) => given !== null && view.buffer === given.buffer,
    stats: () => zeroStats("system"),
  };
  return backing as unknown as Allocator;
}

function runCase(id: string): string[] {
  const [source, holder, order] = id.split(" | ");
  const failures: string[] = [];
  const s = SOURCES[source]();
  const built = HOLDERS[holder](passOn(s.give));
  const address = addressOf(built.view);
  if (built.view.length === 0) failures.push("the chain's view was empty before the release");
  if (order === "reverse") {
    built.end();
    s.release();
    if (s.later !== undefined) {
      const later = s.later();
      if (later !== null && later.some((b) => b !== 0x42)) failures.push("a later owner's bytes changed");
    }
  } else {
    s.release();
    if (built.view.length !== 0) failures.push(`the chain's view reads ${built.view.length} bytes after the release`);
    try {
      built.use();
      failures.push("the chain's next use did not throw");
    } catch (error) {
      if (!(error instanceof AllocationError) || error.category !== "use-after-free") {
        failures.push(`the chain's next use threw ${(error as Error).name}: ${(error as Error).message}`);
      } else if (s.names !== undefined && !error.message.includes(s.names)) {
        failures.push(`the message does not name ${s.names}: ${error.message}`);
      }
    }
    if (s.later !== undefined) {
      const later = s.later();
      if (later !== null) {
        // The chain's views are all detached: none of these writes may reach the later owner's bytes.
        try {
          built.view.fill(1);
        } catch { /* a detached view */ }
        if (later.length !== 0 && addressOf(later) <= address && address < addressOf(later) + later.length) {
          if (later.some((b) => b !== 0x42)) failures.push("the chain wrote into a later owner's bytes");
        }
      }
    }
    try {
      built.end();
    } catch (error) {
      failures.push(`the chain's dispose after the release threw ${(error as Error).message}`);
    }
  }
  s.cleanup?.();
  return failures;
}

/**
 * A chain's own buffer over memkit's memory transferred away (ArrayBuffer.prototype.transfer): another buffer
 * reaches that memory, so memkit must keep it when the lessor releases it (never unmap it, never hand it to
 * the next owner). Each returns its failures.
 */
const THEFTS: Record<string, () => string[]> = {
  "a mapping unmapped: its pages stay mapped": () => {
    const m = mapPages(SIZE);
    const arena = new Arena({ capacity: 4096, growth: "fixed", backing: passOn((n) => m.bytes.subarray(0, n)) });
    const stolen = new Uint8Array(arena.alloc(64).fill(5).buffer.transfer());
    m.unmap();
    stolen[0] = 6; // unmapped pages would kill the process here
    return stolen[1] === 5 ? [] : ["the stolen buffer's bytes changed"];
  },
  "a FramePool frame released: never handed to the next acquire": () => {
    const pool = new FramePool();
    const format = { width: SIZE / 4, height: 1, bytesPerPixel: 4 };
    const set = pool.acquireFrameSet(format)!;
    const address = set.current.address;
    const backing = passOn((n) => set.current.bytes.subarray(0, n));
    const arena = new Arena({ capacity: 4096, growth: "fixed", backing });
    const stolen = new Uint8Array(arena.alloc(64).fill(5).buffer.transfer());
    set.release();
    const failures: string[] = [];
    for (let i = 0; i < 3; i++) {
      const next = pool.acquireFrameSet(format)!;
      for (const frame of [next.current, next.next, next.previous]) {
        if (frame.address === address) failures.push("the next acquire handed the frame out again");
        frame.bytes.fill(0x42);
      }
      next.release();
    }
    if (stolen.some((b, i) => i < 64 && b !== 5)) failures.push("the stolen buffer's bytes changed");
    pool.dispose();
    stolen[0] = 6; // unmapped pages would kill the process here
    return failures;
  },
  "a ResourceHeap resource released: its space is never reused": () => {
    const heap = new ResourceHeap({ capacity: SIZE * 4 });
    const resource = heap.allocate(SIZE, { alignment: 4096 })!;
    const offset = resource.offset;
    const arena = new Arena({
      capacity: 4096,
      growth: "fixed",
      backing: passOn((n) => resource.bytes.subarray(0, n)),
    });
    const stolen = new Uint8Array(arena.alloc(64).fill(5).buffer.transfer());
    resource.release();
    const failures: string[] = [];
    for (let i = 0; i < 3; i++) {
      const next = heap.allocate(SIZE, { alignment: 4096 });
      if (next === null) break;
      if (next.offset === offset) failures.push("the heap placed a new resource in the kept memory");
      next.bytes.fill(0x42);
    }
    if (stolen.some((b, i) => i < 64 && b !== 5)) failures.push("the stolen buffer's bytes changed");
    heap.dispose();
    stolen[0] = 6;
    return failures;
  },
};

/** The ids of the THEFTS cases. */
export function theftIds(): string[] {
  return Object.keys(THEFTS).map((name) => `theft: ${name}`);
}

/** Every case id: source | holder | order. */
export function caseIds(filter: (source: string) => boolean): string[] {
  const ids: string[] = [];
  for (const source of Object.keys(SOURCES).filter(filter)) {
    for (const holder of Object.keys(HOLDERS)) {
      for (const order of ["release", "reverse"]) ids.push(`${source} | ${holder} | ${order}`);
    }
  }
  return ids;
}

if (import.meta.main) {
  for (const id of process.argv.slice(2)) {
    console.log(JSON.stringify({ begin: id }));
    let failures: string[];
    try {
      failures = id.startsWith("theft: ") ? THEFTS[id.slice(7)]() : runCase(id);
    } catch (error) {
      failures = [`threw ${(error as Error).stack}`];
    }
    console.log(JSON.stringify({ id, ok: failures.length === 0, failures }));
  }
  if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
}
