// `deno task pressure` (or `bun run bench/pressure.ts`): what memkit sees of
// this machine's memory, once a second until Ctrl-C (`--once` prints one line).
// Not a benchmark: it lives here because the top-level layout is fixed.
import process from "node:process";
import { type MemoryStatus, PressureLevel, PressureMonitor } from "../mod.ts";

const NAMES = Object.fromEntries(Object.entries(PressureLevel).map(([name, value]) => [value, name]));
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

function line(level: number, s: MemoryStatus): string {
  const psi = s.psi ? `psi some ${s.psi.some10.toFixed(2)}% full ${s.psi.full10.toFixed(2)}%` : "psi n/a";
  const limit = s.limitBytes === null ? "no limit" : `limit ${mib(s.limitBytes)}`;
  return `${new Date().toISOString().slice(11, 19)} ${NAMES[level].padEnd(8)} available ${mib(s.availableBytes)} of ` +
    `${mib(s.limitBytes ?? s.totalBytes)} (${limit}), used ${mib(s.usedBytes)}, rss ${mib(s.rssBytes)}, ${psi} ` +
    `[${s.source}]`;
}

const monitor = new PressureMonitor({ intervalMs: 1000 });
console.log(line(monitor.level, monitor.status));
if (!process.argv.includes("--once")) {
  // The monitor's own timer never keeps a process alive; this one does, on purpose.
  setInterval(() => console.log(line(monitor.refresh(), monitor.status)), 1000);
}
