// A window of a Mapping with a lifetime of its own (Mapping.window()): one
// ArrayBuffer over exactly its bytes, detached by close(). Where a runtime
// counts every live ArrayBuffer's length as JavaScript heap (Bun's heapUsed,
// Deno's external memory), a program that walks a large mapping through
// windows it closes keeps that count at the windows open, not the mapping.
import { detach, isDetached } from "../base/_detach.ts";
import { LeaseTable } from "../alloc/_lease.ts";
import type { MappingWindow } from "./mapping.ts";

/** What a chained allocator over a window hears when the window is closed. */
const WINDOW_CLOSED = "MappingWindow.close() released it";

/** The one implementation of {@linkcode MappingWindow}. */
export class PageWindow implements MappingWindow {
  readonly offset: number;
  readonly #buffer: ArrayBuffer | null;
  readonly #address: number;
  readonly #length: number;
  #bytes: Uint8Array<ArrayBuffer>;
  #closed = false;
  // The leases of holders that keep memory in the window (an allocator over an Allocator written in JavaScript
  // that passed the window's bytes on), ended when the window ends; made on the first one.
  #leases: LeaseTable | null = null;
  // Tells the mapping the window ended, and whether its buffer was still memkit's (false: transferred away).
  readonly #ended: (window: PageWindow, intact: boolean) => void;

  /** `buffer` covers `length` bytes at `address`, `offset` bytes into the mapping (null: an empty window). */
  constructor(
    buffer: ArrayBuffer | null,
    address: number,
    offset: number,
    length: number,
    ended: (window: PageWindow, intact: boolean) => void,
  ) {
    this.#buffer = buffer;
    this.#address = address;
    this.offset = offset;
    this.#length = length;
    this.#ended = ended;
    this.#bytes = buffer === null ? new Uint8Array(0) : new Uint8Array(buffer);
  }

  get byteLength(): number {
    return this.#closed ? 0 : this.#length;
  }

  get bytes(): Uint8Array<ArrayBuffer> {
    return this.#bytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    const intact = this.#finish();
    if (intact === null) return;
    this.#ended(this, intact); // the mapping forgets it before any holder's code runs
    this.#revoke(WINDOW_CLOSED, true);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Detaches the window's buffer (the mapping calls this before it lowers the
   * protection or unmaps) and ends the leases taken over it, telling their
   * holders `reason` (`partial`: the mapping lives on): null when it had
   * ended already, else whether the buffer was still memkit's to detach (a
   * holder's buffer found transferred away is recorded: see `mayRelease`).
   */
  end(reason: string = WINDOW_CLOSED, partial = true): boolean | null {
    const intact = this.#finish();
    if (intact !== null) this.#revoke(reason, partial);
    return intact;
  }

  /**
   * The table of the leases over memory reached through `buffer`, when that is this open window's buffer;
   * else null.
   */
  leasesThrough(buffer: ArrayBufferLike): LeaseTable | null {
    if (this.#closed || this.#buffer === null || buffer !== this.#buffer) return null;
    return this.#leases ??= new LeaseTable();
  }

  // Closes the window and detaches its buffer: null when it was closed already, else whether the buffer was
  // still memkit's to detach.
  #finish(): boolean | null {
    if (this.#closed) return null;
    this.#closed = true;
    return this.#buffer === null || detach(this.#buffer, this.#address, this.#length);
  }

  // Ends the leases over the window: their holders detach their views (rule 1: before the memory is released
  // or reused) and hear `reason`. A holder's buffer found transferred away is recorded (see mayRelease).
  #revoke(reason: string, partial: boolean): void {
    const leases = this.#leases;
    if (leases === null) return;
    this.#leases = null;
    if (leases.count !== 0) leases.released(this.#address, this.#address + this.#length, reason, partial);
  }

  /** Whether someone else detached (transferred away) the window's buffer while it is open. */
  get taken(): boolean {
    return !this.#closed && this.#buffer !== null && isDetached(this.#buffer);
  }
}
