import { types } from "node:util";
import { describe } from "./_validate.ts";

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
  const ctor = dataProperty(allocator, "constructor");
  const className = typeof ctor === "function" && !types.isProxy(ctor) ? ownData(ctor, "name") : undefined;
  if (typeof className !== "string" || className === "Object" || className === "") return "an object";
  // A class name as written in code; anything else (a huge name, line breaks, escapes) quoted and cut short.
  return /^[A-Za-z_$][\w$]{0,63}$/.test(className) ? className : describe(className);
}

// `key` as a data property of `object` or its prototypes (an accessor or a Proxy on the way: undefined).
function dataProperty(object: object, key: string): unknown {
  for (let o: object | null = object, depth = 0; o !== null && depth < 32; depth++) {
    if (types.isProxy(o)) return undefined;
    const found = Object.getOwnPropertyDescriptor(o, key);
    if (found !== undefined) return "value" in found ? found.value : undefined;
    o = Object.getPrototypeOf(o);
  }
  return undefined;
}

function ownData(object: object, key: string): unknown {
  const found = Object.getOwnPropertyDescriptor(object, key);
  return found !== undefined && "value" in found ? found.value : undefined;
}
