// Where SharedDynamicArray's writes of one element go: the Target a record
// codec stores through (see _record_target.ts), claiming its slot from the
// header only once the value was read and checked.
import { indexRangeError } from "./_array_checks.ts";
import type { Views } from "./_codec_layout.ts";
import type { Target } from "./_record_target.ts";
import type { SharedHeader } from "./_shared_header.ts";

// Taken once, as the header takes its built-ins: SetTarget.claim() runs it while the lock is held.
const isInteger = Number.isInteger;

/** Where push() writes: claiming takes the writers' lock (released by push once the element is in). */
export class PushTarget implements Target {
  next = 0;
  limit = 0; // always claim(): it takes the lock
  views: Views | null;
  bytes: Uint8Array;
  readonly header: SharedHeader;
  constructor(header: SharedHeader, views: Views | null, bytes: Uint8Array) {
    this.header = header;
    this.views = views;
    this.bytes = bytes;
  }
  claim(): number {
    return this.header.claimOne();
  }
}

/** Where set() writes: claiming takes the lock and checks the index against the length inside it. */
export class SetTarget implements Target {
  next = 0;
  limit = 0;
  views: Views | null;
  bytes: Uint8Array;
  readonly header: SharedHeader;
  readonly index: number;
  constructor(header: SharedHeader, views: Views | null, bytes: Uint8Array, index: number) {
    this.header = header;
    this.views = views;
    this.bytes = bytes;
    this.index = index;
  }
  claim(): number {
    const header = this.header, index = this.index;
    header.lockToChange();
    const length = header.lockedLength;
    if (!isInteger(index) || index < 0 || index >= length) {
      header.unlock();
      throw indexRangeError(index, length, "SharedDynamicArray", "set an element of");
    }
    return index;
  }
}
