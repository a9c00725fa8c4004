// WebGPU's own destroy(), followed. A buffer or device memkit accounts for
// may be destroyed with WebGPU's method itself (`buffer.destroy()`,
// `GPUDevice.prototype.destroy.call(device)`) rather than through its
// GpuContext. memkit must hear of it at once: a queue write or copy that
// names a destroyed buffer makes WebGPU refuse the whole submission (the
// other buffers' bytes in it are lost), and every call on a destroyed device
// reaches WebGPU's own errors (bun-webgpu prints "FATAL ERROR" for some).
// So the `destroy` method a buffer or device inherits is wrapped, once per
// prototype, to tell a follower first; memkit's own destroys call the
// original method, never a wrapper or an own property the program set.
//
// Where the prototype cannot be changed (frozen by the program before
// memkit first wrapped it), each instance gets a wrapper of its own, an own
// `destroy` over the prototype's method: every buffer memkit creates, and
// every device it wraps (both extensible unless the program froze the
// instance too; a frozen device is then followed only through its `lost`
// promise, a task later).

/** Told of a destroy() before WebGPU runs it; must not throw. */
type Follower = (target: object) => void;

const originals = new WeakMap<object, (this: object) => void>(); // holder of `destroy` -> its original
const unpatchable = new WeakSet<object>(); // prototypes whose `destroy` could not be wrapped (frozen)

/** The object in `target`'s prototype chain (itself first) whose own `destroy` is a function, or null. */
function holderOf(target: object): object | null {
  for (let p: object | null = target; p !== null; p = Object.getPrototypeOf(p)) {
    const value = Object.getOwnPropertyDescriptor(p, "destroy")?.value;
    if (typeof value === "function") return p;
  }
  return null;
}

// `original`, telling `follower` first.
function wrapper(original: (this: object) => void, follower: Follower): (this: unknown, ...args: unknown[]) => unknown {
  return function destroy(this: unknown, ...args: unknown[]): unknown {
    if (typeof this === "object" && this !== null) {
      try {
        follower(this);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    return Reflect.apply(original, this, args);
  };
}

// Defines on `target` a `destroy` that tells `follower` first, then runs `original`: in place of the
// prototype's own (`target` is the prototype), or as an own property of an instance. False when `target`
// cannot take it (frozen, non-extensible or non-configurable).
function wrap(target: object, original: (this: object) => void, follower: Follower): boolean {
  const descriptor = Object.getOwnPropertyDescriptor(target, "destroy") ??
    { writable: true, enumerable: false, configurable: true };
  try {
    Object.defineProperty(target, "destroy", { ...descriptor, value: wrapper(original, follower) });
  } catch {
    return false;
  }
  originals.set(target, original);
  return true;
}

/**
 * Makes every later WebGPU `destroy()` of `instance` call `follower` first:
 * the prototype's method is wrapped once (every object sharing it is then
 * followed); when the prototype is frozen, the instance gets an own wrapper
 * over the prototype's method. Idempotent.
 */
export function followDestroy(instance: object, follower: Follower): void {
  const prototype = Object.getPrototypeOf(instance);
  const inherited = prototype === null ? null : holderOf(prototype);
  if (inherited === null || originals.has(inherited) || originals.has(instance)) return;
  const original = Object.getOwnPropertyDescriptor(inherited, "destroy")!.value as (this: object) => void;
  if (!unpatchable.has(inherited)) {
    if (wrap(inherited, original, follower)) return;
    unpatchable.add(inherited); // tried once: defineProperty on a frozen object throws, every time
  }
  // An own `destroy` the program set is left as it is (it is the program's to call).
  if (!Object.hasOwn(instance, "destroy")) wrap(instance, original, follower);
}

/** Runs WebGPU's own destroy() on `target` (not a follower's wrapper, nor an own property the program set). */
export function destroyNatively(target: GPUBuffer | GPUDevice): void {
  for (let p: object | null = target; p !== null; p = Object.getPrototypeOf(p)) {
    const original = originals.get(p);
    if (original !== undefined) return original.call(target);
  }
  target.destroy();
}
