// The protocol of a SharedDynamicArray's buffer, the same in every thread
// that attached it: a header of four Int32 words, then the elements.
//
//   SEQ     counts writes that change or remove elements; odd while one is in progress (a seqlock)
//   STATE   the element count times 4, plus the writers' lock in its two low bits:
//           0 free, 1 taken, 2 taken and another writer may be asleep waiting for it
//   (word 2 is unused, and 0; the lock's holder may write it for a moment: SharedHeader#aliases)
//   STRIDE  the element size, which attach() checks
//
// Invariants: a writer takes the lock (one compareExchange of STATE from
// length*4 to length*4+1), changes elements, and frees the lock by writing
// STATE once more, with the new length (one exchange, which tells it whether
// to wake a sleeper); nothing in between runs user code or throws (values are
// checked before the lock is taken, and a claim that fails unlocks before it
// throws). Appends (push, pushMany) only write elements at and past the
// length, which no reader reads, then publish the longer length as they free
// the lock: they leave SEQ alone. Writes that change or remove elements below
// the length (set, pop, clear) make SEQ odd first and even again at the end.
// A reader reads SEQ (even), then STATE and the elements below its length,
// then SEQ again: unchanged means no such write overlapped, else it reads
// again. (An element an append writes can only be one a reader is reading if
// a pop or clear removed it first, and that changed SEQ.) The length a reader
// sees never counts an element being written: the lock bits change, not the
// count, until the write ends. The buffer only grows (in place), inside the
// lock, up to maxByteLength.
//
// Why the length and the lock share a word: one writer pushing with no other
// writer pays two atomic operations per push, where a separate lock word costs
// three (take, publish, free), and each one costs as much as the hand-written
// append's single Atomics.store while a reader polls the length. No seqlock
// for appends, no Atomics.notify unless a writer sleeps, no byteLength read
// (each thread remembers the capacity it last saw, which only grows). Room
// for the lock bits caps an array at 2^29 - 1 elements.
//
// Any code holding the buffer can write the header, so every read of it is
// checked before it is used (the length before any loop, copy or index sized
// by it): 0 <= the length <= the elements the buffer holds, lock bits 0, 1 or
// 2 (writers and attach() check them; readers take no lock and only need the
// length), STRIDE the element size, SEQ even whenever a writer takes the lock.
// Anything else is AllocationError("corruption"): the buffer was written
// outside memkit. The buffer's lengths are read through the engine's own
// getters (an own `byteLength` or `grow` property on the buffer changes nothing).
//
// A hold (hold()) keeps the lock between writes, so its writes skip the
// compareExchange; they still check, with a plain read, that the length word
// is as this thread's last write left it (the length it published, lock bits
// 1 or 2): one written outside memkit may have let another writer in, and
// writing on would lose its element or publish a length that counts an
// element nobody wrote. Writes that change elements, and hold(), also check
// SEQ even and the stride. Anything else ends the hold and the write is
// "corruption"; the lock is freed only if the length word is still the hold's
// (else it may be another writer's now, and is left as found).
import { AllocationError } from "../base/errors.ts";
import { apply, Builtin, now } from "./_builtins.ts";
import {
  corrupt,
  FREE,
  HEADER,
  lengthFound,
  LOCK_BITS,
  lockFound,
  sabByteLength,
  sabGrow,
  sabMaxByteLength,
  SEQ,
  SLEEPER,
  STATE,
  STRIDE,
  TAKEN,
} from "./_shared_buffer.ts";

// The headers whose hold() keeps the lock in this thread (this module is loaded once per thread):
// another array over the same memory in this thread (the same buffer object, or a structured clone of
// it) cannot get the lock while this thread waits for it, so it fails at once instead of blocking the
// thread until its timeout.
// (A list through the headers: no method or setter a program could patch runs here.)
let firstHeld: SharedHeader | null = null;
// Word 2, unused by the protocol, and what SharedHeader#aliases writes there: from a random start in
// each thread, so that a probe another thread writes at the same moment (into a buffer whose lock it
// holds) is not taken for this thread's.
const SPARE = 2;
let probes = Math.floor(Math.random() * 0x3fffffff);

// Taken once: a program that replaces Math.floor or an Atomics function later runs no code
// inside the lock (where a replaced Atomics.exchange that throws would leave it taken for good). The
// buffer's getters and grow are called through the captured Reflect.apply (a replaced
// Function.prototype.call would run inside the lock as the buffer grows).
const { floor, max, min } = Math;
const {
  add: atomicAdd,
  compareExchange,
  exchange: atomicExchange,
  load: atomicLoad,
  notify: atomicNotify,
  store: atomicStore,
  wait: atomicWait,
} = Atomics;

// Called just before the lock is taken (claimOne, lock). JavaScriptCore can throw its stack overflow
// RangeError from a property access that runs for the first time in a tier (through C++), so a push near
// the end of the stack could take the lock and die before recording it (`holding = true`): the lock stayed
// taken for good, in every thread (Bun 1.4.5, the first push of a process and pushes around tier-ups). A
// frame of 128 slots (1 KB) called first throws there instead, before anything is taken, and leaves that
// much room to the code after the compareExchange and to push's catch (32 slots were not enough, 48 were;
// test/arrays/shared_appender_hostile_test.ts checks it in both runtimes).
// deno-fmt-ignore
function headroom(): void {
  // deno-lint-ignore no-var no-unused-vars
  var r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, r20, r21, r22, r23, r24, r25, r26, r27, r28, r29, r30, r31, r32, r33, r34, r35, r36, r37, r38, r39, r40, r41, r42, r43, r44, r45, r46, r47, r48, r49, r50, r51, r52, r53, r54, r55, r56, r57, r58, r59, r60, r61, r62, r63, r64, r65, r66, r67, r68, r69, r70, r71, r72, r73, r74, r75, r76, r77, r78, r79, r80, r81, r82, r83, r84, r85, r86, r87, r88, r89, r90, r91, r92, r93, r94, r95, r96, r97, r98, r99, r100, r101, r102, r103, r104, r105, r106, r107, r108, r109, r110, r111, r112, r113, r114, r115, r116, r117, r118, r119, r120, r121, r122, r123, r124, r125, r126, r127;
}

// Looks at a taken lock before a writer sleeps: another writer's append holds it for a few stores.
const SPINS = 64;

/** One thread's handle on the header of a shared buffer: the lock, the seqlock, the length and growth. */
export class SharedHeader {
  readonly #buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #stride: number;
  readonly #timeoutMs: number;
  /** Most elements the buffer can hold. */
  readonly maxCapacity: number;
  /** Whether this thread holds the writers' lock (between a claim and the end of its write). */
  holding = false;
  // While holding: the length when the lock was taken, and the length to publish.
  #taken = 0;
  #length = 0;
  // Whether the write in progress made SEQ odd (set, pop, clear), so unlock() makes it even.
  #changing = false;
  // Holds (hold()) not yet released: while above 0, this thread keeps the lock
  // between writes (holding stays true), and a write's unlock() only publishes.
  #holds = 0;
  // Counts holds lost to a header written outside memkit: a release() from before the loss is ignored.
  #epoch = 0;
  // The next header in this thread's list of holders (firstHeld).
  #nextHeld: SharedHeader | null = null;
  // Elements the buffer held when this thread last read its byte length: a
  // floor on what it holds now (it only grows), so most checks need no read.
  #capacity: number;
  // When a reader started waiting for a write to finish.
  #started = 0;

  /**
   * Over `buffer`; `create` records the stride (a new buffer) instead of
   * trusting the one there (attach() checked it with checkAttachable()).
   */
  constructor(buffer: SharedArrayBuffer, stride: number, timeoutMs: number, create: boolean) {
    this.#buffer = buffer;
    this.#words = new Builtin.Int32Array(buffer, 0, 4);
    this.#stride = stride;
    this.#timeoutMs = timeoutMs;
    this.maxCapacity = floor((apply(sabMaxByteLength, buffer, []) - HEADER) / stride);
    this.#capacity = floor((apply(sabByteLength, buffer, []) - HEADER) / stride);
    if (create) atomicStore(this.#words, STRIDE, stride);
  }

  /**
   * Elements stored now (any thread, any time), checked against what the
   * buffer holds. (A writer grows the buffer before it publishes a length,
   * so a length read first is never more than the byte length read after.)
   * Readers take no lock: the lock bits do not matter here.
   * @throws {AllocationError} "corruption" for a length no writer stored.
   */
  get length(): number {
    const state = atomicLoad(this.#words, STATE);
    const length = state >> 2;
    return state >= 0 && length <= this.#capacity ? length : this.#checkLength(state, "read");
  }

  /** Elements stored, as the lock's holder sees them (no other thread changes them then). */
  get lockedLength(): number {
    return this.#length;
  }

  /** Elements that fit before the buffer grows. */
  get capacity(): number {
    return (this.#capacity = floor((apply(sabByteLength, this.#buffer, []) - HEADER) / this.#stride));
  }

  // A length past the capacity this thread last saw: another thread may have
  // grown the buffer since, so look again before calling it corruption.
  #checkLength(state: number, op: string): number {
    if (state >= 0 && state >> 2 <= this.capacity) return state >> 2;
    throw corrupt(op, lengthFound(state, this.#capacity));
  }

  // ------------------------------------------------------------ readers

  /** The write count a read starts from: odd while a write runs (then wait() and try again). */
  readBegin(): number {
    return atomicLoad(this.#words, SEQ);
  }

  /** Whether no write started since readBegin() returned `before`: what was read is consistent. */
  readValid(before: number): boolean {
    return atomicLoad(this.#words, SEQ) === before;
  }

  /**
   * A reader overlapped a write: retry at once a few times, then check the
   * clock now and then, so a write that never ends becomes an error.
   * @throws {AllocationError} "timeout" past `timeoutMs`.
   */
  waitForWriter(spins: number, op: string): void {
    if (spins < 64) return;
    if (spins === 64) {
      this.#started = now();
      this.#checkWriting(op);
    } else if ((spins & 1023) === 0) {
      this.#checkWriting(op);
      if (now() - this.#started > this.#timeoutMs) throw this.#timeout(op);
    }
  }

  /**
   * SEQ is odd only while a writer holds the lock: an odd SEQ unchanged across
   * a read of the lock bits that finds them free (or 3) was written outside
   * memkit. (A write that ended and another that began in between would change SEQ.)
   * @throws {AllocationError} "corruption".
   */
  #checkWriting(op: string): void {
    const words = this.#words;
    const before = atomicLoad(words, SEQ);
    const state = atomicLoad(words, STATE);
    const after = atomicLoad(words, SEQ);
    const bits = state & LOCK_BITS;
    if (bits === LOCK_BITS) throw corrupt(op, lockFound(state));
    if (bits === FREE && before === after && (before & 1) !== 0) {
      throw corrupt(op, `its sequence word reads ${before} (odd: a write in progress) while no writer holds the lock`);
    }
  }

  // ------------------------------------------------------------ writers

  /**
   * Takes the writers' lock for an append (SEQ stays even); no user code runs
   * until unlock(). Checks, holding it, that the header is as a writer left it.
   * @throws {AllocationError} "timeout" when another writer holds it past `timeoutMs`; "corruption".
   */
  lock(): void {
    if (this.#holds !== 0) return this.#checkHeld();
    headroom();
    const words = this.#words;
    // The uncontended case, the only one with one writer: a plain read of the
    // length (a guess: the compareExchange checks it) and one compareExchange.
    let state = words[STATE];
    if ((state & LOCK_BITS) !== FREE || compareExchange(words, STATE, state, state + TAKEN) !== state) {
      state = this.#wait();
    }
    this.#taken = this.#length = state >> 2;
    this.holding = true;
    // Holding the lock, no other writer changes SEQ, STRIDE or the length
    // (plain reads see what the last holder wrote before it freed the lock).
    const seq = words[SEQ];
    const stride = words[STRIDE];
    if (
      state < 0 || (seq & 1) !== 0 || stride !== this.#stride ||
      (state >> 2 > this.#capacity && state >> 2 > this.capacity)
    ) this.#lockedCorrupt(state, seq, stride);
  }

  // A writer that has just taken the lock found the header written outside memkit: free it, then throw
  // (lock() and claimOne()).
  #lockedCorrupt(state: number, seq: number, stride: number): never {
    this.unlock();
    throw corrupt(
      "write",
      state < 0 || state >> 2 > this.#capacity
        ? lengthFound(state, this.#capacity)
        : (seq & 1) !== 0
        ? `its sequence word reads ${seq} (odd: a write in progress) when the lock was free`
        : `its element size word reads ${stride}, not ${this.#stride}`,
    );
  }

  /**
   * Takes the lock for a write that changes or removes elements below the
   * length (set, pop, clear), and makes SEQ odd so that readers read again.
   * @throws {AllocationError} "timeout", "corruption", as lock().
   */
  lockToChange(): void {
    this.lock();
    if (this.#holds !== 0) this.#checkHeldWords();
    const words = this.#words;
    atomicStore(words, SEQ, words[SEQ] + 1);
    this.#changing = true;
  }

  /**
   * Waits for the lock another writer holds: a few looks at once, then sleeps
   * on STATE, announcing itself with lock bits 2 so the holder wakes it (futex
   * style: a holder that frees the lock with bits 1 knows nobody sleeps, and
   * skips Atomics.notify). Once it has slept, it takes the lock with bits 2,
   * since others may sleep too. Only ever compareExchange, so a word written
   * outside memkit is reported, never overwritten. Returns STATE as it was
   * just before this thread took the lock (lock bits 0).
   * @throws {AllocationError} "timeout" past `timeoutMs`; "corruption" for lock bits 3.
   */
  #wait(): number {
    const words = this.#words;
    if (this.#heldHere()) {
      throw new AllocationError(
        "timeout",
        "Cannot write the SharedDynamicArray: this thread keeps its writers' lock through another " +
          "SharedDynamicArray over the same memory (a hold() not yet released), so waiting for it would only end " +
          "in a timeout; write through the array that holds it, or release the hold first",
      );
    }
    const deadline = now() + this.#timeoutMs;
    let bits = TAKEN;
    for (let looks = 0;; looks++) {
      const state = atomicLoad(words, STATE);
      const found = state & LOCK_BITS;
      if (found === LOCK_BITS) throw corrupt("write", lockFound(state));
      if (found === FREE) {
        if (compareExchange(words, STATE, state, state + bits) === state) return state;
        continue;
      }
      if (looks < SPINS) continue;
      const left = deadline - now();
      if (left <= 0) throw this.#timeout("write");
      const asleep = state - found + SLEEPER;
      if (found === SLEEPER || compareExchange(words, STATE, state, asleep) === state) {
        atomicWait(words, STATE, asleep, min(left, 10));
        bits = SLEEPER;
      }
    }
  }

  /**
   * Publishes a new length (pop, clear, and appends once the elements are in);
   * it takes effect, for readers, at unlock(). Only the lock's holder calls it.
   */
  setLength(count: number): void {
    this.#length = count;
  }

  /**
   * Frees the lock, publishing the length (after lockToChange(), also makes
   * SEQ even again). While a hold keeps the lock, it only publishes.
   */
  unlock(): void {
    const words = this.#words;
    if (this.#changing) {
      this.#changing = false;
      // A reader that finds SEQ even must find the new length (else it could read, as valid, an
      // element that a pop or clear removed and the next append rewrites), and the lock stays
      // taken until SEQ is even (a writer that takes it checks SEQ): publish, then SEQ, then free.
      // (An add leaves the lock bits, which a sleeper may have set, as they are.)
      if (this.#length !== this.#taken) atomicAdd(words, STATE, (this.#length - this.#taken) * 4);
      atomicAdd(words, SEQ, 1);
      this.#taken = this.#length;
    }
    if (this.#holds !== 0) {
      // The lock stays this thread's: one add publishes the length (and leaves a sleeper's bits).
      if (this.#length !== this.#taken) {
        atomicAdd(words, STATE, (this.#length - this.#taken) * 4);
        this.#taken = this.#length;
      }
      return;
    }
    this.holding = false;
    // One write frees the lock and publishes the length; it wakes a sleeper if one announced itself.
    if ((atomicExchange(words, STATE, this.#length * 4) & SLEEPER) !== 0) atomicNotify(words, STATE, 1);
  }

  /**
   * Keeps the writers' lock for this thread until as many release() calls:
   * the first takes it (waiting as any writer), later ones only count.
   * @returns What to hand release() (a hold lost to corruption ends every hold taken before).
   * @throws {AllocationError} "timeout", "corruption", as lock().
   */
  hold(): number {
    if (this.#holds === 0) {
      this.lock();
      this.#nextHeld = firstHeld;
      firstHeld = this;
    } else {
      this.lock(); // checks the header, as a write that changes elements under the hold would
      this.#checkHeldWords();
    }
    this.#holds++;
    return this.#epoch;
  }

  /** Ends one hold() that returned `epoch`; the last one frees the lock (publishing the length). */
  release(epoch: number): void {
    if (epoch !== this.#epoch || this.#holds === 0) return;
    if (--this.#holds === 0) {
      this.#notHeldHere();
      this.unlock();
    }
  }

  // Held by this thread (hold()): the length word is as its last write left it (#taken === #length; a
  // sleeper may have changed the lock bits from 1 to 2), unless written outside memkit (then the hold is
  // lost). The one word an append depends on: SEQ and the stride are checked by writes that change
  // elements (lockToChange), by hold(), and by the next writer that takes the lock.
  #checkHeld(): void {
    const extra = this.#words[STATE] - this.#length * 4;
    if (extra !== TAKEN && extra !== SLEEPER) this.#lose();
  }

  // Held by this thread: SEQ even and the stride as written, as lock() checks when it takes the lock.
  #checkHeldWords(): void {
    const words = this.#words;
    if ((words[SEQ] & 1) !== 0 || words[STRIDE] !== this.#stride) this.#lose();
  }

  // Whether a hold of this thread keeps the lock of this header's memory through another header.
  #heldHere(): boolean {
    for (let holder = firstHeld; holder !== null; holder = holder.#nextHeld) {
      if (holder !== this && holder.#aliases(this.#words)) return true;
    }
    return false;
  }

  #notHeldHere(): void {
    if (firstHeld === this) firstHeld = this.#nextHeld;
    else {
      for (let holder = firstHeld; holder !== null; holder = holder.#nextHeld) {
        if (holder.#nextHeld === this) {
          holder.#nextHeld = this.#nextHeld;
          break;
        }
      }
    }
    this.#nextHeld = null;
  }

  // Whether `words` are this header's words. This thread holds this header's lock, so it may write the
  // spare word (no reader or writer reads it) and put it back: `words` read what it wrote only if they
  // are the same memory (twice, two values: once could be another thread's probe of the same value).
  #aliases(words: Int32Array): boolean {
    let same = true;
    for (let i = 0; i < 2 && same; i++) {
      const probe = (probes = (probes + 1) & 0x3fffffff) | 0x40000000;
      atomicStore(this.#words, SPARE, probe);
      same = atomicLoad(words, SPARE) === probe;
    }
    atomicStore(this.#words, SPARE, 0);
    return same;
  }

  // The header is not as this thread's hold left it: it was written outside memkit. Ends every hold.
  // The length word still this hold's (another word was written) means the lock is still this thread's:
  // free it, as lock() does when it finds corruption. Any other length word is left as found: another
  // writer may hold the lock now, and writing the word could free its lock or drop its elements.
  #lose(): never {
    const words = this.#words;
    const state = words[STATE], seq = words[SEQ], stride = words[STRIDE];
    this.#holds = 0;
    this.#epoch++;
    this.holding = false;
    this.#changing = false;
    this.#notHeldHere();
    const free = this.#length * 4;
    for (let found = state;;) {
      const extra = found - free;
      if (extra !== TAKEN && extra !== SLEEPER) break;
      const was = compareExchange(words, STATE, found, free);
      if (was === found) {
        if (extra === SLEEPER) atomicNotify(words, STATE, 1);
        break;
      }
      found = was;
    }
    throw corrupt(
      "write",
      ((seq & 1) !== 0
        ? `its sequence word reads ${seq} (odd: a write in progress) between this thread's writes`
        : stride !== this.#stride
        ? `its element size word reads ${stride}, not ${this.#stride}`
        : `its length word reads ${state} while this thread's hold() kept the lock at ${this.#length} elements`) +
        ", so the hold is lost (its lock may be another writer's now)",
    );
  }

  /** Holds not yet released in this thread. */
  get holds(): number {
    return this.#holds;
  }

  /**
   * Takes the lock to append `count` elements (lock(), then room for them):
   * returns the index of the first, the length now. Unlocks before it throws.
   * @throws {RangeError} Past maxCapacity.
   * @throws {AllocationError} "timeout"; "corruption" (see lock()).
   */
  claimAppend(count: number): number {
    this.lock();
    const length = this.#length;
    if (length + count > this.#capacity) {
      if (length + count > this.maxCapacity) {
        this.unlock(); // first: the error's constructor is a global the program may have replaced
        throw new RangeError(
          `Cannot grow the SharedDynamicArray to ${length + count} elements: its maxCapacity is ${this.maxCapacity}, ` +
            "fixed when it was created (its buffer reserves that many up front); create it with a larger maxCapacity",
        );
      }
      try {
        this.#grow(length + count);
      } catch (error) {
        this.unlock();
        throw error;
      }
    }
    return length;
  }

  /**
   * push()'s claim, claimAppend(1) with its common cases inline: under a
   * hold, the slot at the length when the length word is still the hold's
   * and there is room (one plain read); else, the lock free and room for the
   * element, one compareExchange and lock()'s checks of SEQ and the stride.
   * Anything else (growth, waiting, a length word or lock bits written outside memkit, maxCapacity) goes through
   * claimAppend(1), which checks it all again. (Two calls fewer a push:
   * Bun 1.4, one thread, same-process A/B: inside hold() 13.5 -> 11 ns an
   * f64, plain push 20 -> 16.5 ns.)
   */
  claimOne(): number {
    const words = this.#words;
    if (this.#holds !== 0) {
      const length = this.#length;
      const extra = words[STATE] - length * 4;
      if ((extra === TAKEN || extra === SLEEPER) && length < this.#capacity) return length;
    } else {
      // (None under a hold: that claim takes nothing, and unlockAppend's writes after it run higher on the stack
      // than this method's reads, which ran first; the stack test covers holds too.)
      headroom();
      // lock()'s uncontended case, with room for the element (known from the guess the compareExchange confirms).
      const state = words[STATE];
      if (
        (state & LOCK_BITS) === FREE && state >= 0 && state >> 2 < this.#capacity &&
        compareExchange(words, STATE, state, state + TAKEN) === state
      ) {
        const length = state >> 2, seq = words[SEQ], stride = words[STRIDE];
        this.#taken = this.#length = length;
        this.holding = true;
        if ((seq & 1) !== 0 || stride !== this.#stride) this.#lockedCorrupt(state, seq, stride);
        return length;
      }
    }
    return this.claimAppend(1);
  }

  /**
   * After an append holding the lock: setLength(count), then unlock() (an
   * append never made SEQ odd, so none of lockToChange()'s end is needed).
   * `add` is Atomics.add as the caller read it before it claimed the slot.
   */
  unlockAppend(count: number, add: typeof Atomics.add): void {
    const words = this.#words;
    if (this.#holds !== 0) {
      // The lock stays this thread's: one add publishes the length (and leaves a sleeper's bits).
      // (`add`, Atomics.add as push read it before the claim, called while it is the engine's: JavaScriptCore
      // runs the captured one 1.5-2x slower here. Read here, a getter on Atomics.add ran inside the lock: one
      // that pushed again wrote the same slot, one that released the hold freed the lock before this add.)
      if (add === atomicAdd) add(words, STATE, (count - this.#taken) * 4);
      else atomicAdd(words, STATE, (count - this.#taken) * 4);
      this.#taken = this.#length = count;
      return;
    }
    this.#length = count;
    this.holding = false;
    if ((atomicExchange(words, STATE, count * 4) & SLEEPER) !== 0) atomicNotify(words, STATE, 1);
  }

  /**
   * Room for `count` elements, at most maxCapacity: the buffer grows in
   * place (doubling). Only the lock's holder calls it.
   */
  #grow(count: number): void {
    const buffer = this.#buffer;
    const needed = HEADER + count * this.#stride;
    const byteLength = apply(sabByteLength, buffer, []);
    if (needed > byteLength) {
      const doubled = HEADER + 2 * (byteLength - HEADER);
      apply(sabGrow, buffer, [min(apply(sabMaxByteLength, buffer, []), max(needed, doubled))]);
    }
    this.#capacity = floor((apply(sabByteLength, buffer, []) - HEADER) / this.#stride);
  }

  #timeout(op: string): AllocationError {
    return new AllocationError(
      "timeout",
      `Cannot ${op} the SharedDynamicArray: a write or another thread's hold() has kept its lock for over ` +
        `${this.#timeoutMs} ms (a hold() not yet released, or a Worker terminated in the middle of a write or a ` +
        `hold, which leaves it locked for good; unless it died in a set, pop or clear, reads still work and ` +
        `toArray() can copy the elements out)`,
    );
  }
}
