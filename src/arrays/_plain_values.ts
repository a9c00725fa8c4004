// The plain objects and arrays the arrays family builds for the program (records read back, their nested records
// and arrays, the array toArray() returns, a layout's `fields`), made without running program code (DESIGN §2
// rule 5: user code never runs between memkit's checks and its state change). An assignment to a property an
// object does not have yet, `out[name] = value`, looks up the prototype chain and runs any setter a program put
// there for that name (on Object.prototype, or for an index on Array.prototype): in the middle of remove() that
// setter could clear or free the array. Properties are defined instead, as object and array literals define
// theirs (or assigned where no prototype can hold a setter), through functions captured when this module
// loads; what is made is an ordinary object (prototype Object.prototype) or array, as a literal would be.

import { Builtin, defineProperty, setPrototypeOf } from "./_builtins.ts";

// Captured at load: a program may replace them later.
const ArrayConstructor = Builtin.Array;
const ArrayPrototype = Builtin.Array.prototype;

// A property of `target` defined, never assigned. The descriptor has no prototype: one inheriting a `get` or
// `value` from Object.prototype would run it.
function define(target: object, key: string, value: unknown): void {
  defineProperty(target, key, {
    __proto__: null,
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  } as PropertyDescriptor);
}

/** A plain object with the properties `names[i]: values[i]`, in order (for objects made once, as a layout's `fields`). */
export function recordOf<T>(names: ArrayLike<string>, values: ArrayLike<T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (let i = 0; i < names.length; i++) define(out, names[i], values[i]);
  return out;
}

/**
 * An object with the own data properties `names`, in order, made once: a record is a spread copy of it (a spread
 * defines each property, as a literal does) whose fields are then assigned: an assignment to an own data
 * property never looks at the prototype chain. (Same-process measurement against assigning to `{}`: as fast in
 * Deno, 17 -> 33 ns a 4-field record in Bun; defining each property through Object.defineProperty cost 20× in Deno.)
 */
export function recordTemplate(names: ArrayLike<string>): Readonly<Record<string, unknown>> {
  return recordOf(names, arrayOf(names.length, () => 0));
}

/** A new record with the fields of `template` (from recordTemplate), to assign each of them. */
export function newRecord<T>(template: Readonly<Record<string, unknown>>): T {
  return { ...template } as T;
}

/**
 * A plain array of `length` elements, element i being `make(i)`, made without running program code: an
 * index setter on Array.prototype does not run. `make` must run no program code either.
 */
export function arrayOf<T>(length: number, make: (index: number) => T): T[] {
  // Vectors' lengths and small records', as literals (in order): the cheapest way in both runtimes (a literal
  // defines its elements; the way below costs two prototype changes, ~50 ns in Deno).
  switch (length) {
    case 1:
      return [make(0)];
    case 2:
      return [make(0), make(1)];
    case 3:
      return [make(0), make(1), make(2)];
    case 4:
      return [make(0), make(1), make(2), make(3)];
    case 5:
      return [make(0), make(1), make(2), make(3), make(4)];
    case 6:
      return [make(0), make(1), make(2), make(3), make(4), make(5)];
    case 7:
      return [make(0), make(1), make(2), make(3), make(4), make(5), make(6)];
    case 8:
      return [make(0), make(1), make(2), make(3), make(4), make(5), make(6), make(7)];
  }
  // Filled while it has no prototype (an assignment then finds no setter anywhere, and defines the element),
  // then given Array.prototype: an ordinary array. (Array.from over an array-like without a prototype runs no
  // program code either, but took 13× as long for 1,000 elements in Deno, same process.)
  const out = setPrototypeOf(new ArrayConstructor(length), null) as T[];
  for (let i = 0; i < length; i++) out[i] = make(i);
  return setPrototypeOf(out, ArrayPrototype);
}

/**
 * A list for memkit's own bookkeeping, used mid-operation (the arrays holding a storage, the storages over a
 * buffer): an array without a prototype, read with index loops and changed with append() and removeFrom(), so
 * no setter a program put on Array.prototype for an index runs (push() would run it), nor a replaced iterator.
 */
export type List<T> = { length: number; [index: number]: T };

/** A List of `length` elements, element i being `make(i)` (for memkit's own lists, built once). */
export function listOf<T>(length: number, make: (index: number) => T): List<T> {
  const list = newList<T>();
  for (let i = 0; i < length; i++) list[i] = make(i);
  return list;
}

/** An empty List, or one holding `first`. */
export function newList<T>(first?: T): List<T> {
  const list = setPrototypeOf([], null) as List<T>;
  if (first !== undefined) list[0] = first;
  return list;
}

/** Appends `value` to `list`. */
export function append<T>(list: List<T>, value: T): void {
  list[list.length] = value; // no prototype: defines the element
}

/** Removes the first `value` from `list`, if there is one. */
export function removeFrom<T>(list: List<T>, value: T): void {
  const length = list.length;
  let at = 0;
  while (at < length && list[at] !== value) at++;
  if (at === length) return;
  for (let i = at + 1; i < length; i++) list[i - 1] = list[i];
  list.length = length - 1;
}
