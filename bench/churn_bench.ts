// W2: random churn with a live set. 1,000 live blocks of 16–1,024 bytes; each
// step frees a random one and allocates a new random size in its place. One
// benchmark iteration is 100 steps; the sequence is seeded (xorshift32).
import { MemPool } from "@thi.ng/malloc";
import { native } from "../ffi/native.ts";
import { BuddyAllocator, FreeListAllocator, SystemAllocator } from "../mod.ts";
import { compare } from "./_ratios.ts";

const LIVE = 1000;
const STEPS = 1 << 16;
const slots = new Uint32Array(STEPS);
const sizes = new Uint32Array(STEPS);
let state = 0x2545f491;
function next(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}
for (let i = 0; i < STEPS; i++) {
  slots[i] = next() % LIVE;
  sizes[i] = 16 + (next() % 1009);
}

/** A churn workload over one allocator's alloc and free. */
function churn<T>(alloc: (size: number) => T, free: (block: T) => void): () => void {
  const live: T[] = [];
  for (let i = 0; i < LIVE; i++) live.push(alloc(sizes[i]));
  let at = 0;
  return () => {
    for (let k = 0; k < 100; k++) {
      const slot = slots[at];
      free(live[slot]);
      live[slot] = alloc(sizes[at]);
      at = (at + 1) & (STEPS - 1);
    }
  };
}

const system = new SystemAllocator();
const tlsf = new FreeListAllocator({ capacity: 4 << 20 });
const buddy = new BuddyAllocator({ capacity: 8 << 20 });
const thing = new MemPool({ size: 4 << 20 });
const libc = native.libc;

compare("W2 churn, 1,000 live blocks of 16–1,024 B (100 free+alloc steps)", "@thi.ng/malloc mallocAs/free", {
  "@thi.ng/malloc mallocAs/free": churn((n) => thing.mallocAs("u8", n)!, (b) => thing.free(b)),
  "FreeListAllocator (TLSF)": churn((n) => tlsf.alloc(n), (b) => tlsf.free(b)),
  "BuddyAllocator": churn((n) => buddy.alloc(n), (b) => buddy.free(b)),
  "SystemAllocator": churn((n) => system.alloc(n), (b) => system.free(b)),
  "FFI malloc/free (pointer only)": churn((n) => libc.malloc(n), (p) => libc.free(p)),
}, { freshProcess: import.meta.url }); // thi.ng's methods carry only this workload's feedback (see _ratios.ts)
