// The writer side of bench/shared_array_bench.ts, run in a Worker: appends
// `count` records (or f64 scalars) to the buffer it is given, the way the job
// names, as soon as the main thread raises the start word. It answers "armed"
// when it is ready to start and "done" when the last record is published.
import { SharedDynamicArray } from "../mod.ts";
import { type AppendJob, LENGTH_WORD, Particle, type ParticleRecord, RECORDS_AT } from "./_shared_append_job.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: { data: AppendJob }) => void) | null;
  postMessage(data: unknown): void;
};

scope.onmessage = ({ data: job }) => {
  const write = prepare(job);
  const start = new Int32Array(job.start);
  scope.postMessage("armed");
  while (Atomics.load(start, 0) === 0) Atomics.wait(start, 0, 0, 10);
  write();
  scope.postMessage("done");
};

function prepare(job: AppendJob): () => void {
  const { buffer, count, batch } = job;
  if (job.writer === "hand-written") {
    return job.element === "struct" ? () => handStruct(buffer, count) : () => handF64(buffer, count);
  }
  if (job.writer === "literal-keys") return () => literalKeys(buffer, count);
  if (job.writer === "literal-keys-claim") return () => literalKeysClaim(buffer, count);
  if (job.writer === "claim-publish") return () => claimPublish(buffer, count);
  if (job.element === "struct") {
    const particles = SharedDynamicArray.attach<ParticleRecord>(buffer, Particle);
    if (job.writer === "push") {
      return () => {
        for (let i = 0; i < count; i++) particles.push({ id: i, x: i * 0.5, y: -i });
      };
    }
    if (job.writer === "push-held") {
      return () => {
        using _writing = particles.hold();
        for (let i = 0; i < count; i++) particles.push({ id: i, x: i * 0.5, y: -i });
      };
    }
    return () => {
      for (let i = 0; i < count; i += batch) {
        const end = Math.min(count, i + batch);
        const records: ParticleRecord[] = [];
        for (let k = i; k < end; k++) records.push({ id: k, x: k * 0.5, y: -k });
        particles.pushMany(records);
      }
    };
  }
  const values = SharedDynamicArray.attach<number>(buffer, "f64");
  if (job.writer === "push") {
    return () => {
      for (let i = 0; i < count; i++) values.push(i * 0.5);
    };
  }
  if (job.writer === "push-held") {
    return () => {
      using _writing = values.hold();
      for (let i = 0; i < count; i++) values.push(i * 0.5);
    };
  }
  return () => {
    for (let i = 0; i < count; i += batch) {
      const end = Math.min(count, i + batch);
      const batchValues: number[] = [];
      for (let k = i; k < end; k++) batchValues.push(k * 0.5);
      values.pushMany(batchValues);
    }
  };
}

// The baselines: what a competent program writes by hand for one writer. A
// growable SharedArrayBuffer doubled in place when full, length-tracking views
// made once, each record's fields stored, then its length published with one
// Atomics.store (readers Atomics.load it, then read the records below it).
function handStruct(buffer: SharedArrayBuffer, count: number): void {
  const words = new Int32Array(buffer, 0, 4);
  const ids = new Uint32Array(buffer, RECORDS_AT), floats = new Float32Array(buffer, RECORDS_AT);
  let capacity = (buffer.byteLength - RECORDS_AT) / 12;
  for (let i = 0; i < count; i++) {
    if (i === capacity) {
      buffer.grow(Math.min(buffer.maxByteLength, RECORDS_AT + 2 * capacity * 12));
      capacity = (buffer.byteLength - RECORDS_AT) / 12;
    }
    const at = i * 3;
    ids[at] = i;
    floats[at + 1] = i * 0.5;
    floats[at + 2] = -i;
    Atomics.store(words, LENGTH_WORD, i + 1);
  }
}

// The least a push of a record does (the scorecard's ceiling in Bun): handStruct with the literal push would
// take, its keys checked as push checks them (an unknown or inherited enumerable key is refused), its fields
// stored with no type or range check, no lock and no header check.
function literalKeys(buffer: SharedArrayBuffer, count: number): void {
  const words = new Int32Array(buffer, 0, 4);
  const ids = new Uint32Array(buffer, RECORDS_AT), floats = new Float32Array(buffer, RECORDS_AT);
  let capacity = (buffer.byteLength - RECORDS_AT) / 12;
  for (let i = 0; i < count; i++) {
    const record: ParticleRecord = { id: i, x: i * 0.5, y: -i };
    for (const key in record) {
      if (key !== "id" && key !== "x" && key !== "y") throw new TypeError(`'${key}' is not a field`);
    }
    if (i === capacity) {
      buffer.grow(Math.min(buffer.maxByteLength, RECORDS_AT + 2 * capacity * 12));
      capacity = (buffer.byteLength - RECORDS_AT) / 12;
    }
    const at = i * 3;
    ids[at] = record.id;
    floats[at + 1] = record.x;
    floats[at + 2] = record.y;
    Atomics.store(words, LENGTH_WORD, i + 1);
  }
}

// The least a push of a record any thread may call does (the scorecard's ceiling for plain push of records):
// literalKeys's record and key check, then claimPublish's two atomics (the end claimed with one
// compareExchange, the new length published with one store), fields stored with no type or range check.
function literalKeysClaim(buffer: SharedArrayBuffer, count: number): void {
  const words = new Int32Array(buffer, 0, 4);
  const ids = new Uint32Array(buffer, RECORDS_AT), floats = new Float32Array(buffer, RECORDS_AT);
  let capacity = (buffer.byteLength - RECORDS_AT) / 12;
  for (let i = 0; i < count; i++) {
    const record: ParticleRecord = { id: i, x: i * 0.5, y: -i };
    for (const key in record) {
      if (key !== "id" && key !== "x" && key !== "y") throw new TypeError(`'${key}' is not a field`);
    }
    let state = words[LENGTH_WORD];
    while ((state & 1) !== 0 || Atomics.compareExchange(words, LENGTH_WORD, state, state | 1) !== state) {
      state = Atomics.load(words, LENGTH_WORD);
    }
    const at = state >> 1;
    if (at === capacity) {
      buffer.grow(Math.min(buffer.maxByteLength, RECORDS_AT + 2 * capacity * 12));
      capacity = (buffer.byteLength - RECORDS_AT) / 12;
    }
    const slot = at * 3;
    ids[slot] = record.id;
    floats[slot + 1] = record.x;
    floats[slot + 2] = record.y;
    Atomics.store(words, LENGTH_WORD, (at + 1) * 2);
  }
}

// The least a push any thread may call does (f64; the scorecard's ceiling for plain push): handF64 made safe
// for several writers. The length word holds length * 2 plus a claim bit: a writer claims the end with one
// compareExchange (again while another holds it), stores its value, and publishes the new length, freeing the
// claim, with one store. SharedDynamicArray.push does the same two atomics on its state word, plus its checks.
function claimPublish(buffer: SharedArrayBuffer, count: number): void {
  const words = new Int32Array(buffer, 0, 4);
  const values = new Float64Array(buffer, RECORDS_AT);
  let capacity = (buffer.byteLength - RECORDS_AT) / 8;
  for (let i = 0; i < count; i++) {
    let state = words[LENGTH_WORD];
    while ((state & 1) !== 0 || Atomics.compareExchange(words, LENGTH_WORD, state, state | 1) !== state) {
      state = Atomics.load(words, LENGTH_WORD);
    }
    const at = state >> 1;
    if (at === capacity) {
      buffer.grow(Math.min(buffer.maxByteLength, RECORDS_AT + 2 * capacity * 8));
      capacity = (buffer.byteLength - RECORDS_AT) / 8;
    }
    values[at] = i * 0.5;
    Atomics.store(words, LENGTH_WORD, (at + 1) * 2);
  }
}

function handF64(buffer: SharedArrayBuffer, count: number): void {
  const words = new Int32Array(buffer, 0, 4);
  const values = new Float64Array(buffer, RECORDS_AT);
  let capacity = (buffer.byteLength - RECORDS_AT) / 8;
  for (let i = 0; i < count; i++) {
    if (i === capacity) {
      buffer.grow(Math.min(buffer.maxByteLength, RECORDS_AT + 2 * capacity * 8));
      capacity = (buffer.byteLength - RECORDS_AT) / 8;
    }
    values[i] = i * 0.5;
    Atomics.store(words, LENGTH_WORD, i + 1);
  }
}
