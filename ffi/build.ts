// `deno task build` (or `bun run ffi/build.ts`): compiles libmemkit into the
// cache now instead of on first use, and prints where it went and which SIMD
// level this CPU gets. Exits non-zero when it cannot be built.
import process from "node:process";
import { native, SIMD_LEVELS } from "./native.ts";
import { loadLibmemkit } from "./loader.ts";
import { createBunAdapter } from "./bun.ts";
import { createDenoAdapter } from "./deno.ts";

const adapter = native.runtime === "deno" ? createDenoAdapter() : createBunAdapter();
const result = await loadLibmemkit(adapter, native.platform, native.arch, { rebuild: true });
if (result.library === null) {
  console.error(result.error);
  process.exit(1);
}
console.log(`built ${result.path}`);
console.log(`SIMD level: ${SIMD_LEVELS[result.library.mk_simd_level()]}`);
