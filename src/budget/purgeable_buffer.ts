/**
 * Native memory the operating system may take back while it is volatile.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { detach, isDetached, mayRelease, transferredError } from "../base/_detach.ts";
import { createOwnerNamed } from "../base/_native_census.ts";
import { checkSize, MAX_BLOCK_SIZE, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { mapPages, type Mapping, type MappingWindow } from "../pages/mapping.ts";
import {
  DarwinPurgeableRegion,
  decodePurgableState,
  VM_PURGABLE_NONVOLATILE,
  VM_PURGABLE_VOLATILE,
} from "./_purgeable_darwin.ts";
import { PageSentinels } from "./_purgeable_sentinels.ts";
import { checkViewLimit } from "../base/_view_limit.ts";
import {
  type FindLeases,
  LeaseTable,
  type Lending,
  registerLessor,
  releasingFor,
  unregisterLessor,
} from "../alloc/_lease.ts";

/**
 * What {@linkcode PurgeableBuffer.makeNonVolatile} found: the contents were
 * `"kept"`, or the OS took the memory while it was volatile (`"purged"`: the
 * bytes are zero, then the restore callback refills them).
 *
 * @example
 * ```ts
 * import { PurgeableBuffer, type PurgeableState } from "@memkit/memkit";
 *
 * using buffer = new PurgeableBuffer(4096);
 * buffer.makeVolatile();
 * const state: PurgeableState = buffer.makeNonVolatile();
 * console.log(state); // "kept" unless the kernel needed the page meanwhile
 * ```
 */
export type PurgeableState = "kept" | "purged";

/**
 * Options of {@linkcode PurgeableBuffer}.
 *
 * @example
 * ```ts
 * import { PurgeableBuffer, type PurgeableBufferOptions } from "@memkit/memkit";
 *
 * const options: PurgeableBufferOptions = { restore: (bytes) => bytes.fill(1) };
 * using buffer = new PurgeableBuffer(4096, options);
 * ```
 */
export interface PurgeableBufferOptions {
  /**
   * Called by `makeNonVolatile()` when the contents were purged, with the new
   * (zero-filled) view, to recreate them (decode the image again, re-render
   * the texture). Not called when the contents were kept.
   */
  restore?: (bytes: Uint8Array<ArrayBuffer>) => void;
}

const OptionsSchema = z.object({
  restore: typeCheck<(bytes: Uint8Array<ArrayBuffer>) => void>((v) => typeof v === "function", "must be a function")
    .optional(),
}).strict();

// The storage per OS: a page mapping with sentinels on Linux (madvise MADV_FREE),
// a purgeable VM region on macOS (vm_purgable_control).
interface Storage {
  readonly address: number;
  /** A fresh view over the first `length` bytes, and how to end it. */
  open(length: number): { bytes: Uint8Array<ArrayBuffer>; close(): void };
  /** @throws {AllocationError} "platform" when the OS refuses (nothing changed then). */
  makeVolatile(): void;
  /** Whether the contents were purged (they read as zeros then). */
  makeNonVolatile(): boolean;
  release(): void;
}

/** What a holder of a PurgeableBuffer's memory hears when its view closes (see releasingFor for the real cause). */
const VIEW_CLOSED = "PurgeableBuffer released it";

class LinuxStorage implements Storage {
  readonly #mapping: Mapping;
  readonly #sentinels: PageSentinels;

  constructor(byteLength: number) {
    // Named for the report at exit after what the program made, not the mapping memkit made for it.
    this.#mapping = createOwnerNamed("PurgeableBuffer", () => mapPages(byteLength));
    this.#sentinels = new PageSentinels(this.#mapping.byteLength / native.pageSize, native.pageSize);
  }

  get address(): number {
    return this.#mapping.address;
  }

  open(length: number): { bytes: Uint8Array<ArrayBuffer>; close(): void } {
    return this.#mapping.window(0, length) as MappingWindow;
  }

  // The sentinels are read and written through a window of their own, closed at once.
  #withWords<T>(fn: (words: BigInt64Array) => T): T {
    using whole = this.#mapping.window();
    const bytes = whole.bytes;
    return fn(new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8));
  }

  makeVolatile(): void {
    this.#withWords((words) => {
      this.#sentinels.plant(words);
      try {
        this.#mapping.advise("free");
      } catch (error) {
        this.#sentinels.unplant(words);
        throw error;
      }
    });
  }

  makeNonVolatile(): boolean {
    const lost = this.#withWords((words) => this.#sentinels.collect(words));
    // Some pages went: the whole buffer is purged, so every page reads as zeros (not a mix).
    if (lost > 0) this.#mapping.advise("dont-need");
    return lost > 0;
  }

  release(): void {
    this.#mapping.unmap();
  }
}

// The leases over the storage's open view, when `buffer` is its buffer; else null (see registerLessor).
let darwinLeasesOver: FindLeases;

class DarwinStorage implements Storage {
  readonly #region: DarwinPurgeableRegion;
  // The leases of holders that keep memory reached through the open view (an allocator over an Allocator in
  // JavaScript that passed `bytes` on), ended as the view closes (a Linux window does the same for its own);
  // `#lending` registers the storage with the lessors leaseBlock looks through, until release().
  #open: ArrayBuffer | null = null;
  #leases: LeaseTable | null = null;
  readonly #lending: Lending;

  constructor(byteLength: number) {
    this.#region = new DarwinPurgeableRegion(Math.ceil(byteLength / native.pageSize) * native.pageSize);
    this.#lending = registerLessor(this, darwinLeasesOver);
  }

  static {
    darwinLeasesOver = (lessor, buffer) => {
      const storage = lessor as DarwinStorage;
      if (storage.#open === null || buffer !== storage.#open) return null;
      return storage.#leases ??= new LeaseTable();
    };
  }

  get address(): number {
    return this.#region.address;
  }

  open(length: number): { bytes: Uint8Array<ArrayBuffer>; close(): void } {
    const address = this.#region.address;
    const buffer = native.wrap(address, length);
    this.#open = buffer;
    return {
      bytes: new Uint8Array(buffer),
      close: () => {
        detach(buffer, address, length);
        if (this.#open !== buffer) return;
        this.#open = null;
        const leases = this.#leases;
        this.#leases = null;
        if (leases !== null && leases.count !== 0) leases.released(address, address + length, VIEW_CLOSED);
      },
    };
  }

  makeVolatile(): void {
    this.#region.setState(VM_PURGABLE_VOLATILE);
  }

  makeNonVolatile(): boolean {
    return decodePurgableState(this.#region.setState(VM_PURGABLE_NONVOLATILE)) === "purged";
  }

  release(): void {
    unregisterLessor(this.#lending);
    // A region another buffer reaches (one of memkit's was transferred away; open().close() recorded it) stays.
    if (!mayRelease(this.#region.address, this.#region.byteLength)) return;
    this.#region.release();
  }
}

// The bytes a buffer holds (whole pages), or undefined for anything but a PurgeableBuffer its constructor made;
// `disposed` once it gave them back. Set by the class's static block (its state is private).
let footprintOf: (value: unknown) => { bytes: number; disposed: boolean } | undefined;

/**
 * Whether `value` is a PurgeableBuffer made by its constructor: a brand check, so a Proxy of one or an object
 * made from its prototype (which pass `instanceof`) is not. For the profiler; not exported from mod.ts.
 */
export function isPurgeableBuffer(value: unknown): value is PurgeableBuffer {
  return footprintOf(value) !== undefined;
}

/**
 * What a PurgeableBuffer holds, read from its private state (whatever its own properties say): the bytes
 * of its pages, volatile or not, and whether it was disposed; undefined for anything else. Not exported
 * from mod.ts.
 */
export function purgeableFootprint(value: unknown): { bytes: number; disposed: boolean } | undefined {
  return footprintOf(value);
}

/**
 * Native memory the operating system may take back while it is volatile, like
 * a Metal resource's purgeable state: keep a decoded image or a rendered
 * texture in it, call `makeVolatile()` while it is not in use, and
 * `makeNonVolatile()` before using it again, which says whether the contents
 * were `"kept"` or `"purged"` (and then calls `restore` to recreate them).
 * Under memory pressure the kernel drops volatile pages instead of swapping
 * or killing the process.
 *
 * **Linux**: the pages are advised `MADV_FREE`. The kernel says nothing
 * about which it took, so the first word of each page is saved aside and a
 * sentinel written there before the advice; a page without its sentinel
 * afterwards was taken (it reads as zeros), and the buffer is then purged as
 * a whole (every page zero, then `restore`). **macOS**: a purgeable VM region
 * (`vm_allocate` with `VM_FLAGS_PURGABLE`, `vm_purgable_control`), where an
 * EMPTY state means purged.
 *
 * **Views**: `makeVolatile()` detaches `bytes` (every view over it reads as
 * length 0; memory the OS may take is never reachable from JavaScript), and
 * `bytes` throws while the buffer is volatile; `makeNonVolatile()` gives a
 * new view. `dispose()` unmaps the memory; after it every method throws
 * `AllocationError("use-after-free")`. When the buffer under `bytes` was
 * transferred away (`ArrayBuffer.prototype.transfer`, a postMessage transfer
 * list), another buffer reaches the memory, so it must never become volatile
 * or go back: `makeVolatile()` and `bytes` throw `AllocationError("corruption")`
 * and `dispose()` leaves the memory mapped.
 *
 * @example
 * ```ts
 * import { PurgeableBuffer } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const decode = (bytes: Uint8Array) => bytes.fill(42); // stands for decoding an image again
 * using image = new PurgeableBuffer(1 << 20, { restore: decode });
 * decode(image.bytes);
 * image.makeVolatile(); // not needed for a while: the OS may take it
 * const state = image.makeNonVolatile(); // needed again
 * assert.ok(state === "kept" || state === "purged");
 * assert.equal(image.bytes[12345], 42); // kept, or restored by `decode`
 * ```
 */
export class PurgeableBuffer implements Disposable {
  readonly #byteLength: number;
  readonly #storage: Storage;
  readonly #restore: ((bytes: Uint8Array<ArrayBuffer>) => void) | undefined;
  #view: { bytes: Uint8Array<ArrayBuffer>; close(): void } | null = null;
  #volatile = false;
  #disposed = false;
  #purges = 0;

  /**
   * Maps `byteLength` bytes (whole pages), non-volatile and zero-filled.
   *
   * @param byteLength Bytes, at least 1.
   * @param options The restore callback.
   * @throws {TypeError} For a non-number size or mistyped options.
   * @throws {RangeError} For a size that is not an integer from 1 to 2^47.
   * @throws {AllocationError} "out-of-memory" when the OS refuses the memory; "unsupported" without FFI, or
   *   for more bytes than one ArrayBuffer holds in this runtime (`nativeInfo().maxViewBytes`, 4 GiB in Bun).
   */
  constructor(byteLength: number, options?: PurgeableBufferOptions) {
    checkSize(byteLength, "create PurgeableBuffer", "byteLength", MAX_BLOCK_SIZE, 1);
    const parsed = parseOptions(OptionsSchema, options, "create PurgeableBuffer");
    if (native.libcError) throw new AllocationError("unsupported", native.libcError);
    checkViewLimit(byteLength, "create PurgeableBuffer", "the buffer", "use several smaller buffers");
    this.#byteLength = byteLength;
    this.#restore = parsed.restore;
    this.#storage = native.os === "darwin" ? new DarwinStorage(byteLength) : new LinuxStorage(byteLength);
  }

  /** Bytes asked for (the memory behind them is whole pages). */
  get byteLength(): number {
    return this.#byteLength;
  }

  /** Address of the first byte (the memory stays at this address for the buffer's life). */
  get address(): number {
    return this.#storage.address;
  }

  /** Whether the OS may take the memory now (between `makeVolatile()` and `makeNonVolatile()`). */
  get volatile(): boolean {
    return this.#volatile;
  }

  /** How many times `makeNonVolatile()` found the contents purged. */
  get purgeCount(): number {
    return this.#purges;
  }

  /** Whether `dispose()` has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * The contents, one view until the next `makeVolatile()` (which detaches it).
   * @throws {AllocationError} "unsupported" while volatile (call `makeNonVolatile()` first);
   *   "use-after-free" after `dispose()`; "corruption" when its buffer was transferred away.
   */
  get bytes(): Uint8Array<ArrayBuffer> {
    this.#alive("read bytes");
    this.#untaken("read bytes");
    if (this.#volatile) {
      throw new AllocationError(
        "unsupported",
        `Cannot read bytes of ${this.#label()} while it is volatile: the OS may take its pages at any time; ` +
          `call makeNonVolatile() first`,
      );
    }
    this.#view ??= this.#storage.open(this.#byteLength);
    return this.#view.bytes;
  }

  /**
   * Lets the OS take the memory when it needs it; detaches `bytes` (and what an allocator over them handed out). Does
   * nothing when already volatile.
   * @throws {AllocationError} "platform" when the OS refuses (nothing changes then); "use-after-free" after `dispose()`;
   *   "corruption" when the buffer under `bytes` was transferred away (it stays non-volatile: another buffer
   *   reaches the memory).
   */
  makeVolatile(): void {
    this.#alive("make volatile");
    if (this.#volatile) return;
    this.#untaken("make volatile");
    this.#storage.makeVolatile();
    this.#volatile = true;
    const view = this.#view;
    this.#view = null;
    // Holders that leased the memory (an allocator over an Allocator in JavaScript that passed `bytes` on) lose
    // it too: the OS may take it now.
    if (view !== null) releasingFor("PurgeableBuffer.makeVolatile() released it", () => view.close());
  }

  /**
   * Takes the memory back from the OS: `"kept"` when the contents are as they
   * were, `"purged"` when the OS took them (the bytes are then zero and
   * `restore`, when given, has been called with the new view). A buffer that
   * is not volatile returns `"kept"`.
   * @throws {AllocationError} "platform" when the OS refuses; "use-after-free" after `dispose()`.
   *   An error thrown by `restore` propagates; the buffer is then non-volatile with zero bytes.
   */
  makeNonVolatile(): PurgeableState {
    this.#alive("make non-volatile");
    if (!this.#volatile) return "kept";
    const purged = this.#storage.makeNonVolatile();
    this.#volatile = false;
    if (!purged) return "kept";
    this.#purges++;
    this.#restore?.(this.bytes);
    return "purged";
  }

  /**
   * Detaches `bytes` (and what an allocator over them handed out, as `makeVolatile()` does) and returns the
   * memory to the OS; a second call does nothing.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const view = this.#view;
    this.#view = null;
    // Holders that leased the memory end before it is unmapped (rule 1), told what the program did.
    releasingFor("PurgeableBuffer.dispose() released it", () => {
      view?.close();
      this.#storage.release();
    });
  }

  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** "PurgeableBuffer", so a message naming this object (`Object.prototype.toString`) says what it is. */
  get [Symbol.toStringTag](): string {
    return "PurgeableBuffer";
  }

  static {
    footprintOf = (value) =>
      typeof value === "object" && value !== null && #storage in value
        ? {
          bytes: Math.ceil(value.#byteLength / native.pageSize) * native.pageSize,
          disposed: value.#disposed,
        }
        : undefined;
  }

  // Throws "corruption" when a buffer over the memory was transferred away (recorded: it is never given back).
  #untaken(op: string): void {
    const view = this.#view;
    const address = this.#storage.address;
    if (view !== null && isDetached(view.bytes.buffer)) {
      detach(view.bytes.buffer, address, this.#byteLength);
      throw transferredError(`${op} of ${this.#label()}`, "its memory");
    }
    if (!mayRelease(address, this.#byteLength)) throw transferredError(`${op} of ${this.#label()}`, "its memory");
  }

  #label(): string {
    return `PurgeableBuffer of ${this.#byteLength} bytes at 0x${this.#storage.address.toString(16)}`;
  }

  #alive(op: string): void {
    if (this.#disposed) {
      throw new AllocationError("use-after-free", `Cannot ${op} of ${this.#label()}: it was disposed`);
    }
  }
}
