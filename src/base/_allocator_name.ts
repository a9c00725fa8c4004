import { describe } from "./_validate.ts";

// What an error message calls an allocator it did not make (a backing): its
// class name, or the name its maker gave it when the class is an internal one
// (the HAL's guards are `MemoryInterface.getAllocator("pool")` to the user,
// not the class behind them).

const given = new WeakMap<object, string>();

/** Gives `allocator` the name messages use for it. */
export function nameAllocator(allocator: object, name: string): void {
  given.set(allocator, name);
}

/** The name messages use for `allocator`: a given name, its class's name, or a description. */
export function allocatorName(allocator: unknown): string {
  if (typeof allocator === "object" && allocator !== null) {
    const name = given.get(allocator);
    if (name !== undefined) return name;
  }
  let name: unknown;
  try {
    name = (allocator as { constructor?: { name?: unknown } })?.constructor?.name;
  } catch {
    // A getter or Proxy trap that throws: the description below says what it is.
  }
  if (typeof name !== "string" || name === "Object" || name === "") return describe(allocator);
  // A class name as written in code; anything else (a huge name, line breaks, escapes) quoted and cut short.
  return /^[A-Za-z_$][\w$]{0,63}$/.test(name) ? name : describe(name);
}
