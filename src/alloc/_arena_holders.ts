/**
 * What an Arena tells the holders of its memory (child allocators over it
 * through a JavaScript backing, leases) when a free, resize, reset or a
 * scope's end releases or moves it: off the hot paths, each inside a change
 * (see beginChange in _lease.ts), so the arena is busy while they are told
 * and what they give back waits until the change is made.
 *
 * @module
 */
import { mayRelease, transferredError } from "../base/_detach.ts";
import { describe } from "../base/_validate.ts";
import type { ScopeRecord } from "./_arena_scope.ts";
import type { BumpCursor } from "./_bump_cursor.ts";
import { beginChange, endChange, type LeaseTable, resizedUnderLease, tellFreed, tellHolders } from "./_lease.ts";
import type { Ledger } from "./_ledger.ts";

/**
 * Rolls back the most recent block (its view `view`) when a holder may lease
 * it or a transferred buffer reach it: its holder is told first, and a block
 * a transferred buffer reaches is kept for good ("corruption" thrown, the
 * block no longer the most recent one: a scope's end or reset() that would
 * reuse it ends the arena).
 */
export function rollBackTold(ledger: Ledger, leases: LeaseTable, at: BumpCursor, view: ArrayBufferView): void {
  beginChange();
  try {
    const address = at.lastAddress();
    if (leases.leased !== 0) tellFreed(ledger, "free", leases, address, "Arena.free() released it", at.lastSize);
    // A buffer over the block was transferred away (its holder may have just found it, as it let go): that
    // memory is kept for good, as the other allocators' free keeps it.
    if (!mayRelease(address, at.lastSize)) {
      at.forgetLast();
      throw transferredError("free", `the block ${describe(view)} names`);
    }
    ledger.freed(at.lastSize);
    at.rollBack();
  } finally {
    endChange();
  }
}

/**
 * Runs `resize` (the in-place resize of the most recent block, `view` of
 * `oldSize` bytes) once the block's holder was told (a theft it finds
 * refuses the resize), inside a change.
 */
export function resizeLastTold<T>(
  ledger: Ledger,
  leases: LeaseTable,
  at: BumpCursor,
  view: ArrayBufferView,
  oldSize: number,
  resize: () => T,
): T {
  beginChange();
  try {
    resizedUnderLease(ledger, leases, at.lastAddress(), oldSize, view, "Arena");
    return resize();
  } finally {
    endChange();
  }
}

/** Tells the holders of the memory a reset releases (every chunk), the arena busy meanwhile (see tellHolders). */
export function tellReset(ledger: Ledger, leases: LeaseTable, at: BumpCursor): void {
  tellHolders(ledger, "reset", () => {
    for (const chunk of [...at.chunks, ...at.oversized]) {
      leases.released(chunk.address, chunk.address + chunk.size, "Arena.reset() released it");
    }
  });
}

/** Tells the holders of the memory the scope of `record` released, the arena busy meanwhile (see tellHolders). */
export function tellScopeEnd(ledger: Ledger, leases: LeaseTable, at: BumpCursor, record: ScopeRecord): void {
  tellHolders(
    ledger,
    "end an Arena scope",
    () => at.rangesSince(record, (lo, hi) => leases.released(lo, hi, "the Arena scope it was allocated in ended")),
  );
}
