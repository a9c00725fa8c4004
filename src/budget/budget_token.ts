/**
 * What a {@linkcode MemoryBudget} hands out for bytes it granted.
 *
 * @module
 */

// Set by grantToken() around its constructor call: the only way a token is made.
let granting = false;

/** A token for bytes a budget granted (MemoryBudget.request only). */
export function grantToken(
  size: number,
  category: string,
  priority: number,
  release: (token: BudgetToken) => void,
): BudgetToken {
  granting = true;
  try {
    return new BudgetToken(size, category, priority, release);
  } finally {
    granting = false;
  }
}

/**
 * Bytes granted by {@linkcode MemoryBudget.request}: they count against the
 * budget (and their category) until the token is released. Releasing twice
 * is a no-op, so `using` and an explicit `release()` may meet.
 *
 * @example
 * ```ts
 * import { MemoryBudget } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const budget = new MemoryBudget({ physicalBytes: 1 << 20, categories: ["videoFrames"] });
 * {
 *   using token = budget.request(4096, "videoFrames")!;
 *   assert.equal(token.size, 4096);
 *   assert.equal(budget.usedBytes, 4096);
 * }
 * assert.equal(budget.usedBytes, 0); // released at the end of the block
 * ```
 */
export class BudgetToken implements Disposable {
  // Private, so what release() gives back is what was granted, whatever is assigned or defined on the token.
  readonly #size: number;
  readonly #category: string;
  readonly #priority: number;
  #release: ((token: BudgetToken) => void) | null;

  /**
   * Made by {@linkcode MemoryBudget.request} only; `release` gives the bytes back.
   * @throws {TypeError} When called any other way (a token must stand for bytes a budget granted).
   */
  constructor(size: number, category: string, priority: number, release: (token: BudgetToken) => void) {
    if (!granting) {
      throw new TypeError("Cannot create a BudgetToken directly: MemoryBudget.request() grants them");
    }
    this.#size = size;
    this.#category = category;
    this.#priority = priority;
    this.#release = release;
  }

  /** The bytes granted. */
  get size(): number {
    return this.#size;
  }

  /** The category they count in. */
  get category(): string {
    return this.#category;
  }

  /** The priority they were asked at (0..100). */
  get priority(): number {
    return this.#priority;
  }

  /** Whether the bytes went back already. */
  get released(): boolean {
    return this.#release === null;
  }

  /** Gives the bytes back to the budget; a second call does nothing. */
  release(): void {
    const release = this.#release;
    if (release === null) return;
    this.#release = null;
    release(this);
  }

  /** Releases the token, for `using`. */
  [Symbol.dispose](): void {
    this.release();
  }
}
