// SharedDynamicArray's writers against the append a program writes by hand
// for one writer: a Worker appends 1M records (a 12-byte struct, and f64
// scalars) while the main thread polls the published length and consumes each
// new record. mitata times one thread's calls, not work split across threads,
// so this file is its own harness, run by bench/mod.ts after mitata: a round
// starts a case's Worker on a start word and stops the clock when the main
// thread has consumed the last record; every case runs once per round, in one
// process, each with a Worker of its own (the first round warms the JIT and
// is not counted). A case's rate is its median round; its ratio, the median of
// its same-round ratios to the baseline. bench/mod.ts adds them, under
// "title :: case" names, to mitata's means for the scorecard.
import process from "node:process";
import { SharedDynamicArray } from "../mod.ts";
import { type AppendJob, LENGTH_WORD, Particle, RECORDS_AT } from "./_shared_append_job.ts";

const N = 1_000_000;

/** The comparisons' titles, by element type. */
export const SHARED_APPEND = {
  struct: "Worker appends 1M {id: u32, x: f32, y: f32} records, main thread reads",
  f64: "Worker appends 1M f64, main thread reads",
} as const;
/** The baseline case of both comparisons. */
export const HAND_WRITTEN_APPEND = "hand-written SharedArrayBuffer + Atomics append";

const CASES: readonly { name: string; writer: AppendJob["writer"]; batch: number; only?: AppendJob["element"] }[] = [
  { name: HAND_WRITTEN_APPEND, writer: "hand-written", batch: 0 },
  // The least any push of a record does (records only; the scorecard's ceiling for push): the record literal
  // the program builds for push (the for...in over it keeps JavaScriptCore from removing it, as passing it to
  // push does), its keys checked as push must (an unknown or inherited enumerable key refused; for...in is the
  // cheapest such check measured in Bun, Object.keys with the prototype's checks costs more), its fields stored
  // with no other check, the length published with one Atomics.store: no type or range check, no lock, no
  // header check.
  {
    name: "hand-written, the same record literals, their keys checked, nothing else",
    writer: "literal-keys",
    batch: 0,
    only: "struct",
  },
  // The least a push of a record any thread may call does (records; the scorecard's ceiling for plain push):
  // both of the above, the literal's keys checked, then one compareExchange to claim and one store to publish.
  {
    name: "hand-written for several writers, the same record literals, their keys checked",
    writer: "literal-keys-claim",
    batch: 0,
    only: "struct",
  },
  // The least a push any thread may call does (f64; the scorecard's ceiling for plain push): the hand-written
  // append made safe for several writers, one compareExchange to claim the end and one store to publish.
  {
    name: "hand-written for several writers: one compareExchange and one store a value",
    writer: "claim-publish",
    batch: 0,
    only: "f64",
  },
  { name: "SharedDynamicArray.push", writer: "push", batch: 0 },
  { name: "SharedDynamicArray.push inside hold()", writer: "push-held", batch: 0 },
  { name: "SharedDynamicArray.pushMany, batches of 256", writer: "pushMany", batch: 256 },
  { name: "SharedDynamicArray.pushMany, all at once", writer: "pushMany", batch: N },
];

/** Every case's "title :: case" name. */
export function sharedAppendNames(): string[] {
  return (Object.keys(SHARED_APPEND) as AppendJob["element"][]).flatMap((element) =>
    CASES.filter(({ only }) => only === undefined || only === element).map(({ name }) =>
      `${SHARED_APPEND[element]} :: ${name}`
    )
  );
}

interface Runner {
  title: string;
  name: string;
  element: AppendJob["element"];
  job: Omit<AppendJob, "buffer" | "start">;
  worker: Worker;
  rounds: number[];
}

/** What sharedAppendTimes() measured: by "title :: case", the median ns per record, and the median ratio to the baseline. */
export interface SharedAppendResult {
  ns: Map<string, number>;
  /** The case's rate over the baseline's, round by round (each round runs every case once), median. */
  ratio: Map<string, number>;
}

/**
 * Runs the cases whose "title :: case" name `filter` matches, `rounds` timed
 * rounds each (after one warm-up round), in an order that rotates from round
 * to round. Each case's time is its median round; its ratio to the baseline
 * is the median of the ratios within a round, which the load of other
 * programs on the machine, drifting between rounds, moves less.
 */
export async function sharedAppendTimes(filter: RegExp = /./, rounds = 7): Promise<SharedAppendResult> {
  const url = new URL("./_shared_append_worker.ts", import.meta.url);
  const runners: Runner[] = [];
  for (const element of ["struct", "f64"] as const) {
    for (const { name, writer, batch, only } of CASES) {
      if (only !== undefined && only !== element) continue;
      const title = SHARED_APPEND[element];
      // The baseline runs whenever a case of its comparison does: the ratios need it.
      if (!CASES.some((c) => filter.test(`${title} :: ${c.name}`))) continue;
      if (writer !== "hand-written" && !filter.test(`${title} :: ${name}`)) continue;
      const worker = new Worker(url, { type: "module" });
      runners.push({ title, name, element, job: { element, writer, batch, count: N }, worker, rounds: [] });
    }
  }
  try {
    for (let round = 0; round <= rounds; round++) {
      for (let k = 0; k < runners.length; k++) {
        const runner = runners[(k + round) % runners.length];
        const ns = await once(runner);
        if (round > 0) runner.rounds.push(ns);
      }
    }
  } finally {
    for (const { worker } of runners) worker.terminate();
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1];
  const result: SharedAppendResult = { ns: new Map(), ratio: new Map() };
  for (const { title, name, rounds: ns } of runners) {
    const base = runners.find((r) => r.title === title && r.name === HAND_WRITTEN_APPEND)!;
    result.ratio.set(`${title} :: ${name}`, median(ns.map((t, i) => base.rounds[i] / t)));
    result.ns.set(`${title} :: ${name}`, median([...ns]));
  }
  return result;
}

// One round: a fresh buffer, the Worker armed, then the clock runs from the
// start word to the main thread's read of the last record. Returns ns per record.
async function once({ element, job, worker }: Runner): Promise<number> {
  const stride = element === "struct" ? 12 : 8;
  let buffer: SharedArrayBuffer, length: () => number;
  if (job.writer !== "push" && job.writer !== "push-held" && job.writer !== "pushMany") {
    // As many records as SharedDynamicArray's default capacity (16) at first, and the same most.
    buffer = new SharedArrayBuffer(RECORDS_AT + 16 * stride, { maxByteLength: RECORDS_AT + N * stride });
    const words = new Int32Array(buffer, 0, 4);
    length = job.writer === "claim-publish" || job.writer === "literal-keys-claim"
      ? () => Atomics.load(words, LENGTH_WORD) >> 1 // length * 2 + the claim bit
      : () => Atomics.load(words, LENGTH_WORD);
  } else {
    const shared = element === "struct"
      ? new SharedDynamicArray(Particle, { maxCapacity: N })
      : new SharedDynamicArray("f64", { maxCapacity: N });
    buffer = shared.buffer;
    length = () => shared.length;
  }
  const start = new SharedArrayBuffer(4);
  const answers = messages(worker);
  worker.postMessage({ ...job, buffer, start } satisfies AppendJob);
  if ((await answers.next()) !== "armed") throw new Error("the writer did not arm");
  const flag = new Int32Array(start);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  const began = performance.now();
  const sum = element === "struct" ? readIds(buffer, length) : readValues(buffer, length);
  const ns = (performance.now() - began) * 1e6 / N;
  if ((await answers.next()) !== "done") throw new Error("the writer did not finish");
  const expected = element === "struct" ? N * (N - 1) / 2 : N * (N - 1) / 4;
  if (sum !== expected) throw new Error(`read back ${sum}, expected ${expected}: a record was lost or torn`);
  return ns;
}

// The reader, the same for every case: poll the published length, then read
// each new record's first field through a view over the buffer (the layouts
// are the same), so what differs between cases is the writer.
function readIds(buffer: SharedArrayBuffer, length: () => number): number {
  const ids = new Uint32Array(buffer, RECORDS_AT);
  let seen = 0, sum = 0;
  while (seen < N) {
    for (const published = length(); seen < published; seen++) sum += ids[seen * 3];
  }
  return sum;
}

function readValues(buffer: SharedArrayBuffer, length: () => number): number {
  const values = new Float64Array(buffer, RECORDS_AT);
  let seen = 0, sum = 0;
  while (seen < N) {
    for (const published = length(); seen < published; seen++) sum += values[seen];
  }
  return sum;
}

// The Worker's answers, one at a time.
function messages(worker: Worker): { next(): Promise<unknown> } {
  const queue: unknown[] = [];
  let waiting: ((value: unknown) => void) | null = null;
  worker.onmessage = (event) => {
    if (waiting !== null) {
      const resolve = waiting;
      waiting = null;
      resolve(event.data);
    } else queue.push(event.data);
  };
  worker.onerror = (event) => {
    throw new Error(`the writer failed: ${event.message}`);
  };
  return {
    next: () => queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => (waiting = resolve)),
  };
}

/** The table of a sharedAppendTimes() result: records per second, and each case against the baseline. */
export function sharedAppendTable({ ns, ratio }: SharedAppendResult): string {
  const lines = [
    "\ncross-thread append: a Worker writes, the main thread reads (median of rounds; ratio: median of same-round ratios)\n",
    "| comparison | case | M records/s | × baseline's rate |",
    "|---|---|---|---|",
  ];
  for (const title of Object.values(SHARED_APPEND)) {
    for (const { name } of CASES) {
      const key = `${title} :: ${name}`, time = ns.get(key);
      if (time === undefined) continue;
      const label = name === HAND_WRITTEN_APPEND ? `${name} (baseline)` : name;
      lines.push(`| ${title} | ${label} | ${(1e3 / time).toFixed(2)} | ${ratio.get(key)!.toFixed(2)} |`);
    }
  }
  return lines.join("\n");
}

// Run alone: `npx deno run -A bench/shared_array_bench.ts [regex] [rounds]`, `npx bun run bench/shared_array_bench.ts`.
if (import.meta.main) {
  const [pattern, rounds] = process.argv.slice(2);
  console.log(
    sharedAppendTable(
      await sharedAppendTimes(pattern ? new RegExp(pattern) : undefined, rounds ? Number(rounds) : undefined),
    ),
  );
}
