// `_shared_worker_main.ts <how>` (shared_exit_test.ts runs it): starts a Worker whose MemoryInterface takes a
// shared allocation with a made-up name, has the Worker end by `how` ("exit", "close", "dispose" then
// terminate()), waits up to 10 s for the name to go, and prints one JSON line: the name and whether it is left.
import { existsSync } from "node:fs";
import process from "node:process";

const how = process.argv.at(-1);
const worker = new Worker(new URL("./_shared_worker_body.ts", import.meta.url).href, { type: "module" });
const next = () => new Promise<unknown>((resolve) => (worker.onmessage = (event) => resolve(event.data)));
const name = await next() as string;
if (how === "dispose") {
  worker.postMessage("dispose");
  await next();
  worker.terminate();
} else {
  worker.postMessage(how);
}
// The Worker ends on its own thread: poll for the name rather than assume when its exit hook has run.
for (let i = 0; i < 200 && existsSync(`/dev/shm/${name}`); i++) await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ name, left: existsSync(`/dev/shm/${name}`) }));
process.exit(0);
