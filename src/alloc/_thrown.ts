// What a backing threw (its tryAlloc or free), read without running the program's code. A thrown value may be
// anything: a Symbol (no string conversion), a Proxy (a revoked one throws on every trap, `instanceof` included),
// an object whose `message` is a getter that throws or ends the allocator. A message about it is built in the
// middle of a failing operation, so nothing here calls a trap, a getter or a conversion of the value: prototypes
// are walked with Object.getPrototypeOf (a Proxy stops the walk), properties read as own data descriptors.
import { types } from "node:util";
import { AllocationError, type AllocationErrorCategory } from "../base/errors.ts";
import { describe } from "../base/_validate.ts";
import { backingNoun } from "./_backing_phrase.ts";

/** Whether `ctor.prototype` is on `value`'s prototype chain, as `instanceof` says; false past a Proxy. */
export function isInstance(value: unknown, ctor: abstract new (...args: never[]) => unknown): boolean {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
  const proto = ctor.prototype;
  let o: object | null = value;
  for (let depth = 0; o !== null && depth < 64; depth++) {
    if (types.isProxy(o)) return false;
    o = Object.getPrototypeOf(o);
    if (o === proto) return true;
  }
  return false;
}

/** The category of `value` when it is an AllocationError (read as data, and a valid one), else null. */
export function thrownCategory(value: unknown): AllocationErrorCategory | null {
  if (!isInstance(value, AllocationError)) return null;
  const category = ownData(value as object, "category");
  if (typeof category !== "string") return null;
  try {
    new AllocationError(category as AllocationErrorCategory, ""); // refuses a category that is not one
  } catch {
    return null;
  }
  return category as AllocationErrorCategory;
}

/**
 * `value` when it is an AllocationError whose category, message, call and errno are its own data (what memkit's
 * constructor makes), else null: reading them then runs no code of the program's (an accessor put on the instance,
 * a Proxy). One that is not plain is to be described as any other thrown value.
 */
export function plainAllocationError(value: unknown): AllocationError | null {
  if (thrownCategory(value) === null) return null; // not an AllocationError, a Proxy, or no valid category
  const error = value as AllocationError;
  if (typeof ownData(error, "message") !== "string") return null;
  return hasOwnData(error, "call") && hasOwnData(error, "errno") ? error : null;
}

/** `key` as an own data property of `value` (no getter or trap runs), else undefined. */
export function ownDataOf(value: unknown, key: string): unknown {
  if ((typeof value !== "object" && typeof value !== "function") || value === null || types.isProxy(value)) {
    return undefined;
  }
  return ownData(value, key);
}

/** The message `value` carries as a string data property (an Error's own), cut short; null when it has none. */
export function thrownMessage(value: unknown): string | null {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return null;
  const message = dataProperty(value, "message");
  if (typeof message !== "string") return null;
  return message.length > 500 ? `${message.slice(0, 500)}…` : message;
}

/**
 * `value` for a message: "RangeError: <its message>" for an Error, "a Proxy", "Symbol(keep)", "\"nope\"", "42",
 * "an object" (with the message it carries as data, if any)...
 */
export function describeForeign(value: unknown): string {
  if (typeof value === "symbol") return String(value); // the descriptive string: no toString of the program's
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return describe(value);
  if (types.isProxy(value)) return "a Proxy";
  const message = thrownMessage(value);
  if (types.isNativeError(value) || isInstance(value, Error)) {
    const name = dataProperty(value, "name");
    const label = typeof name === "string" && /^[A-Za-z_$][\w$]{0,63}$/.test(name) ? name : "an Error";
    return message === null || message === "" ? label : `${label}: ${message}`;
  }
  const what = typeof value === "function" ? describe(value) : backingNoun(value);
  return message === null ? what : `${what} with the message ${JSON.stringify(message)}`;
}

// `key` as a data property of `object` or its prototypes (an accessor or a Proxy on the way: undefined).
function dataProperty(object: object, key: string): unknown {
  for (let o: object | null = object, depth = 0; o !== null && depth < 64; depth++) {
    if (types.isProxy(o)) return undefined;
    const found = Object.getOwnPropertyDescriptor(o, key);
    if (found !== undefined) return "value" in found ? found.value : undefined;
    o = Object.getPrototypeOf(o);
  }
  return undefined;
}

// `key` as an own data property of `object` (not a Proxy: checked by the caller).
function ownData(object: object, key: string): unknown {
  const found = Object.getOwnPropertyDescriptor(object, key);
  return found !== undefined && "value" in found ? found.value : undefined;
}

// Whether `key` is an own data property of `object` (not a Proxy: checked by the caller).
function hasOwnData(object: object, key: string): boolean {
  const found = Object.getOwnPropertyDescriptor(object, key);
  return found !== undefined && "value" in found;
}
