// `_pressure_throw_child.ts` (pressure_callbacks_test.ts runs it in a child process of the runtime under
// test): pressure callbacks that throw, on both paths that call them (a callback registered when the level
// is reached already, called soon after in a microtask; and the monitor's dispatch on a rise). Each error must
// go to the console with memkit's prefix while the other callbacks still run and the process lives on; before,
// Deno died at once on the throw and Bun printed it as an uncaught error. Prints one JSON line at the end.
import { MemoryInterface, type MemoryStatus, PressureLevel, PressureMonitor } from "../../mod.ts";

let available = 70; // of 1000 bytes: 7 % available is High
const read = (): MemoryStatus => ({
  totalBytes: 1000,
  availableBytes: available,
  limitBytes: null,
  usedBytes: 1000 - available,
  rssBytes: 0,
  psi: null,
  source: "linux-meminfo",
  events: null,
});
const monitor = new PressureMonitor({ read, hysteresis: 1, intervalMs: 60_000 });
monitor.refresh();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const memory = new MemoryInterface({ pressure: monitor });
const heard: string[] = [];
// Registered while the level is High already: each is called once, soon, in a microtask.
memory.registerPressureCallback(PressureLevel.Low, (level) => heard.push(`low ${level}`));
memory.registerPressureCallback(PressureLevel.Medium, () => {
  throw new Error("callback bug (registered late)");
});
memory.registerPressureCallback(PressureLevel.High, (level) => heard.push(`high ${level}`));
await sleep(20);
heard.push("--");
// Down to None, then a rise to High: the monitor's own dispatch calls them.
available = 900;
for (let i = 0; i < 8 && monitor.level !== PressureLevel.None; i++) monitor.refresh();
const mid = memory.registerPressureCallback(PressureLevel.Medium, () => {
  throw new Error("callback bug (on a rise)");
});
available = 70;
monitor.refresh();
await sleep(20);
memory.unregisterPressureCallback(mid);
memory.dispose();
monitor.stop();
console.log(JSON.stringify({ heard, level: monitor.level }));
