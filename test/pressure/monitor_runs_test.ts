// A PressureMonitor's runs: each start() begins one and stop() (or dispose) ends it, and a timer tick belongs to
// the run that set it. A tick whose run ended (a listener or the reader called stop(), or stop(); start()) sets no
// timer, keeps no reading and notifies no one. Before, a listener's stop(); start() inside a tick left two timers
// (start()'s and the tick's own next one), and the one the monitor forgot kept reading after stop(). The run is
// checked after all of a reading's user code has run (the reader, then the reading's getters and Proxy traps while
// it is checked): before, a getter that called stop() still had its reading kept and announced.
//
// Most tests run the monitor's timers by hand (setTimeout/clearTimeout replaced while a synchronous body runs),
// so they count timers and reads instead of measuring time.
import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import { test } from "node:test";
import { type MemoryStatus, PressureLevel, type PressureLevelValue, PressureMonitor, PsiTrigger } from "../../mod.ts";
import { reading } from "../_pressure_readings.ts";

interface ManualTimers {
  /** Timers set and not yet fired or cleared. */
  readonly pending: number;
  /** Fires every timer pending now (not those the callbacks set). */
  fire(): void;
}

// Runs `body` with setTimeout/clearTimeout under the test's control. Each fake timer's handle is a real timer
// that never fires (so unrefTimer gets the handle it expects); all are cleared when the body ends. The body is
// synchronous: nothing else runs while the globals are replaced.
function withManualTimers(body: (timers: ManualTimers) => void): void {
  const realSet = globalThis.setTimeout, realClear = globalThis.clearTimeout;
  const pending = new Map<ReturnType<typeof setTimeout>, () => void>();
  globalThis.setTimeout = ((callback: () => void) => {
    const handle = realSet(() => {}, 2 ** 31 - 1);
    pending.set(handle, callback);
    return handle;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((handle: ReturnType<typeof setTimeout>) => {
    pending.delete(handle);
    realClear(handle);
  }) as typeof clearTimeout;
  try {
    body({
      get pending() {
        return pending.size;
      },
      fire() {
        for (const [handle, callback] of [...pending]) {
          if (!pending.delete(handle)) continue; // cleared by an earlier callback
          realClear(handle);
          callback();
        }
      },
    });
  } finally {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
    for (const handle of pending.keys()) realClear(handle);
  }
}

// A monitor fed `next` that counts its reads.
function counted(options: { hysteresis?: number; psiTrigger?: boolean; intervalMs?: number } = {}) {
  const state = { next: reading(PressureLevel.None), reads: 0, onRead: null as (() => void) | null };
  const monitor = new PressureMonitor({
    intervalMs: options.intervalMs ?? 50,
    hysteresis: options.hysteresis ?? 1,
    psiTrigger: options.psiTrigger,
    read: () => {
      state.reads++;
      state.onRead?.();
      return state.next;
    },
  });
  state.reads = 0; // the constructor's reading
  return { monitor, state };
}

test("a listener that restarts the monitor (stop(); start()) during a tick leaves one timer, which stop() ends", () => {
  withManualTimers((timers) => {
    const { monitor, state } = counted();
    let restarts = 0;
    monitor.on(PressureLevel.Low, () => {
      restarts++;
      monitor.stop();
      monitor.start();
    });
    monitor.start();
    assert.equal(timers.pending, 1);
    state.next = reading(PressureLevel.Low);
    timers.fire();
    assert.equal(restarts, 1);
    assert.equal(state.reads, 1);
    // Before: 2 (start()'s timer and the old tick's next one).
    assert.equal(timers.pending, 1, "one timer after the restart");
    for (let i = 0; i < 5; i++) timers.fire();
    assert.equal(state.reads, 6, "one reading per interval");
    assert.equal(timers.pending, 1);
    const critical: PressureLevelValue[] = [];
    monitor.on(PressureLevel.Critical, (level) => critical.push(level));
    monitor.stop();
    assert.equal(timers.pending, 0, "stop() cleared every timer");
    state.next = reading(PressureLevel.Critical);
    timers.fire();
    assert.equal(state.reads, 6, "nothing reads after stop()");
    assert.deepEqual(critical, []);
    assert.equal(monitor.running, false);
  });
});

test("a listener that stops or disposes the monitor during a tick: no timer is left, nothing reads after", () => {
  for (const end of ["stop", "dispose"] as const) {
    withManualTimers((timers) => {
      const { monitor, state } = counted();
      const heard: string[] = [];
      monitor.on(PressureLevel.Low, () => {
        heard.push("first");
        if (end === "stop") monitor.stop();
        else monitor[Symbol.dispose]();
      });
      // The change was made before the first listener stopped the monitor: the others still hear it (else they
      // would miss this rise for good, as the level stays).
      monitor.on(PressureLevel.Low, () => heard.push("second"));
      monitor.start();
      state.next = reading(PressureLevel.Low);
      timers.fire();
      assert.deepEqual(heard, ["first", "second"], end);
      assert.equal(monitor.level, PressureLevel.Low, end);
      assert.equal(timers.pending, 0, `${end}: the tick set no new timer`);
      assert.equal(monitor.running, false);
      state.next = reading(PressureLevel.Critical);
      timers.fire();
      assert.equal(state.reads, 1, end);
      assert.equal(monitor.level, PressureLevel.Low, end);
    });
  }
});

test("a reader that stops or restarts the monitor during a tick: that tick's reading is not kept or announced", () => {
  for (const restart of [false, true]) {
    withManualTimers((timers) => {
      const { monitor, state } = counted();
      const heard: PressureLevelValue[] = [];
      monitor.on(PressureLevel.High, (level) => heard.push(level));
      monitor.start();
      const before = monitor.status;
      state.next = reading(PressureLevel.Critical);
      state.onRead = () => {
        state.onRead = null;
        monitor.stop();
        if (restart) monitor.start();
      };
      timers.fire();
      assert.equal(state.reads, 1);
      assert.equal(monitor.status, before, `restart ${restart}: the ended run's reading is dropped`);
      assert.equal(monitor.level, PressureLevel.None);
      assert.deepEqual(heard, []);
      assert.equal(timers.pending, restart ? 1 : 0, `restart ${restart}: only the new run's timer`);
      timers.fire();
      assert.equal(state.reads, restart ? 2 : 1);
      assert.deepEqual(heard, restart ? [PressureLevel.Critical] : [], "the new run's own tick is heard");
      monitor.stop();
      assert.equal(timers.pending, 0);
    });
  }
});

test("start/stop storms, from outside and from listeners, leave at most one timer and none after stop()", () => {
  withManualTimers((timers) => {
    const { monitor, state } = counted();
    for (let i = 0; i < 20; i++) {
      monitor.start();
      monitor.start(); // nothing while started
      if (i % 3 === 0) monitor.stop();
      assert.ok(timers.pending <= 1, `round ${i}: ${timers.pending} timers`);
    }
    monitor.start();
    // Every listener restarts it, some twice, and one adds and removes listeners as it goes.
    let added = 0;
    for (let i = 0; i < 5; i++) {
      monitor.on(PressureLevel.Low, () => {
        monitor.stop();
        monitor.start();
        if (i % 2 === 0) {
          monitor.start();
          monitor.stop();
          monitor.start();
        }
      });
    }
    monitor.on(PressureLevel.Medium, () => {
      const id = monitor.on(PressureLevel.Low, () => added++);
      monitor.stop();
      monitor.off(id);
      monitor.start();
    });
    const levels = [PressureLevel.Low, PressureLevel.None, PressureLevel.Medium, PressureLevel.None] as const;
    for (let round = 0; round < 12; round++) {
      state.next = reading(levels[round % levels.length]);
      timers.fire();
      assert.equal(timers.pending, 1, `round ${round}`);
      assert.equal(state.reads, round + 1, `round ${round}: one reading per tick`);
    }
    assert.equal(added, 0, "a listener added and removed within a dispatch is never called");
    monitor.stop();
    assert.equal(timers.pending, 0);
    timers.fire();
    assert.equal(state.reads, 12);
  });
});

function psiDescriptorCount(): number {
  let count = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (/pressure/.test(readlinkSync(`/proc/self/fd/${fd}`))) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// On the real timers (and with the PSI trigger, where the kernel has one): after a restart from a listener,
// stop() ends every reading. Zero reads over several intervals is the assertion, not a duration.
test("on the real timers, with and without the PSI trigger: after a listener restarted it, stop() ends all reads", async () => {
  for (const psiTrigger of [false, true]) {
    const descriptors = psiDescriptorCount();
    const { monitor, state } = counted({ psiTrigger, intervalMs: 20 });
    try {
      let restarts = 0;
      monitor.on(PressureLevel.Low, () => {
        restarts++;
        monitor.stop();
        monitor.start();
      });
      monitor.start();
      state.next = reading(PressureLevel.Low);
      while (restarts === 0) await sleep(10);
      await sleep(100);
      const critical: PressureLevelValue[] = [];
      monitor.on(PressureLevel.Critical, (level) => critical.push(level));
      monitor.stop();
      const reads = state.reads;
      state.next = reading(PressureLevel.Critical);
      await sleep(150); // several intervals (at most 20 ms each)
      assert.equal(state.reads, reads, `psiTrigger ${psiTrigger}: no reading after stop()`);
      assert.deepEqual(critical, []);
      assert.equal(monitor.level, PressureLevel.Low);
    } finally {
      monitor.stop();
    }
    for (let i = 0; i < 40 && psiDescriptorCount() > descriptors; i++) await sleep(50);
    assert.equal(psiDescriptorCount(), descriptors, `psiTrigger ${psiTrigger}: every trigger closed`);
  }
});

test("a refused reading on a tick is told by readError; a later good one clears it (one timer all along)", () => {
  withManualTimers((timers) => {
    const { monitor, state } = counted();
    monitor.start();
    state.next = { ...reading(PressureLevel.None), availableBytes: Number.NaN } as MemoryStatus;
    timers.fire();
    assert.ok(monitor.readError instanceof RangeError, String(monitor.readError));
    assert.equal(timers.pending, 1);
    state.next = reading(PressureLevel.None);
    timers.fire();
    assert.equal(monitor.readError, null);
    assert.equal(timers.pending, 1);
    monitor.stop();
  });
});

// How a reading's own code can end the run it was taken for: a getter of a field, a getter inside `psi`, a
// Proxy's get trap. Each runs while the monitor checks the reading, after the reader returned it.
type Ending = "stop" | "restart" | "dispose";
const ENDINGS: Ending[] = ["stop", "restart", "dispose"];
function end(monitor: PressureMonitor, how: Ending): void {
  if (how === "dispose") monitor[Symbol.dispose]();
  else monitor.stop();
  if (how === "restart") monitor.start();
}
const WHERE = ["a field's getter", "a getter in psi", "a Proxy's get trap"] as const;
// A Critical reading whose own code runs `effect` (once) while the monitor reads it.
function endingReading(where: typeof WHERE[number], effect: () => void): MemoryStatus {
  const base = reading(PressureLevel.Critical);
  let ran = false;
  const once = () => {
    if (!ran) (ran = true, effect());
  };
  if (where === "a field's getter") {
    return Object.defineProperty({ ...base }, "availableBytes", {
      enumerable: true,
      get: () => (once(), base.availableBytes),
    });
  }
  if (where === "a getter in psi") {
    const psi = { some10: 0, some60: 0, full10: 0, full60: 0 };
    return {
      ...base,
      psi: Object.defineProperty(psi, "full10", { enumerable: true, get: () => (once(), 0) }),
    };
  }
  return new Proxy(base, {
    get(target, key, receiver) {
      if (key === "source") once();
      return Reflect.get(target, key, receiver);
    },
  });
}

test("a getter (or Proxy trap) of a timed reading that stops, restarts or disposes the monitor: the reading is dropped", () => {
  for (const how of ENDINGS) {
    for (const where of WHERE) {
      const label = `${where}, ${how}`;
      withManualTimers((timers) => {
        const { monitor, state } = counted();
        const heard: PressureLevelValue[] = [];
        monitor.on(PressureLevel.High, (level) => heard.push(level));
        monitor.start();
        const before = monitor.status;
        state.next = endingReading(where, () => end(monitor, how));
        timers.fire();
        assert.equal(state.reads, 1, label);
        // Before: the reading was kept and announced (level 4 while running = false).
        assert.equal(monitor.status, before, `${label}: the ended run's reading is not kept`);
        assert.equal(monitor.level, PressureLevel.None, label);
        assert.deepEqual(heard, [], `${label}: not announced`);
        assert.equal(monitor.readError, null, label);
        assert.equal(monitor.running, how === "restart", label);
        assert.equal(timers.pending, how === "restart" ? 1 : 0, `${label}: only the new run's timer`);
        state.next = reading(PressureLevel.Critical);
        timers.fire();
        assert.equal(state.reads, how === "restart" ? 2 : 1, label);
        assert.deepEqual(heard, how === "restart" ? [PressureLevel.Critical] : [], `${label}: the new run's own tick`);
        monitor.stop();
        assert.equal(timers.pending, 0, label);
      });
    }
  }
});

test("a timed reading whose getter ends the run and then throws: its refusal is dropped too (readError stays)", () => {
  for (const how of ENDINGS) {
    withManualTimers((timers) => {
      const { monitor, state } = counted();
      monitor.start();
      state.next = Object.defineProperty({ ...reading(PressureLevel.Critical) }, "totalBytes", {
        enumerable: true,
        get: () => {
          end(monitor, how);
          throw new Error("getter failed");
        },
      });
      timers.fire();
      assert.equal(monitor.readError, null, `${how}: no error of an ended run's reading`);
      assert.equal(monitor.level, PressureLevel.None, how);
      monitor.stop();
    });
  }
});

// The PSI path, driven by hand: PsiTrigger.open is replaced (for this test) by triggers whose wait() ends when the
// test says so; the interval is an hour, so no timer tick takes a reading meanwhile.
test("a getter of a PSI wake-up's reading that stops, restarts or disposes the monitor: the reading is dropped", async () => {
  const realOpen = PsiTrigger.open;
  const waits: ((fired: boolean) => void)[] = [];
  let open = 0;
  PsiTrigger.open = (() => {
    let closed = false;
    open++;
    return {
      wait: () => closed ? Promise.resolve(false) : new Promise<boolean>((resolve) => waits.push(resolve)),
      close: () => {
        if (closed) return;
        closed = true;
        open--;
        for (const resolve of waits.splice(0)) resolve(false);
      },
    } as unknown as PsiTrigger;
  }) as typeof PsiTrigger.open;
  const wake = async () => {
    const pending = waits.splice(0);
    assert.equal(pending.length, 1, "one wait pending");
    pending[0](true);
    await sleep(0);
  };
  try {
    for (const how of ENDINGS) {
      for (const where of WHERE) {
        const label = `${where}, ${how}`;
        const { monitor, state } = counted({ psiTrigger: true, intervalMs: 3_600_000 });
        try {
          const heard: PressureLevelValue[] = [];
          monitor.on(PressureLevel.High, (level) => heard.push(level));
          monitor.start();
          await sleep(0);
          // A wake-up with a plain reading is taken (the fake trigger works).
          state.next = reading(PressureLevel.Low);
          await wake();
          assert.equal(monitor.level, PressureLevel.Low, label);
          const before = monitor.status;
          state.next = endingReading(where, () => end(monitor, how));
          await wake();
          assert.equal(state.reads, 2, label);
          assert.equal(monitor.status, before, `${label}: the ended run's reading is not kept`);
          assert.equal(monitor.level, PressureLevel.Low, label);
          assert.deepEqual(heard, [], `${label}: not announced`);
          assert.equal(open, how === "restart" ? 1 : 0, `${label}: only the new run's trigger is open`);
          if (how === "restart") {
            state.next = reading(PressureLevel.Critical);
            await wake();
            assert.deepEqual(heard, [PressureLevel.Critical], `${label}: the new run's own wake-up`);
          }
        } finally {
          monitor.stop();
        }
        await sleep(0);
        assert.equal(open, 0, label);
        assert.equal(waits.length, 0, label);
      }
    }
  } finally {
    PsiTrigger.open = realOpen;
  }
});
