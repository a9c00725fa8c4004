// A window of a Mapping with a lifetime of its own (Mapping.window()): one
// ArrayBuffer over exactly its bytes, detached by close(). Where a runtime
// counts every live ArrayBuffer's length as JavaScript heap (Bun's heapUsed,
// Deno's external memory), a program that walks a large mapping through
// windows it closes keeps that count at the windows open, not the mapping.
import { detach, isDetached } from "../base/_detach.ts";
import type { MappingWindow } from "./mapping.ts";

/** The one implementation of {@linkcode MappingWindow}. */
export class PageWindow implements MappingWindow {
  readonly offset: number;
  readonly #buffer: ArrayBuffer | null;
  readonly #address: number;
  readonly #length: number;
  #bytes: Uint8Array<ArrayBuffer>;
  #closed = false;
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
    const intact = this.end();
    if (intact !== null) this.#ended(this, intact);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Detaches the window's buffer (the mapping calls this before it lowers the
   * protection or unmaps): null when it had ended already, else whether the
   * buffer was still memkit's to detach.
   */
  end(): boolean | null {
    if (this.#closed) return null;
    this.#closed = true;
    return this.#buffer === null || detach(this.#buffer, this.#address, this.#length);
  }

  /** Whether someone else detached (transferred away) the window's buffer while it is open. */
  get taken(): boolean {
    return !this.#closed && this.#buffer !== null && isDetached(this.#buffer);
  }
}
