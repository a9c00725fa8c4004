/**
 * An Arena's observers (`Arena.observe`) and the claim rule that guards
 * them: how their hooks are read, called and kept from undoing what they
 * observe.
 *
 * @module
 */
import { intrinsic } from "../../ffi/boundary.ts";
import { bufferOf, describe, lengthOf, offsetOf } from "../base/_validate.ts";
import { taking } from "../base/_native_census.ts";
import { AllocationError } from "../base/errors.ts";
import type { ArenaObserver, ArenaScope } from "./arena_types.ts";

// While an Arena tells its observers about a block another allocator is taking from it (a child allocator's
// chunk, a DynamicArray's storage), that allocator is in the middle of its own call and registers its claim
// (its lease) only once the arena returns: no arena may release memory in bulk before then, or it would hand
// the block out again under a live child. Any arena, not only the one telling: a grandparent's reset would
// release the chunk the block is carved from. `claiming` counts such notifications under way; scopes opened
// at or before `claimFloor` (the `scopeSerial` value when the innermost one began) cannot end meanwhile (a
// scope an observer opens can, unless another take has begun inside it since).
let claiming = 0;
let claimFloor = 0;
let scopeSerial = 0;

/** The serial of a scope opening now: scopes of every arena, in the order they open. */
export function nextScopeSerial(): number {
  return ++scopeSerial;
}

/** Whether an observer is being told of a block another allocator is taking (see `claiming`). */
export function claimUnderway(): boolean {
  return claiming !== 0;
}

/** Whether a scope opened with `serial` must not end now: it is older than a take under way. */
export function scopeHeldByClaim(serial: number): boolean {
  return claiming !== 0 && serial <= claimFloor;
}

/** The refusal of `op` (a bulk release: reset, dispose, a scope's end) while a claim is under way. */
export function claimRefusal(op: string): AllocationError {
  return new AllocationError(
    "unsupported",
    `Cannot ${op} while an Arena observer is told of a block another allocator is taking from an Arena (a ` +
      "child allocator's chunk or an array's storage): that allocator has not claimed it yet, and the memory " +
      "would be handed out again under it. Do it once that allocator's call has returned",
  );
}

/** An observer's hooks, read once when it registers. */
export interface Hooks {
  readonly observer: ArenaObserver;
  readonly onAlloc?: (view: Uint8Array<ArrayBuffer>, align: number) => void;
  readonly onFree?: (view: ArrayBufferView, rolledBack: boolean) => void;
  readonly onScopeEnter?: (scope: ArenaScope) => void;
  readonly onScopeExit?: (scope: ArenaScope) => void;
}

const HOOK_NAMES = ["onAlloc", "onFree", "onScopeEnter", "onScopeExit"] as const;

/** Reads `observer`'s hooks once, checking each. */
export function readHooks(observer: ArenaObserver): Hooks {
  if (typeof observer !== "object" || observer === null) {
    throw new TypeError(`Cannot observe as 'observer' must be an object: current value is ${describe(observer)}`);
  }
  const hooks: Record<string, unknown> = { observer };
  for (const name of HOOK_NAMES) {
    const hook = observer[name];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(
        `Cannot observe as 'observer.${name}' must be a function or undefined: current value is ${describe(hook)}`,
      );
    }
    hooks[name] = hook;
  }
  return hooks as unknown as Hooks;
}

// Observers are notifications of a finished operation: one that throws must
// not undo it, half-do it, or make its caller think it failed (an allocation
// that "threw" would be lost). Its error goes to the console instead.
function notify(hook: ((...args: never[]) => void) | undefined, observer: ArenaObserver, ...args: unknown[]): void {
  if (hook === undefined) return;
  try {
    (hook as (...a: unknown[]) => void).apply(observer, args);
  } catch (error) {
    console.error("memkit: an Arena observer threw; the operation it observed is done:", error);
  }
}

/** Tells `observers` of a block allocated (`view`, its bytes, aligned to `align`). */
export function notifyAlloc(observers: readonly Hooks[], view: Uint8Array<ArrayBuffer>, align: number): void {
  if (!taking()) {
    for (const o of observers) notify(o.onAlloc, o.observer, view, align);
    return;
  }
  // Another allocator is taking this block and claims it once this call returns (see `claiming`): observers
  // get a second view of it, whose free is counted and ignored (never a roll back), and no arena releases
  // memory in bulk until they are done.
  const shown = intrinsic.uint8Array(bufferOf(view), offsetOf(view), lengthOf(view));
  // Every take raises the floor to now, not only the outermost: a scope an observer opened, and in which a
  // second allocator is now taking this block, is older than this take and must not end before it returns.
  const outerFloor = claimFloor;
  claimFloor = scopeSerial;
  claiming++;
  try {
    for (const o of observers) notify(o.onAlloc, o.observer, shown, align);
  } finally {
    claiming--;
    claimFloor = outerFloor;
  }
}

/** Tells `observers` of a block freed through `view` (rolled back, or counted and ignored). */
export function notifyFree(observers: readonly Hooks[], view: ArrayBufferView, rolledBack: boolean): void {
  for (const o of observers) notify(o.onFree, o.observer, view, rolledBack);
}

/** Tells `observers` of a scope opened. */
export function notifyScopeEnter(observers: readonly Hooks[], scope: ArenaScope): void {
  for (const o of observers) notify(o.onScopeEnter, o.observer, scope);
}

/** Tells `observers` of scopes ended, in the order they ended. */
export function notifyExits(observers: readonly Hooks[], scopes: readonly ArenaScope[]): void {
  for (const scope of scopes) {
    for (const o of observers) notify(o.onScopeExit, o.observer, scope);
  }
}
