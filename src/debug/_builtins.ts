// Built-ins as they were when memkit loaded, for the code that reports leaks
// (leaks(), report(), the check at exit): a program may replace a prototype's
// method before it exits (a broken polyfill, a no-op), and the report must
// neither lose a leak nor throw because of it. Called through the captured
// Reflect.apply, so nothing here looks a method up on a prototype again.
// Loops over arrays in that code are index loops: `for...of` and spreading
// call the array iterator, which a program can replace too.

const apply = Reflect.apply;
const arrayJoin = Array.prototype.join;
const arraySort = Array.prototype.sort;
const stringSplit = String.prototype.split;
const stringReplaceAll = String.prototype.replaceAll;
const stringStartsWith = String.prototype.startsWith;
const stringEndsWith = String.prototype.endsWith;
const stringSlice = String.prototype.slice;
const numberToString = Number.prototype.toString;
const numberToFixed = Number.prototype.toFixed;
const mapGet = Map.prototype.get;
const mapSet = Map.prototype.set;
const MapConstructor = Map;
const weakMapGet = WeakMap.prototype.get;
const weakRefDeref = WeakRef.prototype.deref;
const stringify = JSON.stringify;
const dateNow = Date.now;
const mathMax = Math.max;
const performanceNow = performance.now.bind(performance);

/** `list.join(separator)`. */
export function join(list: readonly string[], separator: string): string {
  return apply(arrayJoin, list, [separator]) as string;
}

/** `list.sort(compare)`, in place. */
export function sortBy<T>(list: T[], compare: (a: T, b: T) => number): T[] {
  return apply(arraySort, list, [compare]) as T[];
}

/** `text.split(separator)`. */
export function split(text: string, separator: string): string[] {
  return apply(stringSplit, text, [separator]) as string[];
}

/** `text.replaceAll(search, replacement)`. */
export function replaceAll(text: string, search: string, replacement: string): string {
  return apply(stringReplaceAll, text, [search, replacement]) as string;
}

/** `text.startsWith(prefix)`. */
export function startsWith(text: string, prefix: string): boolean {
  return apply(stringStartsWith, text, [prefix]) as boolean;
}

/** `text.endsWith(suffix)`. */
export function endsWith(text: string, suffix: string): boolean {
  return apply(stringEndsWith, text, [suffix]) as boolean;
}

/** `text.slice(start, end)`. */
export function slice(text: string, start: number, end?: number): string {
  return apply(stringSlice, text, end === undefined ? [start] : [start, end]) as string;
}

/** `n.toString(16)`: an address as a report prints it (without its 0x). */
export function hex(n: number): string {
  return apply(numberToString, n, [16]) as string;
}

/** `n.toFixed(digits)`. */
export function fixed(n: number, digits: number): string {
  return apply(numberToFixed, n, [digits]) as string;
}

/** `JSON.stringify(value)` of a string. */
export function quote(value: string): string {
  return stringify(value);
}

/** `Date.now()`. */
export function now(): number {
  return dateNow();
}

/** `performance.now()`. */
export function monotonicNow(): number {
  return performanceNow();
}

/** `Math.max(a, b)`. */
export function max(a: number, b: number): number {
  return mathMax(a, b);
}

/** A Map whose `get` and `set` are the ones captured at load (see getIn and setIn). */
export function newMap<K, V>(): Map<K, V> {
  return new MapConstructor<K, V>();
}

/** `map.get(key)`. */
export function getIn<K, V>(map: Map<K, V>, key: K): V | undefined {
  return apply(mapGet, map, [key]) as V | undefined;
}

/** `map.set(key, value)`. */
export function setIn<K, V>(map: Map<K, V>, key: K, value: V): void {
  apply(mapSet, map, [key, value]);
}

/** `ref.deref()`. */
export function deref<T extends object>(ref: WeakRef<T>): T | undefined {
  return apply(weakRefDeref, ref, []) as T | undefined;
}

/** `map.get(key)` of a WeakMap. */
export function getWeak<K extends object, V>(map: WeakMap<K, V>, key: K): V | undefined {
  return apply(weakMapGet, map, [key]) as V | undefined;
}
