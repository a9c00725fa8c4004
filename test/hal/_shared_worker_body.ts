// Worker body of _shared_worker_main.ts: once told "start", a MemoryInterface made in this Worker takes a shared
// allocation with a made-up name (libmemkit waited for first, so the name is in its table of names to unlink
// at the process's exit before the main thread can end this Worker; "start-late" does not wait, so the
// library may still be being built) and posts the name and whether libmemkit was loaded then. Then it ends as
// the main thread asks: "exit" (process.exit() in the Worker), "close" (self.close()) or "dispose" (disposes
// the interface and says so); "ready" waits for libmemkit and says so. Other ways to end come from the main
// thread (terminate(), or the process ending while this Worker runs).
import process from "node:process";
import { MemoryInterface, nativeInfo, nativeReady } from "../../mod.ts";

const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: MessageEvent) => void) | null;
};
let memory: MemoryInterface | undefined;
scope.onmessage = async (event) => {
  if (event.data === "start" || event.data === "start-late") {
    if (event.data === "start") await nativeReady();
    memory = new MemoryInterface({ pressure: false });
    const shared = memory.allocate({ size: 4096, type: "shared" });
    shared.bytes[0] = 42;
    scope.postMessage({ name: shared.name, loaded: nativeInfo().library !== null });
  }
  if (event.data === "ready") {
    await nativeReady();
    scope.postMessage("ready");
  }
  if (event.data === "exit") process.exit(0);
  if (event.data === "close") scope.close();
  if (event.data === "dispose") {
    memory!.dispose();
    scope.postMessage("disposed");
  }
};
