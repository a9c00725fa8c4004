// The main job's answer in ten seconds: each headline comparison as "N× faster
// (or slower) than <baseline>", its target and a verdict, from one quiet run of
// just those benchmarks on this runtime. `--full` runs everything instead.
import { nativeInfo } from "../mod.ts";

/** One headline: memkit's case against the baseline a user would otherwise use, in one comparison. */
interface Headline {
  what: string;
  comparison: string;
  memkit: string;
  baseline: string;
  /**
   * The speed-up the target asks for (1 = at least as fast; below 1 a bound on
   * the slow-down: 1 / 1.5 = "at most 1.5× slower").
   */
  target: number;
  /**
   * A case of the same comparison that does strictly less than memkit's must
   * (checks nothing, or builds no record): when it misses the target too, no
   * implementation of memkit's case could meet it in this run, and the verdict
   * says "out of reach" with that case's figure instead of "MISSED".
   */
  ceiling?: { case: string; does: string };
}

const VIEW_64 = "W1 64 B pair returning a view";
const CHURN = "W2 churn, 1,000 live blocks of 16–1,024 B (100 free+alloc steps)";

export const HEADLINES: readonly Headline[] = [
  {
    what: "Arena array(Float64Array, 1e6) + free",
    comparison: "Float64Array(1,000,000)",
    memkit: "Arena array+free (rollback)",
    baseline: "new Float64Array(n)",
    target: 5000,
  },
  {
    what: "100 temporaries of 10,000 doubles in an Arena scope",
    comparison: "100 × Float64Array(10,000) temporaries",
    memkit: "Arena scope, safety: true",
    baseline: "new Float64Array(n)",
    target: 50,
  },
  // Safety's cost per scope must not follow the arena's capacity (issue 14 item 9: ~20 µs at 1 MiB in Bun).
  // The target is an absolute bound, ~2 µs, as a ratio: the same scope with safety: false costs 0.7–0.9 µs
  // in both runtimes here, so "at most 2.5× slower" than it is about 2 µs.
  ...["64 KiB", "1 MiB", "64 MiB"].map((capacity) => ({
    what: `Arena scope (README example), ${capacity} arena, safety on`,
    comparison: "README scope example (Float64Array(1,000), a clone, a fill)",
    memkit: `Arena scope, capacity ${capacity}`,
    baseline: "Arena scope, capacity 1 MiB, safety: false",
    target: 1 / 2.5,
  })),
  {
    what: "PoolAllocator 64 B alloc+free",
    comparison: VIEW_64,
    memkit: "PoolAllocator alloc+free",
    baseline: "SystemAllocator alloc+free",
    target: 5,
  },
  {
    what: "FreeListAllocator (TLSF) 64 B alloc+free",
    comparison: VIEW_64,
    memkit: "FreeListAllocator (TLSF) alloc+free",
    baseline: "SystemAllocator alloc+free",
    target: 5,
  },
  {
    what: "TLSF under churn (1,000 live blocks)",
    comparison: CHURN,
    memkit: "FreeListAllocator (TLSF)",
    baseline: "@thi.ng/malloc mallocAs/free",
    target: 10,
  },
  {
    what: "SIMDArray.dot, 4K f32x3 vectors",
    comparison: "f32x3 dot, 4K vectors",
    memkit: "SIMDArray.dot",
    baseline: "plain JS loop",
    target: 4,
  },
  {
    what: "SIMDArray.dot, 1M f32x3 vectors",
    comparison: "f32x3 dot, 1M vectors",
    memkit: "SIMDArray.dot",
    baseline: "plain JS loop",
    target: 1.5,
  },
  {
    what: "DynamicArray.push, 1M Vertex records",
    comparison: "push 1M Vertex records",
    memkit: "DynamicArray(Vertex).push",
    baseline: "hand-written Float32Array doubling buffer",
    target: 1,
  },
  // A push takes a record: the program builds `{ position: [...], color: [...] }` for it, as for the array of
  // objects. Where the runtime does not remove those literals (JavaScriptCore), building them bounds the ratio
  // against the objects and against scalar stores, whatever push does with them.
  {
    what: "DynamicArray.push, 1M Vertex records",
    comparison: "push 1M Vertex records",
    memkit: "DynamicArray(Vertex).push",
    baseline: "array of objects",
    target: 3,
    ceiling: {
      case: "hand-written Float32Array doubling buffer, scalar stores",
      does: "the same bytes with no record built or checked",
    },
  },
  {
    what: "DynamicArray.push, 1M Vertex records",
    comparison: "push 1M Vertex records",
    memkit: "DynamicArray(Vertex).push",
    baseline: "hand-written Float32Array doubling buffer, scalar stores",
    target: 1,
    ceiling: {
      case: "hand-written Float32Array doubling buffer",
      does: "the same record literals, stored with no checks",
    },
  },
  // A Worker appends while the main thread reads (issue 14 item 11): bench/shared_array_bench.ts times these
  // with its own harness (mitata times one thread), and bench/mod.ts adds its figures to mitata's.
  // A push of a record takes the literal the program builds, and must refuse unknown keys: where the runtime
  // does not remove the literal and a for...in costs a native call (JavaScriptCore), that alone bounds push
  // against stores of scalars, whatever else it does or skips. A push any thread may call must also claim the
  // end and publish the length (two atomics): its ceiling does both and no other check; inside hold() one
  // thread writes, and the ceiling is the literals' keys checked with no lock.
  ...[
    ["{id, x, y} records", "Worker appends 1M {id: u32, x: f32, y: f32} records, main thread reads"],
    ["f64 values", "Worker appends 1M f64, main thread reads"],
  ].flatMap(([element, comparison]) => {
    const ceiling = element === "f64 values"
      ? {
        ceiling: {
          case: "hand-written for several writers: one compareExchange and one store a value",
          does: "the two atomics a push any thread may call needs, no checks",
        },
      }
      : {
        ceiling: {
          case: "hand-written for several writers, the same record literals, their keys checked",
          does: "the literals' keys checked as push must, then one compareExchange and one store, no other check",
        },
      };
    // Inside hold() one thread writes: the several-writers protocol is no floor for it.
    const heldCeiling = element === "f64 values" ? {} : {
      ceiling: {
        case: "hand-written, the same record literals, their keys checked, nothing else",
        does: "the literals' keys checked as push must, stored unchecked, no lock",
      },
    };
    return [
      {
        what: `SharedDynamicArray.push from a Worker, ${element}`,
        comparison,
        memkit: "SharedDynamicArray.push",
        baseline: "hand-written SharedArrayBuffer + Atomics append",
        target: 1 / 2,
        ...ceiling,
      },
      {
        what: `SharedDynamicArray.push inside hold() from a Worker, ${element}`,
        comparison,
        memkit: "SharedDynamicArray.push inside hold()",
        baseline: "hand-written SharedArrayBuffer + Atomics append",
        target: 1 / 2,
        ...heldCeiling,
      },
      {
        what: `SharedDynamicArray.pushMany (256) from a Worker, ${element}`,
        comparison,
        memkit: "SharedDynamicArray.pushMany, batches of 256",
        baseline: "hand-written SharedArrayBuffer + Atomics append",
        target: 1,
      },
    ];
  }),
  ...ffiHeadlines(),
  ...debugHeadlines(),
  ...halHeadlines(),
];

// Issue 15: what the memory interface adds (its record, per-type counters and address index) to the allocator
// that serves the type, for a 64-byte allocate+deallocate (bench/hal_bench.ts).
function halHeadlines(): Headline[] {
  const rows: [string, string, string][] = [
    ["pool", "HAL 64 B pool allocate+deallocate: the interface vs its class pool", "PoolAllocator alloc+free"],
    ["temporary", "HAL 64 B temporary allocate+deallocate: the interface vs its arena", "Arena alloc+free"],
  ];
  // Both forms: allocateTyped(64, type), and allocate({ size: 64, type }), which also reads and checks a request.
  const forms = [["allocateTyped", "allocateTyped+deallocate"], ["allocate(request)", "allocate(request)+deallocate"]];
  return rows.flatMap(([type, comparison, baseline]) =>
    forms.map(([form, memkitCase]) => ({
      what: `MemoryInterface 64 B ${type} ${form}+deallocate`,
      comparison,
      memkit: `MemoryInterface ${memkitCase}`,
      baseline,
      target: 1 / 1.5,
      ceiling: {
        case: "floor: a record and the type's counters",
        does: "a record a second deallocate is refused by, and the counters stats report; no checks, index or frames",
      },
    }))
  );
}

// Issue 14 item 10: what checking costs against the same backing untracked (bench/debug_bench.ts, W15).
function debugHeadlines(): Headline[] {
  const pool = "W15 ladder: 64 B alloc+free on a PoolAllocator";
  const churn = "W15 ladder: W2 churn on a FreeListAllocator (100 steps)";
  const rows: [string, string, string, number][] = [
    ["DebugAllocator, default options, 64 B pool pairs", pool, "+ safety checks (the default)", 10],
    ["DebugAllocator, default options, W2 churn", churn, "+ safety checks (the default)", 3],
    ["DebugAllocator, counters only, 64 B pool pairs", pool, "counters only", 1.5],
  ];
  return rows.map(([what, comparison, memkit, slower]) => ({
    what,
    comparison,
    memkit,
    baseline: "untracked",
    target: 1 / slower,
    ...(memkit === "counters only"
      ? {
        ceiling: {
          case: "floor: a record of every block by address",
          does: "only the record of each block counters only must keep, no checks",
        },
      }
      : {}),
  }));
}

// Issue: every hot native symbol's call from memkit within 1.5× of the cheapest correct declaration called directly.
function ffiHeadlines(): Headline[] {
  const rows: [string, string, string][] = [
    ["FFI call malloc(64)+free", "FFI per call: malloc(64)+free", "memkit (native.heap)"],
    ["FFI call madvise", "FFI per call: madvise(page, MADV_NORMAL)", "memkit (native.heap)"],
    ["FFI call f32 dot kernel, checks included", "FFI per call: f32 dot of 64 floats", "memkit (checked kernel)"],
    ["FFI call compare kernel, checks included", "FFI per call: compare 256 bytes", "memkit (checked kernel)"],
    [
      "FFI call magnitudes kernel, checks included",
      "FFI per call: magnitudes of 16 f32x3",
      "memkit (checked kernel)",
    ],
  ];
  return rows.map(([what, comparison, memkit]) => ({
    what,
    comparison,
    memkit,
    baseline: comparison.includes("malloc") || comparison.includes("madvise")
      ? "cheapest declaration (double), direct"
      : "cheapest declaration (uint32_t count), direct",
    target: 1 / 1.5,
    // A kernel takes arrays: reading their real lengths (safety rule 3) is part of any safe call.
    ...(memkit === "memkit (checked kernel)"
      ? {
        ceiling: {
          case: "cheapest declaration, direct, + each array's real byte length",
          does: "the call after the engine's byteLength getter on each array, nothing else",
        },
      }
      : {}),
  }));
}

/** The mitata names of every case the scorecard needs, as one filter. */
export function scorecardFilter(): RegExp {
  const names = new Set(
    HEADLINES.flatMap((h) => [
      `${h.comparison} :: ${h.memkit}`,
      `${h.comparison} :: ${h.baseline}`,
      ...(h.ceiling ? [`${h.comparison} :: ${h.ceiling.case}`] : []),
    ]),
  );
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^(${[...names].map(escape).join("|")})$`);
}

/** "N× faster" / "N× slower", one decimal; two when one would read as the target on the other side of it. */
function speedText(speedUp: number, target: number): string {
  const digits = (x: number, t: number) => x.toFixed(1) === t.toFixed(1) && x !== t ? 2 : 1;
  if (speedUp >= 1) {
    return `${
      speedUp >= 100 ? Math.round(speedUp).toLocaleString("en") : speedUp.toFixed(digits(speedUp, target))
    }× faster`;
  }
  return `${(1 / speedUp).toFixed(digits(1 / speedUp, 1 / target))}× slower`;
}

/** The scorecard for mean times `avg` (ns, by mitata name). */
export function scorecard(avg: ReadonlyMap<string, number>, seconds: number): string {
  const info = nativeInfo();
  const rows = HEADLINES.map((h) => {
    const mine = avg.get(`${h.comparison} :: ${h.memkit}`), base = avg.get(`${h.comparison} :: ${h.baseline}`);
    if (mine === undefined || base === undefined) return [h.what, "not measured", `≥ ${h.target}×`, "?", h.baseline];
    const speedUp = base / mine;
    const target = h.target === 1
      ? "at least as fast"
      : h.target < 1
      ? `at most ${+(1 / h.target).toFixed(2)}× slower`
      : `≥ ${h.target}× faster`;
    let verdict = speedUp >= h.target ? "met" : "MISSED";
    const bound = h.ceiling && avg.get(`${h.comparison} :: ${h.ceiling.case}`);
    if (verdict === "MISSED" && h.ceiling && bound !== undefined && base / bound < h.target) {
      verdict = `out of reach here: "${h.ceiling.case}" (${h.ceiling.does}) is ${speedText(base / bound, h.target)}`;
    }
    return [h.what, speedText(speedUp, h.target), target, verdict, h.baseline];
  });
  const width = (i: number) => Math.max(...rows.map((r) => r[i].length));
  const mark = (verdict: string) => verdict === "met" ? "✓" : verdict === "MISSED" ? "✗" : "–";
  const lines = rows.map((r) =>
    `${mark(r[3])} ${r[0].padEnd(width(0))}  ${r[1].padStart(width(1))} than ${r[4]}` +
    `  (target ${r[2]}: ${r[3]})`
  );
  const met = rows.filter((r) => r[3] === "met").length;
  const outOfReach = rows.filter((r) => r[3].startsWith("out of reach")).length;
  const other = info.runtime === "deno" ? "npx bun run bench/mod.ts" : "npx deno task bench";
  return [
    `memkit on ${info.runtime} (${info.os}/${info.arch}, kernels: ${info.simd}): ${met} of ${rows.length} targets met` +
    (outOfReach > 0 ? `, ${outOfReach} out of reach (a case doing less than memkit's misses them too)` : "") +
    ` (${seconds.toFixed(0)} s; one run, mean times, each comparison's cases side by side in one process)`,
    ...lines,
    `Same on the other runtime: ${other}. Every benchmark and its tables: add --full.`,
  ].join("\n");
}
