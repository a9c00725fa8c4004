// Registers side-by-side comparisons with mitata and, after the run, prints
// each comparison as "times the baseline's time" so README can quote ratios.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { nativeInfo } from "../mod.ts";

interface Comparison {
  title: string;
  baseline: string;
  names: string[];
}

const comparisons: Comparison[] = [];
// Bytes each case of a comparison reads plus writes per call, for the GB/s table.
const traffic = new Map<string, number>();
let bandwidthCase: string | null = null;

/**
 * Declares that every case of comparison `title` moves `bytes` (read plus
 * written) per call; with `reference`, that case is the machine's copy
 * bandwidth the others are measured against.
 */
export function bytesMoved(title: string, bytes: number, reference?: string): void {
  traffic.set(title, bytes);
  if (reference !== undefined) bandwidthCase = `${title} :: ${reference}`;
}

/**
 * One group: `cases` run side by side; ratios are relative to `baseline`.
 * `warmupMs` runs each case that long first: mitata's own warm-up is too short
 * for code that climbs several JIT tiers, and the first case to reach it then
 * pays for that climb (measured: 351 ns, then 159 ns for the same function).
 */
export function compare(
  title: string,
  baseline: string,
  cases: Record<string, () => unknown>,
  warmupMs = 0,
): void {
  const names = Object.keys(cases);
  for (const name of names) {
    for (const end = performance.now() + warmupMs; performance.now() < end;) {
      for (let i = 0; i < 100; i++) cases[name]();
    }
  }
  comparisons.push({ title, baseline, names: names.map((n) => `${title} :: ${n}`) });
  group(title, () => {
    summary(() => {
      for (const name of names) {
        const b = bench(`${title} :: ${name}`, cases[name]);
        if (name === baseline) b.baseline(true);
      }
    });
  });
}

export { do_not_optimize };

/** Runs the registered benchmarks `filter` selects without printing, and returns each one's mean time (ns) by name. */
export async function runQuiet(filter: RegExp): Promise<Map<string, number>> {
  const result = await run({ filter, format: "quiet" });
  return meansOf(result.benchmarks);
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
  const result = await run({ filter });
  const avg = meansOf(result.benchmarks);
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
  const rows = comparisons.filter((c) => traffic.has(c.title));
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
