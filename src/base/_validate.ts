// Argument checks shared by every public entry point. Hot paths (alloc, free)
// use the hand-written checks; options objects go through zod once, in
// constructors and factories. All of them run before any native call.
import { types } from "node:util";
import { z } from "zod";
import { intrinsic } from "../../ffi/boundary.ts";
import { AllocationError } from "./errors.ts";

/** Largest block size any memkit allocator accepts: 2^47, the x86-64/arm64 user address space. */
export const MAX_BLOCK_SIZE: number = 2 ** 47;

/**
 * `word` with the article it is read with: a type name's letters are spelled out ("an i8", "an f32", "a u8"),
 * another word goes by its first letter ("a bool", "an array").
 */
export function withArticle(word: string): string {
  const an = /^[a-z]\d/i.test(word)
    ? /^[aefhilmnorsx]/i.test(word) // ay, ef, aitch, eye, el, em, en, oh, ar, es, ex
    : /^[aeio]/i.test(word);
  return `${an ? "an" : "a"} ${word}`;
}

/** A file path for a message, whole (a path cut short hides the part that differs) up to PATH_MAX. */
export function describePath(path: string): string {
  return JSON.stringify(path.length > 4096 ? `${path.slice(0, 4096)}…` : path);
}

/** A short, safe rendering of any value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "function") {
    // The name as data: a getter on it would be user code running inside an error path.
    const name = Object.getOwnPropertyDescriptor(value, "name")?.value;
    return `function ${typeof name === "string" && name ? name : "(anonymous)"}`;
  }
  if (value === null || typeof value !== "object") return String(value);
  if (ArrayBuffer.isView(value)) {
    // From internal slots: an own `constructor` or `byteLength` getter never runs here.
    return `${intrinsic.typedArrayTag(value) ?? "DataView"}(${intrinsic.lengthOf(value)} bytes)`;
  }
  return describeObject(value);
}

/**
 * An object for a message, by what it is: "a Proxy", "an object" (a plain or null-prototype object), or its
 * class's name with its article ("an Array", "a Map", "a PoolAllocator"), an odd class name quoted and cut
 * short. Read without running the program's code (no getter, no Proxy trap, no Symbol.toStringTag): a message
 * is often built in the middle of a failing operation.
 */
export function describeObject(value: object): string {
  const name = className(value);
  if (name === undefined) return types.isProxy(value) ? "a Proxy" : "an object";
  return /^[A-Za-z_$][\w$]{0,63}$/.test(name) ? withArticle(name) : `an object of class ${describe(name)}`;
}

/**
 * The name of `value`'s class as its `constructor` data property gives it (undefined for a Proxy, a plain or
 * null-prototype object, an accessor or a Proxy on the way, or a nameless class); no code of the program runs.
 */
export function className(value: object): string | undefined {
  if (types.isProxy(value)) return undefined;
  const ctor = dataProperty(value, "constructor");
  const name = typeof ctor === "function" && !types.isProxy(ctor) ? ownData(ctor, "name") : undefined;
  return typeof name === "string" && name !== "Object" && name !== "" ? name : undefined;
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

/** A view's buffer, from its internal slot (an own `buffer` property or a subclass getter is never read). */
export const bufferOf: (view: ArrayBufferView) => ArrayBufferLike = intrinsic.bufferOf;
/** A view's byte offset, from its internal slot (0 when detached). */
export const offsetOf: (view: ArrayBufferView) => number = intrinsic.offsetOf;
/** A view's byte length, from its internal slot (0 when detached). */
export const lengthOf: (view: ArrayBufferView) => number = intrinsic.lengthOf;
/** Whether an ArrayBuffer was detached (a SharedArrayBuffer never is). */
export const isDetached: (buffer: ArrayBufferLike) => boolean = intrinsic.isDetached;

type ViewConstructor = new (buffer: ArrayBufferLike, offset: number, length: number) => ArrayBufferView;
let typedArraysByTag: Map<string, ViewConstructor> | null = null;

/**
 * The built-in constructor of a view's type, from its internal slot: the
 * base type for a subclass, `DataView` for a DataView (its own `constructor`
 * property is never read).
 */
export function intrinsicConstructorOf(
  view: ArrayBufferView,
): { ctor: ViewConstructor; bytesPerElement: number } {
  typedArraysByTag ??= new Map(
    [...TYPED_ARRAY_CONSTRUCTORS].map((c) => [(c as ViewConstructor).name, c as ViewConstructor]),
  );
  const tag = intrinsic.typedArrayTag(view);
  const ctor = tag === undefined ? undefined : typedArraysByTag.get(tag);
  if (ctor === undefined) return { ctor: DataView, bytesPerElement: 1 };
  return { ctor, bytesPerElement: (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT };
}

/**
 * Refuses arguments to a method that takes none and returns a Disposable (`frame()`, `scope()`, `hold()`): a
 * callback passed to it would never run and what it opened would stay open.
 */
export function refuseArguments(count: number, op: string, usage: string): void {
  if (count === 0) return;
  throw new TypeError(
    `Cannot ${op} with ${count === 1 ? "an argument" : `${count} arguments`}: it takes none (a callback is not ` +
      `run) and returns a Disposable that ends it: ${usage}`,
  );
}

/** A byte count: a safe integer from `min` (default 0) to `max`. */
export function checkSize(value: unknown, op: string, name = "size", max = MAX_BLOCK_SIZE, min = 0): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as '${name}' must be a number: current value is ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot ${op} as '${name}' must be an integer from ${min} to ${max}: current value is ${describe(value)}`,
    );
  }
  return value;
}

/** An alignment: a power of two from 1 to `max`; undefined means `fallback`. `name` is what messages call it. */
export function checkAlignment(value: unknown, op: string, max: number, fallback = 16, name = "align"): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as '${name}' must be a number: current value is ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 1 || value > max || (value & (value - 1)) !== 0) {
    throw new RangeError(
      `Cannot ${op} as '${name}' must be a power of two from 1 to ${max}: current value is ${describe(value)}`,
    );
  }
  return value;
}

/** Any typed array or DataView. */
export function checkView(value: unknown, op: string, name = "view"): ArrayBufferView {
  if (!ArrayBuffer.isView(value)) {
    throw new TypeError(
      `Cannot ${op} as '${name}' must be a typed array or DataView: current value is ${describe(value)}`,
    );
  }
  return value;
}

/** The bytes of a view, as a Uint8Array over the same memory. */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return intrinsic.isPlainUint8Array(view) ? view : new Uint8Array(bufferOf(view), offsetOf(view), lengthOf(view));
}

/**
 * The bytes of a view as a Uint8Array over the same memory, found through the
 * engine's intrinsic getters (the safety model: lengths cannot be faked): a subclass getter or an own
 * `length`, `byteLength`, `byteOffset` or `buffer` property changes nothing.
 * A plain Uint8Array is returned as is; read its length with
 * {@linkcode byteLengthOf}, never `.length`. Call after {@linkcode checkView}.
 *
 * @throws {AllocationError} "use-after-free" for a view over a detached buffer.
 */
export function viewBytes(view: ArrayBufferView, op: string, name = "view"): Uint8Array {
  if (intrinsic.isPlainUint8Array(view)) return view;
  const [buffer, byteOffset, byteLength] = intrinsic.range(view);
  if (byteLength === 0 && intrinsic.isDetached(buffer)) throw detachedError(op, name);
  return intrinsic.uint8Array(buffer, byteOffset, byteLength);
}

/**
 * The real byte length of a Uint8Array (from {@linkcode viewBytes}).
 *
 * @throws {AllocationError} "use-after-free" when it is over a detached buffer.
 */
export function byteLengthOf(bytes: Uint8Array, op: string, name = "view"): number {
  const length = intrinsic.typedArrayByteLength(bytes);
  if (length === 0 && intrinsic.isDetached(intrinsic.range(bytes)[0])) throw detachedError(op, name);
  return length;
}

function detachedError(op: string, name: string): AllocationError {
  return new AllocationError(
    "use-after-free",
    `Cannot ${op} as '${name}' is a view over a detached ArrayBuffer: its memory was freed or unmapped`,
  );
}

/**
 * Whether `value` is a Proxy whose `revoke()` ran: every operation on it (a read, `instanceof`,
 * `Array.isArray`) throws the engine's TypeError, which must never reach the program. Asked without running
 * the program's code (`Array.isArray` of a live Proxy runs no trap).
 */
export function isRevokedProxy(value: unknown): boolean {
  if (typeof value !== "object" || value === null || !types.isProxy(value)) return false;
  try {
    Array.isArray(value);
    return false;
  } catch {
    return true;
  }
}

/**
 * `Array.isArray(value)`, but true, rather than a throw, for a revoked Proxy: for a check that refuses arrays
 * and then looks closer at what it refused (the engine throws from `Array.isArray` only for a revoked Proxy).
 */
export function isArrayOrRevoked(value: unknown): boolean {
  try {
    return Array.isArray(value);
  } catch {
    return true;
  }
}

/**
 * `Array.isArray(value)`, but false, rather than a throw, for a revoked Proxy: for a check that takes arrays
 * and refuses anything else (the refusal then names it "a Proxy").
 */
export function isLiveArray(value: unknown): value is unknown[] {
  try {
    return Array.isArray(value);
  } catch {
    return false;
  }
}

/** The TypeError for a revoked Proxy given as option `name` (its path, "options" for the object itself). */
function revokedOptionError(op: string, name: string, cause?: unknown): TypeError {
  return new TypeError(
    `Cannot ${op} as '${name}' is a revoked Proxy: nothing can be read from it (its revoke() ran); pass the ` +
      "object itself, or a Proxy that is not revoked",
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Where a revoked Proxy sits in `value` ("" for `value` itself, else its path: "budgets", "a.b"), or null.
 * Looks through own data properties of objects that are no Proxy only, `depth` levels down: no getter and no
 * trap of the program runs.
 */
function revokedIn(value: unknown, path: string, depth: number): string | null {
  if (typeof value !== "object" || value === null) return null;
  if (isRevokedProxy(value)) return path;
  if (types.isProxy(value) || depth === 0) return null;
  for (const key of Reflect.ownKeys(value)) {
    const property = Object.getOwnPropertyDescriptor(value, key);
    if (property === undefined || !("value" in property)) continue;
    const found = revokedIn(property.value, path === "" ? String(key) : `${path}.${String(key)}`, depth - 1);
    if (found !== null) return found;
  }
  return null;
}

/**
 * Parses an options object, turning zod's verdict into the error a JS user
 * expects: TypeError for a wrong type or unknown key, RangeError for a value
 * out of range.
 */
export function parseOptions<T>(schema: z.ZodType<T>, value: unknown, op: string): T {
  if (value !== undefined && (typeof value !== "object" || value === null || isArrayOrRevoked(value))) {
    if (isRevokedProxy(value)) throw revokedOptionError(op, "options");
    throw new TypeError(`Cannot ${op} as 'options' must be an object: current value is ${describe(value)}`);
  }
  // A revoked Proxy among the options (or one its own trap revokes while zod reads it) throws the engine's
  // TypeError from any read, inside zod: said in the library's words (see revokedIn). Anything else thrown
  // there (a getter's own error) reaches the program as it was thrown.
  let result: ReturnType<typeof schema.safeParse>;
  let current: unknown = value;
  let issue: Issue;
  try {
    result = schema.safeParse(value ?? {});
    if (result.success) return result.data;
    issue = firstIssue(result.error.issues) as Issue;
    for (const key of issue.path) current = (current as Record<PropertyKey, unknown> | undefined)?.[key];
  } catch (error) {
    const at = revokedIn(value, "", 4);
    if (at === null) throw error;
    throw revokedOptionError(op, at === "" ? "options" : at, error);
  }
  const name = `'${issue.path.join(".")}'`;
  let message: string;
  if (issue.code === "unrecognized_keys") {
    // In a nested object (`budgets: { gpu }`) the keys are named by their path, and the known ones are that
    // object's: the schema is walked down the path (through optional wrappers).
    type Node = { shape?: Record<string, Node>; unwrap?: () => Node } | undefined;
    let node = schema as unknown as Node;
    for (const key of issue.path) {
      node = node?.shape?.[key as string];
      while (node !== undefined && node.shape === undefined && typeof node.unwrap === "function") node = node.unwrap();
    }
    const at = issue.path.length === 0 ? "" : `${issue.path.join(".")}.`;
    const known = Object.keys(node?.shape ?? {}).join(", ");
    message = `Cannot ${op} as option ${issue.keys!.map((k) => `'${at}${k}'`).join(", ")} is not known: ` +
      `expected only ${known}${at === "" ? "" : ` in '${issue.path.join(".")}'`}`;
    throw new TypeError(message, { cause: result.error });
  }
  // A failed typeCheck is about the kind of value, whatever the value is.
  const numeric = typeof current === "number" && !(issue as { params?: { type?: boolean } }).params?.type;
  if (issue.code === "invalid_value") {
    // One of a set: a value of another type than the set's is a TypeError (a number for a name), a number
    // outside a set of numbers a RangeError.
    const values = issue.values!;
    const text = `Cannot ${op} as ${name} must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}: ` +
      `current value is ${describe(current)}`;
    const outOfRange = typeof current === "number" && values.every((v) => typeof v === "number");
    throw outOfRange ? new RangeError(text, { cause: result.error }) : new TypeError(text, { cause: result.error });
  } else if (issue.code === "invalid_type") {
    if (issue.expected === "nonoptional" || current === undefined) {
      // A required option the object does not have (an accessor or a Proxy may still answer a read of it).
      throw new TypeError(`Cannot ${op} as option ${name} is required and missing`, { cause: result.error });
    }
    const expected = issue.expected === "int" ? "number" : issue.expected;
    if (numeric && expected === "number") {
      // NaN, Infinity, or a fraction where an integer was wanted: the type was right. A schema that says what
      // it takes (integerIn, powerOfTwo) says it here too; zod's own text ("Invalid input: …") never shows.
      const wanted = isZodDefault(issue.message)
        ? `must be ${issue.expected === "int" ? "an integer" : "a finite number"}`
        : issue.message;
      throw new RangeError(`Cannot ${op} as ${name} ${wanted}: current value is ${describe(current)}`, {
        cause: result.error,
      });
    }
    throw new TypeError(
      `Cannot ${op} as ${name} must be ${withArticle(expected)}: current value is ${describe(current)}`,
      {
        cause: result.error,
      },
    );
  } else if (issue.code === "invalid_union" && isZodDefault(issue.message)) {
    // A union without a message of its own: what each member takes, never zod's "Invalid input".
    message = `must be ${unionExpects(issue.errors as Issue[][])}`;
  } else if (issue.code === "too_big" && issue.origin === "int") {
    // int() alone bounds it: the largest integer a number holds exactly.
    message = `must be at most ${Number.MAX_SAFE_INTEGER} (2^53 - 1)`;
  } else if (issue.code === "too_small" && issue.origin === "int") {
    message = `must be at least ${Number.MIN_SAFE_INTEGER} (-(2^53 - 1))`;
  } else {
    message = issue.message;
  }
  const text = `Cannot ${op} as ${name} ${message}: current value is ${describe(current)}`;
  // The type was right but the number was not: that is a range error.
  throw numeric ? new RangeError(text, { cause: result.error }) : new TypeError(text, { cause: result.error });
}

type Issue = z.core.$ZodIssue & {
  keys?: string[];
  values?: unknown[];
  expected?: string;
  origin?: string;
  errors?: unknown[][];
};

/**
 * The issue a message is made from: the first, except that zod's int() also refuses an integer of 2^53 or more
 * with its own message ("must be an integer", which it is): the option's own bound, checked after it, is the
 * one to name when there is one.
 */
function firstIssue(issues: z.core.$ZodIssue[]): z.core.$ZodIssue {
  const first = issues[0] as Issue;
  if ((first.code !== "too_big" && first.code !== "too_small") || first.origin !== "int") return first;
  const path = first.path.join("\0");
  return issues.find((other) => other !== first && other.code === first.code && other.path.join("\0") === path) ??
    first;
}

/** Whether a message is zod's own (it starts "Invalid input"), not one a schema gave. */
function isZodDefault(message: string): boolean {
  return message.startsWith("Invalid input");
}

/** What a union's members take, from the issue each refused with: `"a", "b" or a number`. */
function unionExpects(branches: Issue[][]): string {
  const parts: string[] = [];
  for (const issues of branches) {
    const issue = issues[0];
    if (issue?.code === "invalid_value") parts.push(...issue.values!.map((v) => JSON.stringify(v)));
    else if (issue?.code === "invalid_type") {
      parts.push(issue.expected === "int" ? "an integer" : withArticle(issue.expected!));
    } else if (issue !== undefined && !isZodDefault(issue.message)) parts.push(issue.message.replace(/^must be /, ""));
  }
  if (parts.length === 0) return "of another kind";
  return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} or ${parts[parts.length - 1]}`;
}

/** A zod schema for a value of the right kind (an Allocator, a function): failing it is a TypeError. */
export function typeCheck<T>(check: (value: unknown) => boolean, message: string): z.ZodType<T> {
  return z.custom<T>(check, { message, params: { type: true } });
}

/**
 * A zod schema for a power of two from `min` to `max` (at most 2^30). Every refusal of a number (a fraction, NaN,
 * one past 2^53, out of range, not a power of two) says `message`, which names the whole range by default.
 */
export function powerOfTwo(
  max: number,
  min = 1,
  message = `must be a power of two from ${min} to ${max}`,
): z.ZodType<number> {
  return z.number({ error: message }).int(message).min(min, message).max(max, message)
    .refine((v) => (v & (v - 1)) === 0, message) as unknown as z.ZodType<number>;
}

/**
 * A zod schema for an integer from `min` to `max`. Every refusal of a number (a fraction, NaN, one past 2^53,
 * out of range) names the whole range, as {@linkcode checkSize}'s messages do.
 */
export function integerIn(min: number, max: number): z.ZodNumber {
  const message = `must be an integer from ${min} to ${max}`;
  return z.number({ error: message }).int(message).min(min, message).max(max, message);
}

export { z };

const TYPED_ARRAY_CONSTRUCTORS: ReadonlySet<unknown> = new Set([
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  ...("Float16Array" in globalThis ? [(globalThis as Record<string, unknown>).Float16Array] : []),
]);

/** A typed array constructor, checked; returns its element size. */
export function checkTypedArrayConstructor(ctor: unknown, op: string): number {
  if (!TYPED_ARRAY_CONSTRUCTORS.has(ctor)) {
    throw new TypeError(`Cannot ${op} as 'ctor' must be a typed array constructor: current value is ${describe(ctor)}`);
  }
  return (ctor as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
}
