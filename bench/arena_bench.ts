// Arena against what a user would otherwise write: `new Float64Array(n)` /
// `new Uint8Array(n)`, SystemAllocator, and @thi.ng/malloc's MemPool (a
// pure-TypeScript allocator over one ArrayBuffer). Workloads W1, W5, W6, W7 of
// the allocator workloads W1–W7 and the two RVF arena targets.
import { Buffer } from "node:buffer";
import { MemPool } from "@thi.ng/malloc";
import typedArrayPool from "typedarray-pool";
import { Arena, SystemAllocator } from "../mod.ts";
import { compare, do_not_optimize } from "./_ratios.ts";

const system = new SystemAllocator();
const thing = new MemPool({ size: 64 << 20 });
const arena = new Arena({ capacity: 64 << 20, safety: false });
const safeArena = new Arena({ capacity: 64 << 20, safety: true });
// What a careful program does without memkit: keep one scratch buffer and take views of it.
const scratch = new Float64Array(1_000_000);
// typedarray-pool (npm, no types of its own): buffers kept by power-of-two size and handed out again.
const pooled = typedArrayPool as {
  mallocDouble(n: number): Float64Array;
  freeDouble(array: Float64Array): void;
};
const bunAllocUnsafe = (globalThis as { Bun?: { allocUnsafe(bytes: number): Uint8Array } }).Bun?.allocUnsafe;
// Every comparison with a @thi.ng/malloc case runs in a fresh process of its
// own: thi.ng's methods are shared by all its pools, and a pool that has
// handed out other view types runs them at about half speed in Deno.
const FRESH = { freshProcess: import.meta.url };

// Target 1: one Float64Array of n elements (allocation plus its release).
for (const n of [100, 10_000, 1_000_000]) {
  compare(`Float64Array(${n.toLocaleString("en")})`, "new Float64Array(n)", {
    "new Float64Array(n)": () => do_not_optimize(new Float64Array(n)),
    "@thi.ng/malloc mallocAs+free": () => {
      const a = thing.mallocAs("f64", n)!;
      thing.free(a);
    },
    "Arena array+free (rollback)": () => {
      const a = arena.array(Float64Array, n);
      arena.free(a);
    },
    "Arena (safety: true) array+free (rollback)": () => {
      const a = safeArena.array(Float64Array, n);
      safeArena.free(a);
    },
    "reused scratch buffer (subarray)": () => do_not_optimize(scratch.subarray(0, n)),
    "typedarray-pool mallocDouble+freeDouble": () => {
      const a = pooled.mallocDouble(n);
      do_not_optimize(a);
      pooled.freeDouble(a);
    },
    "Buffer.allocUnsafe(8n) as Float64Array": () => {
      const b = Buffer.allocUnsafe(8 * n);
      do_not_optimize(new Float64Array(b.buffer, b.byteOffset, n));
    },
    ...(bunAllocUnsafe === undefined ? {} : {
      "Bun.allocUnsafe(8n) as Float64Array": () => {
        const b = bunAllocUnsafe(8 * n);
        do_not_optimize(new Float64Array(b.buffer, b.byteOffset, n));
      },
    }),
    "SystemAllocator array+free": () => {
      const a = system.array(Float64Array, n);
      system.free(a);
    },
  }, FRESH);
}

// Target 2: 100 temporaries of 10,000 doubles per iteration, released together.
compare("100 × Float64Array(10,000) temporaries", "new Float64Array(n)", {
  "new Float64Array(n)": () => {
    for (let i = 0; i < 100; i++) do_not_optimize(new Float64Array(10_000));
  },
  "Arena scope, safety: false": () => {
    using _scope = arena.scope();
    for (let i = 0; i < 100; i++) do_not_optimize(arena.array(Float64Array, 10_000));
  },
  "Arena scope, safety: true": () => {
    using _scope = safeArena.scope();
    for (let i = 0; i < 100; i++) do_not_optimize(safeArena.array(Float64Array, 10_000));
  },
  "typedarray-pool mallocDouble, then freeDouble each": () => {
    const all = [];
    for (let i = 0; i < 100; i++) all.push(pooled.mallocDouble(10_000));
    for (const a of all) pooled.freeDouble(a);
  },
  "@thi.ng/malloc mallocAs, then free each": () => {
    const all = [];
    for (let i = 0; i < 100; i++) all.push(thing.mallocAs("f64", 10_000)!);
    for (const a of all) thing.free(a);
  },
}, FRESH);

// README's scope example at each capacity, safety on (issue 14 item 9): in Bun
// a scope used to cost what its arena's capacity made it wrap (~20 µs at 1 MiB).
const SCOPE_EXAMPLE = "README scope example (Float64Array(1,000), a clone, a fill)";
function scopeExample(arena: Arena): () => void {
  return () => {
    using _scope = arena.scope();
    const a = arena.array(Float64Array, 1000);
    const b = arena.clone(a);
    b.fill(1);
    do_not_optimize(b);
  };
}
compare(SCOPE_EXAMPLE, "new Float64Array(n), slice(), fill", {
  "new Float64Array(n), slice(), fill": () => {
    const a = new Float64Array(1000);
    const b = a.slice();
    b.fill(1);
    do_not_optimize(b);
  },
  "Arena scope, capacity 64 KiB": scopeExample(new Arena({ capacity: 64 << 10 })),
  "Arena scope, capacity 1 MiB": scopeExample(new Arena({ capacity: 1 << 20 })),
  "Arena scope, capacity 16 MiB": scopeExample(new Arena({ capacity: 16 << 20 })),
  "Arena scope, capacity 64 MiB": scopeExample(safeArena),
  "Arena scope, capacity 1 MiB, safety: false": scopeExample(new Arena({ capacity: 1 << 20, safety: false })),
}, 300); // the cases share one function: warmed up first, so the first case does not pay for its JIT tiers

// W1: 64-byte alloc+free pairs.
compare("W1 64 B alloc+free", "new Uint8Array(n)", {
  "new Uint8Array(n)": () => do_not_optimize(new Uint8Array(64)),
  "@thi.ng/malloc malloc+free (offset only)": () => thing.free(thing.malloc(64)),
  "@thi.ng/malloc mallocAs+free (view)": () => thing.free(thing.mallocAs("u8", 64)!),
  "Arena alloc+free": () => arena.free(arena.alloc(64)),
  "SystemAllocator alloc+free": () => system.free(system.alloc(64)),
}, FRESH);

// W5: per frame, 1,000 objects of 16–1,024 bytes, then a reset.
const sizes = Array.from({ length: 1000 }, (_, i) => 16 + ((i * 7919) % 1009));
const phaseArena = new Arena({ capacity: 1 << 20 });
const phaseArenaUnsafe = new Arena({ capacity: 1 << 20, safety: false });
compare("W5 frame of 1,000 mixed allocations + reset", "new Uint8Array(n)", {
  "new Uint8Array(n)": () => {
    for (const s of sizes) do_not_optimize(new Uint8Array(s));
  },
  "Arena + reset(retain-capacity)": () => {
    for (const s of sizes) phaseArena.alloc(s);
    phaseArena.reset("retain-capacity");
  },
  "Arena safety: false + reset(retain-capacity)": () => {
    for (const s of sizes) phaseArenaUnsafe.alloc(s);
    phaseArenaUnsafe.reset("retain-capacity");
  },
  "Arena + reset(free-all)": () => {
    for (const s of sizes) phaseArena.alloc(s);
    phaseArena.reset("free-all");
  },
});

// W6: nested scopes, 8 deep, one allocation in each.
compare("W6 8 nested scopes", "Arena safety: false, 8 nested scopes", {
  "Arena safety: false, 8 nested scopes": () => {
    const scopes = [];
    for (let d = 0; d < 8; d++) {
      scopes.push(arena.scope());
      arena.alloc(64);
    }
    for (let d = 7; d >= 0; d--) scopes[d].end();
  },
  "Arena safety: true, 8 nested scopes": () => {
    const scopes = [];
    for (let d = 0; d < 8; d++) {
      scopes.push(safeArena.scope());
      safeArena.alloc(64);
    }
    for (let d = 7; d >= 0; d--) scopes[d].end();
  },
});

// W7: grow a buffer from 64 B to 64 KiB by doubling, then release it.
compare("W7 grow 64 B → 64 KiB by doubling", "SystemAllocator resize", {
  "SystemAllocator resize": () => {
    let b = system.alloc(64);
    for (let s = 128; s <= 65536; s *= 2) b = system.resize(b, s);
    system.free(b);
  },
  "Arena resize (in place)": () => {
    let b = arena.alloc(64);
    for (let s = 128; s <= 65536; s *= 2) b = arena.resize(b, s);
    arena.free(b);
  },
  "@thi.ng/malloc realloc": () => {
    let p = thing.malloc(64);
    for (let s = 128; s <= 65536; s *= 2) p = thing.realloc(p, s);
    thing.free(p);
  },
}, FRESH);
