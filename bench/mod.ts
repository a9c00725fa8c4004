// `deno task bench` (or `bun run bench/mod.ts`): every benchmark in one run,
// then the ratio tables README quotes. Pass a regular expression to filter.
import process from "node:process";
import { runAndReport } from "./_ratios.ts";
import "./system_allocator_bench.ts";
import "./simd_bench.ts";
import "./arena_bench.ts";
import "./pool_stack_bench.ts";

const pattern = process.argv[2];
await runAndReport(pattern ? new RegExp(pattern) : undefined);
