// Reading and writing one element of a DynamicArray or SharedDynamicArray:
// a scalar, a vector, or a record of a StructLayout.
//
// Writing is all or nothing (the safety model: all or nothing). A write first reads the value
// (each field once: getters, Proxies and array elements run here, and only
// here) and checks all of it, then asks its Target for the slot
// (`claim()`: where memkit looks at and changes its own state, grows the
// storage, takes a lock), then stores. User code never runs after the claim,
// so it cannot see or change a half-written element, and a value that fails
// its check changes nothing.
//
// The parts: _codec_layout.ts (what is stored where), _codec_dataview.ts (the
// checked path), _codec_generate.ts (the generated fast path), and
// _record_target.ts (the write protocol with the arrays).
import { describe } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { fail, isCheckError, readElement, stageValue } from "./_codec_dataview.ts";
import { generate } from "./_codec_generate.ts";
import { type Field, type Fields, layoutOf, makeViews, type ViewKind, type Views } from "./_codec_layout.ts";
import {
  Builtin,
  copyInto,
  fillBytes,
  floor,
  isSafeInteger,
  mapGetOf,
  mapSetOf,
  max,
  min,
  RecordView,
  typedLengthOf,
  typedRange,
  weakGet,
  weakSet,
} from "./_builtins.ts";
import { type List, newList } from "./_plain_values.ts";
import {
  type Appender,
  BufferTarget,
  claimOf,
  type Encoder,
  type Reader,
  type Slow,
  type Staging,
  type Target,
  type Writer,
} from "./_record_target.ts";
import type { FieldType, StructLayout } from "./struct.ts";

/** Largest staging buffer an array keeps between encodeMany() calls; bigger batches get a fresh one each time. */
const STAGING_KEPT = 64 << 10;

/**
 * A field's value: a number, a bigint (i64/u64), a boolean (bool), an array
 * (vector types and fixed-size arrays) or an object (a nested record).
 */
export type FieldValue = number | bigint | boolean | readonly FieldValue[] | { readonly [field: string]: FieldValue };

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * How elements of one type are read and written: the stride and alignment,
 * a checked path through a DataView, and, where every field is naturally
 * aligned (any non-packed layout), a reader and a writer generated for the
 * type that go through typed arrays with constant offsets and constant field
 * names: as fast as hand-written typed-array code once inlined.
 *
 * What a value must be: a record is an object whose fields are exactly the
 * layout's (a missing field, or an enumerable property that is not a field,
 * is a TypeError); scalars are numbers (bigints, or integral numbers, for
 * i64/u64); vectors are arrays or typed arrays of exactly their count of
 * numbers (a wrong count is a RangeError). Integers must fit their type
 * (RangeError) unless the codec wraps, which converts them as C does.
 * Floats take any number, NaN and ±Infinity included.
 */
export class RecordCodec {
  /** Bytes per element. */
  readonly stride: number;
  /** The element's own alignment. */
  readonly align: number;
  /** Whether integers out of range are wrapped (C conversion) instead of refused. */
  readonly wrap: boolean;
  /** A record layout's fields as a whole; null for a scalar or vector element. */
  readonly #record: Fields | null;
  readonly #fields: readonly Field[];
  /** The generated writer, or null (packed layouts, big-endian hosts, code generation disallowed). */
  readonly #writer: Writer | null = null;
  readonly #appender: Appender | null = null;
  readonly #encoder: Encoder | null = null;
  readonly #reader: Reader | null = null;
  readonly #kinds: ArrayLike<ViewKind> = [];
  // Scratch elements of the checked path, one per nesting depth (a getter may write to another array of this type).
  // (A List: an index setter a program put on Array.prototype does not see memkit's own bookkeeping.)
  readonly #scratch: List<{ bytes: Uint8Array; view: RecordView }> = newList();
  #depth = 0;

  /**
   * @param type A StructLayout, or a field type (scalars read as numbers, vectors as arrays).
   * @param op What is being created, for error messages.
   * @param wrap Whether out-of-range integers are wrapped (C conversion) instead of refused.
   * @throws {TypeError} For anything else.
   */
  constructor(type: StructLayout<unknown> | FieldType, op: string, wrap = false) {
    this.wrap = wrap;
    const layout = layoutOf(type);
    if (layout === null) {
      throw fail(
        new TypeError(
          `Cannot ${op} as 'type' must be a StructLayout<unknown> or a field type: current value is ${describe(type)}`,
        ),
      );
    }
    this.#record = layout.record;
    this.stride = layout.stride;
    this.align = layout.align;
    this.#fields = layout.fields;
    const generated = LITTLE_ENDIAN ? generate(layout.fields, this.stride, wrap) : null;
    if (generated !== null) {
      const slow: Slow = (value, target, read) => this.#slow(value, target, read);
      this.#writer = generated.writer(slow);
      this.#appender = generated.appender(slow);
      this.#encoder = generated.encoder(slow);
      this.#reader = generated.reader;
      this.#kinds = generated.kinds;
    }
  }

  /** Typed arrays over `byteLength` bytes of `buffer` from `byteOffset`, or null where the generated code does not apply. */
  viewsIn(buffer: ArrayBufferLike, byteOffset: number, byteLength: number): Views | null {
    return this.#views(buffer, byteOffset, byteLength);
  }

  /** Typed arrays over `block` for the generated code, or null where it does not apply (then use read()). */
  viewsOf(block: Uint8Array): Views | null {
    if (this.#writer === null) return null;
    const { buffer, offset } = typedRange(block); // (internal slots: not a getter the program may have replaced)
    return this.#views(buffer, offset, typedLengthOf(block));
  }

  /**
   * Typed arrays over `buffer` from `byteOffset` to its end; over a growable
   * SharedArrayBuffer they track its length as it grows. Null where the
   * generated code does not apply.
   */
  viewsOver(buffer: ArrayBufferLike, byteOffset: number): Views | null {
    return this.#views(buffer, byteOffset, undefined);
  }

  #views(buffer: ArrayBufferLike, byteOffset: number, byteLength: number | undefined): Views | null {
    if (this.#writer === null || byteOffset % 8 !== 0) return null;
    return makeViews(this.#kinds, buffer, byteOffset, byteLength);
  }

  /**
   * Checks `value` in full (user code runs here, each field read once), then
   * claims its slot from `target` and stores it there. Returns the index
   * `claim()` gave.
   * @throws {TypeError} For a value of the wrong shape or type, a missing or unknown field.
   * @throws {RangeError} For a vector of the wrong length, an integer out of range (unless wrapping).
   */
  store(value: unknown, target: Target): number {
    const writer = this.#writer;
    return writer !== null ? writer(value, target) : this.#slow(value, target, null);
  }

  /**
   * The generated writer for one claimer (see Appender), or null where no
   * code is generated: the caller gives it views from viewsOver() that stay
   * valid across the claim, and a target whose claim() returns what
   * claimer.claimOne() would.
   */
  get appender(): Appender | null {
    return this.#appender;
  }

  /**
   * Checks every element of `values` (an array; its length and each element
   * read once) into a staging buffer, as `store` would write them: nothing is
   * claimed, so the caller copies the whole buffer in one step, or nothing.
   * The buffer is fresh, or, with `staging`, the one kept there when it is
   * free and the batch small enough: then the caller copies it out before any
   * user code runs (the next encode with it writes over it).
   * @throws {TypeError | RangeError} As `store`, naming the element.
   */
  encodeMany(values: readonly unknown[], op: string, staging?: Staging): { bytes: Uint8Array; count: number } {
    const count = values.length;
    if (!isSafeInteger(count) || count < 0 || count * this.stride > 2 ** 32) {
      throw fail(
        new RangeError(
          `Cannot ${op} as 'values' must have from 0 to ${floor(2 ** 32 / this.stride)} elements: current length is ${
            describe(count)
          }`,
        ),
      );
    }
    const size = count * this.stride;
    const kept = staging !== undefined && !staging.busy && size <= STAGING_KEPT ? staging : null;
    let target: BufferTarget;
    if (kept === null) {
      const buffer = new Builtin.ArrayBuffer(size);
      target = new BufferTarget(new Builtin.Uint8Array(buffer), this.#views(buffer, 0, size), count);
    } else {
      if (kept.target === null || kept.size < size) {
        kept.size = min(STAGING_KEPT, max(size, 2 * kept.size, 512));
        kept.buffer = new Builtin.ArrayBuffer(kept.size);
        const bytes = new Builtin.Uint8Array(kept.buffer);
        kept.target = new BufferTarget(bytes, this.#views(kept.buffer, 0, kept.size), 0);
      }
      target = kept.target;
      target.next = 0;
      target.limit = count;
      kept.busy = true;
    }
    try {
      const encoder = this.#encoder;
      if (encoder !== null && target.views !== null) encoder(values, count, target);
      else for (let i = 0; i < count; i++) this.store(values[i], target);
    } catch (error) {
      if (!isCheckError(error)) throw error;
      // Both paths leave target.next at the element that failed (a slot is taken only once it is checked).
      const message = `Cannot ${op} as values[${target.next}] is wrong: ${(error as Error).message}`;
      throw fail(
        error instanceof AllocationError
          ? new AllocationError(error.category, message)
          : error instanceof RangeError
          ? new RangeError(message)
          : new TypeError(message),
      );
    } finally {
      if (kept !== null) kept.busy = false;
    }
    // (Not subarray(): a prototype method the program may have replaced.)
    return { bytes: kept === null ? target.bytes : new Builtin.Uint8Array(kept.buffer, 0, size), count };
  }

  /** Reads element `index` through views from viewsOf(). */
  readViews(views: Views, index: number): unknown {
    return this.#reader!(views, index);
  }

  /** Reads the element at byte `at` of `view` (memkit's own: see RecordView). */
  read(view: RecordView, at: number): unknown {
    return readElement(this.#record, this.#fields, view, at);
  }

  /**
   * The checked path: reads and checks all of `value` into a scratch element
   * (padding as zeros), then claims the slot and copies the element in.
   * `read` holds the fields the generated writer already read, in order.
   */
  #slow(value: unknown, target: Target, read: ArrayLike<unknown> | null): number {
    const depth = this.#depth++;
    try {
      let scratch = this.#scratch[depth];
      if (scratch === undefined) {
        const buffer = new Builtin.ArrayBuffer(this.stride);
        scratch = this.#scratch[depth] = { bytes: new Builtin.Uint8Array(buffer), view: new RecordView(buffer) };
      }
      fillBytes(scratch.bytes, 0);
      stageValue(this.#record, this.#fields, this.wrap, value, read, scratch.view);
      const index = claimOf(target);
      copyInto(target.bytes, scratch.bytes, index * this.stride);
      return index;
    } finally {
      this.#depth--;
    }
  }
}

const codecs = new Builtin.WeakMap<StructLayout<unknown>, RecordCodec>();
const wrappingCodecs = new Builtin.WeakMap<StructLayout<unknown>, RecordCodec>();
const scalarCodecs = new Builtin.Map<string, RecordCodec>();

/** The codec of `type`, made once per layout and `wrap` (its reader and writer are generated code). */
export function codecFor(type: StructLayout<unknown> | FieldType, op: string, wrap = false): RecordCodec {
  if (typeof type === "string") {
    const key = wrap ? `${type} wrap` : type;
    let codec = mapGetOf(scalarCodecs, key);
    if (codec === undefined) {
      codec = new RecordCodec(type, op, wrap);
      mapSetOf(scalarCodecs, key, codec);
    }
    return codec;
  }
  if (typeof type !== "object" || type === null) return new RecordCodec(type, op, wrap); // throws the TypeError
  const cache = wrap ? wrappingCodecs : codecs;
  let codec = weakGet(cache, type);
  if (codec === undefined) {
    codec = new RecordCodec(type, op, wrap);
    weakSet(cache, type, codec);
  }
  return codec;
}
