// The HAL's memory kinds against the allocators a user would otherwise call.
// Native kinds (issue 15 part B): what a 64-byte block costs when it is pages
// locked in RAM (LockedPageAllocator) or a secret between guard pages
// (SecretAllocator), against SystemAllocator's malloc, with one bare
// mmap+munmap of a page (mapPages) as the floor of any per-block mapping.
import { LockedPageAllocator, mapPages, SecretAllocator, SystemAllocator } from "../mod.ts";
import { compare } from "./_ratios.ts";

const system = new SystemAllocator();
const locked = new LockedPageAllocator();
const secrets = new SecretAllocator();

compare("HAL 64 B alloc+free: native memory kinds", "SystemAllocator alloc+free", {
  "SystemAllocator alloc+free": () => system.free(system.alloc(64)),
  "mapPages(64) + unmap (one page, the floor of a mapping per block)": () => mapPages(64).unmap(),
  "LockedPageAllocator alloc+free": () => locked.free(locked.alloc(64)),
  "SecretAllocator alloc+free": () => secrets.free(secrets.alloc(64)),
}, 100);
