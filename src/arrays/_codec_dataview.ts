// The checked path of a record codec, through a DataView: reading a value
// and checking all of it into a scratch element (the path for every value the
// generated writer does not take, and for every type where there is none),
// and reading an element back. The checks here define what a value must be;
// the generated writer's inline checks only pick the values it can take.
//
// Built-ins are the ones captured when memkit loaded (see _builtins.ts): fields are walked with index loops,
// DataView's methods are called through RecordView, so a built-in a program replaced later (the array iterator,
// Function.prototype.call, DataView.prototype.getUint32, an index setter on Array.prototype) never runs here.
import { intrinsic } from "../../ffi/boundary.ts";
import { describe, withArticle } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { FieldValue } from "./_record_codec.ts";
import { type Field, type Fields, type Kind, KIND_SIZE } from "./_codec_layout.ts";
import { getF16, setF16 } from "./_f16.ts";
import { typedArrayKind } from "./_intrinsic_views.ts";
import { arrayOf, newRecord } from "./_plain_values.ts";
import {
  asIntN,
  asUintN,
  Builtin,
  getPrototypeOf,
  hasOwn,
  isArray,
  isFinite,
  isInteger,
  type RecordView,
  trunc,
  weakGet,
  weakSet,
  weakSetAddOf,
  weakSetHasOf,
} from "./_builtins.ts";

const isView = ArrayBuffer.isView;
const ObjectPrototype = Object.prototype;
const BigIntOf = BigInt;

// Errors the checks made (encodeMany names the element in them; a getter's own errors pass unchanged).
const checkErrors = new Builtin.WeakSet<Error>();

/** Marks `error` as one a check made, and returns it. */
export function fail<E extends Error>(error: E): E {
  weakSetAddOf(checkErrors, error);
  return error;
}

/** Whether a check made `error` (rather than user code it ran). */
export function isCheckError(error: unknown): boolean {
  return weakSetHasOf(checkErrors, error);
}

// Integer kinds' ranges; a value outside is a RangeError unless the array wraps.
const INT_RANGE: Partial<Record<Kind, [number, number]>> = {
  i8: [-128, 127],
  u8: [0, 255],
  i16: [-32768, 32767],
  u16: [0, 65535],
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u32: [0, 2 ** 32 - 1],
};
const I64_MIN = -(2n ** 63n), I64_MAX = 2n ** 63n - 1n, U64_MAX = 2n ** 64n - 1n;

const WRAP_HINT = "(create the array with { wrap: true } to store it wrapped, as C converts integers)";

// Checks one number for `kind` and returns what to store. Strict: integers
// must fit; with `wrap`, any number is converted as C (and a typed array)
// would: truncated toward zero, then taken modulo 2^bits (NaN and ±Infinity as 0).
function scalarValue(kind: Kind, x: unknown, wrap: boolean, what: string): number | bigint {
  if (kind === "bool") {
    // Never a number: 2 in a bool would read back as true, not 2 (C's _Bool converts it the same way).
    if (typeof x !== "boolean") {
      throw fail(new TypeError(`Cannot store ${what} as a bool must be true or false: got ${describe(x)}`));
    }
    return x ? 1 : 0;
  }
  if (kind === "i64" || kind === "u64") {
    let big: bigint;
    if (typeof x === "bigint") big = x;
    else if (typeof x === "number") {
      if (isInteger(x)) big = BigIntOf(x);
      else if (wrap) big = isFinite(x) ? BigIntOf(trunc(x)) : 0n;
      else {throw fail(
          new RangeError(
            `Cannot store ${what} as ${withArticle(kind)} must be an integer ${WRAP_HINT}: got ${describe(x)}`,
          ),
        );}
    } else {
      throw fail(
        new TypeError(`Cannot store ${what} as ${withArticle(kind)} must be a bigint or a number: got ${describe(x)}`),
      );
    }
    if (wrap) return kind === "i64" ? asIntN(64, big) : asUintN(64, big);
    const min = kind === "i64" ? I64_MIN : 0n, max = kind === "i64" ? I64_MAX : U64_MAX;
    if (big < min || big > max) {
      throw fail(
        new RangeError(
          `Cannot store ${what} as ${withArticle(kind)} must be from ${min} to ${max} ${WRAP_HINT}: got ${big}n`,
        ),
      );
    }
    return big;
  }
  if (typeof x !== "number") {
    throw fail(new TypeError(`Cannot store ${what} as ${withArticle(kind)} must be a number: got ${describe(x)}`));
  }
  const range = INT_RANGE[kind];
  if (range === undefined || wrap) return x;
  if (!isInteger(x) || x < range[0] || x > range[1]) {
    throw fail(
      new RangeError(
        `Cannot store ${what} as ${withArticle(kind)} must be an integer from ${range[0]} to ${
          range[1]
        } ${WRAP_HINT}: got ${describe(x)}`,
      ),
    );
  }
  return x;
}

// DataView's methods as they were when memkit loaded, through RecordView (whose prototype holds them): a method
// the program replaces later would be its code running in the middle of a read (remove() reads the element
// between its checks and its length change), and so would a replaced Function.prototype.call.
const SET = {
  i8: (v: RecordView, p: number, x: number | bigint) => v.setInt8(p, x as number),
  u8: (v: RecordView, p: number, x: number | bigint) => v.setUint8(p, x as number),
  i16: (v: RecordView, p: number, x: number | bigint) => v.setInt16(p, x as number, true),
  u16: (v: RecordView, p: number, x: number | bigint) => v.setUint16(p, x as number, true),
  i32: (v: RecordView, p: number, x: number | bigint) => v.setInt32(p, x as number, true),
  u32: (v: RecordView, p: number, x: number | bigint) => v.setUint32(p, x as number, true),
  i64: (v: RecordView, p: number, x: number | bigint) => v.setBigInt64(p, x as bigint, true),
  u64: (v: RecordView, p: number, x: number | bigint) => v.setBigUint64(p, x as bigint, true),
  f16: (v: RecordView, p: number, x: number | bigint) => setF16(v, p, x as number),
  f32: (v: RecordView, p: number, x: number | bigint) => v.setFloat32(p, x as number, true),
  f64: (v: RecordView, p: number, x: number | bigint) => v.setFloat64(p, x as number, true),
  bool: (v: RecordView, p: number, x: number | bigint) => v.setUint8(p, x as number),
};

const GET = {
  i8: (v: RecordView, p: number) => v.getInt8(p),
  u8: (v: RecordView, p: number) => v.getUint8(p),
  i16: (v: RecordView, p: number) => v.getInt16(p, true),
  u16: (v: RecordView, p: number) => v.getUint16(p, true),
  i32: (v: RecordView, p: number) => v.getInt32(p, true),
  u32: (v: RecordView, p: number) => v.getUint32(p, true),
  i64: (v: RecordView, p: number) => v.getBigInt64(p, true),
  u64: (v: RecordView, p: number) => v.getBigUint64(p, true),
  f16: (v: RecordView, p: number) => getF16(v, p),
  f32: (v: RecordView, p: number) => v.getFloat32(p, true),
  f64: (v: RecordView, p: number) => v.getFloat64(p, true),
  bool: (v: RecordView, p: number) => v.getUint8(p) !== 0,
};

// Checks `x` for `field` (reading a vector's or an array's length and
// elements once each, a nested record's fields once each) and stores it in
// the scratch `view` at `at`. Throws before storing anything of this field
// when any part is wrong; a view over freed memory (a detached buffer) is a
// use-after-free, whatever the field.
function stageField(field: Field, x: unknown, wrap: boolean, view: RecordView, at: number, path: string | null): void {
  const { kind, count, lanes, inner } = field;
  const what = path === null ? "the value" : `field '${path}'`;
  if (isView(x) && intrinsic.isDetached(intrinsic.bufferOf(x))) {
    throw fail(
      new AllocationError(
        "use-after-free",
        `Cannot store ${what} as it is a view over a detached ArrayBuffer: its memory was released`,
      ),
    );
  }
  if (inner !== null) {
    if (!inner.array) {
      stageRecord(inner, x, null, wrap, view, at, path);
      return;
    }
    if (!isArray(x)) {
      throw fail(
        new TypeError(`Cannot store ${what} as it must be an array of ${inner.length} elements: got ${describe(x)}`),
      );
    }
    const length = x.length;
    if (length !== inner.length) {
      throw fail(
        new RangeError(`Cannot store ${what} as it must hold ${inner.length} elements: got ${describe(length)}`),
      );
    }
    for (let i = 0; i < length; i++) {
      stageField(inner.element, x[i], wrap, view, at + i * inner.stride, `${path}[${i}]`);
    }
    return;
  }
  const put = SET[kind];
  if (!lanes) {
    put(view, at, scalarValue(kind, x, wrap, what));
    return;
  }
  let length: number;
  const tag = typedArrayKind(x);
  const numbers = kind !== "bool" && kind !== "i64" && kind !== "u64";
  if (numbers && tag !== undefined && tag !== "BigInt64Array" && tag !== "BigUint64Array") {
    length = intrinsic.typedArrayLength(x);
  } else if (isArray(x)) length = x.length;
  else {
    const things = kind === "bool" ? "booleans" : "numbers";
    throw fail(new TypeError(`Cannot store ${what} as it must be an array of ${count} ${things}: got ${describe(x)}`));
  }
  if (length !== count) {
    throw fail(new RangeError(`Cannot store ${what} as it must hold ${count} elements: got ${describe(length)}`));
  }
  // Every element read once (in order), then each checked and put in the scratch element (no user code runs
  // there: a throw leaves only the scratch written). arrayOf, not assignments into `new Array(count)`: an index
  // setter a program put on Array.prototype would run, and could keep the value.
  const values = arrayOf(count, (i) => (x as ArrayLike<unknown>)[i]);
  const step = KIND_SIZE[kind];
  for (let i = 0; i < count; i++) {
    put(
      view,
      at + i * step,
      scalarValue(kind, values[i], wrap, path === null ? `${what}[${i}]` : `field '${path}[${i}]'`),
    );
  }
}

// Checks a record's keys (each must be a field), reads each field once (or
// takes them from `read`), and stages them at `at`.
function stageRecord(
  layout: Fields,
  value: unknown,
  read: ArrayLike<unknown> | null,
  wrap: boolean,
  view: RecordView,
  at: number,
  path: string | null,
): void {
  const { fields, list, template } = layout;
  const record = path === null ? "the record" : `field '${path}'`;
  const prefix = path === null ? "" : `${path}.`;
  if (typeof value !== "object" || value === null) {
    throw fail(
      new TypeError(
        `Cannot store ${path === null ? describe(value) : `${record} (${describe(value)})`} as a record must be an ` +
          `object with the fields ${list}`,
      ),
    );
  }
  if (read === null) {
    for (const key in value) {
      if (!hasOwn(template, key)) {
        throw fail(
          new TypeError(
            `Cannot store ${record} as '${prefix}${key}' is not one of its fields (${list}); a misspelled field is ` +
              `never stored`,
          ),
        );
      }
    }
    read = arrayOf(fields.length, (i) => (value as Record<string, unknown>)[fields[i].name!]);
  }
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    if (read[i] === undefined) {
      throw fail(
        new TypeError(`Cannot store ${record} as field '${prefix}${field.name}' is missing (the fields are ${list})`),
      );
    }
    try {
      stageField(field, read[i], wrap, view, at + field.offset, `${prefix}${field.name}`);
    } catch (error) {
      // A member every object inherits (toString, valueOf, constructor…) read where the record lacks the
      // field: the field is missing, not a function of the wrong type. Asked only once the value failed.
      if (!inheritedFromObject(value, field.name!)) throw error;
      throw fail(
        new TypeError(`Cannot store ${record} as field '${prefix}${field.name}' is missing (the fields are ${list})`),
      );
    }
  }
}

// The nested records the generated writer read, by the copy of their fields it handed to the checked path.
const handedRecords = new Builtin.WeakMap<object, object>();

/** `copy`, the fields read from the nested record `record`, remembered as that record's (the slow path only). */
export function handedCopy(record: object, copy: object): object {
  weakSet(handedRecords, copy, record);
  return copy;
}

// Whether reading `name` from `value` finds Object.prototype's own member (not one of the record or its
// class, whose getters are fields). User code (a Proxy's traps) may run: this is the error path, before any claim.
function inheritedFromObject(value: object, name: string): boolean {
  try {
    let owner: object | null = weakGet(handedRecords, value) ?? value;
    while (owner !== null && !hasOwn(owner, name)) owner = getPrototypeOf(owner);
    return owner === ObjectPrototype;
  } catch {
    return false; // a trap threw: keep the error the value gave
  }
}

/**
 * Reads and checks all of `value` (an element of `fields`, a record when
 * `record` is not null) into the zeroed scratch element `view`. `read` holds
 * the fields the generated writer already read, in order (so no getter runs
 * twice), or null to read them here, after checking that every key is a field.
 * @throws {TypeError | RangeError} Marked by fail(), before anything is claimed.
 */
export function stageValue(
  record: Fields | null,
  fields: readonly Field[],
  wrap: boolean,
  value: unknown,
  read: ArrayLike<unknown> | null,
  view: RecordView,
): void {
  if (record === null) {
    stageField(fields[0], value, wrap, view, 0, null);
    return;
  }
  stageRecord(record, value, read, wrap, view, 0, null);
}

// Reading builds plain values and runs no program code (no inherited setter, no replaced method or iterator):
// see _plain_values.ts. Each record is a copy of its fields' template, made when the layout was compiled.

function readField(field: Field, view: RecordView, at: number): FieldValue {
  const { kind, count, lanes, inner } = field;
  if (inner !== null) {
    if (!inner.array) return readRecord(inner, view, at);
    return arrayOf(inner.length, (i) => readField(inner.element, view, at + i * inner.stride));
  }
  const get = GET[kind];
  if (!lanes) return get(view, at);
  const step = KIND_SIZE[kind];
  return arrayOf(count, (i) => get(view, at + i * step) as number);
}

function readRecord(record: Fields, view: RecordView, at: number): { [field: string]: FieldValue } {
  // Every field is an own property of `out` already: assigning it looks at no prototype.
  const out = newRecord<{ [field: string]: FieldValue }>(record.template);
  const fields = record.fields;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    out[field.name!] = readField(field, view, at + field.offset);
  }
  return out;
}

/**
 * Reads the element at byte `at` of `view`: a fresh object for a record (`record` not null), else its one field's
 * value. Runs no program code.
 */
export function readElement(record: Fields | null, fields: readonly Field[], view: RecordView, at: number): unknown {
  return record !== null ? readRecord(record, view, at) : readField(fields[0], view, at);
}
