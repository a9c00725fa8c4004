// The built-ins the arrays family calls, captured when it loads. A program may replace any built-in later
// (Array.prototype[Symbol.iterator], Function.prototype.call, Array.prototype.push, Math.ceil, WeakMap.prototype.get,
// a global constructor...), and one that memkit looked up at the time of use would be the program's code running
// in the middle of an array operation (DESIGN §2 rule 5), or deciding where memkit reads and writes (struct()'s
// offsets, the layout an array compiles). So, on every operation path and wherever a layout is computed or
// compiled, the family's code:
// - walks arrays with index loops: never for…of, spread or array destructuring (they call the array iterator);
// - calls no Array.prototype method (push, map, join, slice, indexOf...): its own lists are built with List
//   (_plain_values.ts) and joined with join() below;
// - calls a method of a built-in through `apply` below (never `.call` or `.apply`, which a program may replace),
//   or, for the DataView path's reads and writes, through RecordView, whose prototype holds DataView's methods;
// - makes fresh arrays with literals or arrayOf() (an index setter on Array.prototype never runs) and fresh
//   objects with literals or recordOf() (a setter on Object.prototype never runs);
// - uses the functions and constructors below, not the globals.
// Built-ins replaced before memkit loads are outside what it can defend (README, "Built-ins").

/** `Reflect.apply`: calls `fn` with `self` as `this` and the arguments of the array literal `args`. */
export const apply: typeof Reflect.apply = Reflect.apply;

export const { isArray } = Array;
export const {
  entries: objectEntries,
  keys: objectKeys,
  freeze,
  hasOwn,
  is: sameValue,
  getPrototypeOf,
  setPrototypeOf,
  defineProperty,
} = Object;
export const { abs, ceil, floor, log2, max, min, trunc } = Math;
export const { isFinite, isInteger, isNaN, isSafeInteger } = Number;
export const { stringify } = JSON;
export const { now } = Date;
export const { asIntN, asUintN } = BigInt;

/** The constructors the family makes its views, buffers and collections with. */
export const Builtin = {
  Array,
  ArrayBuffer,
  DataView,
  Function,
  Int32Array,
  Map,
  Set,
  SharedArrayBuffer,
  Uint8Array,
  Uint32Array,
  Float32Array,
  WeakMap,
  WeakSet,
} as const;

// ------------------------------------------------------------------ collections

const { get: weakMapGet, set: weakMapSet, has: weakMapHas } = WeakMap.prototype;
const { get: mapGet, set: mapSet } = Map.prototype;
const { add: setAdd, has: setHas } = Set.prototype;
const { add: weakSetAdd, has: weakSetHas } = WeakSet.prototype;

/** `map.get(key)` for a WeakMap, whatever WeakMap.prototype holds now. */
export function weakGet<K extends WeakKey, V>(map: WeakMap<K, V>, key: K): V | undefined {
  return apply(weakMapGet, map, [key]);
}
/** `map.set(key, value)` for a WeakMap. */
export function weakSet<K extends WeakKey, V>(map: WeakMap<K, V>, key: K, value: V): void {
  apply(weakMapSet, map, [key, value]);
}
/** `map.has(key)` for a WeakMap (any key: a primitive is never one). */
export function weakHas(map: WeakMap<WeakKey, unknown>, key: unknown): boolean {
  return apply(weakMapHas, map, [key]);
}
/** `map.get(key)` for a Map. */
export function mapGetOf<K, V>(map: Map<K, V>, key: K): V | undefined {
  return apply(mapGet, map, [key]);
}
/** `map.set(key, value)` for a Map. */
export function mapSetOf<K, V>(map: Map<K, V>, key: K, value: V): void {
  apply(mapSet, map, [key, value]);
}
/** `set.has(value)` for a Set. */
export function setHasOf<T>(set: ReadonlySet<T>, value: T): boolean {
  return apply(setHas, set, [value]);
}
/** `set.add(value)` for a Set. */
export function setAddOf<T>(set: Set<T>, value: T): void {
  apply(setAdd, set, [value]);
}
/** `set.add(value)` for a WeakSet. */
export function weakSetAddOf<T extends WeakKey>(set: WeakSet<T>, value: T): void {
  apply(weakSetAdd, set, [value]);
}
/** `set.has(value)` for a WeakSet. */
export function weakSetHasOf<T extends WeakKey>(set: WeakSet<T>, value: unknown): boolean {
  return apply(weakSetHas, set, [value]);
}

// ------------------------------------------------------------------ strings and regular expressions

const regExpExec = RegExp.prototype.exec;

/** Whether `pattern` (a module's own RegExp, without the g or y flag) matches `text`. */
export function matches(pattern: RegExp, text: string): boolean {
  return apply(regExpExec, pattern, [text]) !== null;
}

/** The strings of `list` (an array or a List) joined with `separator`: what Array.prototype.join did. */
export function join(list: { readonly length: number; readonly [index: number]: string }, separator: string): string {
  let out = "";
  for (let i = 0; i < list.length; i++) out = i === 0 ? list[i] : out + separator + list[i];
  return out;
}

// ------------------------------------------------------------------ bytes

const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype) as Uint8Array;
const { set: typedSet, copyWithin: typedCopyWithin, fill: typedFill } = TypedArrayPrototype;
const getterOf = (key: string) => Object.getOwnPropertyDescriptor(TypedArrayPrototype, key)!.get!;
const typedLength = getterOf("length"), typedBuffer = getterOf("buffer"), typedByteOffset = getterOf("byteOffset");

/** `target.set(source, offset)`: the engine's memmove between typed arrays (overlap allowed). */
export function copyInto(target: Uint8Array, source: Uint8Array, offset: number): void {
  apply(typedSet, target, [source, offset]);
}
/** `view.copyWithin(to, start, end)`. */
export function moveWithin(view: Uint8Array, to: number, start: number, end: number): void {
  apply(typedCopyWithin, view, [to, start, end]);
}
/** `view.fill(byte)`. */
export function fillBytes(view: Uint8Array, byte: number): void {
  apply(typedFill, view, [byte]);
}
/** A typed array's real element count (0 once detached), whatever %TypedArray%.prototype holds now. */
export function typedLengthOf(view: ArrayBufferView): number {
  return apply(typedLength, view, []);
}
/** A typed array's buffer and byte offset, from its internal slots. */
export function typedRange(view: ArrayBufferView): { buffer: ArrayBufferLike; offset: number } {
  return { buffer: apply(typedBuffer, view, []), offset: apply(typedByteOffset, view, []) };
}
/** A fresh copy of `length` bytes of the Uint8Array `view` from `start` (intrinsic.copyOf, with captured built-ins). */
export function copyOfBytes(view: Uint8Array, start: number, length: number): Uint8Array {
  const copy = new Builtin.Uint8Array(length);
  if (length !== 0) {
    const { buffer, offset } = typedRange(view);
    copyInto(copy, new Builtin.Uint8Array(buffer, offset + start, length), 0);
  }
  return copy;
}

// ------------------------------------------------------------------ the DataView path

type HalfView = DataView & {
  getFloat16?(offset: number, littleEndian?: boolean): number;
  setFloat16?(offset: number, value: number, littleEndian?: boolean): void;
};

/**
 * A DataView whose reads and writes are DataView's own methods as they were when memkit loaded: its
 * prototype (memkit's alone, frozen) holds them, so `view.getUint32(at, true)` never reaches a method a
 * program put on DataView.prototype later, and needs no `.call` (which a program may replace too). Every
 * DataView the record codec reads or writes through is one.
 */
export class RecordView extends DataView<ArrayBufferLike> {
  // (Explicit: a default derived constructor passes its arguments on by spreading them.)
  constructor(buffer: ArrayBufferLike, byteOffset?: number, byteLength?: number) {
    super(buffer, byteOffset, byteLength);
  }
}
{
  const from = DataView.prototype as unknown as Record<string, unknown>;
  const names = Object.getOwnPropertyNames(from);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if ((name.startsWith("get") || name.startsWith("set")) && typeof from[name] === "function") {
      defineProperty(RecordView.prototype, name, { value: from[name], writable: false, configurable: false });
    }
  }
  freeze(RecordView.prototype);
  freeze(RecordView);
}
/** Whether the runtime's DataView has getFloat16 / setFloat16 (RecordView then has them too). */
export const NATIVE_F16 = typeof (RecordView.prototype as HalfView).getFloat16 === "function" &&
  typeof (RecordView.prototype as HalfView).setFloat16 === "function";
export type { HalfView };
