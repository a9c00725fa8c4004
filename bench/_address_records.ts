// The least a wrapper must do to count a pool's blocks the way the
// DebugAllocator's counters-only rung promises (issue 14 item 10): count a free
// through any view of a block at the block's real size (a prefix view, a view
// the backing made) and list every live block, so keep a record of every block
// by address. A free reads the view's buffer and offset through the engine's
// own getters (a view's own `byteOffset` property must not pick another block)
// and looks the address up. bench/debug_floor.ts and the W15 ladder measure it
// as the floor below which counters only cannot go.
import { addressOf, type PoolAllocator } from "../mod.ts";
import { OffsetTable } from "../src/alloc/_offset_table.ts";
import { bufferOf, offsetOf } from "../src/base/_validate.ts";

/** Blocks recorded by address in typed arrays, counted, freed through any view at their start. */
export class AddressRecords {
  readonly #backing: PoolAllocator;
  readonly #byAddress = new OffsetTable();
  #sizes = new Float64Array(1024);
  #outers: (Uint8Array | undefined)[] = new Array(1024).fill(undefined);
  readonly #free = new Int32Array(1024);
  #freeCount = 0;
  #end = 0;
  // The last buffer seen and its address (what BackingIntake caches).
  #buffer: ArrayBufferLike | null = null;
  #base = 0;
  bytes = 0;
  live = 0;

  constructor(backing: PoolAllocator) {
    this.#backing = backing;
  }

  alloc(size: number): Uint8Array {
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) throw new TypeError("size");
    const outer = this.#backing.tryAlloc(size)!;
    const slot = this.#freeCount > 0 ? this.#free[--this.#freeCount] : this.#end++;
    this.#sizes[slot] = size;
    this.#outers[slot] = outer;
    this.#byAddress.set(this.#baseOf(outer.buffer) + outer.byteOffset, slot);
    this.bytes += size;
    this.live++;
    return outer;
  }

  free(view: ArrayBufferView): void {
    if (!ArrayBuffer.isView(view)) throw new TypeError("view");
    const address = this.#baseOf(bufferOf(view)) + offsetOf(view); // the engine's getters
    const slot = this.#byAddress.get(address);
    if (slot < 0) throw new RangeError("not a block");
    this.#byAddress.delete(address);
    this.#backing.free(this.#outers[slot]!);
    this.bytes -= this.#sizes[slot];
    this.live--;
    this.#outers[slot] = undefined;
    this.#free[this.#freeCount++] = slot;
  }

  #baseOf(buffer: ArrayBufferLike): number {
    if (buffer !== this.#buffer) {
      // A new chunk: its address, once (a native call; the views' offsets are relative to it).
      this.#buffer = buffer;
      this.#base = addressOf(new Uint8Array(buffer, 0, 1));
    }
    return this.#base;
  }
}
