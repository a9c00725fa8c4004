/**
 * Per-format pools of video frames, handed out three at a time (triple
 * buffering), that shrink under memory pressure.
 *
 * @module
 */
import { anyTaken, mayRelease, transferredError } from "../base/_detach.ts";
import { releasingFor } from "../alloc/_lease.ts";
import { createOwnerNamed } from "../base/_native_census.ts";
import { describe, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { mapPages } from "../pages/mapping.ts";
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import { checkViewLimit } from "../base/_view_limit.ts";
import {
  endFrame,
  type Frame,
  type FrameFormat,
  type FrameGeometry,
  type FrameHandle,
  type FrameSlot,
  frameSlot,
  frameStolen,
  geometryOf,
  isFrame,
  makeFrame,
} from "./_frame.ts";

export type { Frame, FrameFormat };

/**
 * Options of {@linkcode FramePool}.
 *
 * @example
 * ```ts
 * import { FramePool, type FramePoolOptions } from "@memkit/memkit";
 *
 * const options: FramePoolOptions = { maxFrames: 9, maxBytes: 512 << 20 };
 * using pool = new FramePool(options);
 * ```
 */
export interface FramePoolOptions {
  /**
   * Frames each format may have, in use or idle, without pressure; at least 3 (one set).
   * @default {6}
   */
  maxFrames?: number;
  /**
   * Bytes all frames of all formats may map together.
   * @default {2 ** 47}
   */
  maxBytes?: number;
}

/**
 * Three frames of one format for triple buffering: the one being shown
 * (`current`), the one being decoded or rendered (`next`), and the one shown
 * before (`previous`). `release()` (or leaving a `using` block) gives all
 * three back to the pool.
 *
 * @example
 * ```ts
 * import { FramePool } from "@memkit/memkit";
 *
 * using pool = new FramePool();
 * using set = pool.acquireFrameSet({ width: 1920, height: 1080, bytesPerPixel: 4 })!;
 * set.next.bytes.fill(0); // decode into next, show current, keep previous for the blend
 * ```
 */
export interface FrameSet extends Disposable {
  /** The frame being shown. */
  readonly current: Frame;
  /** The frame being decoded or rendered. */
  readonly next: Frame;
  /** The frame shown before `current`. */
  readonly previous: Frame;
  /** `[current, next, previous]`. */
  readonly frames: readonly Frame[];
  /** Gives the frames still held back to the pool (their views are detached); a second call does nothing. */
  release(): void;
}

/**
 * One format's pool in {@linkcode FramePoolStats}.
 *
 * @example
 * ```ts
 * import { FramePool, type FormatPoolStats } from "@memkit/memkit";
 *
 * using pool = new FramePool();
 * pool.acquireFrameSet({ width: 64, height: 64, bytesPerPixel: 4 });
 * const hd: FormatPoolStats = pool.stats().formats[0];
 * console.log(hd.inUse); // 3
 * ```
 */
export interface FormatPoolStats {
  /** The format. */
  readonly format: Readonly<Required<FrameFormat>>;
  /** Bytes per row (64-byte aligned). */
  readonly rowBytes: number;
  /** Bytes mapped per frame (whole pages). */
  readonly frameBytes: number;
  /** Frames the pool may hold at the current pressure level. */
  readonly maxFrames: number;
  /** Frames mapped, idle or in use. */
  readonly frames: number;
  /** Frames waiting for the next set. */
  readonly idle: number;
  /** Frames held by frame sets. */
  readonly inUse: number;
}

/**
 * What a {@linkcode FramePool} holds.
 *
 * @example
 * ```ts
 * import { FramePool, type FramePoolStats } from "@memkit/memkit";
 *
 * using pool = new FramePool();
 * const stats: FramePoolStats = pool.stats();
 * console.log(stats.mappedBytes); // 0: frames are mapped on first use
 * ```
 */
export interface FramePoolStats {
  /** The pressure level of the last `adaptToPressure()`. */
  readonly level: PressureLevelValue;
  /** Bytes mapped for frames of every format. */
  readonly mappedBytes: number;
  /** Of those, bytes of frames in use. */
  readonly inUseBytes: number;
  /** Frames unmapped so far by trimming, pressure and release over the limit. */
  readonly unmappedFrames: number;
  /** One entry per format seen, in the order first asked for. */
  readonly formats: FormatPoolStats[];
}

const OptionsSchema = z.object({
  maxFrames: z.number().int("must be an integer").min(3, "must be at least 3 (one frame set)")
    .max(2 ** 20, "must be at most 2^20").optional(),
  maxBytes: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
}).strict();

// Each dimension with its own maximum: a max() chained onto a shared schema kept the first one too, and a
// bytesPerPixel of 65 was told "at most 64" while 2^21 was told "at most 2^20".
const dimension = (why: string, max: number, maxText = String(max)) =>
  z.number().int(`must be an integer`).min(1, `must be at least 1 (${why})`).max(max, `must be at most ${maxText}`);

const FormatSchema = z.object({
  width: dimension("a width of 0 has no pixels", 2 ** 20, "2^20"),
  height: dimension("a height of 0 has no pixels", 2 ** 20, "2^20"),
  bytesPerPixel: dimension("a pixel of 0 bytes holds nothing", 64),
  planes: dimension("a frame of 0 planes holds nothing", 16).optional(),
}).strict();

interface FormatPool {
  readonly geometry: FrameGeometry;
  readonly idle: FrameSlot[];
  inUse: number;
}

// Frames a format may keep at each level: the configured count without pressure, half of it (at least one
// set) at Medium and High (iOS's "warning"), one set at Critical ("minimum pools").
function capAt(level: PressureLevelValue, maxFrames: number): number {
  if (level >= PressureLevel.Critical) return 3;
  if (level >= PressureLevel.Medium) return Math.max(3, Math.ceil(maxFrames / 2));
  return maxFrames;
}

// The frames of a set a pool made, or undefined for anything else (a Proxy, an object from its prototype).
let framesOf: (value: unknown) => readonly FrameHandle[] | undefined;

class Triple implements FrameSet {
  readonly #pool: FramePool;
  readonly #frames: readonly FrameHandle[];

  static {
    framesOf = (value) => (typeof value === "object" && value !== null && #frames in value ? value.#frames : undefined);
  }

  constructor(pool: FramePool, frames: FrameHandle[]) {
    this.#pool = pool;
    this.#frames = Object.freeze(frames);
  }

  get current(): Frame {
    return Triple.#of(this).#frames[0];
  }

  get next(): Frame {
    return Triple.#of(this).#frames[1];
  }

  get previous(): Frame {
    return Triple.#of(this).#frames[2];
  }

  get frames(): readonly Frame[] {
    return Triple.#of(this).#frames;
  }

  release(): void {
    const self = Triple.#of(this);
    if (self.#frames.some((frame) => !frame.released)) self.#pool.release(self);
  }

  [Symbol.dispose](): void {
    this.release();
  }

  static #of(self: unknown): Triple {
    if (framesOf(self) === undefined) {
      throw new TypeError(`Cannot use ${describe(self)} as a FrameSet: it is not one a FramePool made`);
    }
    return self as Triple;
  }
}

let isFramePoolBrand: (value: unknown) => boolean;

/**
 * Whether `value` is a FramePool made by its constructor: a brand check, so a Proxy of one or an object
 * made from its prototype (which pass `instanceof`) is not. memkit checks its options with it; not exported
 * from mod.ts.
 */
export function isFramePool(value: unknown): value is FramePool {
  return isFramePoolBrand(value);
}

/**
 * Per-format pools of video frames for a decode or render pipeline under a
 * memory budget (a frame buffer pool as video apps keep one). Each format
 * (`width`, `height`, `bytesPerPixel`, `planes`) has its own pool of frames,
 * each frame its own page-aligned mapping with rows on 64-byte boundaries.
 * `acquireFrameSet(format)` hands out three frames (current, next, previous),
 * mapping new ones while the format has fewer than `maxFrames` and the pool
 * stays within `maxBytes`; when it cannot, it first unmaps idle frames of
 * other formats, and returns `null` when that is not enough. Released frames
 * wait idle for the next set of their format: reusing their pages is the
 * point (a fresh page costs a page fault on first touch).
 *
 * **Pressure**: `adaptToPressure(level)` lowers each format's limit (half of
 * `maxFrames` at Medium and High, one set at Critical, back to `maxFrames`
 * below Medium) and unmaps idle frames above it at once. Frames in use are
 * never taken: those above the limit are unmapped when released.
 *
 * **Views**: releasing a frame detaches its views (they read as length 0) and
 * its handle then throws `AllocationError("use-after-free")`; `dispose()`
 * unmaps everything.
 *
 * @example A decode loop at 30 fps that shrinks under pressure
 * ```ts
 * import { FramePool, PressureLevel } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const hd = { width: 1280, height: 720, bytesPerPixel: 4 };
 * using pool = new FramePool({ maxFrames: 6 });
 * for (let i = 0; i < 3; i++) {
 *   using set = pool.acquireFrameSet(hd)!; // the same pages every time after the first
 *   set.next.bytes.fill(i);
 * }
 * assert.equal(pool.stats().formats[0].frames, 3);
 * pool.adaptToPressure(PressureLevel.Critical); // nothing above one set: nothing unmapped
 * const a = pool.acquireFrameSet(hd)!;
 * assert.equal(pool.acquireFrameSet(hd), null); // one set at Critical
 * a.release();
 * ```
 */
export class FramePool implements Disposable {
  readonly #maxFrames: number;
  readonly #maxBytes: number;
  readonly #pools = new Map<string, FormatPool>();
  #level: PressureLevelValue = PressureLevel.None;
  #mappedBytes = 0;
  #inUseBytes = 0;
  #unmapped = 0;
  #handles = 0;
  #disposed = false;

  /**
   * Creates an empty pool; frames are mapped on first use.
   * @throws {TypeError} For mistyped options.
   * @throws {RangeError} For `maxFrames` below 3 or out-of-range numbers.
   */
  constructor(options?: FramePoolOptions) {
    const parsed = parseOptions(OptionsSchema, options, "create FramePool");
    this.#maxFrames = parsed.maxFrames ?? 6;
    this.#maxBytes = parsed.maxBytes ?? MAX_BLOCK_SIZE;
  }

  /**
   * Three frames of `format`, or `null` when the format's limit or `maxBytes`
   * leaves no room even after unmapping idle frames of other formats.
   * @throws {TypeError} For a format that is not an object of numbers, or with unknown keys.
   * @throws {RangeError} For dimensions that are zero, fractional, negative, NaN or too large.
   * @throws {AllocationError} "out-of-memory" when the OS refuses the pages (nothing changes then, not even
   *   the formats `stats()` lists); "unsupported" for a frame larger than one ArrayBuffer holds in this runtime
   *   (`nativeInfo().maxViewBytes`, 4 GiB in Bun), before anything is mapped; "use-after-free" after `dispose()`.
   */
  acquireFrameSet(format: FrameFormat): FrameSet | null {
    const parsed = parseOptions(FormatSchema, format, "acquire a frame set");
    this.#alive("acquire a frame set");
    const geometry = geometryOf({ ...parsed, planes: parsed.planes ?? 1 });
    if (geometry.mappedBytes > MAX_BLOCK_SIZE) {
      throw new RangeError(`Cannot acquire a frame set as a ${geometry.key} frame needs ${geometry.mappedBytes} bytes`);
    }
    checkViewLimit(
      geometry.mappedBytes,
      "acquire a frame set",
      `a ${geometry.key} frame`,
      "use a smaller format, or split the picture into tiles of their own format",
    );
    // A new format is listed once this call returns (a refusal by the OS leaves the pool as it was).
    const known = this.#pools.get(geometry.key);
    const pool: FormatPool = known ?? { geometry, idle: [], inUse: 0 };
    const missing = Math.max(0, 3 - pool.idle.length);
    if (missing > 0) {
      if (pool.idle.length + pool.inUse + missing > capAt(this.#level, this.#maxFrames)) {
        if (known === undefined) this.#pools.set(geometry.key, pool);
        return null;
      }
      const bytes = missing * geometry.mappedBytes;
      const over = this.#mappedBytes + bytes - this.#maxBytes;
      if (over > 0 && this.#idleBytes(pool) < over) {
        if (known === undefined) this.#pools.set(geometry.key, pool);
        return null;
      }
      const fresh = this.#map(pool, missing); // throws before anything changed
      if (over > 0) this.#reclaim(over, pool);
      this.#adopt(pool, fresh);
    }
    if (known === undefined) this.#pools.set(geometry.key, pool);
    const handles: FrameHandle[] = [];
    for (let i = 0; i < 3; i++) {
      const slot = pool.idle.pop()!;
      handles.push(makeFrame(slot, `frame #${++this.#handles} (${geometry.key})`));
    }
    pool.inUse += 3;
    this.#inUseBytes += 3 * geometry.mappedBytes;
    return new Triple(this, handles);
  }

  /**
   * Gives a frame set or one frame back; its views are detached, and so are those of an allocator built over
   * its bytes (an Arena over an Allocator in JavaScript that passed them on). A frame over
   * its format's current limit is unmapped instead of kept idle.
   * @throws {TypeError} For anything but a frame or frame set a FramePool made (a Proxy of one too).
   * @throws {AllocationError} "double-free" for a frame released already; "mismatched-allocator" for a frame of
   *   another pool; "corruption" when a frame's `bytes` buffer was transferred away (nothing is released then:
   *   another buffer reaches that frame's memory, so it is never reused or unmapped; release the set's other
   *   frames one by one).
   */
  release(frames: FrameSet | Frame): void {
    const list: readonly unknown[] = framesOf(frames) ?? [frames];
    for (const frame of list) {
      if (!isFrame(frame)) {
        throw new TypeError(`Cannot release ${describe(frame)} as it is not a Frame or FrameSet from a FramePool`);
      }
    }
    this.#alive("release frames");
    const held = (list as FrameHandle[]).filter((frame) => !frame.released);
    if (held.length === 0) {
      const what = list.length === 1 ? (list[0] as FrameHandle).label : "every frame of this set";
      throw new AllocationError("double-free", `Cannot release ${what}: it was released already`);
    }
    for (const frame of held) {
      if (!this.#owns(frameSlot(frame)!)) {
        throw new AllocationError(
          "mismatched-allocator",
          `Cannot release ${frame.label}: it belongs to another FramePool`,
        );
      }
    }
    for (const frame of held) {
      if (frameStolen(frame)) throw transferredError(`release ${frame.label}`, `${frame.label}'s memory`);
    }
    for (const frame of held) {
      const slot = endFrame(frame);
      const pool = this.#pools.get(slot.geometry.key)!;
      pool.inUse--;
      this.#inUseBytes -= slot.geometry.mappedBytes;
      // A holder over the frame's memory (an allocator over an Allocator in JavaScript that passed its bytes on)
      // may have found, as its lease ended, its own buffer transferred away: that frame is never handed out again
      // (unmap() keeps such pages mapped).
      const kept = anyTaken() && !mayRelease(slot.mapping.address, slot.geometry.mappedBytes);
      if (kept || pool.idle.length + pool.inUse + 1 > capAt(this.#level, this.#maxFrames)) this.#unmap(slot);
      else pool.idle.push(slot);
    }
  }

  /**
   * Sets the limits for a memory pressure level (one of {@linkcode PressureLevel}) and unmaps idle frames
   * above them; frames in use are kept. Returns the bytes unmapped.
   * @throws {TypeError} For a non-number.
   * @throws {RangeError} For a number that is not a level (0 to 4).
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  adaptToPressure(level: PressureLevelValue): number {
    if (typeof level !== "number") {
      throw new TypeError(`Cannot adapt to pressure as 'level' must be a number: current value is ${describe(level)}`);
    }
    if (!Number.isInteger(level) || level < PressureLevel.None || level > PressureLevel.Critical) {
      throw new RangeError(
        `Cannot adapt to pressure as 'level' must be a PressureLevel (an integer from 0 to 4): current value is ${
          describe(level)
        }`,
      );
    }
    this.#alive("adapt to pressure");
    this.#level = level;
    const cap = capAt(level, this.#maxFrames);
    let bytes = 0;
    for (const pool of this.#pools.values()) {
      while (pool.idle.length > 0 && pool.idle.length + pool.inUse > cap) {
        bytes += pool.geometry.mappedBytes;
        this.#unmap(pool.idle.pop()!);
      }
    }
    return bytes;
  }

  /**
   * Unmaps every idle frame (all formats); frames in use are kept. Returns the bytes unmapped.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  trim(): number {
    this.#alive("trim");
    return this.#reclaim(Infinity, null);
  }

  /**
   * What the pool holds, per format.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  stats(): FramePoolStats {
    this.#alive("read stats");
    const cap = capAt(this.#level, this.#maxFrames);
    return {
      level: this.#level,
      mappedBytes: this.#mappedBytes,
      inUseBytes: this.#inUseBytes,
      unmappedFrames: this.#unmapped,
      formats: [...this.#pools.values()].map((pool) => ({
        format: pool.geometry.format,
        rowBytes: pool.geometry.rowBytes,
        frameBytes: pool.geometry.mappedBytes,
        maxFrames: cap,
        frames: pool.idle.length + pool.inUse,
        idle: pool.idle.length,
        inUse: pool.inUse,
      })),
    };
  }

  /**
   * Unmaps every frame, idle or in use (their handles then throw "use-after-free" saying the pool was disposed,
   * and what an allocator over a frame's bytes handed out reads as length 0); a second call does nothing.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    releasingFor("FramePool.dispose() released it", () => {
      for (const slot of this.#slots) {
        if (slot.holder) endFrame(slot.holder, true);
        slot.mapping.unmap();
      }
    });
    this.#slots.clear();
    this.#pools.clear();
    this.#mappedBytes = 0;
    this.#inUseBytes = 0;
  }

  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** "FramePool", so a message naming this object (`Object.prototype.toString`) says what it is. */
  get [Symbol.toStringTag](): string {
    return "FramePool";
  }

  static {
    isFramePoolBrand = (value) => typeof value === "object" && value !== null && #pools in value;
  }

  readonly #slots = new Set<FrameSlot>();

  #owns(slot: FrameSlot): boolean {
    return this.#slots.has(slot);
  }

  // Bytes of idle frames of formats other than `keep`: what #reclaim can unmap for it.
  #idleBytes(keep: FormatPool): number {
    let bytes = 0;
    for (const pool of this.#pools.values()) if (pool !== keep) bytes += pool.idle.length * pool.geometry.mappedBytes;
    return bytes;
  }

  // Maps `count` frames of the pool's format, or none (a refusal unmaps what this call mapped).
  #map(pool: FormatPool, count: number): FrameSlot[] {
    const fresh: FrameSlot[] = [];
    try {
      for (let i = 0; i < count; i++) {
        // Named for the report at exit after what the program made, not the mapping memkit made for it.
        const mapping = createOwnerNamed(
          `FramePool (${pool.geometry.key} frame)`,
          () => mapPages(pool.geometry.mappedBytes),
        );
        fresh.push({ mapping, geometry: pool.geometry, holder: null });
      }
    } catch (error) {
      for (const slot of fresh) slot.mapping.unmap();
      throw error;
    }
    return fresh;
  }

  // Puts freshly mapped frames into the pool's idle list.
  #adopt(pool: FormatPool, fresh: FrameSlot[]): void {
    for (const slot of fresh) {
      this.#slots.add(slot);
      pool.idle.push(slot);
      this.#mappedBytes += pool.geometry.mappedBytes;
    }
  }

  #unmap(slot: FrameSlot): void {
    slot.mapping.unmap();
    this.#slots.delete(slot);
    this.#mappedBytes -= slot.geometry.mappedBytes;
    this.#unmapped++;
  }

  // Unmaps idle frames of formats other than `keep`, largest first, until `bytes` are unmapped.
  #reclaim(bytes: number, keep: FormatPool | null): number {
    const pools = [...this.#pools.values()].filter((p) => p !== keep && p.idle.length > 0)
      .sort((a, b) => b.geometry.mappedBytes - a.geometry.mappedBytes);
    let freed = 0;
    for (const pool of pools) {
      while (freed < bytes && pool.idle.length > 0) {
        freed += pool.geometry.mappedBytes;
        this.#unmap(pool.idle.pop()!);
      }
    }
    return freed;
  }

  #alive(op: string): void {
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op} of a FramePool: it was disposed`);
  }
}
