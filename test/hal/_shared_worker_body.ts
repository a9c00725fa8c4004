// Worker body of _shared_worker_main.ts: a MemoryInterface made in this Worker takes a shared allocation with a
// made-up name, posts the name, then ends as the main thread asks: "exit" (process.exit() in the Worker),
// "close" (self.close()) or "dispose" (disposes the interface and says so).
import process from "node:process";
import { MemoryInterface } from "../../mod.ts";

const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: MessageEvent) => void) | null;
};
const memory = new MemoryInterface({ pressure: false });
const shared = memory.allocate({ size: 4096, type: "shared" });
shared.bytes[0] = 42;
scope.onmessage = (event) => {
  if (event.data === "exit") process.exit(0);
  if (event.data === "close") scope.close();
  if (event.data === "dispose") {
    memory.dispose();
    scope.postMessage("disposed");
  }
};
scope.postMessage(shared.name);
