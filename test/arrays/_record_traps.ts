// Traps for the code that builds what the arrays hand back (records, their nested records and arrays, the
// arrays toArray() returns): a setter on Object.prototype for every field name, setters on Array.prototype for
// the first indexes, a getter for Object.prototype[Symbol.iterator] (Array.from asks it of an array-like), and
// DataView.prototype's getters wrapped. Each one that runs is user code in the middle of a read; the arrays'
// reads must run none of them (DESIGN §2 rule 5). A setter that runs still defines the property, so a read
// that wrongly runs one returns a plausible value and the test can say what else went wrong.
import { struct, type StructLayout } from "../../mod.ts";

/** A layout with every kind of part a read builds: scalars, lanes, a nested record, an array of records, a vector. */
export function trapLayout(packed: boolean): StructLayout<TrapRecord> {
  const Inner = struct({ x: "f32", y: "u16" }, { packed });
  return struct({ a: "u8", b: "u32", p: Inner, v: ["u16", 3], w: [Inner, 2], c: "f32x2" }, { packed }) as StructLayout<
    TrapRecord
  >;
}

export type TrapRecord = {
  a: number;
  b: number;
  p: { x: number; y: number };
  v: number[];
  w: { x: number; y: number }[];
  c: number[];
};

/** Record `i` of the trap layout (every value exact in its type). */
export function trapRecord(i: number): TrapRecord {
  return {
    a: i,
    b: 1000 + i,
    p: { x: i + 0.5, y: 2 * i },
    v: [i, i + 1, i + 2],
    w: [{ x: i + 0.25, y: 3 }, { x: -i, y: 4 }],
    c: [i, -i],
  };
}

const FIELD_NAMES = ["a", "b", "p", "x", "y", "v", "w", "c"];
const INDEXES = ["0", "1", "2"];
const DATAVIEW_GETTERS = [
  "getInt8",
  "getUint8",
  "getInt16",
  "getUint16",
  "getInt32",
  "getUint32",
  "getFloat32",
  "getFloat64",
  "getBigInt64",
  "getBigUint64",
  "getFloat16",
] as const;

/**
 * Runs `read` with every trap installed (removed again before returning, also when it throws), calling
 * `onTrap` (once, at the first trap that runs) from inside the trap. Returns what `read` returned or threw,
 * and the names of the traps that ran. `indexes: false` leaves out the setters on Array.prototype.
 */
export function withRecordTraps<R>(
  read: () => R,
  onTrap: () => void = () => {},
  { indexes = true } = {},
): { result?: R; error?: unknown; trapped: string[] } {
  // (A Set: pushing to an array would run the index setters installed here.)
  const trapped = new Set<string>();
  const hit = (what: string) => {
    const first = trapped.size === 0;
    trapped.add(what);
    if (first) onTrap();
  };
  const setter = (name: string, target: object) =>
    Object.defineProperty(target, name, {
      configurable: true,
      set(this: object, value: unknown) {
        Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
        hit(`set ${name}`);
      },
    });
  const proto = DataView.prototype as unknown as Record<string, unknown>;
  const originals = new Map<string, PropertyDescriptor>();
  for (const name of DATAVIEW_GETTERS) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    if (descriptor === undefined) continue;
    originals.set(name, descriptor);
  }
  try {
    for (const name of FIELD_NAMES) setter(name, Object.prototype);
    if (indexes) { for (const index of INDEXES) setter(index, Array.prototype); }
    Object.defineProperty(Object.prototype, Symbol.iterator, {
      configurable: true,
      get() {
        hit("get Object.prototype[Symbol.iterator]");
        return undefined;
      },
    });
    for (const [name, descriptor] of originals) {
      const original = descriptor.value as (this: DataView, ...args: unknown[]) => unknown;
      proto[name] = function (this: DataView, ...args: unknown[]) {
        hit(`DataView.prototype.${name}`);
        return original.apply(this, args);
      };
    }
    try {
      const result = read();
      return { result, trapped: [...trapped] };
    } catch (error) {
      return { error, trapped: [...trapped] };
    }
  } finally {
    for (const name of FIELD_NAMES) delete (Object.prototype as Record<string, unknown>)[name];
    for (const index of INDEXES) delete (Array.prototype as unknown as Record<string, unknown>)[index];
    delete (Object.prototype as Record<symbol, unknown>)[Symbol.iterator];
    for (const [name, descriptor] of originals) Object.defineProperty(proto, name, descriptor);
  }
}

// ------------------------------------------------------------------ built-ins replaced after memkit loaded

/**
 * The built-ins a program may replace after memkit loaded, as withReplacedBuiltins() replaces them:
 * - "iterator": Array.prototype[Symbol.iterator] and %ArrayIteratorPrototype%.next (for…of, spread and array
 *   destructuring call them);
 * - "call", "apply": Function.prototype.call / .apply (`method.call(view, …)` calls the program's);
 * - "array-methods": every method of Array.prototype (push, map, forEach, slice, indexOf, join…);
 * - "index-setters": setters on Array.prototype for the first indexes (an assignment into a fresh array runs them);
 * - "field-setters": setters on Object.prototype for the trap layout's field names, and a getter for
 *   Object.prototype[Symbol.iterator];
 * - "dataview": DataView.prototype's getters and setters.
 */
export type ReplacedBuiltin =
  | "iterator"
  | "call"
  | "apply"
  | "array-methods"
  | "index-setters"
  | "field-setters"
  | "dataview";

export const REPLACED_BUILTINS: readonly ReplacedBuiltin[] = [
  "iterator",
  "call",
  "apply",
  "array-methods",
  "index-setters",
  "field-setters",
  "dataview",
];

// Captured now (the test's own calls inside a trap must not go through a replaced one).
const reflectApply = Reflect.apply;
const defineProperty = Object.defineProperty;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const ArrayIteratorPrototype = Object.getPrototypeOf([][Symbol.iterator]());
const stringIndexOf = String.prototype.indexOf;
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);

/**
 * The built-ins ffi/boundary.ts calls through `.call` (its `intrinsic` getters and methods). JavaScriptCore
 * drops the frames of tail calls (`return intrinsic.typedArrayTag(value)`), so in Bun a call of one of these
 * may show no memkit caller, or the arrays' function that called `intrinsic`: it is then taken as the
 * boundary's (the arrays family calls no built-in through `.call`: a test reads its sources for that).
 */
const BOUNDARY_CALLEES: ReadonlySet<unknown> = (() => {
  const out = new Set<unknown>();
  const getters: [object, PropertyKey][] = [
    [TypedArrayPrototype, "byteLength"],
    [TypedArrayPrototype, "byteOffset"],
    [TypedArrayPrototype, "length"],
    [TypedArrayPrototype, "buffer"],
    [TypedArrayPrototype, Symbol.toStringTag],
    [DataView.prototype, "byteLength"],
    [DataView.prototype, "byteOffset"],
    [DataView.prototype, "buffer"],
    [ArrayBuffer.prototype, "byteLength"],
    [ArrayBuffer.prototype, "detached"],
    [ArrayBuffer.prototype, "resizable"],
    [SharedArrayBuffer.prototype, "byteLength"],
  ];
  for (const [target, key] of getters) out.add(Object.getOwnPropertyDescriptor(target, key)?.get);
  for (const name of ["set", "fill", "copyWithin"]) out.add(TypedArrayPrototype[name]);
  out.add(ArrayBuffer.prototype.transfer);
  return out;
})();
const stringSlice = String.prototype.slice;

/**
 * The memkit files outside the arrays family that an array operation calls into and that still call a
 * replaceable built-in (reported to their owners): the native boundary's `intrinsic` (`.call` on its captured
 * getters and methods), the allocators' lease and block bookkeeping (for…of, push, indexOf, splice, pop), the
 * record of detached memory. A trap that runs there is counted apart (`outside`), and only these files may.
 */
export const KNOWN_OUTSIDE: readonly string[] = [
  "ffi/boundary.ts",
  "src/alloc/_lease.ts",
  "src/alloc/_own_blocks.ts",
  "src/alloc/system_allocator.ts",
  "src/base/_detach.ts",
];

/** What withReplacedBuiltins() saw: the result or error, the traps that ran. */
export interface TrapRun<R> {
  result?: R;
  error?: unknown;
  /** The replaced built-ins that ran from the arrays family's code (or the test's): none may. */
  trapped: string[];
  /** Those that ran from another memkit file (the native boundary, an allocator): "what (file)". */
  outside: string[];
}

// Where the repository is (a stack frame names a file by its path, or its file: URL).
const ROOT = new URL("../../", import.meta.url).pathname;
const ROOTS = [`${ROOT}src/`, `${ROOT}ffi/`];

// The memkit file (from "src/" or "ffi/") of the nearest caller in `stack` that is memkit's, or null.
function memkitCaller(stack: string): string | null {
  const lines = stack.split("\n");
  for (let i = 1; i < lines.length; i++) {
    for (let r = 0; r < ROOTS.length; r++) {
      const line = lines[i];
      const at = reflectApply(stringIndexOf, line, [ROOTS[r]]) as number;
      if (at === -1) continue;
      const from = at + ROOT.length;
      const end = reflectApply(stringIndexOf, line, [":", from]) as number;
      return reflectApply(stringSlice, line, [from, end]) as string;
    }
  }
  return null;
}

/**
 * Runs `run` with the built-ins of `kinds` replaced (restored before returning, also when it throws), each
 * replacement counting itself and then doing what the original does. `onTrap` runs once, inside the first
 * trap that runs from the arrays family's code (one that runs from another memkit file is only counted: see
 * KNOWN_OUTSIDE).
 */
export function withReplacedBuiltins<R>(
  run: () => R,
  onTrap: () => void = () => {},
  kinds: readonly ReplacedBuiltin[] = REPLACED_BUILTINS,
): TrapRun<R> {
  // (Sets: pushing to an array would run the traps installed here.)
  const trapped = new Set<string>();
  const outside = new Set<string>();
  let fired = false;
  let inside = false; // (the stack is made by code that may call the traps again)
  const hit = (what: string, callee?: unknown) => {
    if (inside) return;
    inside = true;
    let file: string | null;
    try {
      file = memkitCaller(new Error().stack ?? "");
    } finally {
      inside = false;
    }
    // (JavaScriptCore drops tail calls' frames, so the nearest frame may be the arrays' own that called intrinsic.)
    if (BOUNDARY_CALLEES.has(callee) && (file === null || file.startsWith("src/arrays/"))) file = "ffi/boundary.ts";
    if (file !== null && !file.startsWith("src/arrays/")) {
      outside.add(`${what} (${file})`);
      return;
    }
    trapped.add(what);
    if (fired) return;
    fired = true;
    onTrap();
  };
  // (No prototype: an index setter installed here must not catch the test's own bookkeeping.)
  const restore = Object.setPrototypeOf([], null) as [object, PropertyKey, PropertyDescriptor | undefined][];
  const replace = (target: object, key: PropertyKey, descriptor: PropertyDescriptor) => {
    restore[restore.length] = [target, key, getOwnPropertyDescriptor(target, key)];
    defineProperty(target, key, { configurable: true, ...descriptor });
  };
  const wrap = (target: object, key: PropertyKey, what: string) => {
    const original = (target as Record<PropertyKey, unknown>)[key] as (...args: unknown[]) => unknown;
    replace(target, key, {
      writable: true,
      value: function (this: unknown, ...args: unknown[]) {
        hit(what);
        return reflectApply(original, this, args);
      },
    });
  };
  const setter = (target: object, name: string, what: string) =>
    replace(target, name, {
      set(this: object, value: unknown) {
        defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
        hit(what);
      },
    });
  const nameOf = (fn: unknown) => {
    const name = typeof fn === "function" ? getOwnPropertyDescriptor(fn, "name")?.value : undefined;
    return typeof name === "string" && name !== "" ? name : "(anonymous)";
  };
  try {
    // (Index loops: once a trap is in, a for…of here would run it.)
    for (let k = 0; k < kinds.length; k++) {
      switch (kinds[k]) {
        case "iterator":
          wrap(Array.prototype, Symbol.iterator, "Array.prototype[Symbol.iterator]");
          wrap(ArrayIteratorPrototype, "next", "%ArrayIteratorPrototype%.next");
          break;
        case "call":
        case "apply": {
          const kind = kinds[k] as "call" | "apply";
          const original = Function.prototype[kind] as (...args: unknown[]) => unknown;
          replace(Function.prototype, kind, {
            writable: true,
            value: function (this: unknown, ...args: unknown[]) {
              hit(`Function.prototype.${kind} of ${nameOf(this)}`, this);
              return reflectApply(original, this, args);
            },
          });
          break;
        }
        case "array-methods":
          for (let i = 0, names = Object.getOwnPropertyNames(Array.prototype); i < names.length; i++) {
            const name = names[i];
            const descriptor = getOwnPropertyDescriptor(Array.prototype, name)!;
            if (name === "constructor" || typeof descriptor.value !== "function") continue;
            wrap(Array.prototype, name, `Array.prototype.${name}`);
          }
          break;
        case "index-setters":
          for (let index = 0; index < 4; index++) {
            setter(Array.prototype, `${index}`, `set Array.prototype[${index}]`);
          }
          break;
        case "field-setters":
          for (let i = 0; i < FIELD_NAMES.length; i++) {
            setter(Object.prototype, FIELD_NAMES[i], `set Object.prototype.${FIELD_NAMES[i]}`);
          }
          replace(Object.prototype, Symbol.iterator, {
            get() {
              hit("get Object.prototype[Symbol.iterator]");
              return undefined;
            },
          });
          break;
        case "dataview":
          for (let i = 0, names = Object.getOwnPropertyNames(DataView.prototype); i < names.length; i++) {
            const name = names[i];
            if (!/^(get|set)/.test(name)) continue;
            if (typeof getOwnPropertyDescriptor(DataView.prototype, name)!.value !== "function") continue;
            wrap(DataView.prototype, name, `DataView.prototype.${name}`);
          }
          break;
      }
    }
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 64;
    try {
      return { result: run(), trapped: [...trapped], outside: [...outside] };
    } catch (error) {
      return { error, trapped: [...trapped], outside: [...outside] };
    } finally {
      Error.stackTraceLimit = limit;
    }
  } finally {
    for (let i = restore.length - 1; i >= 0; i--) {
      const target = restore[i][0], key = restore[i][1], descriptor = restore[i][2]; // (no destructuring: a trap)
      if (descriptor === undefined) delete (target as Record<PropertyKey, unknown>)[key];
      else defineProperty(target, key, descriptor);
    }
  }
}
