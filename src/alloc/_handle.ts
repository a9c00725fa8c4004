// Relocatable blocks of a FreeListAllocator. A handle is the only way to a
// block that defragment() may move: `bytes` re-creates its view after a move,
// and every view of the old place is detached.
//
// The public Handle holds nothing a caller can change: its state lives in
// module-private WeakMaps that only the allocator reaches.
import { createStamp } from "../base/_stamp.ts";
import { detach, isDetached } from "../base/_detach.ts";
import { bufferOf } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { Handle } from "./free_list_types.ts";

/** What a handle asks its allocator (so the handle holds no allocator internals). */
export interface HandleHooks {
  /** A fresh view of the block at its current place (its own ArrayBuffer). */
  view(state: HandleState): Uint8Array<ArrayBuffer>;
  size(state: HandleState): number;
  free(state: HandleState): void;
  /** Null while the allocator can be used; otherwise why not. */
  ended(): string | null;
  /** Whether the allocator is only busy (calling its backing), not ended: a use now is "unsupported". */
  busy(): boolean;
}

/** A handle's state, seen by its allocator only. */
export interface HandleState {
  readonly owner: object;
  /** The block record. */
  readonly id: number;
  /** The public handle. */
  readonly handle: Handle;
  view: Uint8Array<ArrayBuffer> | null;
  /** Where `view` is, and how many bytes. */
  viewAddress: number;
  viewLength: number;
  pins: number;
  freed: boolean;
  /**
   * Its view's buffer was transferred away: another buffer may reach the
   * block, so it is never freed or moved again (its memory is recorded as kept).
   */
  stolen: boolean;
}

const stateOfHandle = new WeakMap<object, HandleState>();
const stateOfBuffer = createStamp<HandleState | undefined>(); // on the views' own buffers

/** The state of the handle whose view `buffer` backs, if any. */
export function handleOf(buffer: ArrayBufferLike): HandleState | undefined {
  return stateOfBuffer.get(buffer);
}

/** Detaches the state's current view (the block moved or is gone); one found transferred away marks it `stolen`. */
export function detachHandle(state: HandleState): void {
  if (state.view !== null) {
    // From the internal slot: the view was handed out, and a caller may have given it an own `buffer`.
    const buffer = bufferOf(state.view) as ArrayBuffer;
    stateOfBuffer.set(buffer, undefined);
    if (!detach(buffer, state.viewAddress, state.viewLength)) state.stolen = true;
    state.view = null;
  }
}

/**
 * Whether the handle's block may be reached by a buffer that was transferred
 * away (its current view's buffer was detached by someone else); each time
 * one is found, that memory is recorded as kept and the view forgotten.
 */
export function isStolen(state: HandleState): boolean {
  if (state.view !== null && isDetached(bufferOf(state.view))) detachHandle(state);
  return state.stolen;
}

/** A new handle for block `id` of `owner`; its state goes to the allocator. */
export function createHandle(owner: object, hooks: HandleHooks, id: number): HandleState {
  const handle = new HandleImpl(hooks);
  const state: HandleState = {
    owner,
    id,
    handle,
    view: null,
    viewAddress: 0,
    viewLength: 0,
    pins: 0,
    freed: false,
    stolen: false,
  };
  stateOfHandle.set(handle, state);
  return state;
}

/** Records that `view` (its own buffer, `byteLength` bytes at `address`) is the current view of `state`'s block. */
export function tagHandleView(
  view: Uint8Array<ArrayBuffer>,
  state: HandleState,
  address: number,
  byteLength: number,
): Uint8Array<ArrayBuffer> {
  stateOfBuffer.set(bufferOf(view), state);
  state.view = view;
  state.viewAddress = address;
  state.viewLength = byteLength;
  return view;
}

class HandleImpl implements Handle {
  readonly #hooks: HandleHooks;

  constructor(hooks: HandleHooks) {
    this.#hooks = hooks;
  }

  get bytes(): Uint8Array<ArrayBuffer> {
    const state = this.#live("read the bytes of");
    // memkit nulls `view` when it detaches it, so a detached one was transferred
    // away: isStolen records that (the block is kept for good) and a new view is made.
    isStolen(state);
    if (state.view === null) this.#hooks.view(state);
    return state.view!;
  }

  get size(): number {
    return this.#hooks.size(this.#live("read the size of"));
  }

  get pinned(): boolean {
    return stateOfHandle.get(this)!.pins > 0;
  }

  get freed(): boolean {
    return stateOfHandle.get(this)!.freed || (this.#hooks.ended() !== null && !this.#hooks.busy());
  }

  pin(): void {
    this.#live("pin").pins++;
  }

  unpin(): void {
    const state = this.#live("unpin");
    if (state.pins === 0) throw new RangeError("Cannot unpin as the Handle is not pinned: current pin count is 0");
    state.pins--;
  }

  free(): void {
    const ended = this.#hooks.ended();
    if (ended !== null) {
      throw new AllocationError(
        this.#hooks.busy() ? "unsupported" : "use-after-free",
        `Cannot free a Handle: its FreeListAllocator ${ended}`,
      );
    }
    const state = stateOfHandle.get(this)!;
    if (state.freed) throw new AllocationError("double-free", "Cannot free a Handle twice");
    this.#hooks.free(state);
  }

  #live(op: string): HandleState {
    const ended = this.#hooks.ended();
    if (ended !== null) {
      throw new AllocationError(
        this.#hooks.busy() ? "unsupported" : "use-after-free",
        `Cannot ${op} a Handle: its FreeListAllocator ${ended}`,
      );
    }
    const state = stateOfHandle.get(this)!;
    if (state.freed) throw new AllocationError("use-after-free", `Cannot ${op} a freed Handle`);
    return state;
  }
}
