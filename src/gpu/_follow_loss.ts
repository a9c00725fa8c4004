// A pool, ring or suballocator hears of its device's loss through its
// context's onLost(). The context lives as long as the program uses the
// device, so what it holds must not hold the owner: the listener reaches the
// owner through a WeakRef (an owner dropped without dispose() can be
// collected, and its listener is then unsubscribed), and dispose() calls the
// function returned here, so a disposed owner is held by nothing of memkit.
import type { GpuContext } from "./gpu_context.ts";

// Unsubscribes the listener of an owner collected without dispose().
const collected = new FinalizationRegistry<() => void>((unsubscribe) => unsubscribe());

/**
 * Calls `onLost(owner)` once when `gpu`'s device is lost or the context disposed, holding `owner` weakly;
 * returns the function that unsubscribes (dispose() calls it). `onLost` must not hold `owner` itself:
 * a function of the module, never a closure over `this`.
 */
export function followLoss<T extends object>(gpu: GpuContext, owner: T, onLost: (owner: T) => void): () => void {
  const ref = new WeakRef(owner);
  const unsubscribe = gpu.onLost(() => {
    const held = ref.deref();
    if (held !== undefined) onLost(held);
  });
  const token = {};
  collected.register(owner, unsubscribe, token);
  return () => {
    collected.unregister(token);
    unsubscribe();
  };
}
