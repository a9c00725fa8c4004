/**
 * A picture of an allocator's address space from its `dump()`: every chunk
 * a bar, used and free blocks coloured (the Vulkan Memory Allocator
 * visualiser's idea), so fragmentation can be seen.
 *
 * @module
 */
import { parseOptions, z } from "../base/_validate.ts";
import type { AllocatorDump } from "../alloc/dump.ts";
import { clipText, escapeXml, formatBytes, n, plural, textWidth } from "./_svg.ts";
import { fitBlocks, readDump } from "./_input.ts";

/**
 * Options of {@linkcode blockMap}.
 *
 * @example
 * ```ts
 * import type { BlockMapOptions } from "@memkit/memkit";
 *
 * const options: BlockMapOptions = { width: 640, maxChunks: 16 };
 * console.log(options.maxChunks);
 * ```
 */
export interface BlockMapOptions {
  /**
   * Width of the picture in pixels (64 to 10,000).
   * @default {800}
   */
  width?: number;
  /**
   * Height of one chunk's bar in pixels (4 to 200).
   * @default {22}
   */
  rowHeight?: number;
  /**
   * Chunks drawn (the rest are counted in a note).
   * @default {64}
   */
  maxChunks?: number;
  /**
   * A title above the picture.
   * @default {"<kind> allocator: address space"}
   */
  title?: string;
}

const OptionsSchema = z.object({
  width: z.number().int("must be an integer").min(64, "must be at least 64").max(10_000, "must be at most 10000")
    .optional(),
  rowHeight: z.number().int("must be an integer").min(4, "must be at least 4").max(200, "must be at most 200")
    .optional(),
  maxChunks: z.number().int("must be an integer").min(1, "must be at least 1").max(100_000, "must be at most 1e5")
    .optional(),
  title: z.string().optional(),
}).strict();

const RIGHT = 16, TOP = 48, GAP = 6;
// The gutter for each chunk's address and size: full from 400 px, sizes only
// from 240 px, none below (the bar's tooltip still names both).
const gutterFor = (width: number) => width >= 400 ? 130 : width >= 240 ? 80 : 8;
const USED = "#3b6fb6", HANDLE = "#7e57c2", FREE = "#e8e8e8", EDGE = "#ffffff";
// A DebugAllocator's guard bytes: used, but no allocation's.
const CANARY = "#e6a23c";

/**
 * Draws an allocator's dump as SVG: a bar per chunk, the full width of the
 * picture whatever its size, each block a stretch of it in proportion to its
 * bytes; used blocks blue (movable handles purple, a DebugAllocator's guard
 * bytes orange), free blocks grey, with a thin white edge between blocks so
 * many small free blocks show as fragmentation. The header gives the kind,
 * capacity, bytes in use and the fragmentation metric from the dump's stats;
 * hovering a block names it. Blocks narrower than a pixel are merged into
 * one stretch (used when most of its bytes are) that names how many used and
 * free blocks it holds, so a dump of a million blocks draws as about one
 * rectangle per pixel. The dump is read once, into a checked copy.
 *
 * @param dump What an allocator's `dump()` returned (format "memkit.allocator-dump", version 1).
 * @param options Size, how many chunks, title.
 * @returns The SVG document, `width` wide.
 * @throws {TypeError} When `dump` is not a version 1 allocator dump, or an option is mistyped.
 * @throws {RangeError} For an option out of range, or a dump whose address, size or offset is negative, NaN
 *   or infinite, whose block ends past its chunk, or whose fragmentation is outside 0 to 1.
 *
 * @example
 * ```ts
 * import { blockMap, FreeListAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using heap = new FreeListAllocator({ capacity: 1 << 16 });
 * const blocks = Array.from({ length: 20 }, () => heap.alloc(1000));
 * for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]); // every other one: fragmented
 * const svg = blockMap(heap.dump());
 * assert.ok(svg.includes("free-list"));
 * for (let i = 1; i < blocks.length; i += 2) heap.free(blocks[i]);
 * ```
 */
export function blockMap(dump: AllocatorDump, options?: BlockMapOptions): string {
  const op = "draw a block map";
  // Read once into a checked copy: what is drawn is what was checked (see _input.ts).
  dump = readDump(dump, op);
  const parsed = parseOptions(OptionsSchema, options, op);
  const width = parsed.width ?? 800;
  const rowHeight = parsed.rowHeight ?? 22;
  const maxChunks = parsed.maxChunks ?? 64;
  const title = parsed.title ?? `${dump.kind} allocator: address space`;
  const chunks = dump.chunks.slice(0, maxChunks);
  const hidden = dump.chunks.length - chunks.length;
  const height = TOP + Math.max(1, chunks.length) * (rowHeight + GAP) + 40;
  const LEFT = gutterFor(width);
  const plot = width - LEFT - RIGHT;
  const textX = LEFT >= 130 ? LEFT : 8;
  // Blocks narrower than a pixel are merged: a bar draws about `pixels` rectangles at most, and a
  // picture about 500,000 in all, however many blocks the allocator holds.
  const pixels = Math.max(2, Math.min(plot, Math.floor(500_000 / Math.max(1, chunks.length))));
  const stats = dump.stats;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${textX}" y="18" font-size="14" font-weight="bold">${
      escapeXml(clipText(title, width - textX - RIGHT, 14, true))
    }</text>`,
    `<text x="${textX}" y="34" fill="#555">${
      escapeXml(clipText(
        `${plural(dump.chunks.length, "chunk")}, ${formatBytes(stats.capacityBytes)} held, ${
          formatBytes(stats.allocatedBytes)
        } in ${plural(stats.liveAllocations, "block")}, fragmentation ${stats.fragmentation.toFixed(2)}`,
        width - textX - RIGHT,
        11,
      ))
    }</text>`,
  ];
  let canaries = false;
  chunks.forEach((chunk, r) => {
    const y = TOP + r * (rowHeight + GAP);
    const where = `0x${chunk.address.toString(16)}`, size = escapeXml(formatBytes(chunk.size));
    if (LEFT >= 130) {
      parts.push(`<text x="${LEFT - 6}" y="${n(y + rowHeight * 0.45)}" text-anchor="end">${where}</text>`);
    }
    if (LEFT >= 80) {
      parts.push(
        `<text x="${LEFT - 6}" y="${n(y + rowHeight * 0.45 + (LEFT >= 130 ? 11 : 0))}" text-anchor="end" ` +
          `fill="#777">${size}</text>`,
      );
    }
    parts.push(
      `<rect x="${LEFT}" y="${y}" width="${plot}" height="${rowHeight}" fill="${FREE}">` +
        `<title>chunk at ${where}, ${size}</title></rect>`,
    );
    for (const block of fitBlocks(chunk, pixels)) {
      // As shares of the chunk, not through plot / size: a valid but tiny chunk size (5e-324) overflows that
      // scale to Infinity, and 0 × Infinity is NaN in the picture.
      const bx = LEFT + share(block.offset, chunk.size) * plot;
      const bw = Math.max(share(block.size, chunk.size) * plot, 0.5);
      const canary = !block.free && block.owner === "canary";
      if (canary) canaries = true;
      const fill = block.free ? FREE : block.owner === "handle" ? HANDLE : canary ? CANARY : USED;
      const label = `${block.free ? "free" : "used"} ${formatBytes(block.size)} at +${block.offset}` +
        (block.owner ? ` (${block.owner})` : "");
      parts.push(
        `<rect x="${n(bx)}" y="${y}" width="${n(bw)}" height="${rowHeight}" fill="${fill}" stroke="${EDGE}" ` +
          `stroke-width="${bw > 3 ? 1 : 0}"><title>${escapeXml(label)}</title></rect>`,
      );
    }
  });
  if (chunks.length === 0) parts.push(`<text x="${textX}" y="${TOP + 14}" fill="#777">no chunks</text>`);
  // The legend, left to right, as far as the width allows (the "more chunks" note takes the right end).
  const legendY = height - 14;
  const more = hidden > 0 ? clipText(`${hidden} more chunk${hidden === 1 ? "" : "s"}`, width - textX - RIGHT, 11) : "";
  const end = width - RIGHT - (more === "" ? 0 : textWidth(more, 11) + 12);
  let x = textX;
  for (const [fill, name] of [[USED, "used"], [HANDLE, "handle"], [FREE, "free"], [CANARY, "canary"]]) {
    if (name === "canary" && !canaries) continue;
    const next = x + 14 + textWidth(name, 11) + 16;
    if (next - 16 > end) break;
    parts.push(
      `<rect x="${x}" y="${legendY - 9}" width="10" height="10" fill="${fill}"${
        fill === FREE ? ` stroke="#999"` : ""
      }/>`,
      `<text x="${x + 14}" y="${legendY}">${name}</text>`,
    );
    x = next;
  }
  if (more !== "") {
    parts.push(`<text x="${width - RIGHT}" y="${legendY}" text-anchor="end" fill="#777">${more}</text>`);
  }
  parts.push(`</svg>`);
  return parts.join("\n");
}

// `part` of `whole` as a share from 0 to 1 (0 for an empty whole or an undefined ratio).
function share(part: number, whole: number): number {
  const ratio = part / whole;
  return ratio > 0 ? Math.min(ratio, 1) : 0;
}
