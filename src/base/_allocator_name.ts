import { types } from "node:util";
import { className, describe } from "./_validate.ts";

// What an error message calls an allocator it did not make (a backing): its
// class name, or the name its maker gave it when the class is an internal one
// (the HAL's guards are `MemoryInterface.getAllocator("pool")` to the user,
// not the class behind them). Read without running the program's code (no
// getter, no Proxy trap, no Symbol.toStringTag): a message is often built in
// the middle of a failing operation, where such code could end the allocator.

const given = new WeakMap<object, string>();

/** Gives `allocator` the name messages use for it. */
export function nameAllocator(allocator: object, name: string): void {
  given.set(allocator, name);
}

/** The name messages use for `allocator`: a given name, its class's name, or what kind of value it is. */
export function allocatorName(allocator: unknown): string {
  if (typeof allocator !== "object" || allocator === null) return describe(allocator);
  const name = given.get(allocator);
  if (name !== undefined) return name;
  if (types.isProxy(allocator)) return "a Proxy";
  const found = className(allocator);
  if (found === undefined) return "an object";
  // A class name as written in code; anything else (a huge name, line breaks, escapes) quoted and cut short.
  return /^[A-Za-z_$][\w$]{0,63}$/.test(found) ? found : describe(found);
}
