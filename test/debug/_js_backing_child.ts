// Run in a child process by test/debug/debug_js_backing_test.ts (a failure here may be a segfault): a
// DebugAllocator over an Allocator written in JavaScript that passes on memory memkit owns (a SystemAllocator's,
// an Arena's or a PoolAllocator's blocks, a mapping, a mapping's window), then that memory's real owner releases
// it. The DebugAllocator's views must read as length 0 (its own buffers always; the backing's views where their
// owner detaches them), its blocks must be retired (counted as freed, a later free or resize says
// "use-after-free" naming the release), a release of everything must end it ("use-after-free" on every call,
// naming the release), and nothing it does afterwards (check(), deinit(), a stale view's write) may reach memory
// the owner gave to someone else. With "reverse", the DebugAllocator is disposed first, then the memory
// released: nothing may throw or crash. Prints {"begin": id} before each case and {"id", "failures"} after it.
import process from "node:process";
import { zeroStats } from "../../src/alloc/_zero_stats.ts";
import {
  addressOf,
  AllocationError,
  type Allocator,
  Arena,
  DebugAllocator,
  type DebugAllocatorOptions,
  DynamicArray,
  mapPages,
  PoolAllocator,
  SystemAllocator,
} from "../../mod.ts";

/** Memory memkit owns, passed on by an Allocator written in JavaScript, and its owner's release of it. */
interface Source {
  /** The JavaScript backing. */
  backing: Allocator;
  /** The owner releases (or takes back) every block the backing passed on so far. */
  release(): void;
  /** The release took the memory's owner away: the DebugAllocator ends. */
  total: boolean;
  /** What a use-after-free message must name (the program's own call). */
  names: string;
  /** The owner detaches its own views of that memory (the DebugAllocator's views of the backing's buffer go too). */
  detaches: boolean;
  /** After the release, a new owner of the same memory, filled with 0x42 (null: none). */
  later?(): Uint8Array[];
  /** Ends what is left. */
  cleanup(): void;
}

/** An Allocator written in JavaScript that passes on the blocks of `under` (recorded in `given`). */
function passing(under: Allocator, given: Uint8Array[]): Allocator {
  return {
    kind: "system",
    alloc(size: number, align?: number) {
      const block = under.alloc(size, align);
      given.push(block);
      return block;
    },
    tryAlloc(size: number, align?: number) {
      const block = under.tryAlloc(size, align);
      if (block !== null) given.push(block);
      return block;
    },
    array() {
      throw new Error("not used");
    },
    free(view: ArrayBufferView) {
      under.free(view);
    },
    resize(view: ArrayBufferView, size: number) {
      const block = under.resize(view, size);
      given.push(block);
      return block;
    },
    owns: (view: ArrayBufferView) => under.owns(view),
    stats: () => zeroStats("system"),
  } as unknown as Allocator;
}

/** An Allocator written in JavaScript that carves `bytes()` (a mapping's memory) from the start; frees keep it. */
function carving(bytes: () => Uint8Array): Allocator {
  let used = 0;
  const tryAlloc = (size: number, align = 16) => {
    const at = Math.ceil(used / align) * align;
    const all = bytes();
    if (at + size > all.length) return null;
    used = at + size;
    return all.subarray(at, at + size);
  };
  return {
    kind: "system",
    alloc(size: number, align?: number) {
      const block = tryAlloc(size, align);
      if (block === null) throw new AllocationError("out-of-memory", "the mapping is full");
      return block;
    },
    tryAlloc,
    array() {
      throw new Error("not used");
    },
    free() {},
    resize() {
      throw new RangeError("this backing does not resize");
    },
    owns: () => true,
    stats: () => zeroStats("system"),
  } as unknown as Allocator;
}

// Fills `blocks` with 0x42 and returns them: a later owner's bytes, checked untouched at the end.
const taken = (blocks: Uint8Array[]) => blocks.map((block) => block.fill(0x42));

const SOURCES: Record<string, () => Source> = {
  "SystemAllocator blocks, SystemAllocator.free() of each": () => {
    const system = new SystemAllocator();
    const given: Uint8Array[] = [];
    return {
      backing: passing(system, given),
      release: () => {
        for (const block of given.splice(0)) {
          try {
            system.free(block);
          } catch { /* freed already (a DebugAllocator's free, a resize) */ }
        }
      },
      total: false,
      names: "SystemAllocator.free()",
      detaches: true,
      later: () => taken([system.alloc(64), system.alloc(300), system.alloc(48)]),
      cleanup: () => system.dispose(),
    };
  },
  "SystemAllocator blocks, SystemAllocator.dispose()": () => {
    const system = new SystemAllocator();
    return {
      backing: passing(system, []),
      release: () => system.dispose(),
      total: true,
      names: "SystemAllocator.dispose()",
      detaches: true,
      cleanup() {},
    };
  },
  "Arena blocks, Arena.reset()": () => {
    const arena = new Arena({ capacity: 1 << 16 });
    return {
      backing: passing(arena, []),
      release: () => arena.reset(),
      total: false,
      names: "Arena.reset()",
      detaches: true,
      later: () => taken([arena.alloc(4096)]),
      cleanup: () => arena.dispose(),
    };
  },
  "Arena(safety: false) blocks, Arena.reset()": () => {
    const arena = new Arena({ capacity: 1 << 16, safety: false });
    return {
      backing: passing(arena, []),
      release: () => arena.reset(),
      total: false,
      names: "Arena.reset()",
      detaches: false,
      later: () => taken([arena.alloc(4096)]),
      cleanup: () => arena.dispose(),
    };
  },
  "Arena blocks, Arena.dispose()": () => {
    const arena = new Arena({ capacity: 1 << 16 });
    return {
      backing: passing(arena, []),
      release: () => arena.dispose(),
      total: true,
      names: "Arena.dispose()",
      detaches: true,
      cleanup() {},
    };
  },
  "PoolAllocator blocks, PoolAllocator.free() of each, then reused": () => {
    const pool = new PoolAllocator({ blockSize: 256, align: 64, blocksPerChunk: 16 });
    const given: Uint8Array[] = [];
    return {
      backing: passing(pool, given),
      release: () => {
        for (const block of given.splice(0)) {
          try {
            pool.free(block);
          } catch { /* freed already */ }
        }
      },
      total: false,
      names: "PoolAllocator.free()",
      detaches: false,
      later: () => taken(Array.from({ length: 16 }, () => pool.alloc(256))),
      cleanup: () => pool.dispose(),
    };
  },
  "PoolAllocator blocks, PoolAllocator.dispose()": () => {
    const pool = new PoolAllocator({ blockSize: 256, align: 64 });
    return {
      backing: passing(pool, []),
      release: () => pool.dispose(),
      total: true,
      names: "PoolAllocator.dispose()",
      detaches: true,
      cleanup() {},
    };
  },
  "mapPages bytes, unmap()": () => {
    const mapping = mapPages(1 << 16);
    return {
      backing: carving(() => mapping.bytes),
      release: () => mapping.unmap(),
      total: true,
      names: "Mapping.unmap()",
      detaches: true,
      cleanup() {},
    };
  },
  "mapPages window, close()": () => {
    const mapping = mapPages(1 << 16);
    const window = mapping.window(0, 1 << 15);
    let closed = false;
    // While the window is open its memory; then the mapping's second half (the backing lives on).
    return {
      backing: carving(() => closed ? mapping.bytes.subarray(1 << 15) : window.bytes),
      release: () => {
        window.close();
        closed = true;
      },
      total: false,
      names: "MappingWindow.close()",
      detaches: true,
      later: () => taken([mapping.bytes.subarray(0, 1 << 15)]),
      cleanup: () => mapping.unmap(),
    };
  },
};

const MODES: Record<string, DebugAllocatorOptions> = {
  "detachFreed": { detachFreed: true },
  "checks (the default)": {},
  "poison and retainMetadata": { poison: true, retainMetadata: true },
  "counters only": { safety: false },
};

type Check = (ok: boolean, what: string) => void;

function outcome(fn: () => unknown): { category: string; message: string } {
  try {
    fn();
    return { category: "ok", message: "" };
  } catch (error) {
    return error instanceof AllocationError
      ? { category: error.category, message: error.message }
      : { category: `${(error as Error).name}`, message: (error as Error).message };
  }
}

function runCase(sourceName: string, modeName: string, order: string, check: Check): void {
  const source = SOURCES[sourceName]();
  const mode = MODES[modeName];
  const debug = new DebugAllocator(source.backing, mode);
  const views: Uint8Array[] = [debug.alloc(64).fill(1), debug.alloc(100, 64).fill(2)];
  const array = debug.array(Float64Array, 4).fill(3);
  if (mode.retainMetadata) debug.free(debug.alloc(48).fill(4)); // held back from the backing: its memory too
  const addresses = [...views, array].map((view) => addressOf(view));
  check(debug.stats().liveAllocations === 3, `${debug.stats().liveAllocations} live blocks before the release`);
  if (order === "reverse") {
    debug.dispose();
    source.release();
    const later = source.later?.() ?? [];
    later.forEach((block, i) => check(block.every((b) => b === 0x42), `a later owner's block ${i} changed`));
    source.cleanup();
    return;
  }
  source.release();
  const reads = mode.detachFreed || source.detaches;
  if (reads) {
    [...views, array].forEach((view, i) =>
      check(view.length === 0, `view ${i} reads ${view.length} elements after the release (expected 0)`)
    );
  }
  const stats = debug.stats();
  check(stats.liveAllocations === 0, `stats().liveAllocations is ${stats.liveAllocations} after the release`);
  check(stats.allocatedBytes === 0, `stats().allocatedBytes is ${stats.allocatedBytes} after the release`);
  // A later owner of the memory: nothing the DebugAllocator or its stale views do may reach it.
  const later = source.later?.() ?? [];
  if (reads) {
    for (const view of [...views, array]) {
      try {
        view.fill(9);
      } catch { /* a detached view */ }
    }
  }
  if (source.total) {
    const uses: Record<string, () => unknown> = {
      "alloc(8)": () => debug.alloc(8),
      "tryAlloc(8)": () => debug.tryAlloc(8),
      "array(Uint8Array, 8)": () => debug.array(Uint8Array, 8),
      "free(a released block)": () => debug.free(views[0]),
      "resize(a released block, 8)": () => debug.resize(views[1], 8),
      "check()": () => debug.check(),
    };
    for (const [use, run] of Object.entries(uses)) {
      const { category, message } = outcome(run);
      check(category === "use-after-free", `${use} after the release: ${category} ${message}`);
      if (category === "use-after-free") check(message.includes(source.names), `${use} names the release: ${message}`);
    }
    check(debug.owns(views[0]) === false, "owns() a released block is false");
  } else {
    if (!mode.detachFreed && !mode.retainMetadata && mode.safety !== false) {
      // (Detached views and held-back records say the same; counters only leave a foreign view to the backing.)
      const { category, message } = outcome(() => debug.free(views[0]));
      check(category === "use-after-free", `free of a released block: ${category} ${message}`);
      check(message.includes(source.names), `the free names the release: ${message}`);
    } else if (mode.safety !== false) {
      const { category, message } = outcome(() => debug.free(views[0]));
      check(category === "use-after-free", `free of a released block: ${category} ${message}`);
    }
    if (mode.safety !== false) {
      const { category } = outcome(() => debug.resize(views[1], 8));
      check(category === "use-after-free", `resize of a released block: ${category}`);
    }
    const { category, message } = outcome(() => debug.check());
    check(category === "ok", `check() after the release: ${category} ${message}`);
    // It lives on: its backing still serves.
    const fresh = debug.alloc(100).fill(7);
    const grown = debug.resize(fresh, 200);
    check(grown[99] === 7, "a resize after the release keeps the contents");
    debug.free(grown);
    check(debug.stats().liveAllocations === 0, "everything freed after the release");
  }
  const ended = outcome(() => debug.deinit());
  check(ended.category === "ok", `deinit() after the release: ${ended.category} ${ended.message}`);
  later.forEach((block, i) => {
    const overlaps = addresses.some((at) => at >= addressOf(block) && at < addressOf(block) + block.length);
    check(
      block.every((b) => b === 0x42),
      `a later owner's block ${i} changed${overlaps ? " (it holds a released block)" : ""}`,
    );
  });
  source.cleanup();
}

// Holders over such a DebugAllocator hear of the release through it.
const HOLDER_CASES: Record<string, (check: Check) => void> = {
  "a DynamicArray over a DebugAllocator over a mapping passed on, unmap()": (check) => {
    const mapping = mapPages(1 << 16);
    const debug = new DebugAllocator(carving(() => mapping.bytes));
    const array = new DynamicArray<number>("u32", { allocator: debug, capacity: 64 });
    array.push(7);
    const bytes = array.bytes;
    mapping.unmap();
    check(bytes.length === 0, `the array's bytes read ${bytes.length} after the unmap`);
    const { category, message } = outcome(() => array.get(0));
    check(category === "use-after-free", `get() after the unmap: ${category} ${message}`);
    check(message.includes("Mapping.unmap()"), `get() names the unmap: ${message}`);
    array.free();
    debug.dispose();
  },
  "two DebugAllocators over one JavaScript backing over a mapping, unmap(): each leases from the mapping": (check) => {
    // Their blocks are views of the mapping's buffer: neither may take the other's memory (or its own) for a
    // block of its own when it looks for the owner of what the backing passed on.
    for (const mode of Object.values(MODES)) {
      const mapping = mapPages(1 << 16);
      const backing = carving(() => mapping.bytes);
      const first = new DebugAllocator(backing, mode);
      const second = new DebugAllocator(backing, mode);
      const views = [first.alloc(64), second.alloc(64), first.alloc(64), second.alloc(64)];
      mapping.unmap();
      check(views.every((view) => view.length === 0), `${JSON.stringify(mode)}: a view outlived the unmap`);
      for (const debug of [first, second]) {
        const { category, message } = outcome(() => debug.alloc(8));
        check(category === "use-after-free" && message.includes("Mapping.unmap()"), `${category} ${message}`);
      }
    }
  },
  "blocks of two owners, one unmapped: the DebugAllocator ends, the other owner's blocks go back at its deinit()": (
    check,
  ) => {
    for (const [mode, theirs] of [["deinit", false], ["their owner's free first", true]] as const) {
      for (const options of Object.values(MODES)) {
        const label = `${mode}, ${JSON.stringify(options)}`;
        const mapping = mapPages(1 << 16);
        const system = new SystemAllocator();
        const given: Uint8Array[] = [];
        // Small blocks from the mapping, larger ones from the SystemAllocator.
        const small = carving(() => mapping.bytes);
        const large = passing(system, given);
        const backing = {
          ...large,
          tryAlloc: (size: number, align?: number) =>
            size < 128 ? small.tryAlloc(size, align) : large.tryAlloc(size, align),
          free: (view: ArrayBufferView) => {
            if (given.some((block) => block.buffer === view.buffer)) system.free(view);
          },
        } as unknown as Allocator;
        const debug = new DebugAllocator(backing, options);
        const views = [debug.alloc(32), debug.alloc(300)];
        mapping.unmap();
        check(views.every((view) => view.length === 0 || !options.detachFreed), `${label}: a view outlived the unmap`);
        check(outcome(() => debug.alloc(8)).category === "use-after-free", `${label}: the allocator ended`);
        check(system.stats().liveAllocations === 1, `${label}: the SystemAllocator's block is kept until deinit()`);
        let later: Uint8Array | null = null;
        if (theirs) {
          system.free(given[0]); // its owner's release: not the DebugAllocator's to give back any more
          later = system.alloc(300).fill(0x42); // often the same memory
        }
        check(debug.deinit() === "ok", `${label}: deinit() after the end`);
        const live = system.stats().liveAllocations;
        check(live === (theirs ? 1 : 0), `${label}: ${live} blocks live in the SystemAllocator after deinit()`);
        if (later !== null) check(later.every((b) => b === 0x42), `${label}: a later owner's bytes changed`);
        system.dispose();
      }
    }
  },
  "an Arena over a counters-only DebugAllocator over a mapping passed on, unmap()": (check) => {
    const mapping = mapPages(1 << 16);
    const debug = new DebugAllocator(carving(() => mapping.bytes), { safety: false });
    const arena = new Arena({ capacity: 4096, growth: "fixed", backing: debug });
    const view = arena.alloc(256).fill(5);
    mapping.unmap();
    check(view.length === 0, `the arena's view reads ${view.length} after the unmap`);
    const { category, message } = outcome(() => arena.alloc(16));
    check(category === "use-after-free", `the arena's alloc after the unmap: ${category} ${message}`);
    check(message.includes("Mapping.unmap()"), `the arena's alloc names the unmap: ${message}`);
    arena.dispose();
    debug.dispose();
  },
  "an Arena over a DebugAllocator over SystemAllocator blocks passed on, SystemAllocator.free() of its chunk": (
    check,
  ) => {
    const system = new SystemAllocator();
    const given: Uint8Array[] = [];
    const debug = new DebugAllocator(passing(system, given));
    const arena = new Arena({ capacity: 4096, growth: "fixed", backing: debug });
    const view = arena.alloc(256).fill(5);
    for (const block of given) system.free(block);
    check(view.length === 0, `the arena's view reads ${view.length} after the free`);
    const { category, message } = outcome(() => arena.alloc(16));
    check(category === "use-after-free", `the arena's alloc after the free: ${category} ${message}`);
    arena.dispose();
    check(debug.deinit() === "ok", "the DebugAllocator holds nothing");
    system.dispose();
  },
};

/** Every case id. */
export function caseIds(): string[] {
  const ids: string[] = [];
  for (const source of Object.keys(SOURCES)) {
    for (const mode of Object.keys(MODES)) {
      for (const order of ["release", "reverse"]) ids.push(`${source} | ${mode} | ${order}`);
    }
  }
  return [...ids, ...Object.keys(HOLDER_CASES)];
}

if (import.meta.main) {
  const args = process.argv.slice(2).length > 0
    ? process.argv.slice(2)
    : ((globalThis as { Deno?: { args: string[] } }).Deno?.args ?? []);
  for (const id of args) {
    console.log(JSON.stringify({ begin: id }));
    const failures: string[] = [];
    const check: Check = (ok, what) => {
      if (!ok) failures.push(what);
    };
    try {
      if (id in HOLDER_CASES) HOLDER_CASES[id](check);
      else {
        const [source, mode, order] = id.split(" | ");
        runCase(source, mode, order, check);
      }
    } catch (error) {
      failures.push(`threw ${(error as Error).stack}`);
    }
    console.log(JSON.stringify({ id, failures }));
  }
}
