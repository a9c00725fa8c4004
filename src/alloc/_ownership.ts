import { bufferOf, describe, lengthOf, withArticle } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { isDetached } from "../base/_detach.ts";
import { intrinsic } from "../../ffi/boundary.ts";

// Which allocator holds a buffer, asked only on error paths: every allocator
// registers itself here (weakly), so a free into the wrong allocator can name
// the right one without any bookkeeping on the hot path.

interface Entry {
  readonly ref: WeakRef<object>;
  readonly kind: string;
  readonly holds: (owner: object, buffer: ArrayBufferLike) => boolean;
}

const entries = new Set<Entry>();
const cleanup = new FinalizationRegistry<Entry>((entry) => entries.delete(entry));

/** Registers an allocator; `holds` must not capture it (it is passed in). */
export function registerOwner(
  owner: object,
  kind: string,
  holds: (owner: object, buffer: ArrayBufferLike) => boolean,
): void {
  const entry: Entry = { ref: new WeakRef(owner), kind, holds };
  entries.add(entry);
  cleanup.register(owner, entry);
}

/** The live allocator holding `buffer`, or undefined (a scan: for rare paths only). */
export function ownerOf(buffer: ArrayBufferLike): object | undefined {
  for (const entry of entries) {
    const owner = entry.ref.deref();
    if (owner !== undefined && entry.holds(owner, buffer)) return owner;
  }
  return undefined;
}

/** The kind of the live allocator holding `buffer`, other than `except`. */
export function ownerKindOf(buffer: ArrayBufferLike, except: object): string | null {
  for (const entry of entries) {
    const owner = entry.ref.deref();
    if (owner !== undefined && owner !== except && entry.holds(owner, buffer)) return entry.kind;
  }
  return null;
}

/**
 * The error for a view that is not a live block of `self` (called `name` in
 * messages): a detached buffer means its memory was already released; a
 * buffer another allocator holds means a free into the wrong allocator;
 * anything else was never allocated here.
 */
export function foreignBlockError(
  view: ArrayBufferView,
  op: "free" | "resize",
  self: object,
  name: string,
): AllocationError {
  const buffer = bufferOf(view) as ArrayBuffer;
  if (buffer.detached) {
    return new AllocationError(
      op === "free" ? "double-free" : "use-after-free",
      `Cannot ${op} ${describe(view)}: its memory was already released`,
    );
  }
  const kind = ownerKindOf(buffer, self);
  if (kind !== null) {
    return new AllocationError(
      "mismatched-allocator",
      `Cannot ${op} ${describe(view)} in this ${name}: it belongs to ${withArticle(`${kind} allocator`)}, not this one`,
    );
  }
  return new AllocationError("invalid-free", `Cannot ${op} ${describe(view)}: it was not allocated by this ${name}`);
}

/**
 * An empty view over a buffer still attached: it holds no memory and names no block, even where it starts at
 * one (an empty view at a block's end starts where the next block does), so every `free` takes it as nothing
 * and every `resize` as `alloc(newSize)`. What `alloc(0)` returns is one. (An empty view over a detached buffer
 * is a released or transferred block's, and a view of a resizable buffer reads length 0 once the buffer shrank
 * past it: the allocator judges those.)
 */
export function isEmptyView(view: ArrayBufferView): boolean {
  if (lengthOf(view) !== 0) return false;
  const buffer = bufferOf(view);
  return !isDetached(buffer) && !intrinsic.isResizable(buffer);
}
