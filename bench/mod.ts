// `deno task bench` (or `bun run bench/mod.ts`): the scorecard of the headline
// comparisons (under a minute). `--full`: every benchmark in one run, then the
// ratio tables bench/README.md quotes, then the W13 and W14 reports. A regular
// expression runs only the matching benchmarks, with their tables. Comparisons
// registered with `freshProcess` (see _ratios.ts) run each in a fresh process
// of their own, their means gathered back here.
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { nativeInfo, nativeReady, requestGpu } from "../mod.ts";
import { runAndReport, runQuiet } from "./_ratios.ts";
import { scorecard, scorecardFilter } from "./scorecard.ts";
import { fragmentationReport, latencyReport } from "./latency_report.ts";
import { HAND_WRITTEN_APPEND, sharedAppendNames, sharedAppendTable, sharedAppendTimes } from "./shared_array_bench.ts";
import "./system_allocator_bench.ts";
import "./ffi_signatures_bench.ts";
import "./simd_bench.ts";
import "./arena_bench.ts";
import "./pool_stack_bench.ts";
import "./churn_bench.ts";
import "./debug_bench.ts";
import "./arrays_bench.ts";
import "./struct_bench.ts";
import "./hal_bench.ts";
import "./profiler_bench.ts";
// The GPU benchmarks need a WebGPU adapter (lavapipe in CI); without one they are left out, saying why.
const noGpu = await requestGpu().then((gpu) => gpu.dispose(), (error) => String(error?.message ?? error));
if (noGpu === undefined) await import("./gpu_bench.ts");
else console.log(`GPU benchmarks left out: ${noGpu}`);

// The native kernels, not the TypeScript ones a cold cache would run while libmemkit builds.
await nativeReady();
const args = process.argv.slice(2);
const full = args.includes("--full");
const pattern = args.find((a) => !a.startsWith("--"));
if (!full && pattern === undefined) {
  // The main job: the headline comparisons only, as a scorecard.
  const started = performance.now();
  const avg = await runQuiet(scorecardFilter());
  await addSharedAppend(avg, scorecardFilter());
  console.log(scorecard(avg, (performance.now() - started) / 1000));
} else {
  let tables = await runAndReport(pattern ? new RegExp(pattern) : undefined);
  // The cross-thread appends, timed by their own harness (see shared_array_bench.ts).
  const filter = pattern ? new RegExp(pattern) : /./;
  if (sharedAppendNames().some((name) => filter.test(name))) {
    const table = sharedAppendTable(await sharedAppendTimes(filter));
    console.log(table);
    tables += `\n${table}`;
  }
  if (!pattern || /W13|W14/.test(pattern)) {
    fragmentationReport();
    latencyReport();
  }
  if (full && pattern === undefined) recordFullRun(tables);
}

// The scorecard's cross-thread append headlines, from shared_array_bench.ts's harness: the
// time it gives a case is the baseline's median time over the case's median same-round ratio,
// so that the scorecard's division gives back that ratio (rounds drift with the machine's load).
async function addSharedAppend(avg: Map<string, number>, filter: RegExp): Promise<void> {
  if (!sharedAppendNames().some((name) => filter.test(name))) return;
  const { ns, ratio } = await sharedAppendTimes(filter);
  for (const [name, time] of ns) {
    const base = ns.get(`${name.split(" :: ")[0]} :: ${HAND_WRITTEN_APPEND}`)!;
    avg.set(name, name.endsWith(` :: ${HAND_WRITTEN_APPEND}`) ? time : base / ratio.get(name)!);
  }
}

// Writes a full run's tables into bench/README.md, between the markers of this
// runtime (added at the end the first time), so the figures there are the last run's.
function recordFullRun(tables: string): void {
  const file = fileURLToPath(new URL("./README.md", import.meta.url));
  const runtime = nativeInfo().runtime;
  const start = `<!-- full run on ${runtime}: start -->`, end = `<!-- full run on ${runtime}: end -->`;
  const body = `${start}\n\n${`Written by \`${
    runtime === "deno" ? "npx deno task bench --full" : "npx bun run bench/mod.ts --full"
  }\` on ${new Date().toISOString().slice(0, 10)}.`}\n${tables}\n\n${end}`;
  let text = readFileSync(file, "utf8");
  const at = text.indexOf(start), until = text.indexOf(end);
  text = at >= 0 && until > at
    ? text.slice(0, at) + body + text.slice(until + end.length)
    : `${text.trimEnd()}\n\n## The latest full run on ${runtime}\n\n${body}\n`;
  writeFileSync(file, text);
  console.log(`\nwrote the tables into ${file}`);
}
