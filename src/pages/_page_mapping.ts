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
import type { Advice, Mapping, Protection } from "./mapping.ts";
import { type CensusEntry, censusOwner, enterCensus, leaveCensus } from "../base/_native_census.ts";

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

/** The one implementation of {@linkcode Mapping}: a range of pages from `mmap`, and the buffers over it. */
export class PageMapping implements Mapping {
  readonly #address: number;
  readonly #byteLength: number;
  readonly #label: string;
  #protection: Protection;
  // ArrayBuffers over the mapping, every one of them detached before protect()
  // lowers the protection and before munmap: segment i covers
  // [i × maxViewBytes, (i + 1) × maxViewBytes) and is made on first use;
  // windows across a segment boundary get their own buffer in #crossing.
  // Strong references on purpose: a view keeps its memory alive without its
  // ArrayBuffer object (Bun may collect the wrapper and make a new one), so a
  // buffer reached only through a WeakRef could not always be detached.
  #segments: (ArrayBuffer | undefined)[] = [];
  #crossing: { buffer: ArrayBuffer; address: number; length: number }[] = [];
  #bytes: Uint8Array | null = null;
  #unmapped = false;
  // One of the buffers above was transferred away: another buffer may reach
  // the pages, so they stay mapped and read-write for good (the memory is recorded as kept).
  #stolen = false;

  // The mapping's line in the census of native memory (the leak check at exit), until unmap().
  #census: CensusEntry | null = null;

  /** `owner` names the mapping in the census (the leak check at exit); by default mapFile or mapPages. */
  constructor(address: number, byteLength: number, label: string, protection: Protection, owner?: string) {
    this.#address = address;
    this.#byteLength = byteLength;
    this.#label = label;
    this.#protection = protection;
    if (byteLength > 0) {
      const kind = owner ?? (label.startsWith("file ") ? `mapFile (${label})` : "mapPages");
      this.#census = enterCensus(address, byteLength, censusOwner(kind));
    }
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

  get bytes(): Uint8Array {
    if (this.#unmapped) return this.#bytes ??= new Uint8Array(0); // detached by unmap(), or never made
    if (this.#bytes !== null && (this.#byteLength === 0 || !isDetached(this.#segments[0]!))) return this.#bytes;
    this.#bytes = null;
    this.#writable("get the bytes of");
    if (this.#byteLength > native.maxViewBytes) {
      throw new AllocationError(
        "unsupported",
        `Cannot get the bytes of ${this.#label} as one view: ${RUNTIME} allows at most ` +
          `${native.maxViewBytes} bytes per ArrayBuffer; use mapping.view(offset, length) for windows`,
      );
    }
    // Created lazily: wrapping a large mapping costs time in Bun.
    this.#bytes = this.#byteLength === 0 ? new Uint8Array(0) : new Uint8Array(this.#segment(0));
    return this.#bytes;
  }

  view(offset?: number, length?: number): Uint8Array {
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
    const size = native.maxViewBytes;
    const index = Math.floor(from / size);
    const start = index * size;
    if (from + count <= start + size) return new Uint8Array(this.#segment(index), from - start, count);
    const buffer = native.wrap(this.#address + from, count);
    this.#crossing.push({ buffer, address: this.#address + from, length: count });
    return new Uint8Array(buffer);
  }

  read(offset?: number, length?: number): Uint8Array {
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
      return intrinsic.copyOf(intrinsic.uint8Array(buffer, 0, count)); // no method a caller can patch sees it
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
      this.#detachAll();
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
      throw platformError("mlock", this.#label);
    }
  }

  unlock(): void {
    if (this.#live("unlock")) return;
    if (native.libc.munlock(this.#address, this.#byteLength) !== 0) {
      throw platformError("munlock", this.#label);
    }
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
    // Detach before munmap: a view over unmapped pages would segfault on use.
    const bytes = this.#bytes;
    const intact = this.#detachAll();
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

  // The ArrayBuffer of segment `index`, wrapped on first use (and again after
  // a theft, which is recorded: the pages then stay mapped for good).
  #segment(index: number): ArrayBuffer {
    let buffer = this.#segments[index];
    if (buffer !== undefined && isDetached(buffer)) {
      this.#findThefts();
      buffer = undefined;
    }
    if (buffer === undefined) {
      const start = index * native.maxViewBytes;
      buffer = native.wrap(this.#address + start, Math.min(native.maxViewBytes, this.#byteLength - start));
      this.#segments[index] = buffer;
    }
    return buffer;
  }

  // Whether a buffer over the mapping was ever transferred away; each one
  // found now is recorded and dropped (so a fresh one can be made).
  #findThefts(): boolean {
    const size = native.maxViewBytes;
    this.#segments.forEach((buffer, index) => {
      if (buffer !== undefined && isDetached(buffer)) {
        const start = index * size;
        detach(buffer, this.#address + start, Math.min(size, this.#byteLength - start)); // records it
        this.#segments[index] = undefined;
        if (index === 0) this.#bytes = null;
        this.#stolen = true;
      }
    });
    this.#crossing = this.#crossing.filter(({ buffer, address, length }) => {
      if (!isDetached(buffer)) return true;
      detach(buffer, address, length);
      this.#stolen = true;
      return false;
    });
    return this.#stolen;
  }

  // Detaches every view; false when one of memkit's buffers was transferred
  // away first (another buffer may reach the pages: they must stay mapped and writable).
  #detachAll(): boolean {
    let intact = true;
    const size = native.maxViewBytes;
    this.#segments.forEach((buffer, index) => {
      const start = index * size;
      if (buffer !== undefined) {
        intact = detach(buffer, this.#address + start, Math.min(size, this.#byteLength - start)) && intact;
      }
    });
    for (const { buffer, address, length } of this.#crossing) intact = detach(buffer, address, length) && intact;
    this.#segments = [];
    this.#crossing = [];
    this.#bytes = null;
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
