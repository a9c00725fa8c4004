// Snapshots and dumps that callers hand to the pictures and to leak suspicion
// (heatmap, blockMap, leakSuspicion: public functions that take plain data,
// perhaps read back from JSON) are read ONCE, field by field, into plain
// copies that are checked before anything is drawn or judged from them:
// - a getter or Proxy that answers one thing to the check and another to the
//   drawing cannot reach the SVG (each field is read once);
// - NaN, Infinity and negative sizes are refused (RangeError) instead of
//   coming out as NaN or negative SVG attributes, or as an engine TypeError
//   from the colour ramp;
// - an owner named "constructor", "toString" or "__proto__" is an owner like
//   any other: the copies' records have no prototype, so a missing owner
//   reads as undefined, never as Object.prototype's function.
// The copies are also where absurd sizes are brought down to what a picture
// can show (a column per pixel, a row per owner up to MAX_OWNER_ROWS, a block
// map rectangle per pixel), so the SVG stays megabytes, not gigabytes.
import { describe, isLiveArray } from "../base/_validate.ts";
import type { AllocatorDump, DumpBlock, DumpChunk } from "../alloc/dump.ts";
import { addBytes, formatBytes } from "./_svg.ts";
import type { MemorySnapshot } from "./snapshot.ts";

/**
 * A checked copy of a snapshot: what the pictures and leak suspicion read of
 * it (timestamp, totalAllocated, categoryBreakdown, afterGC); the rest is
 * left neutral (zeros, empty), as nothing downstream reads it. `index`: its
 * place in what the caller gave, for messages.
 */
export interface SnapshotReading extends MemorySnapshot {
  index: number;
}

function reading(
  timestamp: number,
  totalAllocated: number,
  categoryBreakdown: Record<string, number>,
  afterGC: boolean,
  index = 0,
): SnapshotReading {
  return {
    index,
    timestamp,
    totalAllocated,
    categoryBreakdown,
    afterGC,
    largestAllocations: [],
    fragmentation: 0,
    rssBytes: 0,
    jsHeapBytes: 0,
    pressureLevel: null,
    budgetBreakdown: {},
    released: [],
  };
}

/** A size in bytes: a finite number, 0 or more. `what` names it (called only for the message). */
function bytesAt(value: unknown, what: () => string, op: string): number {
  if (typeof value === "number" && value >= 0 && value <= Number.MAX_VALUE) return value;
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as ${what()} must be a number of bytes: current value is ${describe(value)}`);
  }
  throw new RangeError(
    `Cannot ${op} as ${what()} must be a finite number of bytes, 0 or more: current value is ${describe(value)}`,
  );
}

/**
 * Plain, checked copies of `snapshots` (the caller checked it is an array).
 * `timestamps`: whether each must carry a finite `timestamp` (the heatmap's time axis). `owners`: whether
 * to copy each `categoryBreakdown` too; when false, each copy holds the caller's record as it was read
 * (once), for {@linkcode readOwners} to copy where needed (leak suspicion looks at the last few only).
 * @throws {TypeError} For a snapshot that is not an object, or a field of the wrong type.
 * @throws {RangeError} For a size that is negative, NaN or infinite, or a timestamp that is not finite.
 */
export function readSnapshots(
  snapshots: readonly unknown[],
  op: string,
  timestamps: boolean,
  owners = true,
): SnapshotReading[] {
  const out: SnapshotReading[] = [];
  const count = snapshots.length;
  for (let i = 0; i < count; i++) {
    const s = snapshots[i] as Partial<MemorySnapshot> | null;
    if (typeof s !== "object" || s === null) {
      throw new TypeError(
        `Cannot ${op} as every snapshot must be an object with a numeric 'totalAllocated'${
          timestamps ? " and 'timestamp'" : ""
        } and a 'categoryBreakdown' record: snapshot ${i} is ${describe(s)}`,
      );
    }
    const timestamp = s.timestamp, total = s.totalAllocated, breakdown = s.categoryBreakdown, afterGC = s.afterGC;
    if (
      typeof total !== "number" || typeof breakdown !== "object" || breakdown === null ||
      (timestamps && typeof timestamp !== "number")
    ) {
      throw new TypeError(
        `Cannot ${op} as every snapshot needs a numeric 'totalAllocated'${
          timestamps ? " and 'timestamp'" : ""
        } and a 'categoryBreakdown' record: snapshot ${i} is ${describe(s)}`,
      );
    }
    if (timestamps && !Number.isFinite(timestamp)) {
      throw new RangeError(
        `Cannot ${op} as snapshot ${i}'s 'timestamp' must be a finite number: current value is ${describe(timestamp)}`,
      );
    }
    const record = owners ? readOwners(breakdown, i, op) : breakdown;
    out.push(
      reading(
        typeof timestamp === "number" ? timestamp : 0,
        bytesAt(total, () => `snapshot ${i}'s 'totalAllocated'`, op),
        record as Record<string, number>,
        afterGC === true,
        i,
      ),
    );
  }
  return out;
}

/**
 * A checked copy of snapshot `index`'s `categoryBreakdown` record, without a prototype.
 * @throws {TypeError} For a value that is not a number.
 * @throws {RangeError} For a value that is negative, NaN or infinite.
 */
export function readOwners(breakdown: Record<string, unknown>, index: number, op: string): Record<string, number> {
  const record: Record<string, number> = Object.create(null);
  for (const owner of Object.keys(breakdown)) {
    const bytes = breakdown[owner];
    // The usual case checked here, without a call: a profiler's history may hold a million snapshots.
    record[owner] = typeof bytes === "number" && bytes >= 0 && bytes <= Number.MAX_VALUE
      ? bytes
      : bytesAt(bytes, () => `snapshot ${index}'s categoryBreakdown[${describe(owner)}]`, op);
  }
  return record;
}

/** Owners a heatmap draws a row for; the rest share one row. */
export const MAX_OWNER_ROWS = 50;

/**
 * What a heatmap `plot` pixels wide can show of `snapshots`: at most one
 * column per pixel (consecutive snapshots merged into a column that holds
 * each owner's and the total's peak among them; the first column keeps the
 * first timestamp and the last the last, so the time axis is exact), and at
 * most MAX_OWNER_ROWS owners (those of the smallest peaks summed into one
 * owner, "<n> more owners", held at Number.MAX_VALUE).
 */
export function fitSnapshots(snapshots: readonly SnapshotReading[], plot: number): SnapshotReading[] {
  let fitted = snapshots as SnapshotReading[];
  const columns = Math.max(1, Math.floor(plot));
  if (fitted.length > columns) {
    const merged: SnapshotReading[] = [];
    for (let c = 0; c < columns; c++) {
      const from = Math.floor((c * fitted.length) / columns), to = Math.floor(((c + 1) * fitted.length) / columns);
      const record: Record<string, number> = Object.create(null);
      let total = 0, afterGC = true;
      for (let i = from; i < to; i++) {
        const s = fitted[i];
        if (s.totalAllocated > total) total = s.totalAllocated;
        afterGC &&= s.afterGC;
        for (const owner in s.categoryBreakdown) {
          const bytes = s.categoryBreakdown[owner];
          if (!(record[owner] >= bytes)) record[owner] = bytes;
        }
      }
      const timestamp = c === columns - 1 ? fitted[to - 1].timestamp : fitted[from].timestamp;
      merged.push(reading(timestamp, total, record, afterGC, from));
    }
    fitted = merged;
  }
  const peaks = new Map<string, number>();
  for (const s of fitted) {
    for (const owner in s.categoryBreakdown) {
      const bytes = s.categoryBreakdown[owner];
      if (bytes > (peaks.get(owner) ?? 0)) peaks.set(owner, bytes);
    }
  }
  if (peaks.size <= MAX_OWNER_ROWS) return fitted;
  // The heatmap's own order (largest peak first, then by name): the rows it would have drawn first stay.
  const order = [...peaks.keys()].sort((a, b) => peaks.get(b)! - peaks.get(a)! || (a < b ? -1 : 1));
  const kept = new Set(order.slice(0, MAX_OWNER_ROWS - 1));
  const more = order.length - kept.size;
  let rest = `${more} more owner${more === 1 ? "" : "s"}`;
  while (kept.has(rest)) rest = `(${rest})`;
  return fitted.map((s) => {
    const record: Record<string, number> = Object.create(null);
    let others = 0;
    for (const owner in s.categoryBreakdown) {
      if (kept.has(owner)) record[owner] = s.categoryBreakdown[owner];
      else others = addBytes(others, s.categoryBreakdown[owner]);
    }
    if (others > 0) record[rest] = others;
    return reading(s.timestamp, s.totalAllocated, record, s.afterGC, s.index);
  });
}

/**
 * A plain, checked copy of an allocator dump: each object is copied once
 * (`{ ...x }`: every getter read once) and the copy is checked.
 * @throws {TypeError} When it is not a version 1 "memkit.allocator-dump", or a field has the wrong type.
 * @throws {RangeError} For an address, size or offset that is negative, NaN or infinite, or a block past its chunk.
 */
export function readDump(dump: unknown, op: string): AllocatorDump {
  const d = typeof dump === "object" && dump !== null ? { ...(dump as AllocatorDump) } : null;
  if (d === null || d.format !== "memkit.allocator-dump") {
    // An allocator itself is the natural mistake: say what to pass instead.
    const allocator = d !== null && typeof (dump as { dump?: unknown }).dump === "function";
    throw new TypeError(
      `Cannot ${op} as 'dump' must be what an allocator's dump() returns (format "memkit.allocator-dump")${
        allocator ? ", not the allocator: pass allocator.dump()" : ""
      }: current value is ${describe(dump)}`,
    );
  }
  if (d.version !== 1) {
    throw new TypeError(`Cannot ${op} as this memkit reads dump version 1: current value is ${describe(d.version)}`);
  }
  const malformed = () => new TypeError(`Cannot ${op} as 'dump' has a malformed kind, chunks, blocks or stats`);
  const stats = typeof d.stats === "object" && d.stats !== null ? { ...d.stats } : null;
  if (
    typeof d.kind !== "string" || !isLiveArray(d.chunks) || stats === null ||
    typeof stats.capacityBytes !== "number" || typeof stats.allocatedBytes !== "number" ||
    typeof stats.fragmentation !== "number" || typeof stats.liveAllocations !== "number"
  ) throw malformed();
  bytesAt(stats.capacityBytes, () => "the dump's stats.capacityBytes", op);
  bytesAt(stats.allocatedBytes, () => "the dump's stats.allocatedBytes", op);
  if (!Number.isInteger(stats.liveAllocations) || stats.liveAllocations < 0) {
    throw new RangeError(
      `Cannot ${op} as the dump's stats.liveAllocations must be a count: current value is ${
        describe(stats.liveAllocations)
      }`,
    );
  }
  if (!(stats.fragmentation >= 0 && stats.fragmentation <= 1)) {
    throw new RangeError(
      `Cannot ${op} as the dump's stats.fragmentation must be from 0 to 1: current value is ${
        describe(stats.fragmentation)
      }`,
    );
  }
  const chunks: DumpChunk[] = [];
  const chunkCount = d.chunks.length;
  for (let c = 0; c < chunkCount; c++) {
    const raw = d.chunks[c];
    const chunk = typeof raw === "object" && raw !== null ? { ...raw } : null;
    if (chunk === null || typeof chunk.address !== "number" || typeof chunk.size !== "number") throw malformed();
    if (!isLiveArray(chunk.blocks)) throw malformed();
    if (!Number.isSafeInteger(chunk.address) || chunk.address < 0) {
      throw new RangeError(
        `Cannot ${op} as chunk ${c}'s address must be an integer, 0 or more: current value is ${
          describe(chunk.address)
        }`,
      );
    }
    const size = bytesAt(chunk.size, () => `chunk ${c}'s size`, op);
    const blocks: DumpBlock[] = [];
    const blockCount = chunk.blocks.length;
    for (let b = 0; b < blockCount; b++) {
      const rawBlock = chunk.blocks[b];
      const block = typeof rawBlock === "object" && rawBlock !== null ? { ...rawBlock } : null;
      if (
        block === null || typeof block.offset !== "number" || typeof block.size !== "number" ||
        typeof block.free !== "boolean" ||
        !(block.owner === null || block.owner === undefined || typeof block.owner === "string")
      ) throw malformed();
      const offset = bytesAt(block.offset, () => `chunk ${c}'s block ${b} offset`, op);
      const length = bytesAt(block.size, () => `chunk ${c}'s block ${b} size`, op);
      if (offset + length > size) {
        throw new RangeError(
          `Cannot ${op} as chunk ${c}'s block ${b} (${length} bytes at ${offset}) ends past the chunk's ${size} bytes`,
        );
      }
      const requested = typeof block.requested === "number" && Number.isFinite(block.requested) ? block.requested : 0;
      blocks.push({ offset, size: length, free: block.free, requested, owner: block.owner ?? null });
    }
    // By offset, as dump() writes them (a hand-made dump may not be): the picture merges neighbours.
    blocks.sort((a, b) => a.offset - b.offset);
    chunks.push({ address: chunk.address, size, blocks });
  }
  return { format: "memkit.allocator-dump", version: 1, kind: d.kind, stats, chunks };
}

/**
 * The blocks of `chunk` as a bar `pixels` wide can show them: runs of
 * blocks narrower than a pixel are merged into one block (used when most of
 * its bytes are, its `owner` saying what it holds: "12 blocks: 7 used (3.2
 * KiB), 5 free (800 B)"), so a chunk of a million blocks draws as at most
 * about `pixels` rectangles.
 */
export function fitBlocks(chunk: DumpChunk, pixels: number): DumpBlock[] {
  const least = chunk.size / Math.max(1, pixels);
  if (chunk.blocks.length <= pixels) return chunk.blocks;
  const out: DumpBlock[] = [];
  let run: DumpBlock[] = [];
  const flush = () => {
    if (run.length === 1) out.push(run[0]);
    else if (run.length > 1) {
      let used = 0, usedBytes = 0, freeBytes = 0, requested = 0;
      for (const b of run) {
        // (Blocks of a hand-made dump may overlap: their sum may pass what a number holds.)
        if (b.free) freeBytes = addBytes(freeBytes, b.size);
        else {
          used++;
          usedBytes = addBytes(usedBytes, b.size);
          requested = addBytes(requested, b.requested);
        }
      }
      const first = run[0], last = run[run.length - 1];
      out.push({
        offset: first.offset,
        size: last.offset + last.size - first.offset,
        free: usedBytes < freeBytes,
        requested: usedBytes < freeBytes ? 0 : requested,
        owner: `${run.length} blocks: ${used} used (${formatBytes(usedBytes)}), ${run.length - used} free (${
          formatBytes(freeBytes)
        })`,
      });
    }
    run = [];
  };
  for (const block of chunk.blocks) {
    if (block.size >= least) {
      flush();
      out.push(block);
      continue;
    }
    run.push(block);
    if (block.offset + block.size - run[0].offset >= least) flush();
  }
  flush();
  return out;
}
