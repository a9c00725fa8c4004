// heatmap() and blockMap() looked at: each SVG is rendered to PNG with resvg
// (WebAssembly, the same in Deno and Bun), and the test checks the image's
// size and that its pixels say what the data says: the hottest cell is dark
// red where the largest owner peaked, an empty cell grey, a used block blue
// and a free block grey at their own x positions.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Resvg } from "@resvg/resvg-wasm";
import { resvgReady } from "./_resvg.ts";
import {
  blockMap,
  DebugAllocator,
  FreeListAllocator,
  heatmap,
  MemoryProfiler,
  PoolAllocator,
  SystemAllocator,
} from "../../mod.ts";

before(() => resvgReady());

interface Picture {
  width: number;
  height: number;
  pixels: Uint8Array;
  png: Uint8Array;
}

function render(svg: string): Picture {
  const resvg = new Resvg(svg, { fitTo: { mode: "original" }, font: { loadSystemFonts: false } });
  const image = resvg.render();
  const picture = { width: image.width, height: image.height, pixels: image.pixels, png: image.asPng() };
  image.free();
  resvg.free();
  return picture;
}

const rgb = (p: Picture, x: number, y: number) => {
  const i = (Math.round(y) * p.width + Math.round(x)) * 4;
  return [p.pixels[i], p.pixels[i + 1], p.pixels[i + 2]];
};
const attr = (svg: string, name: string) => Number(new RegExp(`<svg[^>]* ${name}="(\\d+)"`).exec(svg)![1]);
const nonWhite = (p: Picture) => {
  let count = 0;
  for (let i = 0; i < p.pixels.length; i += 4) {
    if (p.pixels[i] < 250 || p.pixels[i + 1] < 250 || p.pixels[i + 2] < 250) count++;
  }
  return count;
};

test("heatmap: a PNG of the expected size whose hottest cell is where the largest owner peaked", () => {
  using small = new PoolAllocator({ blockSize: 64 });
  using big = new SystemAllocator();
  using profiler = new MemoryProfiler({ sources: { small, big } });
  const held: Uint8Array[] = [];
  let bigBlock: Uint8Array | null = null;
  for (let tick = 0; tick < 20; tick++) {
    held.push(small.alloc(64));
    if (tick === 10) bigBlock = big.alloc(1 << 20); // one peak period: ticks 10-13
    if (tick === 14) big.free(bigBlock!);
    profiler.capture();
  }
  const svg = heatmap(profiler.snapshots, { width: 600, rowHeight: 20 });
  const picture = render(svg);
  assert.equal(picture.width, 600);
  assert.equal(picture.height, attr(svg, "height"));
  assert.equal(picture.png.slice(1, 4).reduce((s, c) => s + String.fromCharCode(c), ""), "PNG");
  assert.ok(nonWhite(picture) > picture.width * picture.height * 0.2, "the picture is not blank");
  // Rows: "big" first (largest peak). Columns: 20 over the plot from x=150 to 600-16.
  const cell = (600 - 150 - 16) / 20;
  const rowTop = 44 + 24;
  const at = (row: number, column: number) => rgb(picture, 150 + (column + 0.5) * cell, rowTop + row * 20 + 9);
  const [r, g, b] = at(0, 11);
  assert.ok(r > 120 && g < 40 && b < 40, `big at its peak is dark red: ${[r, g, b]}`);
  assert.deepEqual(at(0, 2), [242, 242, 242], "big before it allocated: an empty cell");
  const [r2, g2] = at(1, 19);
  assert.ok(r2 > 240 && g2 > 200, `small is pale: ${at(1, 19)}`);
  // The peak period is marked once, over the columns 10-13.
  assert.equal(svg.match(/class="peak"/g)?.length, 1);
  const peak = /class="peak" x="([\d.]+)"[^>]* width="([\d.]+)"/.exec(svg)!;
  assert.ok(Math.abs(Number(peak[1]) - (150 + 10 * cell)) < 0.1);
  assert.ok(Math.abs(Number(peak[2]) - 4 * cell) < 0.1);
  for (const block of held) small.free(block);
});

test("blockMap: a PNG of the expected size with used blocks blue and free blocks grey where they are", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 16, growth: "fixed" });
  const blocks = Array.from({ length: 16 }, () => heap.alloc(4096 - 64));
  for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]);
  const dump = heap.dump();
  const svg = blockMap(dump, { width: 800, rowHeight: 30 });
  const picture = render(svg);
  assert.equal(picture.width, 800);
  assert.equal(picture.height, attr(svg, "height"));
  assert.ok(nonWhite(picture) > 800 * 30 * 0.5);
  const chunk = dump.chunks[0];
  const scale = (800 - 130 - 16) / chunk.size;
  const y = 48 + 15;
  let used = 0, free = 0;
  for (const block of chunk.blocks) {
    if (block.size * scale < 8) continue; // only blocks wide enough to sample inside their edges
    const [r, g, b] = rgb(picture, 130 + (block.offset + block.size / 2) * scale, y);
    if (block.free) {
      assert.deepEqual([r, g, b], [232, 232, 232], `free block at +${block.offset}`);
      free++;
    } else {
      assert.deepEqual([r, g, b], [0x3b, 0x6f, 0xb6], `used block at +${block.offset}`);
      used++;
    }
  }
  assert.ok(used >= 8 && free >= 8, `alternating blocks sampled: ${used} used, ${free} free`);
  for (let i = 1; i < blocks.length; i += 2) heap.free(blocks[i]);
});

test("blockMap: more chunks than maxChunks are counted, not drawn", () => {
  using system = new SystemAllocator();
  const blocks = Array.from({ length: 5 }, () => system.alloc(100));
  const svg = blockMap(system.dump(), { maxChunks: 2 });
  assert.match(svg, /3 more chunks/);
  assert.equal(render(svg).height, attr(svg, "height"));
  for (const block of blocks) system.free(block);
});

test("blockMap of a DebugAllocator: each block a bar, the user's bytes blue between orange canaries", () => {
  using pool = new PoolAllocator({ blockSize: 256 });
  const debug = new DebugAllocator(pool, { stackTraceFrames: 2 });
  const blocks = [debug.alloc(224), debug.alloc(100), debug.alloc(160)];
  const dump = debug.dump();
  const svg = blockMap(dump, { width: 800, rowHeight: 30 });
  assert.match(svg, /debug allocator/);
  assert.match(svg, />canary<\/text>/, "the legend names the guard bytes");
  assert.match(svg, /used 224 B at \+16 \([^)]*pictures_test\.ts:\d+:\d+/, "a block names where it was allocated");
  const picture = render(svg);
  assert.equal(picture.width, 800);
  assert.equal(picture.height, attr(svg, "height"));
  assert.equal(dump.chunks.length, 3);
  dump.chunks.forEach((chunk, r) => {
    const scale = (800 - 130 - 16) / chunk.size;
    const y = 48 + r * (30 + 6) + 15;
    const at = (offset: number) => rgb(picture, 130 + offset * scale, y);
    const [front, user, back] = chunk.blocks;
    assert.deepEqual(at(front.offset + front.size / 2), [0xe6, 0xa2, 0x3c], `front canary of chunk ${r}`);
    assert.deepEqual(at(user.offset + user.size / 2), [0x3b, 0x6f, 0xb6], `user bytes of chunk ${r}`);
    assert.deepEqual(at(back.offset + back.size / 2), [0xe6, 0xa2, 0x3c], `back canary of chunk ${r}`);
  });
  for (const block of blocks) debug.free(block);
  debug.deinit();
});
