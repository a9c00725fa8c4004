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

/** The kind of the live allocator holding `buffer`, other than `except`. */
export function ownerKindOf(buffer: ArrayBufferLike, except: object): string | null {
  for (const entry of entries) {
    const owner = entry.ref.deref();
    if (owner !== undefined && owner !== except && entry.holds(owner, buffer)) return entry.kind;
  }
  return null;
}
