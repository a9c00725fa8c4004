// Run in a child process by test/debug/debug_release_reentry_test.ts (a failure here may free one block twice):
// a DebugAllocator as the *parent* of a child allocator (an Arena) built over it through an Allocator written in
// JavaScript, or of a holder leasing one of its blocks. The program frees or resizes the block the child (or
// holder) holds; the DebugAllocator tells it, and code run then calls back into the DebugAllocator: through the
// backing's code as the revoked child gives its other chunk back, or from the holder as it is told. As for every
// other allocator (test/fixtures/release_reentry_child.ts): the holder's calls are refused while the
// DebugAllocator tells it ("unsupported", but `owns` and `stats`), the child's other chunk goes back once the
// DebugAllocator's free or resize is made (before, its give-back was refused and the chunk stayed allocated: a
// leak the exit report showed), the backing's code then makes ordinary calls, no block is handed out twice and
// the counters stay exact. Prints {"begin": id} before each case and {"id", "failures"} after it.
// usage: _release_reentry_child.ts <id>... (ids from caseIds())
import process from "node:process";
import {
  addressOf,
  AllocationError,
  type Allocator,
  Arena,
  DebugAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { leaseBlock } from "../../src/alloc/_lease.ts";
import { zeroStats } from "../../src/alloc/_zero_stats.ts";

/** The DebugAllocators told of a free or resize, by mode: each over its own SystemAllocator. */
const MODES: Record<string, (system: SystemAllocator) => DebugAllocator> = {
  "default options": (system) => new DebugAllocator(system),
  "detachFreed": (system) => new DebugAllocator(system, { detachFreed: true }),
  "counters only": (system) => new DebugAllocator(system, { safety: false }),
  "poison": (system) => new DebugAllocator(system, { poison: true }),
  // Freed blocks held back from the backing: the backing hears of none of them, so the DebugAllocator tells.
  "retainMetadata": (system) => new DebugAllocator(system, { retainMetadata: true }),
  // The top block is resized in place by the stack itself.
  "over a StackAllocator": (system) => new DebugAllocator(new StackAllocator({ capacity: 1 << 20, backing: system })),
  // No lease table to watch: the DebugAllocator leases each block from the SystemAllocator by address.
  "over an Allocator in JavaScript": (system) => new DebugAllocator(passing(system)),
  "over an Allocator in JavaScript, counters only": (system) => new DebugAllocator(passing(system), { safety: false }),
  "over an Allocator in JavaScript, retainMetadata": (system) =>
    new DebugAllocator(passing(system), { retainMetadata: true }),
  // Its blocks are views of the SystemAllocator's memory, leased there by whoever takes them through a backing.
  "over a DebugAllocator": (system) => new DebugAllocator(new DebugAllocator(system)),
  "over a DebugAllocator with detachFreed": (system) =>
    new DebugAllocator(new DebugAllocator(system, { detachFreed: true })),
  "counters only over a DebugAllocator": (system) => new DebugAllocator(new DebugAllocator(system), { safety: false }),
};

const OPS = ["free", "resize"] as const;
const VIAS = ["backing", "holder"] as const;
const CALLS = ["none", "free-same", "free-other", "alloc", "resize", "dispose", "owns", "stats"];

/** An Allocator written in JavaScript that passes on the blocks of `under`. */
function passing(under: Allocator): Allocator {
  return {
    kind: "system",
    alloc: (size: number, align?: number) => under.alloc(size, align),
    tryAlloc: (size: number, align?: number) => under.tryAlloc(size, align),
    array() {
      throw new Error("not used");
    },
    free: (view: ArrayBufferView) => under.free(view),
    resize: (view: ArrayBufferView, size: number) => under.resize(view, size),
    owns: (view: ArrayBufferView) => under.owns(view),
    stats: () => zeroStats("system"),
  } as unknown as Allocator;
}

/** What `fn` did: "ok", an AllocationError's category, or "ENGINE <name>: <message>" for anything else. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (error) {
    if (error instanceof AllocationError) return error.category;
    return `ENGINE ${(error as Error)?.name}: ${(error as Error)?.message ?? String(error)}`;
  }
}

function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length === 0 || b.length === 0) return false;
  const x = addressOf(a), y = addressOf(b);
  return x < y + b.length && y < x + a.length;
}

interface World {
  parent: DebugAllocator;
  /** The parent's blocks the program holds. */
  mine: Uint8Array[];
  /** The block the program frees or resizes (held by the child or the holder), and another block of the program's. */
  target: Uint8Array;
  other: Uint8Array;
  seen: string[];
  /** What the program's resize returned. */
  resized: Uint8Array | null;
  /** Where `target` starts (a resize in place keeps it: a free through the old view frees the resized block). */
  at: number;
  /** Whether a call disposed the parent. */
  cleared: boolean;
}

// The re-entering call (the parent and the program's blocks as they are when it runs).
function reenter(w: World, call: string, op: string): void {
  const p = w.parent;
  switch (call) {
    case "free-same":
      p.free(w.target);
      w.mine = w.mine.filter((b) => b !== w.target && !(b.length !== 0 && addressOf(b) === w.at));
      w.cleared ||= w.resized === null && op === "resize"; // the block the resize is about to return
      return;
    case "free-other":
      p.free(w.other);
      w.mine = w.mine.filter((b) => b !== w.other);
      return;
    case "alloc":
      w.mine.push(p.alloc(1024));
      return;
    case "resize": {
      const grown = p.resize(w.other, 2048);
      w.mine = w.mine.filter((b) => b !== w.other);
      w.mine.push(grown);
      return;
    }
    case "dispose":
      p.dispose();
      w.cleared = true;
      return;
    case "owns":
      if (!p.owns(w.other)) throw new Error("owns(other) answered false");
      return;
    case "stats":
      if (!(p.stats().liveAllocations > 0)) throw new Error("stats() answered no live block");
  }
}

function runCase(mode: string, op: "free" | "resize", via: "backing" | "holder", call: string): string[] {
  const failures: string[] = [];
  const system = new SystemAllocator();
  const parent = MODES[mode](system);
  const w: World = {
    parent,
    mine: [],
    target: new Uint8Array(0),
    other: new Uint8Array(0),
    seen: [],
    resized: null,
    at: 0,
    cleared: false,
  };
  let armed = false;
  w.other = parent.alloc(512);
  w.mine.push(w.other);
  let child: Arena | null = null;
  const given: Uint8Array[] = [];
  if (via === "backing") {
    const backing = {
      kind: "system",
      alloc: (s: number, a?: number) => given[given.push(parent.alloc(s, a)) - 1],
      tryAlloc: (s: number, a?: number) => {
        const v = parent.tryAlloc(s, a);
        if (v) given.push(v);
        return v;
      },
      array: parent.array.bind(parent),
      free: (v: Uint8Array) => {
        if (armed) {
          armed = false;
          w.seen.push(outcome(() => reenter(w, call, op)));
        }
        parent.free(v);
      },
      resize: parent.resize.bind(parent),
      owns: parent.owns.bind(parent),
      stats: parent.stats.bind(parent),
    } as unknown as Allocator;
    child = new Arena({ capacity: 4096, growth: "linear", backing });
    child.alloc(100);
    child.alloc(16 << 10); // a second chunk: the target
    w.target = given[1];
  } else {
    w.target = parent.alloc(16 << 10);
    w.mine.push(w.target);
    leaseBlock(parent, w.target, {
      revoke: () => {
        if (!armed) return;
        armed = false;
        w.seen.push(outcome(() => reenter(w, call, op)));
      },
    });
  }
  w.at = addressOf(w.target);
  armed = true;
  const result = outcome(() => {
    if (op === "free") parent.free(w.target);
    else w.resized = parent.resize(w.target, 1000);
  });
  if (result !== "ok") failures.push(`the program's ${op} of the held block: ${result}`);
  else {
    w.mine = w.mine.filter((b) => b !== w.target);
    if (w.resized !== null && !w.cleared) w.mine.push(w.resized);
  }
  if (w.seen.length !== 1) failures.push(`the call back into the DebugAllocator ran ${w.seen.length} times`);
  for (const s of w.seen) {
    if (s.startsWith("ENGINE")) failures.push(`the call back into the DebugAllocator (${call}) threw ${s}`);
  }
  const expected = via === "backing" || call === "owns" || call === "stats" || call === "none" ? "ok" : "unsupported";
  // From the backing's code, once the change is made, an ordinary call: only the program's own misuse is refused
  // (freeing the freed block again; a stack's free out of order).
  const misuse = via === "backing" &&
    (call === "free-same" || (mode === "over a StackAllocator" && (call === "free-other" || call === "resize")));
  if (w.seen.length !== 0 && w.seen[0] !== expected && !misuse) {
    failures.push(`the ${via}'s ${call} while the DebugAllocator ${op}s the block: ${w.seen[0]}, expected ${expected}`);
  }
  if (child !== null && outcome(() => child!.alloc(8)) !== "use-after-free") failures.push("the child was not revoked");

  const disposed = outcome(() => parent.tryAlloc(0)) === "use-after-free";
  if (disposed) {
    for (const b of w.mine) {
      if (b.length !== 0 && mode === "detachFreed") failures.push(`a ${b.length}-byte view outlived the parent`);
    }
    const s = parent.stats();
    if (s.liveAllocations !== 0 || s.allocatedBytes !== 0) {
      failures.push(`stats of the disposed parent: live ${s.liveAllocations}, ${s.allocatedBytes} bytes`);
    }
  } else {
    // The child's other chunk went back (no leak), and nothing a refused call did is counted: the live blocks are
    // the program's alone.
    const live = w.mine.filter((b) => b.length !== 0);
    // (A stack takes the child's other chunk back only once the blocks above it go: the block resized in place,
    // one the backing's code allocated.)
    const stuck = mode === "over a StackAllocator" && via === "backing" && parent.owns(given[0]) ? 1 : 0;
    const s = parent.stats();
    const bytes = live.reduce((n, b) => n + b.length, 0) + (stuck ? 4096 : 0);
    if (s.liveAllocations !== live.length + stuck || s.allocatedBytes !== bytes) {
      failures.push(
        `after the ${op}: live ${s.liveAllocations} (${s.allocatedBytes} bytes), expected ${
          live.length + stuck
        } (${bytes} bytes): ${parent.leaks().map((l) => l.size).join(", ")}`,
      );
    }
    if (s.liveAllocations !== s.totalAllocations - s.totalFrees) failures.push("live !== allocations - frees");
    // The blocks the program holds and fresh ones overlap nowhere, and each keeps its own bytes.
    for (let i = 0; i < 6; i++) {
      const fresh = parent.tryAlloc(i % 2 ? 1000 : 16 << 10);
      if (fresh !== null) live.push(fresh);
    }
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        if (overlaps(live[i], live[j])) failures.push(`two live blocks share memory: #${i} and #${j}`);
      }
    }
    live.forEach((b, i) => b.fill(i + 1));
    live.forEach((b, i) => {
      if (!b.every((x) => x === i + 1)) failures.push(`block #${i} reads another block's bytes`);
    });
    // Freed, every block the program holds (top first, for a stack; and the chunk a stack kept) leaves nothing:
    // the exit report would show the child's chunk as a leak.
    const order = [...live, ...(stuck ? given.slice(0, 1) : [])].sort((a, b) => addressOf(b) - addressOf(a));
    for (const b of order) {
      const r = outcome(() => parent.free(b));
      if (r !== "ok") failures.push(`freeing a ${b.length}-byte live block: ${r}`);
    }
    const leaks = parent.leaks();
    if (leaks.length !== 0) failures.push(`leaked: ${leaks.map((l) => `${l.size} bytes`).join(", ")}`);
  }
  outcome(() => child?.dispose());
  const verdict = outcome(() => parent.deinit());
  if (verdict.startsWith("ENGINE")) failures.push(`deinit() threw ${verdict}`);
  outcome(() => system.dispose());
  return failures;
}

/** Every case id: "<mode> | <op> | <via> | <call>". */
export function caseIds(): string[] {
  const ids: string[] = [];
  for (const mode of Object.keys(MODES)) {
    for (const op of OPS) {
      for (const via of VIAS) for (const call of CALLS) ids.push(`${mode} | ${op} | ${via} | ${call}`);
    }
  }
  return ids;
}

if (import.meta.main) {
  const args = process.argv.slice(2).length > 0
    ? process.argv.slice(2)
    : ((globalThis as { Deno?: { args: string[] } }).Deno?.args ?? []);
  for (const id of args) {
    console.log(JSON.stringify({ begin: id }));
    let failures: string[];
    try {
      const [mode, op, via, call] = id.split(" | ");
      failures = runCase(mode, op as "free" | "resize", via as "backing" | "holder", call);
    } catch (error) {
      failures = [`the case threw ${(error as Error)?.stack}`];
    }
    console.log(JSON.stringify({ id, failures }));
  }
}
