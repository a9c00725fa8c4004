import { followDestroy } from "./_native_destroy.ts";

// Contexts by device: WebGPU's destroy() of a device is followed (see
// _native_destroy.ts) so that its contexts are lost at once, not when the
// `lost` promise resolves a task later (in between, WebGPU's own errors
// would reach the user from every call). The devices seen destroyed are
// remembered, so fromDevice refuses them.
const contextsOf = new WeakMap<GPUDevice, Set<(reason: string) => void>>();
const destroyedDevices = new WeakSet<object>();
export function loseContextsOf(device: object): void {
  destroyedDevices.add(device);
  const contexts = contextsOf.get(device as GPUDevice);
  if (contexts === undefined) return;
  for (const lose of [...contexts]) lose("the GPU device was lost (destroyed through device.destroy())");
}
export function followDevice(device: GPUDevice, lose: (reason: string) => void): void {
  let set = contextsOf.get(device);
  if (set === undefined) contextsOf.set(device, set = new Set());
  set.add(lose);
  followDestroy(device, loseContextsOf);
}

/** A context over `device` is gone: it no longer hears of the device's destroy(). */
export function unfollowDevice(device: GPUDevice, lose: (reason: string) => void): void {
  contextsOf.get(device)?.delete(lose);
}

/** Whether memkit saw `device` destroyed (followed, or by a context's dispose). */
export function seenDestroyed(device: object): boolean {
  return destroyedDevices.has(device);
}
