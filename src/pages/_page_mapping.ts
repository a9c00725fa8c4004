// The Mapping object: pages from `mmap` (anonymous or a file) and every
// ArrayBuffer memkit made over them, detached before protect() lowers the
// protection and before munmap, so no view faults. mapping.ts has the public
// types and the functions that map (mapPages, mapFile).
import { intrinsic } from "../../ffi/boundary.ts";
import { detach, isDetached, mayRelease, transferredError } from "../base/_detach.ts";
import { native } from "../../ffi/native.ts";
import { platformError } from "../base/_platform_error.ts";
import { checkSize, describe, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { Advice, Mapping, MappingWindow, Protection } from "./mapping.ts";
import { PageWindow } from "./_mapping_window.ts";
import { type CensusEntry, censusOwner, enterCensus, leaveCensus } from "../base/_native_census.ts";
import { type FindLeases, LeaseTable, type Lending, registerLessor, unregisterLessor } from "../alloc/_lease.ts";

/** The protections `protect()` and `mapPages` take. */
export const ProtectionSchema: z.ZodType<Protection> = z.enum(["none", "read", "read-write"]);
const AdviceSchema: z.ZodType<Advice> = z.enum([
  "normal",
  "random",
  "sequential",
  "will-need",
  "dont-need",
  "free",
  "huge-page",
]);

/** The `mmap`/`mprotect` flags of a protection. */
export function protectionFlags(p: Protection): number {
  const c = native.platform;
  return p === "none" ? c.PROT_NONE : p === "read" ? c.PROT_READ : c.PROT_READ | c.PROT_WRITE;
}

function checkEnum<T extends string>(schema: z.ZodType<T>, value: unknown, op: string, name: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const options = (schema as unknown as { options: string[] }).options.map((o) => `"${o}"`).join(", ");
    throw new TypeError(`Cannot ${op} as '${name}' must be one of ${options}: current value is ${describe(value)}`);
  }
  return result.data;
}

const RUNTIME = native.runtime === "deno" ? "Deno" : "Bun";

const RANK: Record<Protection, number> = { "none": 0, "read": 1, "read-write": 2 };

/** What a holder of a mapping's memory (an allocator over an Allocator in JavaScript passing it on) hears at unmap(). */
const UNMAPPED = "Mapping.unmap() released it";
const NO_WINDOWS: readonly PageWindow[] = [];

// A view() window's buffer covers the whole granules of the mapping around
// it. Each live ArrayBuffer's length counts as JavaScript heap in Bun (its
// heapUsed, and the size the collector plans for) and as external memory in
// Deno, so a small window of a large mapping must not wrap all of it.
const GRANULE = 1 << 20;

/** A buffer over part of the mapping and the memory it covers. */
interface Span {
  readonly buffer: ArrayBuffer;
  readonly address: number;
  readonly length: number;
}

// Offsets and lengths of view() and read(): numbers, integers, inside the mapping.
function checkRange(offset: unknown, length: unknown, byteLength: number, op: string): [number, number] {
  const from = offset === undefined ? 0 : checkSize(offset, op, "offset", byteLength);
  const count = length === undefined ? byteLength - from : checkSize(length, op, "length", byteLength);
  if (from + count > byteLength) {
    throw new RangeError(
      `Cannot ${op} as 'offset' + 'length' (${from} + ${count}) must be at most the mapping's ${byteLength} bytes`,
    );
  }
  return [from, count];
}

// The leases to end when the `size` bytes at `address`, reached through `buffer`, go: a window's own when `buffer`
// is that window's, else the mapping's; null for memory outside the mapping or after unmap(). (Set by the class's
// static block, which reads its private state; a static method would be reachable from every mapping.)
let leasesOver: FindLeases;

/** The one implementation of {@linkcode Mapping}: a range of pages from `mmap`, and the buffers over it. */
export class PageMapping implements Mapping {
  readonly #address: number;
  readonly #byteLength: number;
  readonly #label: string;
  #protection: Protection;
  // ArrayBuffers over the mapping, every one of them detached before protect()
  // lowers the protection and before munmap: `#whole` under `bytes`, `#spans`
  // under view() windows (keyed by first byte and length; whole granules
  // around each window, made on first use), and the open window()s. Strong
  // references on purpose: a view keeps its memory alive without its
  // ArrayBuffer object (Bun may collect the wrapper and make a new one), so a
  // buffer reached only through a WeakRef could not always be detached.
  #whole: ArrayBuffer | null = null;
  readonly #spans = new Map<string, Span>();
  readonly #windows = new Set<PageWindow>();
  #bytes: Uint8Array<ArrayBuffer> | null = null;
  #unmapped = false;
  /** Whether a lock() succeeded since the last unlock() (a failed one then leaves the pages locked). */
  #locked = false;
  // One of the buffers above was transferred away: another buffer may reach
  // the pages, so they stay mapped and read-write for good (the memory is recorded as kept).
  #stolen = false;

  // The mapping's line in the census of native memory (the leak check at exit), until unmap().
  #census: CensusEntry | null = null;

  // The leases of holders that keep memory reached through `bytes` or view() (an allocator over an Allocator
  // written in JavaScript that passed them on; a window's are the window's own), made on the first one, and
  // ended before protect() lowers the protection and before munmap (rule 1 for views memkit did not make
  // itself). `#lending` registers the mapping with the lessors leaseBlock looks through, until unmap().
  #leases: LeaseTable | null = null;
  #lending: Lending | null = null;

  /** `owner` names the mapping in the census (the leak check at exit); by default mapFile or mapPages. */
  constructor(address: number, byteLength: number, label: string, protection: Protection, owner?: string) {
    this.#address = address;
    this.#byteLength = byteLength;
    this.#label = label;
    this.#protection = protection;
    if (byteLength > 0) {
      const kind = owner ?? (label.startsWith("file ") ? `mapFile (${label})` : "mapPages");
      this.#census = enterCensus(address, byteLength, censusOwner(kind));
      this.#lending = registerLessor(this, leasesOver);
    }
  }

  static {
    leasesOver = (lessor, buffer, address, size) => {
      const mapping = lessor as PageMapping;
      const end = mapping.#address + mapping.#byteLength;
      if (mapping.#unmapped || address < mapping.#address || address + size > end) return null;
      for (const window of mapping.#windows) {
        const leases = window.leasesThrough(buffer);
        if (leases !== null) return leases;
      }
      return mapping.#leases ??= new LeaseTable();
    };
  }

  get address(): number {
    return this.#address;
  }

  get byteLength(): number {
    return this.#unmapped ? 0 : this.#byteLength;
  }

  get protection(): Protection {
    return this.#protection;
  }

  get bytes(): Uint8Array<ArrayBuffer> {
    if (this.#unmapped) return this.#bytes ??= new Uint8Array(0); // detached by unmap(), or never made
    if (this.#bytes !== null && (this.#byteLength === 0 || !isDetached(this.#whole!))) return this.#bytes;
    this.#bytes = null;
    this.#writable("get the bytes of");
    if (this.#byteLength > native.maxViewBytes) {
      throw new AllocationError(
        "unsupported",
        `Cannot get the bytes of ${this.#label} as one view: ${RUNTIME} allows at most ` +
          `${native.maxViewBytes} bytes per ArrayBuffer; use mapping.view(offset, length) for windows`,
      );
    }
    // Created lazily: wrapping a large mapping costs time in Bun, and its whole length counts as heap.
    this.#bytes = this.#byteLength === 0 ? new Uint8Array(0) : new Uint8Array(this.#wholeBuffer());
    return this.#bytes;
  }

  view(offset?: number, length?: number): Uint8Array<ArrayBuffer> {
    const [from, count] = checkRange(offset, length, this.#byteLength, "view a mapping");
    this.#live("view");
    this.#writable("view");
    if (count > native.maxViewBytes) {
      throw new AllocationError(
        "unsupported",
        `Cannot view ${count} bytes of ${this.#label}: ${RUNTIME} allows at most ` +
          `${native.maxViewBytes} bytes per ArrayBuffer; use smaller windows`,
      );
    }
    if (count === 0) return new Uint8Array(0);
    // The buffer under `bytes`, when there is one, serves every window.
    const whole = this.#whole;
    if (whole !== null && !isDetached(whole)) return new Uint8Array(whole, from, count);
    let start = Math.floor(from / GRANULE) * GRANULE;
    let end = Math.min(this.#byteLength, Math.ceil((from + count) / GRANULE) * GRANULE);
    if (end - start > native.maxViewBytes) [start, end] = [from, from + count]; // (Bun, near 4 GiB) just its bytes
    return new Uint8Array(this.#span(start, end - start), from - start, count);
  }

  window(offset?: number, length?: number): MappingWindow {
    const [from, count] = checkRange(offset, length, this.#byteLength, "open a window of a mapping");
    this.#live("open a window of");
    this.#writable("open a window of");
    if (count > native.maxViewBytes) {
      throw new AllocationError(
        "unsupported",
        `Cannot open a window of ${count} bytes of ${this.#label}: ${RUNTIME} allows at most ` +
          `${native.maxViewBytes} bytes per ArrayBuffer; use smaller windows`,
      );
    }
    const address = this.#address + from;
    // SAFETY: inside the mapping; the window's close(), protect() below read-write and unmap() detach it first.
    const buffer = count === 0 ? null : native.wrap(address, count);
    const window = new PageWindow(buffer, address, from, count, (ended, intact) => {
      this.#windows.delete(ended);
      if (!intact) this.#stolen = true; // transferred away: the pages stay mapped (the memory is recorded as kept)
    });
    if (buffer !== null) this.#windows.add(window);
    return window;
  }

  read(offset?: number, length?: number): Uint8Array<ArrayBuffer> {
    const [from, count] = checkRange(offset, length, this.#byteLength, "read a mapping");
    this.#live("read");
    if (this.#protection === "none") {
      throw new AllocationError(
        "unsupported",
        `Cannot read ${this.#label}: its protection is "none" (protect("read") first)`,
      );
    }
    if (count === 0) return new Uint8Array(0);
    // A temporary view, detached again before returning: nothing outlives the copy.
    const buffer = native.wrap(this.#address + from, count);
    try {
      // No method a caller can patch sees it; the copy is a new ArrayBuffer of its own.
      return intrinsic.copyOf(intrinsic.uint8Array(buffer, 0, count)) as Uint8Array<ArrayBuffer>;
    } finally {
      detach(buffer, this.#address + from, count);
    }
  }

  protect(p: Protection): void {
    const protection = checkEnum(ProtectionSchema, p, "protect", "protection");
    if (this.#live("protect")) {
      this.#protection = protection;
      return;
    }
    // Below read-write, no view may reach the pages: refuse (changing
    // nothing) when one was ever transferred away (its new owner would fault),
    // else detach them all first.
    if (RANK[protection] < RANK["read-write"]) {
      if (this.#findThefts() || !mayRelease(this.#address, this.#byteLength)) {
        throw transferredError(`protect ${this.#label} as "${protection}"`, "its pages");
      }
      const made = protection === "none" ? "inaccessible" : "read-only";
      this.#detachAll(`Mapping.protect("${protection}") made it ${made}`, true);
      // A holder's own buffer over the pages, found transferred away as its lease ended: that buffer would fault.
      if (!mayRelease(this.#address, this.#byteLength)) {
        throw transferredError(`protect ${this.#label} as "${protection}"`, "its pages");
      }
    }
    if (native.libc.mprotect(this.#address, this.#byteLength, protectionFlags(protection)) !== 0) {
      throw platformError("mprotect", `${this.#label}, ${protection}`);
    }
    this.#protection = protection;
  }

  advise(a: Advice): void {
    const advice = checkEnum(AdviceSchema, a, "advise", "advice");
    if (this.#live("advise")) return;
    const c = native.platform;
    const value = {
      "normal": c.MADV_NORMAL,
      "random": c.MADV_RANDOM,
      "sequential": c.MADV_SEQUENTIAL,
      "will-need": c.MADV_WILLNEED,
      "dont-need": c.MADV_DONTNEED,
      "free": c.MADV_FREE,
      "huge-page": c.MADV_HUGEPAGE,
    }[advice];
    if (value < 0) {
      throw new AllocationError("unsupported", `Cannot advise "${advice}": ${native.os} has no such madvise advice`);
    }
    if (native.heap.madvise(this.#address, this.#byteLength, value) !== 0) {
      throw platformError("madvise", `${this.#label}, ${advice}`);
    }
  }

  lock(): void {
    if (this.#live("lock")) return;
    if (native.libc.mlock(this.#address, this.#byteLength) !== 0) {
      const error = platformError("mlock", this.#label); // errno first: munlock below may change it
      // Linux marks the range locked before it faults the pages in, and keeps the mark when that fails (pages
      // it may not read, RLIMIT_MEMLOCK): a later protect("read-write") would then fill and pin the whole range.
      // An operation that throws changes nothing, so the mark goes, unless an earlier lock() had set it.
      if (!this.#locked) native.libc.munlock(this.#address, this.#byteLength);
      throw error;
    }
    this.#locked = true;
  }

  unlock(): void {
    if (this.#live("unlock")) return;
    if (native.libc.munlock(this.#address, this.#byteLength) !== 0) {
      throw platformError("munlock", this.#label);
    }
    this.#locked = false;
  }

  sync(): void {
    if (this.#live("sync")) return;
    if (native.libc.msync(this.#address, this.#byteLength, native.platform.MS_SYNC) !== 0) {
      throw platformError("msync", this.#label);
    }
  }

  unmap(): void {
    if (this.#unmapped) return;
    this.#unmapped = true;
    if (this.#census !== null) leaveCensus(this.#census);
    if (this.#lending !== null) unregisterLessor(this.#lending);
    // Detach before munmap: a view over unmapped pages would segfault on use (the views of holders that leased
    // the memory too, which may find their own buffer transferred away: recorded, and then the pages stay).
    const bytes = this.#bytes;
    const intact = this.#detachAll(UNMAPPED, false);
    this.#bytes = bytes;
    // Pages another buffer may still reach (one of memkit's was transferred away) stay mapped.
    if (!intact || this.#stolen || !mayRelease(this.#address, this.#byteLength)) return;
    if (this.#byteLength > 0 && native.libc.munmap(this.#address, this.#byteLength) !== 0) {
      throw platformError("munmap", this.#label);
    }
  }

  [Symbol.dispose](): void {
    this.unmap();
  }

  // The buffer under `bytes`, wrapped on first use (and again after a theft,
  // which is recorded: the pages then stay mapped for good).
  #wholeBuffer(): ArrayBuffer {
    if (this.#whole !== null && isDetached(this.#whole)) this.#findThefts();
    // SAFETY: the whole mapping; protect() below read-write and unmap() detach it first.
    return this.#whole ??= native.wrap(this.#address, this.#byteLength);
  }

  // The buffer over `length` bytes from `start`, made on first use (and again after a theft).
  #span(start: number, length: number): ArrayBuffer {
    const key = `${start}:${length}`;
    let span = this.#spans.get(key);
    if (span !== undefined && isDetached(span.buffer)) {
      this.#findThefts();
      span = undefined;
    }
    if (span === undefined) {
      const address = this.#address + start;
      // SAFETY: inside the mapping; protect() below read-write and unmap() detach it first.
      span = { buffer: native.wrap(address, length), address, length };
      this.#spans.set(key, span);
    }
    return span.buffer;
  }

  // Whether a buffer over the mapping was ever transferred away; each one
  // found now is recorded and dropped (so a fresh one can be made).
  #findThefts(): boolean {
    const whole = this.#whole;
    if (whole !== null && isDetached(whole)) {
      detach(whole, this.#address, this.#byteLength); // records it
      this.#whole = null;
      this.#bytes = null;
      this.#stolen = true;
    }
    for (const [key, span] of this.#spans) {
      if (!isDetached(span.buffer)) continue;
      detach(span.buffer, span.address, span.length);
      this.#spans.delete(key);
      this.#stolen = true;
    }
    for (const window of this.#windows) {
      if (!window.taken) continue;
      window.end(); // records it
      this.#windows.delete(window);
      this.#stolen = true;
    }
    return this.#stolen;
  }

  // Detaches every view and closes every window, then ends every lease over the pages, telling the holders
  // `reason` (`partial`: the mapping lives on); false when one of memkit's buffers was transferred away first
  // (another buffer may reach the pages: they must stay mapped and writable). A holder's buffer found
  // transferred away is recorded instead (see mayRelease).
  #detachAll(reason: string, partial: boolean): boolean {
    let intact = true;
    if (this.#whole !== null) intact = detach(this.#whole, this.#address, this.#byteLength) && intact;
    for (const { buffer, address, length } of this.#spans.values()) intact = detach(buffer, address, length) && intact;
    const windows = this.#windows.size === 0 ? NO_WINDOWS : [...this.#windows];
    this.#whole = null;
    this.#spans.clear();
    this.#windows.clear();
    this.#bytes = null;
    // The mapping's own state is settled before any holder's code runs.
    for (const window of windows) intact = (window.end(reason, partial) ?? true) && intact;
    const leases = this.#leases;
    this.#leases = null;
    if (leases !== null && leases.count !== 0) {
      leases.released(this.#address, this.#address + this.#byteLength, reason, partial);
    }
    return intact;
  }

  #writable(op: string): void {
    if (this.#protection !== "read-write") {
      throw new AllocationError(
        "unsupported",
        `Cannot ${op} ${this.#label} while its protection is "${this.#protection}": a JavaScript view is ` +
          `always writable, and a store into a read-only page would kill the process; use mapping.read() for a ` +
          `copy, or protect("read-write") first`,
      );
    }
  }

  // Throws after unmap; true for an empty mapping, where there is nothing to do.
  #live(op: string): boolean {
    if (this.#unmapped) {
      throw new AllocationError("use-after-free", `Cannot ${op} ${this.#label}: it was unmapped`);
    }
    return this.#byteLength === 0;
  }
}
