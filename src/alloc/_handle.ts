// Relocatable blocks of a FreeListAllocator. A handle is the only way to a
// block that defragment() may move: `bytes` re-creates its view after a move,
// and every view of the old place is detached.
import { AllocationError } from "../base/errors.ts";
import type { Handle } from "./free_list_types.ts";

/** What a handle asks its allocator (so the handle holds no allocator internals). */
export interface HandleHooks {
  /** A fresh view of the block at its current place (its own ArrayBuffer). */
  view(handle: HandleImpl): Uint8Array;
  size(handle: HandleImpl): number;
  free(handle: HandleImpl): void;
  /** Null while the allocator can be used; otherwise why not. */
  ended(): string | null;
}

// Each handle's ArrayBuffer carries its handle here (a property, not a Map).
const HANDLE_KEY = Symbol("memkit.handle");

/** The handle whose view `buffer` backs, if any. */
export function handleOf(buffer: ArrayBufferLike): HandleImpl | undefined {
  return (buffer as unknown as Record<symbol, HandleImpl | undefined>)[HANDLE_KEY];
}

/** Marks `buffer` as the view buffer of `handle`. */
export function tagHandleBuffer(buffer: ArrayBuffer, handle: HandleImpl): void {
  (buffer as unknown as Record<symbol, HandleImpl>)[HANDLE_KEY] = handle;
}

/** The Handle implementation; `id` is its block record. */
export class HandleImpl implements Handle {
  readonly owner: object;
  readonly #hooks: HandleHooks;
  readonly id: number;
  view: Uint8Array | null = null;
  pins = 0;
  isFreed = false;

  constructor(owner: object, hooks: HandleHooks, id: number) {
    this.owner = owner;
    this.#hooks = hooks;
    this.id = id;
  }

  get bytes(): Uint8Array {
    this.#live("read the bytes of");
    if (this.view === null || this.view.length === 0) this.view = this.#hooks.view(this);
    return this.view;
  }

  get size(): number {
    this.#live("read the size of");
    return this.#hooks.size(this);
  }

  get pinned(): boolean {
    return this.pins > 0;
  }

  get freed(): boolean {
    return this.isFreed || this.#hooks.ended() !== null;
  }

  pin(): void {
    this.#live("pin");
    this.pins++;
  }

  unpin(): void {
    this.#live("unpin");
    if (this.pins === 0) throw new RangeError("Cannot unpin as the Handle is not pinned: current pin count is 0");
    this.pins--;
  }

  free(): void {
    const ended = this.#hooks.ended();
    if (ended !== null) {
      throw new AllocationError("use-after-free", `Cannot free a Handle: its FreeListAllocator ${ended}`);
    }
    if (this.isFreed) throw new AllocationError("double-free", "Cannot free a Handle twice");
    this.#hooks.free(this);
  }

  /** Detaches the current view (the block moved or is gone). */
  detach(): void {
    if (this.view !== null) {
      (this.view.buffer as ArrayBuffer).transfer(0);
      this.view = null;
    }
  }

  #live(op: string): void {
    const ended = this.#hooks.ended();
    if (ended !== null) {
      throw new AllocationError("use-after-free", `Cannot ${op} a Handle: its FreeListAllocator ${ended}`);
    }
    if (this.isFreed) throw new AllocationError("use-after-free", `Cannot ${op} a freed Handle`);
  }
}
