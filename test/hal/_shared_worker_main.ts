// `_shared_worker_main.ts <how>` (shared_exit_test.ts runs it): starts a Worker whose MemoryInterface takes a
// shared allocation with a made-up name, prints the name and whether libmemkit was loaded then (a first JSON line), then ends one of these ways:
// - the Worker ends itself: "exit" (process.exit() in it), "close" (self.close()), "dispose" (its interface
//   disposed, then terminate()); then waits up to 10 s for the name to go where the Worker's own exit hook
//   unlinks it (`poll` in the second line says so), prints whether it is left, and exits with 0;
// - the Worker never ends itself: "terminate" (worker.terminate(), then the program returns), "running"
//   (process.exit(0) while the Worker runs) or "throw" (an uncaught error while the Worker runs: status 1);
//   "late": the Worker allocates without waiting for libmemkit (run with an empty MEMKIT_CACHE_DIR, it is
//   still being built then), waits for it afterwards, and is terminated.
// The test looks for the name again after this process has ended.
import { existsSync } from "node:fs";
import process from "node:process";

const how = process.argv.at(-1);
const worker = new Worker(new URL("./_shared_worker_body.ts", import.meta.url).href, { type: "module" });
const next = () => new Promise<unknown>((resolve) => (worker.onmessage = (event) => resolve(event.data)));
worker.postMessage(how === "late" ? "start-late" : "start");
const { name, loaded } = await next() as { name: string; loaded: boolean };
console.log(JSON.stringify({ name, loaded }));
if (how === "terminate") {
  worker.terminate();
} else if (how === "late") {
  worker.postMessage("ready");
  await next();
  worker.terminate();
} else if (how === "running") {
  process.exit(0);
} else if (how === "throw") {
  throw new Error("the main thread fails while the Worker runs");
} else {
  if (how === "dispose") {
    worker.postMessage("dispose");
    await next();
    worker.terminate();
  } else {
    worker.postMessage(how);
  }
  // Deno runs no exit hook in a Worker that calls self.close(): nothing unlinks the name before the process ends.
  const poll = how !== "close" || typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  // The Worker ends on its own thread: poll for the name rather than assume when its exit hook has run.
  for (let i = 0; poll && i < 200 && existsSync(`/dev/shm/${name}`); i++) await new Promise((r) => setTimeout(r, 50));
  console.log(JSON.stringify({ poll, left: existsSync(`/dev/shm/${name}`) }));
  process.exit(0);
}
