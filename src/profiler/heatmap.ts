/**
 * A heatmap of memory use over time: one row per owner, one column per
 * snapshot, the colour the bytes it held; peak periods are marked.
 *
 * @module
 */
import { describe, isLiveArray, parseOptions, z } from "../base/_validate.ts";
import { clipText, escapeXml, formatBytes, heat, n, plural, textWidth } from "./_svg.ts";
import { hintOf, type MemorySnapshot } from "./snapshot.ts";
import { fitSnapshots, readSnapshots, type SnapshotReading } from "./_input.ts";

/**
 * Options of {@linkcode heatmap}.
 *
 * @example
 * ```ts
 * import type { HeatmapOptions } from "@memkit/memkit";
 *
 * const options: HeatmapOptions = { width: 640, peakFraction: 0.8 };
 * console.log(options.width);
 * ```
 */
export interface HeatmapOptions {
  /**
   * Width of the picture in pixels (64 to 10,000).
   * @default {800}
   */
  width?: number;
  /**
   * Height of one owner's row in pixels (4 to 200).
   * @default {18}
   */
  rowHeight?: number;
  /**
   * A snapshot whose total is at least this fraction of the highest total is in a peak period.
   * @default {0.9}
   */
  peakFraction?: number;
  /**
   * A title above the picture.
   * @default {"Native memory by owner"}
   */
  title?: string;
}

const LEFT = 150, TOP = 44, BOTTOM = 40, RIGHT = 16;

const OptionsSchema = z.object({
  width: z.number().int("must be an integer").min(64, "must be at least 64").max(10_000, "must be at most 10000")
    .optional(),
  rowHeight: z.number().int("must be an integer").min(4, "must be at least 4").max(200, "must be at most 200")
    .optional(),
  peakFraction: z.number().min(0, "must be from 0 to 1").max(1, "must be from 0 to 1").optional(),
  title: z.string().optional(),
}).strict();

/**
 * Draws `snapshots` as an SVG heatmap: a row per owner (every key of
 * `categoryBreakdown` that ever held bytes, largest peak first), a column
 * per snapshot in time order, each cell coloured by the owner's bytes
 * against the largest cell on a square-root scale (pale: little, dark red:
 * most, grey: none; the legend under the picture gives the bytes of the
 * darkest colour). Columns where the total is within `peakFraction` of its
 * maximum are peak periods, outlined and labelled "peak"; the strip on top
 * is the total. Columns are evenly spaced whatever the time between
 * snapshots; the axis gives the time from the first to the last.
 *
 * A picture has at most one column per pixel of `width`: more snapshots
 * than that are merged, consecutive ones into a column that shows each
 * owner's (and the total's) peak among them. At most 50 owners get a row of
 * their own; beyond that, those of the smallest peaks share one row
 * ("<n> more owners", their bytes summed).
 *
 * @param snapshots Snapshots, oldest first (e.g. `profiler.snapshots`); at least one. Each is read once;
 *   sizes must be finite numbers of 0 or more, timestamps finite.
 * @param options Size, peak threshold, title.
 * @returns The SVG document, `width` wide.
 * @throws {TypeError} When `snapshots` is not an array of snapshots, or an option is mistyped.
 * @throws {RangeError} For no snapshots, a size that is negative, NaN or infinite, a timestamp that is not
 *   finite, or an option out of range.
 *
 * @example
 * ```ts
 * import { heatmap, MemoryProfiler, PoolAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pool = new PoolAllocator({ blockSize: 64 });
 * using profiler = new MemoryProfiler({ sources: { pool } });
 * const blocks = [];
 * for (let i = 0; i < 10; i++) {
 *   blocks.push(pool.alloc(64));
 *   profiler.capture();
 * }
 * const svg = heatmap(profiler.snapshots);
 * assert.ok(svg.startsWith("<svg"));
 * for (const block of blocks) pool.free(block);
 * ```
 */
export function heatmap(snapshots: readonly MemorySnapshot[], options?: HeatmapOptions): string {
  const op = "draw a heatmap";
  if (!isLiveArray(snapshots)) {
    throw new TypeError(
      `Cannot ${op} as 'snapshots' must be an array: current value is ${describe(snapshots)}${hintOf(snapshots)}`,
    );
  }
  if (snapshots.length === 0) throw new RangeError(`Cannot ${op} as 'snapshots' must hold at least one snapshot`);
  // Read once into checked copies: what is drawn is what was checked (see _input.ts).
  snapshots = readSnapshots(snapshots, op, true);
  const parsed = parseOptions(OptionsSchema, options, op);
  const width = parsed.width ?? 800;
  const rowHeight = parsed.rowHeight ?? 18;
  const peakFraction = parsed.peakFraction ?? 0.9;
  const title = parsed.title ?? "Native memory by owner";
  // At most a column per pixel and MAX_OWNER_ROWS rows (see fitSnapshots): a history of a million snapshots
  // or a hundred thousand owners draws as a picture of megabytes, not as gigabytes of SVG.
  const given = snapshots.length;
  snapshots = fitSnapshots(snapshots as SnapshotReading[], width);

  const peakOf = new Map<string, number>();
  for (const s of snapshots) {
    for (const [owner, bytes] of Object.entries(s.categoryBreakdown)) {
      if (typeof bytes === "number" && bytes > 0) peakOf.set(owner, Math.max(peakOf.get(owner) ?? 0, bytes));
    }
  }
  const owners = [...peakOf.keys()].sort((a, b) => peakOf.get(b)! - peakOf.get(a)! || (a < b ? -1 : 1));
  const most = Math.max(1, ...peakOf.values());
  const totals = snapshots.map((s) => s.totalAllocated);
  // A loop, not Math.max(...totals): history may keep a million snapshots, more arguments than a call takes.
  let highest = -Infinity;
  for (const total of totals) if (total > highest) highest = total;
  // The label gutter shrinks with a narrow picture, so the plot never runs out of room.
  const left = Math.min(LEFT, Math.round(width * 0.3));
  const plot = width - left - RIGHT;
  // The header: the title, and the summary beside it, or on a line of its own when both do not fit.
  const summary = `peak ${formatBytes(highest)} total, ${plural(given, "snapshot")}`;
  const shownTitle = clipText(title, plot, 14, true);
  const oneLine = textWidth(shownTitle, 14, true) + 12 + textWidth(summary, 11) <= plot;
  const top = TOP + (oneLine ? 0 : 14);
  const rows = Math.max(1, owners.length);
  // The time axis under the grid, and the colour legend between its two ends, or on a line of its own
  // when it does not fit there.
  const t0 = snapshots[0].timestamp, t1 = snapshots[snapshots.length - 1].timestamp;
  // (Two finite timestamps may lie further apart than a number holds.)
  const span = `${n(Math.max(-Number.MAX_VALUE, Math.min(Number.MAX_VALUE, t1 - t0)) / 1000)} s`;
  const showStart = textWidth("0 s", 11) + 8 + textWidth(span, 11) <= plot;
  const legendX = left + textWidth("0 s", 11) + 16;
  const legendRoom = width - RIGHT - textWidth(span, 11) - 16 - legendX;
  const legendInline = showStart && legendRoom >= legendWidth(most);
  const height = top + 24 + rows * rowHeight + BOTTOM + (legendInline ? 0 : 16);
  const cell = plot / snapshots.length;
  const x = (i: number) => left + i * cell;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">${escapeXml(shownTitle)}</text>`,
    oneLine
      ? `<text x="${width - RIGHT}" y="18" text-anchor="end" fill="#555">${escapeXml(summary)}</text>`
      : `<text x="${left}" y="33" fill="#555">${escapeXml(clipText(summary, plot, 11))}</text>`,
  );
  // The total strip: one bar per snapshot, scaled to the highest total.
  const stripTop = top - 16, stripHeight = 20;
  parts.push(`<text x="${left - 6}" y="${stripTop + 14}" text-anchor="end">${clipText("total", left - 6, 11)}</text>`);
  snapshots.forEach((s, i) => {
    const h = highest > 0 ? (s.totalAllocated / highest) * stripHeight : 0;
    parts.push(
      `<rect x="${n(x(i))}" y="${n(stripTop + stripHeight - h)}" width="${n(Math.max(cell, 0.5))}" height="${
        n(h)
      }" fill="#4a6fa5"/>`,
    );
  });
  const gridTop = top + 24;
  owners.forEach((owner, r) => {
    const y = gridTop + r * rowHeight;
    parts.push(
      `<text x="${left - 6}" y="${n(y + rowHeight * 0.7)}" text-anchor="end">${
        escapeXml(clipText(owner, left - 6, 11))
      }</text>`,
    );
    snapshots.forEach((s, i) => {
      const bytes = s.categoryBreakdown[owner] ?? 0;
      const fill = bytes > 0 ? heat(Math.sqrt(bytes / most)) : EMPTY;
      parts.push(
        `<rect x="${n(x(i))}" y="${n(y)}" width="${n(Math.max(cell, 0.5))}" height="${rowHeight - 1}" fill="${fill}">` +
          `<title>${escapeXml(owner)}: ${escapeXml(formatBytes(bytes))}</title></rect>`,
      );
    });
  });
  if (owners.length === 0) {
    parts.push(`<text x="${left}" y="${gridTop + rowHeight * 0.7}" fill="#777">no native memory held</text>`);
  }
  // Peak periods: runs of columns whose total is within peakFraction of the highest. A label that would
  // run into the previous one is left out (the outline still marks its period).
  const gridBottom = gridTop + rows * rowHeight;
  const peakLabel = textWidth("peak", 11, true);
  let labelsFreeFrom = -Infinity;
  if (highest > 0) {
    for (let i = 0; i < snapshots.length;) {
      if (totals[i] < highest * peakFraction) {
        i++;
        continue;
      }
      let j = i;
      while (j + 1 < snapshots.length && totals[j + 1] >= highest * peakFraction) j++;
      parts.push(
        `<rect class="peak" x="${n(x(i))}" y="${stripTop - 2}" width="${n((j - i + 1) * cell)}" height="${
          n(gridBottom - stripTop + 2)
        }" fill="none" stroke="#1b5e20" stroke-width="2" stroke-dasharray="4 2"/>`,
      );
      const labelX = Math.min(x(i) + 2, width - 2 - peakLabel);
      if (labelX >= labelsFreeFrom) {
        parts.push(
          `<text class="peak-label" x="${n(labelX)}" y="${n(gridBottom + 14)}" fill="#1b5e20" font-weight="bold">` +
            `peak</text>`,
        );
        labelsFreeFrom = labelX + peakLabel + 4;
      }
      i = j + 1;
    }
  }
  // Time axis: seconds since the first snapshot; the colour scale says what the darkest colour stands for.
  const axisY = gridBottom + 32;
  if (showStart) parts.push(`<text x="${left}" y="${axisY}" fill="#555">0 s</text>`);
  parts.push(`<text x="${width - RIGHT}" y="${axisY}" text-anchor="end" fill="#555">${span}</text>`);
  parts.push(
    ...(legendInline ? legend(legendX, axisY, legendRoom, most) : legend(left, axisY + 16, plot, most)),
    `</svg>`,
  );
  return parts.join("\n");
}

const EMPTY = "#f2f2f2";

const STEPS = 8, STEP = 8, SCALE = "per cell, square-root scale";

/** The least of the legend that is worth drawing: "0 B", the ramp, and the bytes at its end. */
function legendWidth(most: number): number {
  return textWidth("0 B", 11) + 4 + STEPS * STEP + 4 + textWidth(formatBytes(most), 11);
}

/** The colour legend, as much of it as fits in `room` pixels: ramp, the bytes at its end, the scale, "none". */
function legend(x0: number, y: number, room: number, most: number): string[] {
  const end = formatBytes(most);
  const parts: string[] = [];
  let x = x0;
  const fits = (w: number) => x + w <= x0 + room;
  if (!fits(legendWidth(most))) return parts;
  parts.push(`<text class="legend" x="${n(x)}" y="${y}" fill="#555">0 B</text>`);
  x += textWidth("0 B", 11) + 4;
  for (let k = 0; k < STEPS; k++) {
    parts.push(
      `<rect x="${n(x + k * STEP)}" y="${y - 9}" width="${STEP}" height="10" fill="${heat(k / (STEPS - 1))}"/>`,
    );
  }
  x += STEPS * STEP + 4;
  parts.push(`<text class="legend" x="${n(x)}" y="${y}" fill="#555">${escapeXml(end)}</text>`);
  x += textWidth(end, 11) + 6;
  if (fits(textWidth(SCALE, 11))) {
    parts.push(`<text class="legend" x="${n(x)}" y="${y}" fill="#555">${SCALE}</text>`);
    x += textWidth(SCALE, 11) + 6;
  }
  if (fits(14 + textWidth("none", 11))) {
    parts.push(
      `<rect x="${n(x)}" y="${y - 9}" width="10" height="10" fill="${EMPTY}" stroke="#bbb"/>`,
      `<text class="legend" x="${n(x + 14)}" y="${y}" fill="#555">none</text>`,
    );
  }
  return parts;
}
