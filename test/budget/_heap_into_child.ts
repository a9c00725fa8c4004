// Run in a child process by resource_heap_hostile_test.ts (a regression here is a crash): a finished
// resource whose `bytes` buffer was transferred away is refused as `into` with "corruption", and nothing
// changes. Prints `label: outcome` lines, then DONE.
import { AllocationError } from "../../src/base/errors.ts";
import { ResourceHeap } from "../../src/budget/resource_heap.ts";

const say = (label: string, fn: () => unknown) => {
  let out: string;
  try {
    out = `ok ${fn()}`;
  } catch (e) {
    out = e instanceof AllocationError ? e.category : (e as Error).constructor.name;
  }
  console.log(`${label}: ${out}`);
};

const heap = new ResourceHeap({ capacity: 1 << 16 });
const first = heap.allocate(4096, { aliasable: true, name: "first" })!;
first.bytes.fill(0xab);
const stolen = first.bytes.buffer.transfer(); // another buffer now reaches first's memory
const before = JSON.stringify(heap.stats());
say("allocate into a stolen resource", () => heap.allocate(64, { name: "later", into: first }));
say("stats unchanged", () => JSON.stringify(heap.stats()) === before);
say("first still live", () => first.state);
say("stolen buffer intact", () => new Uint8Array(stolen).every((b) => b === 0xab));
say("a fresh resource elsewhere", () => {
  const other = heap.allocate(64)!;
  const apart = other.offset >= first.offset + 4096 || other.offset + 64 <= first.offset;
  other.release();
  return apart;
});
heap.dispose();
console.log("DONE");
