// The floor under the DebugAllocator's counters-only rung (issue 14 item 10):
// `npx deno run -A bench/debug_floor.ts` or `npx bun run bench/debug_floor.ts`.
//
// Counters only must count a free through any view of a block at the block's
// real size (a prefix view, a view the backing made), and list every live
// block: so it keeps a record of every block by address. A free then reads
// the view's buffer and offset through the engine's own getters (a view's
// own `byteOffset` property must not pick another block) and looks the
// address up. This file measures, side by side with the untracked 64-byte
// pool pair, the least a wrapper can do for that: the floor below which
// counters only cannot go, whatever the rest of the DebugAllocator costs.
import { DebugAllocator, PoolAllocator } from "../mod.ts";
import { AddressRecords } from "./_address_records.ts";
import { compare, runAndReport } from "./_ratios.ts";

const untracked = new PoolAllocator({ blockSize: 64, blocksPerChunk: 4096 });
const floor = new AddressRecords(new PoolAllocator({ blockSize: 64, blocksPerChunk: 4096 }));
const counters = new DebugAllocator(new PoolAllocator({ blockSize: 64, blocksPerChunk: 4096 }), { safety: false });
compare("W15 floor: 64 B alloc+free on a PoolAllocator, counted by address", "untracked", {
  "untracked": () => untracked.free(untracked.alloc(64)),
  "floor: a record by address": () => floor.free(floor.alloc(64)),
  "counters only": () => counters.free(counters.alloc(64)),
}, 100);
await runAndReport();
