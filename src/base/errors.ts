/**
 * The error class for everything about the state of memory.
 *
 * @module
 */

/**
 * What went wrong with memory; see {@linkcode AllocationError}.
 *
 * @example
 * ```ts
 * import { AllocationError, type AllocationErrorCategory } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const category: AllocationErrorCategory = "out-of-memory";
 * assert.equal(new AllocationError(category, "no memory").category, "out-of-memory");
 * ```
 */
export type AllocationErrorCategory =
  | "out-of-memory"
  | "limit-exceeded"
  | "invalid-free"
  | "double-free"
  | "mismatched-allocator"
  | "use-after-free"
  | "corruption"
  | "leak"
  | "platform"
  | "timeout"
  | "unsupported";

const CATEGORIES: ReadonlySet<string> = new Set<AllocationErrorCategory>([
  "out-of-memory",
  "limit-exceeded",
  "invalid-free",
  "double-free",
  "mismatched-allocator",
  "use-after-free",
  "corruption",
  "leak",
  "platform",
  "timeout",
  "unsupported",
]);

/**
 * Extra facts an {@linkcode AllocationError} may carry.
 *
 * @example
 * ```ts
 * import { AllocationError } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const error = new AllocationError("platform", "mlock(...) failed with EPERM", { call: "mlock", errno: 1 });
 * assert.equal(error.call, "mlock");
 * assert.equal(error.errno, 1);
 * ```
 */
export interface AllocationErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** The C function that failed (category `"platform"` and `"out-of-memory"`). */
  call?: string;
  /** The errno the C function left. */
  errno?: number;
}

/**
 * Thrown when memory cannot be given or is misused: out of memory, a limit
 * reached, a bad free, use after free, corruption, a leak, or a failing system
 * call. Wrong argument types throw `TypeError` and out-of-range sizes or
 * alignments `RangeError` instead, always before any native call.
 *
 * @example Telling a double free from other failures
 * ```ts
 * import { AllocationError, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const allocator = new SystemAllocator();
 * const block = allocator.alloc(64);
 * allocator.free(block);
 * try {
 *   allocator.free(block);
 * } catch (error) {
 *   assert.ok(error instanceof AllocationError);
 *   assert.equal(error.category, "double-free");
 * }
 * ```
 */
export class AllocationError extends Error {
  /** What kind of failure this is. */
  readonly category: AllocationErrorCategory;
  /** The C function that failed, when one did. */
  readonly call: string | undefined;
  /** The errno that function left, when one did. */
  readonly errno: number | undefined;

  /**
   * Creates an error of the given category.
   *
   * @param category What kind of failure this is.
   * @param message What happened, naming the value and what was expected.
   * @param options Cause, failing call and errno.
   * @throws {TypeError} For an unknown category, a message that is not a string, or options that are not an object.
   */
  constructor(category: AllocationErrorCategory, message: string, options?: AllocationErrorOptions) {
    if (options === undefined) options = {};
    if (!CATEGORIES.has(category)) {
      throw new TypeError(
        `Cannot create an AllocationError as 'category' must be one of ${
          [...CATEGORIES].join(", ")
        }: current value is ${typeof category === "string" ? JSON.stringify(category) : typeof category}`,
      );
    }
    if (typeof message !== "string") {
      throw new TypeError(
        `Cannot create an AllocationError as 'message' must be a string: current value is ${typeof message}`,
      );
    }
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      throw new TypeError(
        `Cannot create an AllocationError as 'options' must be an object: current value is ${typeof options}`,
      );
    }
    const { cause, call, errno } = options ?? {};
    super(message, cause === undefined ? undefined : { cause });
    this.name = "AllocationError";
    this.category = category;
    this.call = typeof call === "string" ? call : undefined;
    this.errno = typeof errno === "number" ? errno : undefined;
  }
}
