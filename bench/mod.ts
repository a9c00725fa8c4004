// `deno task bench` (or `bun run bench/mod.ts`): every benchmark in one run,
// then the ratio tables README quotes, then the W13 and W14 reports. Pass a
// regular expression to run only the matching benchmarks (and no reports).
import process from "node:process";
import { nativeReady } from "../mod.ts";
import { runAndReport } from "./_ratios.ts";
import { fragmentationReport, latencyReport } from "./latency_report.ts";
import "./system_allocator_bench.ts";
import "./simd_bench.ts";
import "./arena_bench.ts";
import "./pool_stack_bench.ts";
import "./churn_bench.ts";
import "./debug_bench.ts";
import "./arrays_bench.ts";

// The native kernels, not the TypeScript ones a cold cache would run while libmemkit builds.
await nativeReady();
const pattern = process.argv[2];
await runAndReport(pattern ? new RegExp(pattern) : undefined);
if (!pattern || /W13|W14/.test(pattern)) {
  fragmentationReport();
  latencyReport();
}
