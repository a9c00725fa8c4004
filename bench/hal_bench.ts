// The HAL's memory kinds against the allocators a user would otherwise call.
// Native kinds (issue 15 part B): what a 64-byte block costs when it is pages
// locked in RAM (LockedPageAllocator) or a secret between guard pages
// (SecretAllocator), against SystemAllocator's malloc, with one bare
// mmap+munmap of a page (mapPages) as the floor of any per-block mapping.
import {
  type AllocationRequest,
  Arena,
  LockedPageAllocator,
  mapPages,
  MemoryInterface,
  PoolAllocator,
  SecretAllocator,
  SystemAllocator,
} from "../mod.ts";
import { ArenaInterfaceFloor, PoolInterfaceFloor } from "./_interface_floor.ts";
import { compare, do_not_optimize } from "./_ratios.ts";
import { ownedAllocatorOf } from "../src/hal/_owned_allocators.ts";
import type { SizeClassPools } from "../src/hal/_size_class_pools.ts";

const system = new SystemAllocator();
const locked = new LockedPageAllocator();
const secrets = new SecretAllocator();

compare("HAL 64 B alloc+free: native memory kinds", "SystemAllocator alloc+free", {
  "SystemAllocator alloc+free": () => system.free(system.alloc(64)),
  "mapPages(64) + unmap (one page, the floor of a mapping per block)": () => mapPages(64).unmap(),
  "LockedPageAllocator alloc+free": () => locked.free(locked.alloc(64)),
  "SecretAllocator alloc+free": () => secrets.free(secrets.alloc(64)),
}, 100);

// The memory interface (issue 15 part A): what a 64-byte allocate+deallocate costs through MemoryInterface
// against the allocator that serves it, called directly (the pool type's 64-byte class pool; the temporary
// type's arena), in both forms (allocateTyped, and allocate with a request object); getMemoryStats() cached
// and after a change, against one allocator's stats(); and the secret flag's cost against a plain block.
const memory = new MemoryInterface({ pressure: false });
// The very class pool and arena the interface's fast paths call (not the guards getAllocator returns).
const classPool = (ownedAllocatorOf(memory.getAllocator("pool")) as SizeClassPools).pool(2);
const arena = ownedAllocatorOf(memory.getAllocator("arena"));
// The floor (bench/_interface_floor.ts) over an allocator of the same kind and options as the interface's.
const floorPool = new PoolInterfaceFloor(new PoolAllocator({ blockSize: 64, align: 64 }));
const floorArena = new ArenaInterfaceFloor(new Arena({ capacity: 1 << 20 }));
const poolRequest = { size: 64, type: "pool" } as const;
const temporaryRequest = { size: 64, type: "temporary" } as const;

compare("HAL 64 B pool allocate+deallocate: the interface vs its class pool", "PoolAllocator alloc+free", {
  "PoolAllocator alloc+free": () => classPool.free(classPool.alloc(64)),
  "MemoryInterface allocateTyped+deallocate": () => memory.deallocate(memory.allocateTyped(64, "pool")),
  "MemoryInterface allocate(request)+deallocate": () => memory.deallocate(memory.allocate(poolRequest)),
  "floor: a record and the type's counters": () => floorPool.deallocate(floorPool.allocate(64)),
}, 100);

compare("HAL 64 B temporary allocate+deallocate: the interface vs its arena", "Arena alloc+free", {
  "Arena alloc+free": () => arena.free(arena.alloc(64)),
  "MemoryInterface allocateTyped+deallocate": () => memory.deallocate(memory.allocateTyped(64, "temporary")),
  "MemoryInterface allocate(request)+deallocate": () => memory.deallocate(memory.allocate(temporaryRequest)),
  "floor: a record and the type's counters": () => floorArena.deallocate(floorArena.allocate(64)),
}, 100);

const statsPool = new PoolAllocator({ blockSize: 64 });
statsPool.free(statsPool.alloc(64));
compare("HAL getMemoryStats()", "PoolAllocator.stats() (one allocator, not cached)", {
  "PoolAllocator.stats() (one allocator, not cached)": () => do_not_optimize(statsPool.stats()),
  "getMemoryStats() (cached)": () => do_not_optimize(memory.getMemoryStats()),
  "getMemoryStats('pool') (cached)": () => do_not_optimize(memory.getMemoryStats("pool")),
  "allocate+deallocate, then getMemoryStats('pool') (recomputed)": () => {
    memory.deallocate(memory.allocateTyped(64, "pool"));
    return do_not_optimize(memory.getMemoryStats("pool"));
  },
}, 100);

const secretRequest: AllocationRequest = { size: 64, flags: ["secret"] };
compare("HAL 64 B secret allocate+deallocate", "SystemAllocator alloc+free", {
  "SystemAllocator alloc+free": () => system.free(system.alloc(64)),
  "MemoryInterface allocate(64) (system)": () => memory.deallocate(memory.allocate(64)),
  "MemoryInterface allocate({ flags: ['secret'] })": () => memory.deallocate(memory.allocate(secretRequest)),
}, 100);
