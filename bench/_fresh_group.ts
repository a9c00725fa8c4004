// One comparison in a process of its own, started by _ratios.ts for a
// comparison registered with `freshProcess`:
//   <runtime> run bench/_fresh_group.ts <bench file URL> <title> <filter> --print|--quiet
// It imports only that bench file, registers only that comparison, times the
// cases the filter selects one after another with mitata's measure()
// (printing each one's times with --print), and ends its output with one
// line: MEANS_MARK, then the means.
import process from "node:process";
import { nativeReady } from "../mod.ts";
import { MEANS_MARK, registerOnly, runMeans } from "./_ratios.ts";

const [module, title, filter, mode] = process.argv.slice(2);
if (module === undefined || title === undefined || filter === undefined) {
  throw new TypeError("usage: _fresh_group.ts <bench file URL> <comparison title> <filter> [--print|--quiet]");
}
// The native kernels from the start, as in the whole-suite process (which waits before it runs anything).
await nativeReady();
registerOnly(title);
await import(module);
const avg = await runMeans(new RegExp(filter), mode === "--print");
if (avg.size === 0) throw new Error(`No case of "${title}" in ${module} matches /${filter}/`);
console.log(MEANS_MARK + JSON.stringify([...avg]));
