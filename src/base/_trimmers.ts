// Allocators that keep freed memory for reuse (a SystemAllocator's retained
// extents) and can give it back: memory pressure asks all of them at once.
// Held weakly: registering never keeps an allocator alive.

const owners = new Set<WeakRef<object>>();
const trims = new WeakMap<object, () => number>();
const cleanup = new FinalizationRegistry<WeakRef<object>>((ref) => owners.delete(ref));

/** Registers `trim` (which returns the bytes it gave back) for as long as `owner` lives. */
export function registerTrimmer(owner: object, trim: () => number): void {
  const ref = new WeakRef(owner);
  trims.set(owner, trim);
  owners.add(ref);
  cleanup.register(owner, ref);
}

/** Asks every live registered allocator to give back what it keeps; returns the bytes given back. */
export function trimAll(): number {
  let released = 0;
  for (const ref of owners) {
    const owner = ref.deref();
    const trim = owner === undefined ? undefined : trims.get(owner);
    if (trim === undefined) {
      owners.delete(ref);
      continue;
    }
    try {
      released += trim();
    } catch {
      // An ended allocator has nothing to give back.
    }
  }
  return released;
}
