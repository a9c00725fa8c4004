// What a user reads off the profiler's pictures: the heatmap's peak labels
// never run into each other, its legend says what the darkest colour stands
// for, nothing is drawn outside the picture at any allowed width, and the
// report's timeline gives memkit's native bytes a scale of their own (on
// RSS's scale they lay flat at zero). Found by using the profiler as a new
// user would (a program with a few allocators, the pictures rendered and
// looked at).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { blockMap, FreeListAllocator, heatmap, MemoryProfiler, type MemorySnapshot, PoolAllocator } from "../../mod.ts";

/** A snapshot whose only owner holds `bytes`, at `timestamp` ms. */
function snapshot(bytes: number, timestamp: number, owner = "cache"): MemorySnapshot {
  return {
    timestamp,
    totalAllocated: bytes,
    categoryBreakdown: { [owner]: bytes },
    largestAllocations: bytes > 0 ? [{ name: owner, size: bytes }] : [],
    fragmentation: 0,
    rssBytes: 50 << 20,
    jsHeapBytes: 10 << 20,
    pressureLevel: 2,
    afterGC: true,
    budgetBreakdown: {},
    released: [],
  };
}

const number = (text: string, name: string) => Number(new RegExp(` ${name}="(-?[\\d.]+)"`).exec(text)![1]);

test("heatmap: peak periods one column apart are all outlined, and their labels never overlap", () => {
  // Peaks at every other column: 30 outlined periods, far too close for a label each.
  const snapshots = Array.from({ length: 60 }, (_, i) => snapshot(i % 2 === 0 ? 100_000 : 10_000, i * 100));
  const svg = heatmap(snapshots, { width: 800 });
  assert.equal(svg.match(/class="peak"/g)?.length, 30, "every period is outlined");
  const labels = [...svg.matchAll(/class="peak-label" x="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.ok(labels.length >= 1 && labels.length < 30, `some labels left out: ${labels.length}`);
  // "peak" in bold 11 px is about 29 px wide: each label starts after the previous one ends.
  for (let i = 1; i < labels.length; i++) assert.ok(labels[i] - labels[i - 1] >= 29, `labels ${i - 1} and ${i}`);
  // Two peaks far apart keep a label each.
  const two = heatmap([snapshot(9, 0), snapshot(1, 1), snapshot(1, 2), snapshot(1, 3), snapshot(9, 4)]);
  assert.equal(two.match(/class="peak-label"/g)?.length, 2);
});

test("heatmap: the legend names the bytes of the darkest colour and the square-root scale", () => {
  using pool = new PoolAllocator({ blockSize: 1024 });
  using profiler = new MemoryProfiler({ sources: { pool } });
  const blocks: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) {
    blocks.push(pool.alloc(1024));
    profiler.capture();
  }
  const svg = heatmap(profiler.snapshots);
  const legend = [...svg.matchAll(/<text class="legend"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.deepEqual(legend, ["0 B", "8.0 KiB", "per cell, square-root scale", "none"]);
  assert.match(svg, /peak 8\.0 KiB total, 8 snapshots/);
  assert.match(heatmap(profiler.snapshots.slice(0, 1)), /, 1 snapshot</, "one snapshot, not '1 snapshots'");
  for (const block of blocks) pool.free(block);
});

test("heatmap: at every allowed width, everything drawn lies inside the picture", () => {
  const snapshots = Array.from(
    { length: 40 },
    (_, i) => snapshot(1000 * (i + 1), i * 250, "an owner with a rather long name indeed"),
  );
  for (const width of [64, 100, 200, 300, 500, 800, 1600]) {
    const svg = heatmap(snapshots, { width, title: "a title far longer than a narrow picture has room for" });
    const height = number(svg, "height");
    for (const rect of svg.match(/<rect [^>]*>/g)!) {
      const x = rect.includes(" x=") ? number(rect, "x") : 0, w = number(rect, "width");
      assert.ok(x >= 0 && w > 0 && x + w <= width + 0.01, `width ${width}: ${rect}`);
    }
    for (const text of svg.match(/<text [^>]*>[^<]*<\/text>/g)!) {
      const y = number(text, "y");
      assert.ok(y > 0 && y <= height, `width ${width}: ${text}`);
      const x = number(text, "x");
      const content = />([^<]*)</.exec(text)![1];
      // About 0.6 em per character at 11 px (14 px bold for the title): start and end inside the picture.
      const size = text.includes('font-size="14"') ? 14 * 0.66 : 11 * 0.6;
      const anchorEnd = text.includes('text-anchor="end"');
      const from = anchorEnd ? x - content.length * size : x, to = anchorEnd ? x : x + content.length * size;
      assert.ok(from >= -1 && to <= width + 1, `width ${width}: ${text} spans ${from}..${to}`);
    }
    // The title and the summary never share a line they do not fit on.
    const title = /<text x="([\d.]+)" y="18" font-size="14"[^>]*>([^<]*)</.exec(svg)!;
    const summary = /<text x="([\d.]+)" y="(18|33)"[^>]*fill="#555">([^<]*)</.exec(svg)!;
    if (summary[2] === "18") {
      const titleEnd = Number(title[1]) + title[2].length * 14 * 0.66;
      const summaryStart = Number(summary[1]) - summary[3].length * 11 * 0.6;
      assert.ok(titleEnd < summaryStart, `width ${width}: title and summary apart`);
    }
  }
});

test("blockMap: at every allowed width, everything drawn lies inside the picture; counts are singular when one", () => {
  const heap = new FreeListAllocator({ capacity: 64 << 10 });
  try {
    const blocks = Array.from({ length: 40 }, () => heap.alloc(1000));
    for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]);
    const dump = heap.dump();
    for (const width of [64, 100, 200, 239, 240, 300, 399, 400, 800, 1600]) {
      const svg = blockMap(dump, { width, title: "a title far longer than a narrow picture has room for" });
      const height = number(svg, "height");
      for (const rect of svg.match(/<rect [^>]*>/g)!) {
        const x = rect.includes(" x=") ? number(rect, "x") : 0, w = number(rect, "width");
        assert.ok(x >= 0 && w > 0 && x + w <= width + 0.01, `width ${width}: ${rect}`);
      }
      for (const text of svg.match(/<text [^>]*>[^<]*<\/text>/g)!) {
        const y = number(text, "y");
        assert.ok(y > 0 && y <= height, `width ${width}: ${text}`);
        const x = number(text, "x");
        const content = />([^<]*)</.exec(text)![1];
        const size = text.includes('font-size="14"') ? 14 * 0.66 : 11 * 0.6;
        const anchorEnd = text.includes('text-anchor="end"');
        const from = anchorEnd ? x - content.length * size : x, to = anchorEnd ? x : x + content.length * size;
        assert.ok(from >= -1 && to <= width + 1, `width ${width}: ${text} spans ${from}..${to}`);
      }
      // Every chunk's address is still there, in its bar's tooltip, when the gutter has no room for it.
      assert.match(svg, new RegExp(`chunk at 0x${dump.chunks[0].address.toString(16)}`));
    }
    for (let i = 1; i < blocks.length - 2; i += 2) heap.free(blocks[i]); // one left: blocks[39]
    assert.match(blockMap(heap.dump()), / in 1 block,/);
  } finally {
    heap.dispose();
  }
});

test("blockMap(allocator) instead of blockMap(allocator.dump()) says what to pass", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  try {
    assert.throws(
      () => blockMap(pool as never),
      (e: unknown) => e instanceof TypeError && /pass allocator\.dump\(\)/.test(e.message),
    );
  } finally {
    pool.dispose();
  }
});

test("report: the timeline draws native bytes on their own scale, names the pressure level, and says when there are too few snapshots", () => {
  const dir = mkdtempSync(`${tmpdir()}/memkit-layout-`);
  try {
    using pool = new PoolAllocator({ blockSize: 256 });
    using profiler = new MemoryProfiler({ sources: { pool }, pressure: { level: 2 } });
    profiler.capture();
    profiler.capture();
    const few = readFileSync(profiler.report(`${dir}/few.html`), "utf8");
    assert.match(few, /Too few snapshots to judge: 2 of the 5 needed\./);
    assert.match(few, /pressure level 2 \(Medium\)/);
    assert.match(few, /2 snapshots from/);

    const blocks: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) {
      for (let k = 0; k <= i; k++) blocks.push(pool.alloc(256)); // a few KiB: nothing next to RSS
      profiler.capture();
    }
    const html = readFileSync(profiler.report(`${dir}/report.html`), "utf8");
    const timeline = /<svg [^>]*class="timeline"[\s\S]*?<\/svg>/.exec(html)![0];
    const lines = [...timeline.matchAll(/<polyline points="([^"]+)" fill="none" stroke="(#[0-9a-f]+)"/g)];
    assert.equal(lines.length, 3, "native, RSS and JS heap");
    const native = lines.find((m) => m[2] === "#3b6fb6")!;
    const ys = native[1].split(" ").map((p) => Number(p.split(",")[1]));
    // On its own scale the native line climbs over most of its panel (80 px tall); on RSS's it moved < 1 px.
    assert.ok(Math.max(...ys) - Math.min(...ys) > 40, `the native line rises: ${ys}`);
    assert.match(timeline, />native memory held through memkit</);
    assert.match(timeline, />the process</);
    assert.doesNotMatch(html, /Too few snapshots/);
    for (const block of blocks) pool.free(block);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sums of valid sizes past Number.MAX_VALUE are held there: no NaN, Infinity or engine TypeError in a picture", () => {
  // Over 50 owners: the rest share one row, their bytes summed.
  const breakdown: Record<string, number> = {};
  for (let i = 0; i < 52; i++) breakdown[`owner${String(i).padStart(2, "0")}`] = 1e308;
  const snapshot = { timestamp: 0, totalAllocated: 1e308, categoryBreakdown: breakdown, afterGC: false };
  const svg = heatmap([snapshot, { ...snapshot, timestamp: 1 }] as unknown as MemorySnapshot[]);
  assert.doesNotMatch(svg, /NaN|Infinity/);
  assert.match(svg, /3 more owners/);
  // Timestamps further apart than a number holds.
  const far = heatmap([
    { ...snapshot, timestamp: -1.7e308 },
    { ...snapshot, timestamp: 1.7e308 },
  ] as unknown as MemorySnapshot[]);
  assert.doesNotMatch(far, /NaN|Infinity/);
  // A hand-made dump whose blocks overlap: a run of merged blocks sums past Number.MAX_VALUE.
  const blocks = Array.from({ length: 3000 }, (_, i) => ({
    offset: 0,
    size: i === 0 ? 1e308 : 1e300,
    free: i % 2 === 0,
    requested: i % 3 === 0 ? -1e308 : 1e308,
    owner: null,
  }));
  const dump = {
    format: "memkit.allocator-dump",
    version: 1,
    kind: "hand-made",
    stats: { capacityBytes: 1e308, allocatedBytes: 1e308, fragmentation: 0, liveAllocations: 3000 },
    chunks: [{ address: 0, size: 1e308, blocks }],
  };
  const map = blockMap(dump as never);
  assert.doesNotMatch(map, /NaN|Infinity/);
  // A tiny but valid chunk size: plot / size overflowed to Infinity, and 0 × Infinity gave x="NaN".
  for (const size of [5e-324, 1e-310, 1e-306]) {
    const tiny = blockMap({
      ...dump,
      stats: { capacityBytes: size, allocatedBytes: size, fragmentation: 0, liveAllocations: 1 },
      chunks: [{ address: 0, size, blocks: [{ offset: 0, size, free: false, requested: size, owner: null }] }],
    } as never);
    assert.doesNotMatch(tiny, /NaN|Infinity/, `chunk of ${size} bytes`);
  }
});
