// The budget tokens GPU buffers hold, handled through BudgetToken's own
// methods: what a MemoryBudget (or a subclass of one) answered is a token it
// granted, and giving one back runs the budget's own release.
import { BudgetToken } from "../budget/budget_token.ts";

// The intrinsic BudgetToken accessors, captured when this module loads: a MemoryBudget subclass's request()
// may answer anything, and a real token may carry an own `release` the program set. These read a real
// token's private state (and throw for anything else); the release they run is the budget's own, which
// cannot throw.
const tokenReleased = Object.getOwnPropertyDescriptor(BudgetToken.prototype, "released")!.get!;
const tokenRelease = BudgetToken.prototype.release;
// The tokens buffers hold: one answered for two requests would be given back by the first destroy.
const heldTokens = new WeakSet<BudgetToken>();

// Whether `token` is a real BudgetToken that no buffer holds and that was not released. (Its bytes and
// category are the budget's business: a subclass may charge pages, or another category.)
export function isGrantedToken(token: unknown): token is BudgetToken {
  try {
    return tokenReleased.call(token) === false && !heldTokens.has(token as BudgetToken);
  } catch {
    return false; // not a BudgetToken
  }
}

// Gives a token's bytes back to its budget, through BudgetToken's own method (a no-op for anything else).
export function releaseToken(token: unknown): void {
  try {
    tokenRelease.call(token);
  } catch {
    // not a BudgetToken: nothing to give back
  }
}

/** A buffer now holds `token` (a second buffer may not take the same one). */
export function holdToken(token: BudgetToken): void {
  heldTokens.add(token);
}

/** The buffer holding `token` is gone: its bytes go back to the budget, last. */
export function giveBackToken(token: BudgetToken): void {
  heldTokens.delete(token);
  releaseToken(token);
}
