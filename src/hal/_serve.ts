// How a checked request is served: the candidates it may come from (the
// preferred allocator, then, with allowFallback, the type's own and the
// system type), the budget and limits of each, and the block and record made
// from the first that gives one. A failure says whether waiting could cure it
// (a budget or allocator that may have room later) for allocateAsync.
import { native } from "../../ffi/native.ts";
import { viewLimitError } from "../base/_view_limit.ts";
import { AllocationError } from "../base/errors.ts";
import { Allocation, type Bookkeeping, FRAMED_TYPES, Origin } from "./_allocation.ts";
import type { Counters } from "./_memory_stats.ts";
import {
  B_ARENA,
  B_LOCKED,
  B_SECRET,
  B_SHARED,
  B_SYSTEM,
  BACKING_OF_KIND,
  type Backings,
  CACHE_LINE,
  GPU_ALIGN,
  KIND_OF,
  Refusal,
} from "./_backings.ts";
import {
  F_CACHEABLE,
  F_DMA,
  F_SECRET,
  F_ZERO,
  type Request,
  T_AUDIO,
  T_NETWORK,
  T_SHARED,
  T_SYSTEM,
  T_TEMPORARY,
  T_VIDEO,
  TYPES,
} from "./_request.ts";
import { byteCount, isAre } from "./_words.ts";

/** Why a request could not be served. */
export interface Failure {
  /** Whether a later try may succeed (a budget or allocator with no room now), or never (too large). */
  retryable: boolean;
  /**
   * The error to throw. `wait`: the advice about waiting that fits the caller ("pass a timeoutMs", ...),
   * given when waiting may help.
   */
  error(wait: string): Error;
  /** What the error says after "Cannot allocate " (for a timeout's message around it). */
  detail(wait: string): string;
}

/** The most bytes one allocation may have: its `bytes` is one view. */
const MAX_VIEW_BYTES = native.maxViewBytes;

/** Each type's alignment when a request gives none. */
function typeAlignment(t: number): number {
  if (t === T_VIDEO) return GPU_ALIGN;
  if (t === T_NETWORK) return CACHE_LINE;
  if (t === T_SHARED || t === T_AUDIO) return native.pageSize;
  return 16;
}

/** The candidates as [type, backing] pairs, in the order they are tried. */
function candidates(req: Request): number[] {
  const t = req.type;
  const own = req.bits & F_SECRET ? B_SECRET : req.bits & F_DMA ? B_LOCKED : t; // a type's own backing is its index
  const first = req.preferred === undefined || req.bits & (F_SECRET | F_DMA) ? own : BACKING_OF_KIND[req.preferred];
  const list = [t, first];
  if (!req.allowFallback) return list;
  if (first !== own) list.push(t, own);
  // Locked, secret and shared memory has no stand-in: the property is the point.
  const fixed = req.bits & (F_SECRET | F_DMA) || t === T_AUDIO || t === T_SHARED;
  if (t !== T_SYSTEM && !fixed) list.push(T_SYSTEM, B_SYSTEM);
  return list;
}

/** The memory types `req` may be served from (a bit per type index): what it competes for when it waits. */
export function candidateTypes(req: Request): number {
  const list = candidates(req);
  let types = 0;
  for (let i = 0; i < list.length; i += 2) types |= 1 << list[i];
  return types;
}

/**
 * Whether some candidate of `req` could serve it once room comes back: its allocator has no limit below the
 * request and its type's budget can hold it. (A request for which this is false fails in serve() whatever
 * the room, without taking anything.)
 */
export function mayFit(counters: Counters, backings: Backings, req: Request): boolean {
  const list = candidates(req);
  // The block serve() would ask each backing for (the same alignment and reserve).
  let align = req.alignment === 0 ? typeAlignment(req.type) : Math.max(req.alignment, typeAlignment(req.type));
  let reserve = req.size;
  if (req.bits & F_CACHEABLE) {
    align = Math.max(align, CACHE_LINE);
    reserve = Math.ceil(req.size / CACHE_LINE) * CACHE_LINE;
  }
  for (let i = 0; i < list.length; i += 2) {
    if (backings.limit(list[i + 1], reserve, align) === null && req.size <= counters.types[list[i]].budget) return true;
  }
  return false;
}

/** Serves `req` from the first candidate that can; a Failure when none can. */
export function serve(owner: object, books: Bookkeeping, backings: Backings, req: Request): Allocation | Failure {
  const counters = books.counters;
  const list = candidates(req);
  const size = req.size;
  let align = req.alignment === 0 ? typeAlignment(req.type) : Math.max(req.alignment, typeAlignment(req.type));
  let reserve = size;
  if (req.bits & F_CACHEABLE) {
    if (align < CACHE_LINE) align = CACHE_LINE;
    reserve = Math.ceil(size / CACHE_LINE) * CACHE_LINE;
  }
  // Every backing hands its block out as one view: above what one ArrayBuffer holds (4 GiB in Bun) none ever
  // can, and no wait helps. Refused before any backing is asked (a shared or locked one would map, and lock,
  // all of it first).
  if (reserve > MAX_VIEW_BYTES) return tooLargeForOneView(req, reserve);
  let reasons: string[] | null = null; // made on the first miss: a served request builds no messages
  let raise: string[] | null = null; // the budgets whose rise would serve it
  let retryable = false, category: FailureCategory | null = null;
  let cause: AllocationError | undefined; // the kernel's refusal, when one told why
  for (let i = 0; i < list.length; i += 2) {
    const t = list[i], backing = list[i + 1];
    const limit = backings.limit(backing, reserve, align);
    if (limit !== null) {
      (reasons ??= []).push(limit);
      continue;
    }
    const counter = counters.types[t];
    if (counter.used + size > counter.cap) {
      const name = TYPES[t], budget = counter.budget;
      if (size <= budget) {
        (reasons ??= []).push(
          `the ${name} budget of ${byteCount(budget)} has ${counter.cap - counter.used} left${
            heldNote(t, counter.held)
          }`,
        );
        retryable = true;
      } else {
        (reasons ??= []).push(`the ${name} budget of ${byteCount(budget)} can never hold ${size}`);
      }
      if (!(raise ??= []).includes(`budgets.${name}`)) raise.push(`budgets.${name}`);
      category ??= "limit-exceeded";
      continue;
    }
    const taken = backings.take(backing, reserve, align, req.name);
    if (taken === null) {
      counters.changed(); // the allocator may have been made, or have grown, on the way: cached stats are stale
      (reasons ??= []).push("it has no room: its backing refused more memory");
      retryable = true;
      category ??= "out-of-memory";
      continue;
    }
    if (taken instanceof Refusal) {
      counters.changed();
      (reasons ??= []).push(taken.reason);
      if (taken.retryable) retryable = true;
      category ??= taken.category;
      cause ??= taken.cause;
      continue;
    }
    const view = taken.view;
    const bytes = reserve === size ? view : view.subarray(0, size);
    // Fresh pages (locked, secret, shared) are zero already.
    if (req.bits & F_ZERO && backing !== B_LOCKED && backing !== B_SECRET && backing !== B_SHARED) bytes.fill(0);
    // The arena's blocks are the current frame's; other blocks of the types frames hold are counted apart.
    let frame = null;
    if (backing === B_ARENA) frame = backings.frame;
    else if ((FRAMED_TYPES & (1 << t)) !== 0) {
      const counter = counters.types[t];
      counter.unframedBytes += size;
      counter.unframedCount++;
    }
    const origin = new Origin(owner, books, t, KIND_OF[backing], taken.alignment, req.flags, taken.from, frame);
    const extra = view !== bytes || taken.releasable !== null || taken.name !== undefined
      ? { reserved: view, releasable: taken.releasable, name: taken.name }
      : null;
    const record = new Allocation(origin, bytes, size, extra, -1);
    counters.added(counters.types[t], size);
    return record;
  }
  return failure(req, list, reasons!, raise, retryable, category, cause);
}

/** The category of a refusal for want of room (a budget, an allocator, the kernel's memory or locked pages). */
type FailureCategory = "limit-exceeded" | "out-of-memory" | "platform";

/** What a budget's refusal adds when released blocks the arena holds take part of it (see TypeCounter.held). */
function heldNote(t: number, held: number): string {
  if (held === 0) return "";
  return `: ${byteCount(held)} of it ${isAre(held)} held for ${
    t === T_TEMPORARY ? "temporary blocks" : "blocks of the arena"
  } ` +
    "deallocated out of order, which the arena keeps until their frame ends, or, outside frames, until no " +
    "temporary allocation is live";
}

/**
 * The failure of a request no wait can ever serve, whatever the budgets, the room or the pressure (its block
 * is more than one view holds), or null. allocateAsync asks it before it holds a request back.
 */
export function neverServed(req: Request): Failure | null {
  const reserve = req.bits & F_CACHEABLE ? Math.ceil(req.size / CACHE_LINE) * CACHE_LINE : req.size; // as serve()
  return reserve > MAX_VIEW_BYTES ? tooLargeForOneView(req, reserve) : null;
}

/** The failure of `req`, whose block of `reserve` bytes no ArrayBuffer of this runtime can hold. */
function tooLargeForOneView(req: Request, reserve: number): Failure {
  const type = TYPES[req.type];
  const flag = req.bits & F_SECRET ? "secret" : req.bits & F_DMA ? "dma-capable" : null;
  const op = `allocate ${type} memory${flag === null ? "" : ` with the flag "${flag}"`}`;
  const instead = req.type === T_SHARED
    ? "map it with openSharedMemory(name, byteLength, { create: true }) and use it through windows " +
      "(memory.view(offset, length))"
    : flag === "secret"
    ? "keep secrets in smaller blocks"
    : flag !== null || req.type === T_AUDIO
    ? "allocate smaller blocks, or map the memory with mapPages(size), lock it with mapping.lock() and use it " +
      "through windows (mapping.view(offset, length))"
    : "allocate smaller blocks, or reserve the memory with mapPages(size) and use it through windows " +
      "(mapping.view(offset, length))";
  const error = viewLimitError(reserve, op, "the allocation", instead)!;
  return {
    retryable: false,
    error: () => error,
    detail: () => error.message.slice("Cannot allocate ".length),
  };
}

/** The failure of `req` after every candidate in `list` missed for `reasons` (one per candidate). */
function failure(
  req: Request,
  list: number[],
  reasons: string[],
  raise: string[] | null,
  retryable: boolean,
  category: FailureCategory | null,
  cause: AllocationError | undefined,
): Failure {
  const type = TYPES[req.type];
  // One candidate: its allocator goes in the head ("... of pool memory from the pool allocator: <why>");
  // several: each reason names its own, and the type only when it is another than the one asked for.
  let what = `${byteCount(req.size)} of ${type} memory${flagNote(req)}`;
  let why: string;
  if (list.length === 2) {
    what += ` from the ${KIND_OF[list[1]]} allocator`;
    why = reasons[0];
  } else {
    why = reasons.map((reason, i) => {
      const t = list[2 * i], kind = KIND_OF[list[2 * i + 1]];
      return `${
        t === req.type ? `the ${kind} allocator` : `as ${TYPES[t]} memory from the ${kind} allocator`
      }: ${reason}`;
    }).join("; ");
  }
  // What would serve it: a larger budget, other allocators, or (when it may succeed later) a wait.
  const fixes = raise === null ? [] : [`raise ${raise.join(" or ")}`];
  if (!req.allowFallback && candidates({ ...req, allowFallback: true }).length > list.length) {
    fixes.push("pass allowFallback: true to try other allocators");
  }
  const detail = (wait: string) => {
    const all = retryable ? [...fixes, wait] : fixes;
    return `${what}: ${why}${all.length === 0 ? "" : ` (${all.join(", or ")})`}`;
  };
  return {
    retryable,
    detail,
    error: (wait) => {
      const message = `Cannot allocate ${detail(wait)}`;
      if (category === null) return new RangeError(message);
      return cause === undefined
        ? new AllocationError(category, message)
        : new AllocationError(category, message, { cause, call: cause.call, errno: cause.errno });
    },
  };
}

/** ` with the flag "secret"` (or "dma-capable") for a request whose memory that flag decides, else "". */
function flagNote(req: Request): string {
  return req.bits & F_SECRET ? ' with the flag "secret"' : req.bits & F_DMA ? ' with the flag "dma-capable"' : "";
}
