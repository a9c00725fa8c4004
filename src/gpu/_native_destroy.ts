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
// Where the prototype cannot be changed (frozen by the program), the
// instance's own `destroy` is wrapped instead (devices; a buffer's loss is
// then seen only through memkit's calls).

/** Told of a destroy() before WebGPU runs it; must not throw. */
type Follower = (target: object) => void;

const originals = new WeakMap<object, (this: object) => void>(); // holder of `destroy` -> its original

/** The object in `target`'s prototype chain (itself first) whose own `destroy` is a function, or null. */
function holderOf(target: object): object | null {
  for (let p: object | null = target; p !== null; p = Object.getPrototypeOf(p)) {
    const value = Object.getOwnPropertyDescriptor(p, "destroy")?.value;
    if (typeof value === "function") return p;
  }
  return null;
}

function wrap(holder: object, follower: Follower): boolean {
  const descriptor = Object.getOwnPropertyDescriptor(holder, "destroy")!;
  const original = descriptor.value as (this: object) => void;
  try {
    Object.defineProperty(holder, "destroy", {
      ...descriptor,
      value: function destroy(this: unknown, ...args: unknown[]): unknown {
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
      },
    });
  } catch {
    return false; // frozen or non-configurable
  }
  originals.set(holder, original);
  return true;
}

/**
 * Makes every later WebGPU `destroy()` of `instance` (and of every object
 * sharing its prototype) call `follower` first: the prototype's method is
 * wrapped once; when that fails, the instance's own. Idempotent.
 */
export function followDestroy(instance: object, follower: Follower): void {
  const inherited = holderOf(Object.getPrototypeOf(instance) ?? {});
  if (inherited !== null && (originals.has(inherited) || wrap(inherited, follower))) return;
  const own = holderOf(instance);
  if (own === instance && !originals.has(instance)) wrap(instance, follower);
}

/** Runs WebGPU's own destroy() on `target` (not a follower's wrapper, nor an own property the program set). */
export function destroyNatively(target: GPUBuffer | GPUDevice): void {
  for (let p: object | null = target; p !== null; p = Object.getPrototypeOf(p)) {
    const original = originals.get(p);
    if (original !== undefined) return original.call(target);
  }
  target.destroy();
}
