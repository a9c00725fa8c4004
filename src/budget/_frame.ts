// One frame of a FramePool: its geometry (rows 64-byte aligned, planes one
// after another, the frame whole pages), the pages behind it, and the handle
// a caller holds between acquireFrameSet() and release().
import { native } from "../../ffi/native.ts";
import { isDetached, mayRelease, transferredError } from "../base/_detach.ts";
import { describe } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { Mapping, MappingWindow } from "../pages/mapping.ts";
import { releasingFor } from "../alloc/_lease.ts";

/**
 * A frame format: pixels per row, rows, bytes per pixel and planes (each
 * plane the full size, like planar RGB or a Y plane with chroma planes of the
 * same size).
 *
 * @example
 * ```ts
 * import { type FrameFormat } from "@memkit/memkit";
 *
 * const uhd: FrameFormat = { width: 3840, height: 2160, bytesPerPixel: 4, planes: 1 };
 * ```
 */
export interface FrameFormat {
  /** Pixels per row, an integer of at least 1. */
  readonly width: number;
  /** Rows, an integer of at least 1. */
  readonly height: number;
  /** Bytes per pixel, an integer of at least 1. */
  readonly bytesPerPixel: number;
  /**
   * Planes, an integer of at least 1.
   * @default {1}
   */
  readonly planes?: number;
}

/** Bytes per row, rounded up to a cache line. */
export const ROW_ALIGNMENT = 64;

/** The byte layout of one format. */
export interface FrameGeometry {
  readonly key: string;
  readonly format: Readonly<Required<FrameFormat>>;
  readonly rowBytes: number;
  readonly planeBytes: number;
  /** All planes. */
  readonly byteLength: number;
  /** What is mapped: `byteLength` rounded up to whole pages. */
  readonly mappedBytes: number;
}

/** The layout of a checked format. */
export function geometryOf(format: Required<FrameFormat>): FrameGeometry {
  const rowBytes = Math.ceil((format.width * format.bytesPerPixel) / ROW_ALIGNMENT) * ROW_ALIGNMENT;
  const planeBytes = rowBytes * format.height;
  const byteLength = planeBytes * format.planes;
  return {
    key: `${format.width}x${format.height}x${format.bytesPerPixel}x${format.planes}`,
    format: Object.freeze({ ...format }),
    rowBytes,
    planeBytes,
    byteLength,
    mappedBytes: Math.ceil(byteLength / native.pageSize) * native.pageSize,
  };
}

/** The pages of one frame, kept by the pool between uses. */
export interface FrameSlot {
  readonly mapping: Mapping;
  readonly geometry: FrameGeometry;
  /** The handle holding it now, or null while idle. */
  holder: FrameHandle | null;
}

/**
 * One frame handed out by {@linkcode FramePool.acquireFrameSet}: page-aligned
 * memory whose rows start on 64-byte boundaries. Its views are detached when
 * it is released (they read as length 0), and every accessor then throws
 * `AllocationError("use-after-free")` naming the frame: the pool gives the
 * same memory to the next frame set.
 *
 * @example
 * ```ts
 * import { FramePool } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pool = new FramePool();
 * const set = pool.acquireFrameSet({ width: 100, height: 2, bytesPerPixel: 3 })!;
 * const frame = set.current;
 * assert.equal(frame.rowBytes, 320); // 300 bytes rounded up to 64
 * frame.row(1)[0] = 255; // first pixel of the second row
 * assert.equal(frame.bytes[320], 255);
 * set.release();
 * ```
 */
export interface Frame {
  /** The frame's format. */
  readonly format: Readonly<Required<FrameFormat>>;
  /** Bytes per row: `width × bytesPerPixel` rounded up to 64. */
  readonly rowBytes: number;
  /** Bytes per plane: `rowBytes × height`. */
  readonly planeBytes: number;
  /** Bytes of all planes. */
  readonly byteLength: number;
  /** Whether it went back to its pool. */
  readonly released: boolean;
  /**
   * Address of the first byte (page-aligned).
   * @throws {AllocationError} "use-after-free" after release.
   */
  readonly address: number;
  /**
   * All planes, one view until release (which detaches it).
   * @throws {AllocationError} "use-after-free" after release.
   */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /**
   * Plane `index` (0 first): `planeBytes` bytes starting on a 64-byte boundary.
   * @throws {TypeError} For a non-number index.
   * @throws {RangeError} For an index outside the planes.
   * @throws {AllocationError} "use-after-free" after release.
   */
  plane(index?: number): Uint8Array<ArrayBuffer>;
  /**
   * Row `y` of plane `plane`: `width × bytesPerPixel` bytes starting on a 64-byte boundary.
   * @throws {TypeError} For a non-number index.
   * @throws {RangeError} For an index outside the frame.
   * @throws {AllocationError} "use-after-free" after release.
   */
  row(y: number, plane?: number): Uint8Array<ArrayBuffer>;
}

// What holders of a frame's memory (see endFrame) hear.
const RELEASED = "FramePool.release() released it";
const POOL_DISPOSED = "FramePool.dispose() released it";

// Only the pool makes frames (the constructor is reachable through any frame's prototype).
const MAKE = Symbol("FramePool frame");

/** Whether `value` is a frame a pool made (a Proxy of one, or an object made from its prototype, is not). */
export let isFrame: (value: unknown) => value is FrameHandle;

/** Makes a frame holding `slot` (the pool's only way in; not reachable from a frame). */
export let makeFrame: (slot: FrameSlot, name: string) => FrameHandle;

// The pool's own operations on a frame are functions of this module, not methods: a method would be
// reachable from every frame, and a user calling it would end the frame behind its pool's back.

/**
 * The pool ends the handle: detaches its view, ends the leases over it (an allocator over an Allocator in
 * JavaScript that passed the frame's bytes on: the pool gives that memory to the next frame, or unmaps it) and
 * gives the slot back. `disposed`: the pool's dispose() ends it (its memory is unmapped), not a release.
 */
export let endFrame: (frame: FrameHandle, disposed?: boolean) => FrameSlot;

/** The slot a frame holds, or null after release. */
export let frameSlot: (frame: FrameHandle) => FrameSlot | null;

/**
 * Whether a buffer over the frame's memory was transferred away: another
 * buffer may reach it, so the pool must never reuse or unmap it.
 */
export let frameStolen: (frame: FrameHandle) => boolean;

/** The one implementation of {@linkcode Frame}, made by the pool. */
export class FrameHandle implements Frame {
  // The geometry is private: the lengths views are cut with cannot be changed from outside.
  readonly #geometry: FrameGeometry;
  #slot: FrameSlot | null;
  #window: MappingWindow | null = null;
  readonly #name: string;
  // Whether the pool's dispose() ended it (rather than a release): what use after it says.
  #disposed = false;

  static {
    isFrame = (value): value is FrameHandle => typeof value === "object" && value !== null && #slot in value;
    makeFrame = (slot, name) => new FrameHandle(MAKE, slot, name);
    endFrame = (frame, disposed = false) => {
      const slot = frame.#slot!;
      const window = frame.#window;
      frame.#window = null;
      frame.#slot = null;
      frame.#disposed = disposed;
      slot.holder = null;
      // The frame is settled before a holder's code runs (its lease ends as the window closes).
      if (window !== null) {
        releasingFor(disposed ? POOL_DISPOSED : RELEASED, () => window.close());
      }
      return slot;
    };
    frameSlot = (frame) => frame.#slot;
    frameStolen = (frame) => {
      const slot = frame.#slot;
      if (slot === null) return false;
      if (frame.#window !== null && !frame.#window.closed && isDetached(frame.#window.bytes.buffer)) return true;
      return !mayRelease(slot.mapping.address, slot.geometry.mappedBytes);
    };
  }

  constructor(key: symbol, slot: FrameSlot, name: string) {
    if (key !== MAKE) throw new TypeError("Illegal constructor: frames come from FramePool.acquireFrameSet()");
    this.#geometry = slot.geometry;
    this.#slot = slot;
    this.#name = name;
    slot.holder = this;
  }

  /** The frame's format. */
  get format(): Readonly<Required<FrameFormat>> {
    return FrameHandle.#of(this, "format").#geometry.format;
  }

  /** Bytes per row: `width × bytesPerPixel` rounded up to 64. */
  get rowBytes(): number {
    return FrameHandle.#of(this, "rowBytes").#geometry.rowBytes;
  }

  /** Bytes per plane: `rowBytes × height`. */
  get planeBytes(): number {
    return FrameHandle.#of(this, "planeBytes").#geometry.planeBytes;
  }

  /** Bytes of all planes. */
  get byteLength(): number {
    return FrameHandle.#of(this, "byteLength").#geometry.byteLength;
  }

  /** Whether it went back to its pool. */
  get released(): boolean {
    return FrameHandle.#of(this, "released").#slot === null;
  }

  /** Address of the first byte (page-aligned). */
  get address(): number {
    return FrameHandle.#of(this, "address").#live("read address").mapping.address;
  }

  /**
   * All planes, one view until release.
   * @throws {AllocationError} "use-after-free" after release; "corruption" when its buffer was transferred away.
   */
  get bytes(): Uint8Array<ArrayBuffer> {
    const self = FrameHandle.#of(this, "bytes");
    const slot = self.#live("read bytes");
    if (frameStolen(self)) throw transferredError(`read bytes of ${self.#name}`, `${self.#name}'s memory`);
    self.#window ??= slot.mapping.window(0, self.#geometry.byteLength);
    return self.#window.bytes;
  }

  /**
   * Plane `index` (0 first): `planeBytes` bytes starting on a 64-byte boundary.
   * @throws {TypeError} For a non-number index.
   * @throws {RangeError} For an index outside the planes.
   * @throws {AllocationError} "use-after-free" after release.
   */
  plane(index = 0): Uint8Array<ArrayBuffer> {
    const self = FrameHandle.#of(this, "a plane");
    const g = self.#geometry;
    checkIndex(index, g.format.planes, "plane", self.#name);
    const bytes = self.bytes;
    return bytes.subarray(index * g.planeBytes, (index + 1) * g.planeBytes);
  }

  /**
   * Row `y` of plane `plane`: `width × bytesPerPixel` bytes starting on a 64-byte boundary.
   * @throws {TypeError} For a non-number index.
   * @throws {RangeError} For an index outside the frame.
   * @throws {AllocationError} "use-after-free" after release.
   */
  row(y: number, plane = 0): Uint8Array<ArrayBuffer> {
    const self = FrameHandle.#of(this, "a row");
    const g = self.#geometry;
    checkIndex(y, g.format.height, "y", self.#name);
    const start = self.plane(plane).byteOffset + y * g.rowBytes;
    return self.bytes.subarray(start, start + g.format.width * g.format.bytesPerPixel);
  }

  /** What messages call it. */
  get label(): string {
    return this.#name;
  }

  // `self` checked: a getter called on a Proxy or a forged object is a clear TypeError.
  static #of(self: unknown, what: string): FrameHandle {
    if (!isFrame(self)) {
      throw new TypeError(`Cannot read ${what} of ${describe(self)}: it is not a Frame of a FramePool`);
    }
    return self;
  }

  #live(op: string): FrameSlot {
    if (this.#disposed || (this.#slot !== null && this.#slot.mapping.byteLength === 0)) {
      throw new AllocationError(
        "use-after-free",
        `Cannot ${op} of ${this.#name}: its FramePool was disposed, which unmapped its memory (FramePool.dispose())`,
      );
    }
    if (this.#slot === null) {
      throw new AllocationError(
        "use-after-free",
        `Cannot ${op} of ${this.#name}: it was released to its FramePool, which may have given its memory to another frame`,
      );
    }
    return this.#slot;
  }
}

function checkIndex(value: unknown, count: number, name: string, frame: string): void {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot read ${name} of ${frame} as '${name}' must be a number: current value is ${typeof value}`,
    );
  }
  if (!Number.isInteger(value) || value < 0 || value >= count) {
    throw new RangeError(
      `Cannot read ${name} of ${frame} as '${name}' must be an integer from 0 to ${
        count - 1
      }: current value is ${value}`,
    );
  }
}
