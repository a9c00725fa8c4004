// profiler.report(path): one self-contained HTML file whose parts follow the
// workload: a block map per allocator, the leaking owner among the suspects,
// suggestions for an under-used array and a fragmented heap, nothing fetched.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "node:test";
import {
  AllocationError,
  Arena,
  BuddyAllocator,
  DebugAllocator,
  DynamicArray,
  FramePool,
  FreeListAllocator,
  MemoryProfiler,
  PoolAllocator,
  ResourceHeap,
  StackAllocator,
} from "../../mod.ts";

test("report(): timeline, heatmap, block maps, leak suspects and suggestions in one file", () => {
  const dir = mkdtempSync(`${tmpdir()}/memkit-report-`);
  try {
    using heap = new FreeListAllocator({ capacity: 64 << 10, growth: "fixed" });
    const blocks = Array.from({ length: 32 }, () => heap.alloc(2000));
    for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]); // fragmentation well above 0.5
    using sparse = new DynamicArray("f64", { capacity: 4096 });
    sparse.push(1); // 1 of 4096 used
    using leaky = new PoolAllocator({ blockSize: 128 });
    using profiler = new MemoryProfiler({ sources: { heap, sparse, leaky } });
    const kept: Uint8Array[] = [];
    for (let tick = 0; tick < 6; tick++) {
      kept.push(leaky.alloc(128));
      profiler.capture({ gc: true });
    }
    const file = profiler.report(`${dir}/report.html`);
    assert.equal(file, `${dir}/report.html`);
    const html = readFileSync(file, "utf8");
    assert.match(html, /^<!DOCTYPE html>/);
    // Self-contained: no script, no stylesheet link, no image or frame fetched from anywhere.
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|src=|@import|url\(/i);
    assert.equal(html.match(/<svg /g)?.length, 2 + 2, "timeline, heatmap, and the two allocators' block maps");
    assert.match(html, /class="timeline"/);
    assert.match(html, /<h3>heap<\/h3>/);
    assert.match(html, /<h3>leaky<\/h3>/);
    assert.doesNotMatch(html, /<h3>sparse<\/h3>/, "an array has no block map");
    assert.match(html, /<tr class="suspect"><td>leaky<\/td>/);
    assert.match(html, /Suspected: memory grew at every step of the last 5 snapshots taken after garbage collection/);
    assert.match(html, /<b>sparse<\/b>: utilization 0 % \(below 25 %\)[^<]*compact\(\)/);
    assert.match(html, /<b>heap<\/b>: fragmentation 0\.\d+ \(above 0\.5\): defragment\(\)/);
    assert.match(html, /<b>leaky<\/b>: grew by 512 B at every step of 5 snapshots/);
    // With the leak fixed and the heap whole again, those suggestions go.
    for (const block of kept) leaky.free(block);
    for (let i = 1; i < blocks.length; i += 2) heap.free(blocks[i]);
    sparse.compact();
    for (let tick = 0; tick < 5; tick++) profiler.capture({ gc: true });
    const after = readFileSync(profiler.report(new URL(`file://${dir}/after.html`)), "utf8");
    assert.doesNotMatch(after, /defragment\(\)|compact\(\)|never freed/);
    assert.match(after, /No leak suspected/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("report(): a missing directory is a platform error and writes nothing", () => {
  using profiler = new MemoryProfiler({ sources: [] });
  profiler.capture();
  const dir = mkdtempSync(`${tmpdir()}/memkit-report-`);
  rmSync(dir, { recursive: true });
  assert.throws(
    () => profiler.report(`${dir}/report.html`),
    (e) => e instanceof AllocationError && e.category === "platform" && /does not exist/.test(e.message),
  );
  assert.equal(existsSync(dir), false);
});

test("report(): a DebugAllocator among the sources gets its block map, its blocks and canaries in it", () => {
  const dir = mkdtempSync(`${tmpdir()}/memkit-report-`);
  try {
    using pool = new PoolAllocator({ blockSize: 256 });
    const debug = new DebugAllocator(pool);
    using profiler = new MemoryProfiler({ sources: { checked: debug } });
    const blocks = [debug.alloc(100), debug.alloc(200)];
    profiler.capture();
    const html = readFileSync(profiler.report(`${dir}/report.html`), "utf8");
    assert.match(html, /<h3>checked<\/h3>/);
    assert.match(html, /checked \(debug\)/, "the block map's title names the allocator's kind");
    assert.equal(html.match(/<title>used (100|200) B at \+16<\/title>/g)?.length, 2, "each block where it is");
    assert.equal(html.match(/<title>used 16 B at \+\d+ \(canary\)<\/title>/g)?.length, 4, "two canaries each");
    for (const block of blocks) debug.free(block);
    debug.dispose();
    const after = readFileSync(profiler.report(`${dir}/after.html`), "utf8");
    assert.match(after, /checked: released, nothing to draw/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("report(): a source holding far more than it uses is told only of methods and options its kind has", () => {
  const dir = mkdtempSync(`${tmpdir()}/memkit-report-`);
  try {
    // Each holds at least 1 MiB and uses under a quarter of it.
    using arena = new Arena({ capacity: 4 << 20 });
    arena.alloc(1024);
    using stack = new StackAllocator({ capacity: 2 << 20 });
    stack.alloc(1024);
    using pool = new PoolAllocator({ blockSize: 64 << 10, blocksPerChunk: 32 });
    pool.alloc(1024);
    using buddy = new BuddyAllocator({ capacity: 4 << 20 });
    buddy.alloc(1024);
    using strings = new FreeListAllocator({ capacity: 8 << 20 });
    strings.alloc(1024);
    using wrapped = new FreeListAllocator({ capacity: 4 << 20 });
    const debug = new DebugAllocator(wrapped);
    debug.alloc(1024);
    using frames = new FramePool();
    frames.acquireFrameSet({ width: 1280, height: 720, bytesPerPixel: 4 })!.release(); // idle frames
    using heap = new ResourceHeap({ capacity: 4 << 20 });
    heap.allocate(4096);
    const sources = { arena, stack, pool, buddy, strings, debug, frames, heap };
    using profiler = new MemoryProfiler({ sources });
    profiler.capture();
    const html = readFileSync(profiler.report(`${dir}/report.html`), "utf8");
    const unescape = (text: string) =>
      text.replace(/&#(\d+);/g, (_, code) => String.fromCharCode(Number(code))).replace(/&quot;/g, '"')
        .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
    const advice = new Map(
      [...html.matchAll(/<li><b>([^<]+)<\/b>: ([^<]*holds [^<]*)<\/li>/g)].map((m) => [m[1], unescape(m[2])]),
    );
    assert.deepEqual([...advice.keys()].sort(), Object.keys(sources).sort(), "each source gets its advice");
    for (const [name, text] of advice) {
      const source = sources[name as keyof typeof sources] as unknown as Record<string, unknown>;
      const methods = [...text.matchAll(/([A-Za-z_]\w*)\(/g)].map((m) => m[1]);
      for (const method of methods) {
        assert.equal(typeof source[method], "function", `${name}: "${text}" names ${method}(), which it has not`);
      }
      assert.doesNotMatch(text, /reset\(\), trim\(\)/, name);
    }
    assert.match(advice.get("arena")!, /reset\("free-all"\)/);
    assert.match(advice.get("frames")!, /trim\(\)/);
    assert.match(advice.get("heap")!, /compact\(\)/);
    assert.doesNotMatch(advice.get("strings")!, /trim|reset/, "a FreeListAllocator has neither");
    debug.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
