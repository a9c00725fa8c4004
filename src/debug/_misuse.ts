// Diagnosis of a free or resize that does not name a live block of this
// DebugAllocator: a double free (also after the address was reused), a free
// of a block its backing released, an interior or foreign view, a block of
// another allocator. Runs only on error paths; every function throws the
// AllocationError a user can act on, or says the view is an empty one that
// holds nothing (freeing it is a no-op).
import { backingPhrase } from "../alloc/_backing_phrase.ts";
import { isEmptyView, ownerKindOf } from "../alloc/_ownership.ts";
import { bufferOf, describe, offsetOf } from "../base/_validate.ts";
import { detach, isDetached, transferredError } from "../base/_detach.ts";
import { AllocationError } from "../base/errors.ts";
import { type BlockTag, cachedWordsOf, type Damage, tagOf } from "./_block_layout.ts";
import type { BlockTable } from "./_block_table.ts";
import type { FreedBlock, FreedRecords } from "./_freed_records.ts";
import { indentTrace, type Tracer } from "./_traces.ts";

/** What the diagnosis reads of the allocator. */
export interface MisuseContext {
  readonly owner: object;
  readonly detach: boolean;
  readonly blocks: BlockTable;
  readonly records: FreedRecords;
  readonly tracer: Tracer;
}

type Op = "free" | "resize";

// Every live DebugAllocator, to tell "another debug allocator" from the
// allocator under it when both hold the same buffer (error paths only).
const debugOwners = new Set<WeakRef<MisuseContext>>();
const forget = new FinalizationRegistry<WeakRef<MisuseContext>>((ref) => debugOwners.delete(ref));

/** Registers a debug allocator's state for the "another debug allocator" diagnosis. */
export function registerDebugOwner(context: MisuseContext): void {
  const ref = new WeakRef(context);
  debugOwners.add(ref);
  forget.register(context, ref);
}

function otherDebugHolds(buffer: ArrayBufferLike, address: number, except: MisuseContext): boolean {
  const info = cachedWordsOf(buffer);
  for (const ref of debugOwners) {
    const other = ref.deref();
    if (other === undefined || other === except) continue;
    const tag = tagOf(buffer);
    if (tag !== undefined && tag.owner === other.owner && !tag.freed) return true;
    if (info === undefined) continue;
    const blocks = other.blocks;
    for (let slot = 0; slot < blocks.end; slot++) {
      if (
        blocks.ids[slot] !== 0 && blocks.hosts[slot] === info && (address < 0 || blocks.addresses[slot] === address)
      ) {
        return true;
      }
    }
  }
  return false;
}

/**
 * The live slot `view` names after all (a block whose header was overwritten:
 * freeing it lets the canary check report the damage), -1 for an empty view
 * that holds nothing; throws for everything else.
 */
export function diagnose(view: ArrayBufferView, op: Op, context: MisuseContext): number {
  return context.detach ? diagnoseTagged(view, op, context) : diagnoseByAddress(view, op, context);
}

// Views with their own buffer: its tag says whose block it was and what became of it.
function diagnoseTagged(view: ArrayBufferView, op: Op, context: MisuseContext): number {
  const buffer = bufferOf(view);
  const tag = tagOf(buffer);
  if (tag === undefined || tag.owner !== context.owner) {
    if (tag === undefined && isEmptyView(view)) return -1;
    throw foreign(view, op, context, tag !== undefined || otherDebugHolds(buffer, -1, context));
  }
  if (tag.freed) throw goneError(op, describe(view), fromTag(tag), context.tracer, tag.resized);
  if (isDetached(buffer)) {
    // A live block's own buffer that someone else detached: transferred away. Recorded; the block stays allocated.
    detach(buffer, tag.address, tag.size);
    throw transferredError(op, `the ${tag.size}-byte block at 0x${tag.address.toString(16)}`);
  }
  throw interiorError(view, op, tag.size, tag.address, offsetOf(view));
}

// Views of the backing's memory: classify by address, then by what is remembered.
function diagnoseByAddress(view: ArrayBufferView, op: Op, context: MisuseContext): number {
  const buffer = bufferOf(view) as ArrayBuffer;
  const info = cachedWordsOf(buffer);
  if (info === undefined && isEmptyView(view)) return -1;
  const blocks = context.blocks;
  const detached = buffer.detached === true;
  // A buffer that never held a debug block cannot hold one of this allocator's blocks.
  const address = !detached && info !== undefined ? info.base + offsetOf(view) : -1;
  if (address >= 0) {
    const slot = blocks.find(address);
    if (slot >= 0 && blocks.hosts[slot] === info) return slot;
  }
  const stale = context.records.byView(view) ?? (address >= 0 ? context.records.byAddress(address) : null);
  if (stale !== null) throw goneError(op, describe(view), stale, context.tracer, false);
  if (detached && info !== undefined && hostsLiveBlock(blocks, info)) {
    // The backing's buffer under live blocks, detached by someone else: transferred away.
    throw transferredError(op, "memory this DebugAllocator's blocks are in");
  }
  if (detached) {
    throw new AllocationError(
      op === "free" ? "double-free" : "use-after-free",
      `Cannot ${op} ${describe(view)}: its memory was already released (the view is detached)`,
    );
  }
  if (address >= 0) {
    const inside = blocks.containing(address);
    if (inside >= 0 && blocks.hosts[inside] === info) {
      throw interiorError(view, op, blocks.sizes[inside], blocks.addresses[inside], address - blocks.addresses[inside]);
    }
  }
  throw foreign(view, op, context, otherDebugHolds(buffer, address, context));
}

/**
 * `view` starts live `slot` but is not the view handed out for it (views of
 * the backing's memory): a stale view of an older block at the same address
 * is a double free, and the live block is left alone.
 */
export function checkGeneration(view: ArrayBufferView, slot: number, op: Op, context: MisuseContext): void {
  const stale = context.records.byView(view);
  if (stale !== null && stale.id !== context.blocks.ids[slot]) {
    throw goneError(op, describe(view), stale, context.tracer, false);
  }
}

function foreign(view: ArrayBufferView, op: Op, context: MisuseContext, otherDebug: boolean): AllocationError {
  const kind = otherDebug ? "debug" : ownerKindOf(bufferOf(view), context.owner);
  if (kind !== null) {
    return new AllocationError(
      "mismatched-allocator",
      `Cannot ${op} ${describe(view)} in this DebugAllocator: it belongs to ${
        kind === "debug" ? "another debug" : `a ${kind}`
      } allocator`,
    );
  }
  return new AllocationError(
    "invalid-free",
    `Cannot ${op} ${describe(view)}: it does not start a live block of this DebugAllocator (it was not allocated here)`,
  );
}

function fromTag(tag: BlockTag): FreedBlock {
  return {
    id: tag.id,
    address: tag.address,
    size: tag.size,
    trace: tag.trace,
    freedTrace: tag.freedTrace,
    releasedBy: tag.releasedBy,
  };
}

/**
 * The error for a block that is gone: "double-free" for a second free,
 * "use-after-free" for any other use and for a block its backing released
 * (the message names the release). `what` names the view or address used.
 */
export function goneError(
  op: string,
  what: string,
  record: FreedBlock,
  tracer: Tracer,
  resized: boolean,
): AllocationError {
  const block = `the ${record.size}-byte block at 0x${record.address.toString(16)}`;
  if (record.releasedBy !== null) {
    return new AllocationError(
      "use-after-free",
      `Cannot ${op} ${what}: ${block} is gone: its backing released the memory (${record.releasedBy})` +
        indentTrace("allocated at", tracer.format(record.trace)),
    );
  }
  const how = resized ? "was replaced by resize(): use the view resize() returned" : "was already freed";
  return new AllocationError(
    op === "free" ? "double-free" : "use-after-free",
    `Cannot ${op} ${what}: ${block} (allocation #${record.id}) ${how}` +
      indentTrace("allocated at", tracer.format(record.trace)) +
      indentTrace("first freed at", tracer.format(record.freedTrace)),
  );
}

/** A view that starts inside a block. */
export function interiorError(
  view: ArrayBufferView,
  op: string,
  size: number,
  address: number,
  offset: number,
): AllocationError {
  return new AllocationError(
    "invalid-free",
    `Cannot ${op} ${describe(view)} at offset ${offset} of the ${size}-byte block at 0x${
      address.toString(16)
    }: pass a view that starts at the block's first byte`,
  );
}

/** Damaged canaries, naming the block, how far off the write was, and where it was allocated. */
export function corruptionError(
  damage: Damage,
  size: number,
  address: number,
  trace: string | undefined,
): AllocationError {
  const { kind, distance } = damage;
  return new AllocationError(
    "corruption",
    `Heap ${kind} detected: the ${size}-byte block at 0x${address.toString(16)} was written ${distance} byte${
      distance === 1 ? "" : "s"
    } ${kind === "overflow" ? "past its end" : "before its start"}` + indentTrace("allocated at", trace),
  );
}

/** A C-style call with an address where no block starts. */
export function noBlockError(op: string, address: number): AllocationError {
  return new AllocationError(
    "invalid-free",
    `Cannot ${op} 0x${address.toString(16)}: no block of this allocator starts there`,
  );
}

/** A C-style call with the wrong size. */
export function wrongSizeError(op: string, address: number, size: number, actual: number): AllocationError {
  return new AllocationError(
    "invalid-free",
    `Cannot ${op} 0x${address.toString(16)} with size ${size}: the block was allocated with size ${actual}`,
  );
}

/** What a backing returned that the DebugAllocator cannot carve (rule 4). */
export function badBlockError(backing: unknown, size: number, align: number, problem: string): AllocationError {
  return new AllocationError(
    "corruption",
    `The DebugAllocator cannot use what ${
      backingPhrase("its", backing)
    } returned for a ${size}-byte block aligned to ${align}: ${problem}`,
  );
}

function hostsLiveBlock(blocks: BlockTable, info: object): boolean {
  for (let slot = 0; slot < blocks.end; slot++) if (blocks.ids[slot] !== 0 && blocks.hosts[slot] === info) return true;
  return false;
}
