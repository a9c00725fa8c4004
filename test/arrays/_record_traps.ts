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
