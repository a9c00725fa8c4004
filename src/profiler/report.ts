// The profiler's HTML report: one self-contained file (inline SVG and CSS,
// no script, nothing fetched) with a timeline, the heatmap, a block map per
// allocator, the leak suspects and suggestions drawn from what was measured.
import type { AllocatorDump } from "../alloc/dump.ts";
import type { Allocator } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { FramePool } from "../budget/frame_pool.ts";
import { resourceHeapFootprint } from "../budget/resource_heap.ts";
import type { Probe } from "./_sources.ts";
import { escapeXml, formatBytes, n, plural } from "./_svg.ts";
import { blockMap } from "./block_map.ts";
import { heatmap } from "./heatmap.ts";
import { DEFAULT_LEAK_WINDOW, type LeakSuspicion } from "./leak_suspicion.ts";
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import type { MemorySnapshot } from "./snapshot.ts";

/** What the report is made of. */
export interface ReportInput {
  snapshots: readonly MemorySnapshot[];
  probes: readonly Probe[];
  leaks: LeakSuspicion;
}

/** One suggestion, with the owner it is about. */
export interface Suggestion {
  owner: string;
  text: string;
}

// memkit's own reader of a FramePool, taken before program code runs (as the profiler's probes do).
const framePoolStats = FramePool.prototype.stats;

// How an allocator holding far more than it uses can hold less: the methods named are ones its kind has
// (checked on the source itself), the options ones its constructor takes. An Arena has reset() but no trim();
// a FreeListAllocator, a PoolAllocator or a BuddyAllocator keeps its memory until dispose().
function holdLess(allocator: Allocator): string {
  const has = (method: string) => typeof (allocator as unknown as Record<string, unknown>)[method] === "function";
  switch (allocator.kind) {
    case "arena":
      return (has("reset") ? 'reset("free-all") returns its chunks until its next allocation, and ' : "") +
        "a smaller capacity keeps less while in use";
    case "stack":
      return "a smaller capacity: it keeps its one chunk until dispose()" +
        (has("reset") ? " (reset() frees its blocks, not the chunk)" : "");
    case "pool":
      return "a smaller blocksPerChunk, or a maxBlocks: it keeps its chunks until dispose()";
    case "buddy":
      return "a smaller capacity: it keeps its block until dispose()";
    case "free-list":
      return 'a smaller capacity, or growth: "linear": it keeps its chunks until dispose()';
    case "system":
      return has("trim") ? "trim() returns the freed blocks it keeps" : "free what it no longer needs";
    case "debug":
      return "the allocator it wraps holds the memory: watch that one for what it can give back";
    default:
      return "dispose() it when its work is done, or give it a smaller capacity";
  }
}

/**
 * Suggestions from the latest state of the sources and the leak verdict:
 * arrays using under 25 % of their capacity (compact()), allocators with
 * fragmentation above 0.5 (defragment() where the allocator has it), sources
 * holding at least 1 MiB and over four times what they use (with what their
 * kind has to hold less: an Arena's reset("free-all"), a FramePool's trim(),
 * a ResourceHeap's compact(), a smaller capacity), owners growing at every
 * step.
 */
export function suggestions(input: ReportInput): Suggestion[] {
  const out: Suggestion[] = [];
  for (const probe of input.probes) {
    try {
      if (probe.kind === "array") {
        const m = (probe.source as { metrics(): { utilization?: number; capacity?: number; memoryUsage: number } })
          .metrics();
        if (typeof m.utilization === "number" && m.memoryUsage > 0 && m.utilization < 0.25) {
          out.push({
            owner: probe.name,
            text: `utilization ${(m.utilization * 100).toFixed(0)} % (below 25 %) of ${
              formatBytes(m.memoryUsage)
            }: compact()`,
          });
        }
      } else if (probe.kind === "allocator") {
        const allocator = probe.source as Allocator & { defragment?: unknown };
        const stats = allocator.stats();
        if (stats.fragmentation > 0.5) {
          out.push({
            owner: probe.name,
            text: `fragmentation ${stats.fragmentation.toFixed(2)} (above 0.5): ` +
              (typeof allocator.defragment === "function"
                ? "defragment() (allocate movable blocks with handle() so it can move them)"
                : "group blocks of similar lifetime, or move them to a FreeListAllocator whose handles defragment() can move"),
          });
        }
        if (stats.capacityBytes >= 1 << 20 && stats.allocatedBytes < stats.capacityBytes / 4) {
          out.push({
            owner: probe.name,
            text: underUsed(stats.capacityBytes, stats.allocatedBytes, holdLess(allocator)),
          });
        }
      } else if (probe.kind === "frame-pool") {
        const stats = framePoolStats.call(probe.source as FramePool);
        if (stats.mappedBytes >= 1 << 20 && stats.inUseBytes < stats.mappedBytes / 4) {
          out.push({
            owner: probe.name,
            text: underUsed(
              stats.mappedBytes,
              stats.inUseBytes,
              "trim() unmaps its idle frames, and a smaller maxFrames keeps fewer of them",
            ),
          });
        }
      } else if (probe.kind === "resource-heap") {
        const held = resourceHeapFootprint(probe.source)!;
        if (held.capacityBytes >= 1 << 20 && held.usedBytes < held.capacityBytes / 4) {
          out.push({
            owner: probe.name,
            text: underUsed(
              held.capacityBytes,
              held.usedBytes,
              "a smaller capacity reserves less (compact() gives free pages back to the OS, but the whole block " +
                "stays reserved)",
            ),
          });
        }
      }
    } catch {
      // A source that is gone has nothing to suggest.
    }
  }
  for (const owner of input.leaks.owners) {
    if (!owner.monotonic) continue;
    out.push({
      owner: owner.name,
      text: `grew by ${formatBytes(owner.growthBytes)} at every step of ${input.leaks.window} snapshots${
        input.leaks.afterGC ? " taken after garbage collection" : ""
      }: look for blocks that are allocated and never freed`,
    });
  }
  return out;
}

/** "holds 4.0 MiB but uses 0 B (below 25 %): <how to hold less>". */
function underUsed(held: number, used: number, how: string): string {
  return `holds ${formatBytes(held)} but uses ${formatBytes(used)} (below 25 %): ${how}`;
}

/**
 * Line charts of memory over time, in two panels with a scale each: memkit's native bytes on top, the
 * process's RSS and JS heap below. On one scale the native line lay flat at zero whenever the process
 * was larger than what memkit holds, which is nearly always.
 */
function timeline(snapshots: readonly MemorySnapshot[]): string {
  const width = 800, left = 70, right = 16, panel = 80, gap = 34, top = 22;
  const height = top + panel + gap + panel + 44;
  const t0 = snapshots[0]?.timestamp ?? 0;
  const span = Math.max(1, (snapshots[snapshots.length - 1]?.timestamp ?? 0) - t0);
  const x = (s: MemorySnapshot, i: number) =>
    left + (snapshots.length > 1 ? (span > 1 ? (s.timestamp - t0) / span : i / (snapshots.length - 1)) : 0) *
      (width - left - right);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="sans-serif" font-size="11" class="timeline">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
  ];
  const panels: [number, string, [string, string, (s: MemorySnapshot) => number][]][] = [
    [top, "native memory held through memkit", [["native (memkit)", "#3b6fb6", (s) => s.totalAllocated]]],
    [top + panel + gap, "the process", [
      ["RSS", "#c0392b", (s) => s.rssBytes],
      ["JS heap", "#27ae60", (s) => s.jsHeapBytes],
    ]],
  ];
  for (const [y0, caption, series] of panels) {
    let highest = 1;
    for (const s of snapshots) for (const [, , read] of series) highest = Math.max(highest, read(s));
    const y = (v: number) => y0 + (1 - v / highest) * panel;
    parts.push(
      `<text x="${left}" y="${y0 - 8}" fill="#555">${escapeXml(caption)}</text>`,
      `<line x1="${left}" y1="${y(0)}" x2="${width - right}" y2="${y(0)}" stroke="#999"/>`,
      `<line x1="${left}" y1="${y0}" x2="${width - right}" y2="${y0}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y0 + 4}" text-anchor="end" fill="#555">${escapeXml(formatBytes(highest))}</text>`,
      `<text x="${left - 6}" y="${y(0)}" text-anchor="end" fill="#555">0</text>`,
    );
    for (const [, colour, read] of series) {
      const points = snapshots.map((s, i) => `${n(x(s, i))},${n(y(read(s)))}`).join(" ");
      parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    }
  }
  const axisY = top + panel + gap + panel + 16;
  parts.push(
    `<text x="${left}" y="${axisY}" fill="#555">0 s</text>`,
    `<text x="${width - right}" y="${axisY}" text-anchor="end" fill="#555">${n(span / 1000)} s</text>`,
  );
  const legend = panels.flatMap(([, , series]) => series);
  legend.forEach(([label, colour], k) => {
    parts.push(
      `<rect x="${left + k * 130}" y="${height - 16}" width="10" height="10" fill="${colour}"/>`,
      `<text x="${left + 14 + k * 130}" y="${height - 7}">${escapeXml(label)}</text>`,
    );
  });
  parts.push(`</svg>`);
  return parts.join("\n");
}

/** "2 (Medium)": the level's number and its name in PressureLevel; "unknown" where it could not be read. */
function pressureName(level: PressureLevelValue | null | undefined): string {
  if (level === null || level === undefined) return "unknown";
  const name = Object.entries(PressureLevel).find(([, value]) => value === level)?.[0];
  return name === undefined ? String(level) : `${level} (${name})`;
}

/** The whole report as one HTML document. */
export function reportHtml(input: ReportInput): string {
  const { snapshots, probes, leaks } = input;
  const last = snapshots[snapshots.length - 1];
  const maps: string[] = [];
  for (const probe of probes) {
    const source = probe.source as { dump?: () => AllocatorDump };
    if (probe.kind !== "allocator" || typeof source.dump !== "function") continue;
    let dump: AllocatorDump;
    try {
      dump = source.dump();
    } catch (error) {
      if (error instanceof AllocationError && error.category === "use-after-free") {
        maps.push(`<p class="note">${escapeXml(probe.name)}: released, nothing to draw.</p>`);
        continue;
      }
      throw error;
    }
    maps.push(`<h3>${escapeXml(probe.name)}</h3>`, blockMap(dump, { title: `${probe.name} (${dump.kind})` }));
  }
  const tips = suggestions(input);
  const rows = leaks.owners.slice(0, 20).map((o) =>
    `<tr${o.monotonic ? ' class="suspect"' : ""}><td>${escapeXml(o.name)}</td><td>${
      escapeXml(formatBytes(o.fromBytes))
    }</td><td>${escapeXml(formatBytes(o.toBytes))}</td><td>${escapeXml(formatBytes(o.growthBytes))}</td><td>${
      o.monotonic ? "every step" : "overall"
    }</td></tr>`
  );
  const started = snapshots[0] ? new Date(snapshots[0].timestamp).toISOString() : "-";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>memkit memory report</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 860px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; }
tr.suspect td { color: #99000d; font-weight: bold; }
.note { color: #666; } ul.suggestions li { margin: 4px 0; }
</style>
</head>
<body>
<h1>memkit memory report</h1>
<p>${plural(snapshots.length, "snapshot")} from ${escapeXml(started)}; sources: ${
    probes.map((p) => `${escapeXml(p.name)} (${p.kind})`).join(", ") || "none"
  }.</p>
<p>Latest: ${last ? escapeXml(formatBytes(last.totalAllocated)) : "-"} native, RSS ${
    last ? escapeXml(formatBytes(last.rssBytes)) : "-"
  }, JS heap ${last ? escapeXml(formatBytes(last.jsHeapBytes)) : "-"}, fragmentation ${
    last ? last.fragmentation.toFixed(2) : "-"
  }, pressure level ${pressureName(last?.pressureLevel)}.</p>
<h2>Suggestions</h2>
${
    tips.length
      ? `<ul class="suggestions">${
        tips.map((t) => `<li><b>${escapeXml(t.owner)}</b>: ${escapeXml(t.text)}</li>`).join("\n")
      }</ul>`
      : `<p class="note">Nothing to suggest.</p>`
  }
<h2>Timeline</h2>
${snapshots.length ? timeline(snapshots) : `<p class="note">No snapshots.</p>`}
<h2>Heatmap</h2>
${snapshots.length ? heatmap(snapshots) : `<p class="note">No snapshots.</p>`}
<h2>Leak suspects</h2>
<p>${
    leaks.suspected
      ? `Suspected: memory grew at every step of the last ${leaks.window} snapshots${
        leaks.afterGC ? " taken after garbage collection" : ""
      }.`
      : leaks.window < DEFAULT_LEAK_WINDOW
      ? `Too few snapshots to judge: ${leaks.window} of the ${DEFAULT_LEAK_WINDOW} needed.`
      : `No leak suspected over the last ${leaks.window} snapshots.`
  }</p>
${
    rows.length
      ? `<table><tr><th>owner</th><th>from</th><th>to</th><th>growth</th><th>grew</th></tr>\n${rows.join("\n")}</table>`
      : ""
  }
<h2>Block maps</h2>
${maps.length ? maps.join("\n") : `<p class="note">No allocator with dump() among the sources.</p>`}
</body>
</html>
`;
}
