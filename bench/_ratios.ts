// Registers side-by-side comparisons with mitata and, after the run, prints
// each comparison as "times the baseline's time" so README can quote ratios.
// A comparison registered with `freshProcess` runs in a process of its own
// (bench/_fresh_group.ts), its means gathered back into this process's tables.
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { getHeapStatistics } from "node:v8";
import { bench, do_not_optimize, group, measure, run, summary } from "mitata";
import { nativeInfo } from "../mod.ts";

interface Comparison {
  title: string;
  baseline: string;
  names: string[];
  /** The bench file that registers it, when it runs in a fresh process. */
  module?: string;
}

const comparisons: Comparison[] = [];
// Bytes each case of a comparison reads plus writes per call, for the GB/s table.
const traffic = new Map<string, number>();
let bandwidthCase: string | null = null;
// Set in a fresh process before it imports the bench file: the one comparison it registers, and its cases.
let onlyTitle: string | null = null;
const onlyCases: { name: string; fn: () => unknown }[] = [];

/**
 * Declares that every case of comparison `title` moves `bytes` (read plus
 * written) per call; with `reference`, that case is the machine's copy
 * bandwidth the others are measured against.
 */
export function bytesMoved(title: string, bytes: number, reference?: string): void {
  traffic.set(title, bytes);
  if (reference !== undefined) bandwidthCase = `${title} :: ${reference}`;
}

/** How one comparison runs. */
export interface CompareOptions {
  /**
   * Runs each case this long (ms) first: mitata's own warm-up is too short for
   * code that climbs several JIT tiers, and the first case to reach it then
   * pays for that climb (measured: 351 ns, then 159 ns for the same function).
   */
  warmupMs?: number;
  /**
   * `import.meta.url` of the bench file registering the comparison: its cases
   * then run side by side in a fresh process of this runtime that imports only
   * that file and registers only this comparison. Shared JavaScript (a
   * library's methods, a loop function) then carries only the type feedback
   * and JIT state this workload gives it, as in a program doing just this
   * work; in one process with every other group it carries theirs too
   * (measured in Deno: @thi.ng/malloc's alloc+free pair 25 ns on its own, 48 ns
   * once another view type has gone through the same methods).
   */
  freshProcess?: string;
}

/**
 * One group: `cases` run side by side; ratios are relative to `baseline`.
 * `options` may be a number: the warm-up in ms.
 */
export function compare(
  title: string,
  baseline: string,
  cases: Record<string, () => unknown>,
  options: number | CompareOptions = {},
): void {
  const { warmupMs = 0, freshProcess }: CompareOptions = typeof options === "number" ? { warmupMs: options } : options;
  if (onlyTitle !== null && title !== onlyTitle) return; // a fresh process runs its one group, nothing else
  const names = Object.keys(cases);
  const fresh = onlyTitle === null && freshProcess !== undefined;
  comparisons.push({
    title,
    baseline,
    names: names.map((n) => `${title} :: ${n}`),
    ...(fresh ? { module: freshProcess } : {}),
  });
  if (fresh) return; // measured in a process of its own by runMeans()
  for (const name of names) {
    for (const end = performance.now() + warmupMs; performance.now() < end;) {
      for (let i = 0; i < 100; i++) cases[name]();
    }
  }
  if (onlyTitle !== null) {
    for (const name of names) onlyCases.push({ name: `${title} :: ${name}`, fn: cases[name] });
    return; // measured by measureOnly()
  }
  group(title, () => {
    summary(() => {
      for (const name of names) {
        const b = bench(`${title} :: ${name}`, cases[name]);
        if (name === baseline) b.baseline(true);
      }
    });
  });
}

/** Makes `compare` register only the comparison titled `title` (and run it in this process). */
export function registerOnly(title: string): void {
  onlyTitle = title;
}

/** The line a fresh process ends its output with: this marker, then its means as JSON. */
export const MEANS_MARK = "@@memkit-bench-means ";

// Runs comparison `c` in a fresh process of this runtime (each case's times
// printed when `print`), and returns the mean time (ns) of each of its cases
// that `filter` selects.
function runFresh(c: Comparison, filter: RegExp, print: boolean): Map<string, number> {
  const script = fileURLToPath(new URL("./_fresh_group.ts", import.meta.url));
  const args = [c.module!, c.title, filter.source, print ? "--print" : "--quiet"];
  const argv = nativeInfo().runtime === "deno"
    ? [
      "run",
      "-A",
      "--v8-flags=--expose-gc", // mitata collects garbage before each case, as in this process
      `--config=${fileURLToPath(new URL("../deno.json", import.meta.url))}`,
      script,
      ...args,
    ]
    : ["run", script, ...args];
  const child = spawnSync(process.execPath, argv, { encoding: "utf8", maxBuffer: 64 << 20, timeout: 15 * 60_000 });
  const lines = (child.stdout ?? "").trimEnd().split("\n");
  const last = lines.at(-1) ?? "";
  if (child.status !== 0 || !last.startsWith(MEANS_MARK)) {
    throw new Error(
      `The fresh process for "${c.title}" failed (status ${child.status}, signal ${child.signal}):\n` +
        `${child.stderr}${child.stdout}`,
    );
  }
  if (print) console.log(lines.slice(0, -1).join("\n"));
  return new Map(JSON.parse(last.slice(MEANS_MARK.length)) as [string, number][]);
}

/**
 * Runs what `filter` selects (printing each case's times when `print`): the
 * comparisons registered here with mitata in this process, then each
 * fresh-process comparison in a process of its own, one after another;
 * returns each case's mean time (ns) by mitata name. In a fresh process
 * (after `registerOnly`), runs that process's one comparison.
 */
export async function runMeans(filter: RegExp, print: boolean): Promise<Map<string, number>> {
  if (onlyTitle !== null) return await measureOnly(filter, print);
  const result = await run({ filter, ...(print ? {} : { format: "quiet" as const }) });
  const avg = meansOf(result.benchmarks);
  for (const c of comparisons) {
    if (c.module === undefined || !c.names.some((n) => filter.test(n))) continue;
    for (const [name, mean] of runFresh(c, filter, print)) avg.set(name, mean);
  }
  return avg;
}

// A fresh process times its comparison's cases with the `measure` call
// mitata's `run()` makes for each case (a collection first, the heap read the
// same way around each sample), without `run()`'s ~4.5 s of timing empty
// functions for its report. Each case first runs for 10 ms (at least twice):
// mitata decides from one first call whether to time batches of calls or
// single ones, and a call over 0.5 ms (cold code, first-touched pages, or a
// collection left due by the case before) makes it time single calls with
// the clock's cost in each (measured: thi.ng's offset-only pair 88 ns instead
// of 5.5 ns, a TLSF 256 B pair 221-250 ns instead of 105-114 ns).
async function measureOnly(filter: RegExp, print: boolean): Promise<Map<string, number>> {
  // In Bun, run() reads the heap through bun:jsc (node:v8's reading slowed some cases several times over).
  const jsc = "Bun" in globalThis
    ? await import(["bun", "jsc"].join(":")) as { memoryUsage(): { current: number } } // hidden from Deno's checker
    : null;
  const heap = jsc !== null ? () => jsc.memoryUsage().current : () => {
    const h = getHeapStatistics();
    return h.used_heap_size + h.malloced_memory;
  };
  const avg = new Map<string, number>();
  for (const { name, fn } of onlyCases) {
    if (!filter.test(name)) continue;
    try {
      for (let calls = 0, end = performance.now() + 10; calls < 2 || performance.now() < end; calls++) fn();
      const stats = await measure(fn, { heap });
      avg.set(name, stats.avg);
      if (print) {
        console.log(
          `${name}: ${format(stats.avg)}/iter, p75 ${format(stats.p75)}, ` +
            `min … max ${format(stats.min)} … ${format(stats.max)} (fresh process)`,
        );
      }
    } catch (error) {
      if (print) console.log(`${name}: failed: ${error}`); // as in run(): a case that throws has no mean
    }
  }
  return avg;
}

export { do_not_optimize };

/** Runs the registered benchmarks `filter` selects without printing, and returns each one's mean time (ns) by name. */
export function runQuiet(filter: RegExp): Promise<Map<string, number>> {
  return runMeans(filter, false);
}

function meansOf(benchmarks: { runs: { name: string; stats?: { avg: number } }[] }[]): Map<string, number> {
  const avg = new Map<string, number>();
  for (const trial of benchmarks) {
    for (const r of trial.runs) if (r.stats) avg.set(r.name, r.stats.avg);
  }
  return avg;
}

/** Runs everything registered, then prints the ratio table (markdown) and returns it. */
export async function runAndReport(filter?: RegExp): Promise<string> {
  const out: string[] = [];
  const print = (line: string) => {
    console.log(line);
    out.push(line);
  };
  const avg = await runMeans(filter ?? /.*/, true);
  const info = nativeInfo();
  print(`\n### Ratios on ${info.runtime} (${info.os}/${info.arch}, kernels: ${info.simd})`);
  print("time relative to the baseline (lower is faster; 0.5 = twice as fast)\n");
  print("| comparison | case | time | × baseline |");
  print("|---|---|---|---|");
  for (const c of comparisons) {
    const base = avg.get(`${c.title} :: ${c.baseline}`);
    if (base === undefined) continue;
    for (const name of c.names) {
      const t = avg.get(name);
      if (t === undefined) continue;
      const label = name.slice(c.title.length + 4);
      print(
        `| ${c.title} | ${label}${label === c.baseline ? " (baseline)" : ""} | ${format(t)} | ${
          (t / base).toFixed(2)
        } |`,
      );
    }
  }
  printThroughput(avg, print);
  return out.join("\n");
}

function printThroughput(avg: Map<string, number>, print: (line: string) => void): void {
  const rows = comparisons.filter((c) => traffic.has(c.title) && c.names.some((n) => avg.has(n)));
  if (rows.length === 0) return;
  const reference = bandwidthCase === null ? undefined : avg.get(bandwidthCase);
  const referenceBytes = bandwidthCase === null ? 0 : traffic.get(bandwidthCase.split(" :: ")[0])!;
  const referenceRate = reference === undefined ? undefined : referenceBytes / reference;
  print("\nthroughput: bytes read plus written per second (1 GB = 1e9 B)\n");
  print("| comparison | case | GB/s | × copy bandwidth |");
  print("|---|---|---|---|");
  for (const c of rows) {
    for (const name of c.names) {
      const t = avg.get(name);
      if (t === undefined) continue;
      const rate = traffic.get(c.title)! / t; // bytes per ns = GB/s
      const share = referenceRate === undefined ? "" : (rate / referenceRate).toFixed(2);
      print(`| ${c.title} | ${name.slice(c.title.length + 4)} | ${rate.toFixed(2)} | ${share} |`);
    }
  }
}

function format(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(1)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}
