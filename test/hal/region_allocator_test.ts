// RegionAllocator: four regions with their own alignment (vertex 16, uniform
// 256, audio 4, texture 64), the allocate* methods sized from struct()
// layouts, deallocate into whichever region holds a view, the memory report,
// chains to a backing, and dispose.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  AllocationError,
  type Allocator,
  Arena,
  FailingAllocator,
  nativeInfo,
  RegionAllocator,
  struct,
  SystemAllocator,
} from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const any = (v: unknown) => v as never;
const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
const Vertex = struct({ position: "f32x3", color: "f32x4" }); // 32 bytes, align 16
const Uniforms = struct({ model: "f32x4x4", tint: "f32x4" }); // 80 bytes
const Big = struct({ a: "f32x4x4", b: "f32x4x4", c: "f32x4x4", d: "f32x4x4", e: "f32" }); // 272 bytes

test("each region aligns every block to its own alignment, whatever size comes before", () => {
  using regions = new RegionAllocator();
  const next = xorshift32(7);
  for (const [name, alignment] of [["vertex", 16], ["uniform", 256], ["audio", 4], ["texture", 64]] as const) {
    const region = regions.region(name);
    assert.equal(region.kind, "free-list");
    const blocks = Array.from({ length: 50 }, () => region.alloc(1 + below(next, 700)));
    for (const block of blocks) assert.equal(addressOf(block) % alignment, 0, `${name}: ${block.length} bytes`);
    assert.equal(addressOf(region.alloc(10, 1024)) % 1024, 0, `${name}: a larger alignment is honoured`);
    for (const block of blocks) region.free(block);
  }
  // In a fresh heap, blocks of a few bytes each take a 256-byte slot apiece in the uniform region and pack at
  // 16 bytes in the vertex region.
  using packed = new RegionAllocator();
  const u = [0, 1, 2].map(() => addressOf(packed.region("uniform").alloc(8))).sort((a, b) => a - b);
  assert.deepEqual([u[1] - u[0], u[2] - u[1]], [256, 256]);
  const v = [0, 1, 2].map(() => addressOf(packed.region("vertex").alloc(8))).sort((a, b) => a - b);
  assert.deepEqual([v[1] - v[0], v[2] - v[1]], [16, 16]);
});

test("allocateVertexData / allocateUniformData / allocateAudioData size blocks from the layouts", () => {
  using regions = new RegionAllocator();
  const vertices = regions.allocateVertexData(1000, Vertex);
  assert.equal(vertices.length, 1000 * 32);
  assert.equal(addressOf(vertices) % 16, 0);
  const uniforms = regions.allocateUniformData(10, Uniforms);
  assert.equal(uniforms.length, 10 * 256, "one 256-byte slot per record");
  assert.equal(addressOf(uniforms) % 256, 0);
  const bigUniforms = regions.allocateUniformData(3, Big);
  assert.equal(bigUniforms.length, 3 * 512, "a 272-byte record takes two slots");
  const samples = regions.allocateAudioData(4096);
  assert.ok(samples instanceof Float32Array);
  assert.equal(samples.length, 4096);
  samples[4095] = 0.5;
  const report = regions.getMemoryReport();
  assert.equal(report.totalAllocated, 32_000 + 2560 + 1536 + 16_384);
  assert.deepEqual(
    [
      report.regions.vertex.liveAllocations,
      report.regions.uniform.liveAllocations,
      report.regions.audio.allocatedBytes,
    ],
    [1, 2, 16_384],
  );
  assert.equal(report.regions.texture.capacityBytes, 0, "a region never used holds nothing");
  for (const data of [vertices, uniforms, bigUniforms, samples]) regions.deallocate(data);
  assert.equal(regions.getMemoryReport().totalAllocated, 0);
});

test("allocateAlignedBuffer: typed arrays for scalar types, bytes for layouts, at the asked alignment", () => {
  using regions = new RegionAllocator();
  const floats = regions.allocateAlignedBuffer(1000, 64, "f32");
  assert.ok(floats instanceof Float32Array);
  assert.equal(floats.length, 1000);
  const wide = regions.allocateAlignedBuffer(10, 4096, "u64");
  assert.ok(wide instanceof BigUint64Array);
  assert.equal(addressOf(wide) % 4096, 0);
  const records = regions.allocateAlignedBuffer(5, 128, Vertex);
  assert.ok(records instanceof Uint8Array);
  assert.equal(records.length, 160);
  assert.equal(addressOf(records) % 128, 0);
  const low = regions.allocateAlignedBuffer(3, 1, "u8");
  assert.equal(addressOf(low) % 64, 0, "never below the texture region's 64");
  assert.equal(regions.getMemoryReport().regions.texture.liveAllocations, 4);
  for (const data of [floats, wide, records, low]) regions.deallocate(data);
});

test("deallocate: twice, foreign and interior views are reported; fragmentation shows in the report", () => {
  using regions = new RegionAllocator({ capacity: 1 << 16 });
  const blocks = Array.from({ length: 16 }, () => regions.allocateVertexData(32, Vertex));
  for (let i = 0; i < blocks.length; i += 2) regions.deallocate(blocks[i]);
  const report = regions.getMemoryReport();
  assert.ok(report.regions.vertex.fragmentation > 0, "holes between live blocks");
  assert.ok(report.fragmentation > 0);
  assert.throws(() => regions.deallocate(blocks[0]), isCategory("double-free"));
  assert.throws(() => regions.deallocate(new Uint8Array(8)), isCategory("invalid-free"));
  assert.throws(() => regions.deallocate(blocks[1].subarray(16)), isCategory("invalid-free"));
  for (let i = 1; i < blocks.length; i += 2) regions.deallocate(blocks[i]);
});

test("regions draw chunks from a backing; its release reaches every region's views", () => {
  const arena = new Arena({ capacity: 8 << 20 });
  const regions = new RegionAllocator({ backing: arena, capacity: 1 << 16 });
  const vertices = regions.allocateVertexData(10, Vertex);
  const samples = regions.allocateAudioData(100);
  arena.reset();
  assert.deepEqual([vertices.length, samples.length], [0, 0]);
  assert.throws(() => regions.allocateAudioData(10), isCategory("use-after-free"));
  regions.dispose();
  arena.dispose();
});

test("dispose: views read as length 0, later calls throw use-after-free", () => {
  const regions = new RegionAllocator();
  const vertices = regions.allocateVertexData(10, Vertex);
  regions.dispose();
  assert.equal(vertices.length, 0);
  assert.throws(() => regions.allocateVertexData(1, Vertex), isCategory("use-after-free"));
  assert.throws(() => regions.deallocate(vertices), isCategory("use-after-free"));
  assert.throws(() => regions.region("vertex").alloc(8), isCategory("use-after-free"));
  assert.equal(regions.getMemoryReport().totalAllocated, 0);
});

test("a region's allocator cannot be disposed on its own: it goes with its RegionAllocator", () => {
  using regions = new RegionAllocator({ capacity: 4096 });
  const samples = regions.allocateAudioData(4);
  samples[3] = 1;
  const audio = regions.region("audio"); // its type has dispose() and [Symbol.dispose] (finding 6: it had neither)
  for (const dispose of [() => audio.dispose(), () => audio[Symbol.dispose]()]) {
    assert.throws(dispose, (e: unknown) => {
      assert.ok(e instanceof AllocationError);
      assert.equal(e.category, "unsupported");
      assert.equal(
        e.message,
        "Cannot dispose the audio region's allocator: it goes when its RegionAllocator is disposed " +
          "(regions.dispose()); give its blocks back with deallocate",
      );
      return true;
    });
  }
  // Refused, so nothing changed: the region and its blocks live on.
  assert.equal(samples[3], 1);
  regions.deallocate(regions.allocateAudioData(4));
  assert.equal(regions.getMemoryReport().regions.audio.liveAllocations, 1);
  regions.deallocate(samples);
});

test("a disposed RegionAllocator: every call is use-after-free naming it; its report reads zeros", () => {
  const regions = new RegionAllocator({ capacity: 4096 });
  const vertices = regions.allocateVertexData(2, Vertex);
  const audio: Allocator & { dispose(): void } = regions.region("audio");
  regions.dispose();
  const useAfterFree = (e: unknown) =>
    e instanceof AllocationError && e.category === "use-after-free" && /RegionAllocator was disposed/.test(e.message);
  const calls: [string, () => unknown][] = [
    ["region", () => regions.region("texture")],
    ["allocateVertexData", () => regions.allocateVertexData(1, Vertex)],
    ["allocateUniformData", () => regions.allocateUniformData(1, Vertex)],
    ["allocateAudioData", () => regions.allocateAudioData(1)],
    ["allocateAlignedBuffer", () => regions.allocateAlignedBuffer(1, 64, "f32")],
    ["deallocate", () => regions.deallocate(vertices)],
    ["a region's alloc", () => audio.alloc(8)],
    ["a region's free", () => audio.free(new Uint8Array(8))],
  ];
  for (const [name, call] of calls) assert.throws(call, useAfterFree, name);
  assert.throws(() => regions.region(any("normals")), TypeError, "a bad name is still named first");
  assert.equal(regions.getMemoryReport().totalCapacity, 0);
  assert.throws(() => audio.dispose(), (e: unknown) => e instanceof AllocationError && e.category === "unsupported");
  regions.dispose(); // a second call does nothing
});

// Finding 5 of the fourth new user: deallocate given another view over a block's first byte (a typed array
// made over it) freed the whole block. It takes only the view the block was handed out as now, as
// MemoryInterface.deallocate takes only an allocation's own bytes.
test("deallocate takes only the view a block was handed out as; another view is refused, changing nothing", () => {
  using regions = new RegionAllocator({ capacity: 1 << 16 });
  const blocks: [string, ArrayBufferView][] = [
    ["uniform", regions.allocateUniformData(4, Uniforms)],
    ["vertex", regions.allocateVertexData(8, Vertex)],
    ["audio", regions.allocateAudioData(64)],
    ["texture", regions.allocateAlignedBuffer(16, 64, "u32")],
    ["texture", regions.allocateAlignedBuffer(4, 64, Vertex)],
    ["vertex", regions.region("vertex").alloc(128)],
    ["audio", regions.region("audio").array(Int16Array, 32)],
  ];
  const report = JSON.stringify(regions.getMemoryReport());
  for (const [name, block] of blocks) {
    const { buffer, byteOffset, byteLength } = block;
    const others = [
      new Float32Array(buffer, byteOffset, 4),
      new Uint8Array(buffer, byteOffset, byteLength),
      new DataView(buffer, byteOffset, 8),
    ];
    for (const view of others) {
      if (view.constructor === block.constructor && view.byteLength === byteLength) {
        assert.notEqual(view, block); // the same kind and length, still another view
      }
      assert.throws(() => regions.deallocate(view), (e: unknown) => {
        assert.ok(isCategory("double-free")(e), String(e));
        const message = (e as Error).message;
        const where = `the live ${byteLength}-byte block of the ${name} region at 0x${addressOf(block).toString(16)}`;
        assert.ok(message.includes(`is another view over ${where}`), message);
        assert.match(message, /pass the view the allocate call returned$/);
        return true;
      });
      assert.equal(JSON.stringify(regions.getMemoryReport()), report, "a refused call changes nothing");
    }
  }
  for (const [, block] of blocks) regions.deallocate(block);
  assert.equal(regions.getMemoryReport().totalAllocated, 0);
});

test("a view kept from a block given back never frees the block that took its place", () => {
  using regions = new RegionAllocator({ capacity: 1 << 16 });
  const first = regions.allocateAudioData(64);
  regions.deallocate(first);
  const second = regions.allocateAudioData(64);
  assert.equal(addressOf(second), addressOf(first), "the place is reused (what makes this case matter)");
  assert.throws(() => regions.deallocate(first), isCategory("double-free"));
  assert.equal(regions.getMemoryReport().regions.audio.liveAllocations, 1);
  const third = regions.allocateAudioData(64);
  assert.notEqual(addressOf(third), addressOf(second), "the live block was not freed");
  regions.deallocate(third);
  regions.deallocate(second);
});

test("a region's own free keeps the Allocator rule: any view from the block's first byte", () => {
  using regions = new RegionAllocator({ capacity: 1 << 16 });
  const vertex = regions.region("vertex");
  const block = vertex.alloc(64);
  vertex.free(new Float32Array(block.buffer, block.byteOffset, 4));
  assert.equal(regions.getMemoryReport().regions.vertex.liveAllocations, 0);
  // Its place, taken again, is the new block's: deallocate takes that block's own view.
  const again = regions.allocateVertexData(2, Vertex);
  regions.deallocate(again);
  const resized = vertex.resize(vertex.alloc(32), 4000);
  regions.deallocate(resized);
  assert.equal(regions.getMemoryReport().totalAllocated, 0);
});

// Finding 7: after the backing released the regions' memory, allocateVertexData threw "Cannot allocate: the
// FreeListAllocator lost its memory: Arena.reset() released it", naming a call and an allocator the program
// never used.
test("errors from a region's heap name the call the program made, with the heap's error as cause", () => {
  const arena = new Arena({ capacity: 1 << 20 });
  const regions = new RegionAllocator({ backing: arena, capacity: 4096 });
  const vertices = regions.allocateVertexData(10, Vertex);
  for (const name of ["uniform", "audio", "texture"] as const) regions.region(name).free(regions.region(name).alloc(8));
  arena.reset();
  const calls: [string, () => unknown][] = [
    ["allocate vertex data (32 bytes aligned to 16 in the vertex region)", () => regions.allocateVertexData(1, Vertex)],
    [
      "allocate uniform data (256 bytes aligned to 256 in the uniform region)",
      () => regions.allocateUniformData(1, Vertex),
    ],
    ["allocate audio data (4 bytes aligned to 4 in the audio region)", () => regions.allocateAudioData(1)],
    [
      "allocate an aligned buffer (4 bytes aligned to 64 in the texture region)",
      () => regions.allocateAlignedBuffer(1, 64, "f32"),
    ],
    ["allocate 8 bytes aligned to 16 in the vertex region", () => regions.region("vertex").alloc(8)],
  ];
  for (const [op, call] of calls) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof AllocationError);
      assert.equal(e.category, "use-after-free");
      assert.equal(
        e.message,
        `Cannot ${op}: the ${
          /in the (\w+) region/.exec(op)![1]
        } region's heap lost its memory: Arena.reset() released it`,
      );
      assert.ok(e.cause instanceof AllocationError && e.cause.category === "use-after-free", "the heap's own error");
      assert.match((e.cause as Error).message, /FreeListAllocator/);
      return true;
    }, op);
  }
  assert.equal(vertices.length, 0);
  regions.dispose();
  arena.dispose();
});

test("a backing that refuses: the out-of-memory names the program's call and the sizes", () => {
  const regions = new RegionAllocator({
    backing: new FailingAllocator(new SystemAllocator(), { failAfter: 1 }),
    capacity: 4096,
  });
  regions.allocateVertexData(10, Vertex); // the vertex heap's first chunk
  assert.throws(() => regions.allocateVertexData(1000, Vertex), (e: unknown) => {
    assert.ok(isCategory("out-of-memory")(e));
    assert.match(
      (e as Error).message,
      /^Cannot allocate vertex data \(32000 bytes aligned to 16 in the vertex region\): the backing, a FailingAllocator, refused/,
    );
    assert.ok((e as Error).cause instanceof AllocationError);
    return true;
  });
  assert.throws(() => regions.allocateAudioData(10), (e: unknown) => {
    assert.ok(isCategory("out-of-memory")(e));
    assert.match(
      (e as Error).message,
      /^Cannot allocate audio data \(40 bytes aligned to 4 in the audio region\): the audio region's heap could not take its first chunk: the backing, a FailingAllocator, refused/,
    );
    return true;
  });
  regions.dispose();
});

// Adversarial finding (hal3, 1): a refused allocation made the region's heap and kept its first 1 MiB chunk (the
// report's totalCapacity went 0 → 1048576 after a call that threw), and a size no heap can hold was refused in
// the terms of the inner FreeListAllocator ("would exceed maxCapacity"), an option the program never saw. Now a
// size no region can hold (more than one view holds: "unsupported", as the interface says it; more than a heap
// holds: RangeError) is refused before a heap is made, and a region makes its heap only with a first chunk
// that holds the block asked for.
test("a size no region can hold is refused before a heap is made, naming the call and what to do", () => {
  using regions = new RegionAllocator();
  const before = JSON.stringify(regions.getMemoryReport());
  const Slot = struct({ m: "f32x4x4", n: "f32x4x4", o: "f32x4x4", p: "f32x4x4" }); // 256 bytes, one slot
  const { maxViewBytes } = nativeInfo();
  const calls: [string, () => unknown][] = [
    [
      "allocate an aligned buffer (140737488355328 bytes aligned to 64 in the texture region)",
      () => regions.allocateAlignedBuffer(2 ** 44, 64, "u64"),
    ],
    [
      "allocate vertex data (140737488355328 bytes aligned to 64 in the vertex region)",
      () => regions.allocateVertexData(2 ** 41, struct({ m: "f32x4x4" }, { align: 64 })),
    ],
    [
      "allocate uniform data (140737488355328 bytes aligned to 256 in the uniform region)",
      () => regions.allocateUniformData(2 ** 39, Slot),
    ],
    [
      "allocate 140737488355328 bytes aligned to 64 in the texture region",
      () => regions.region("texture").alloc(2 ** 47),
    ],
  ];
  if (maxViewBytes < 2 ** 40) {
    // Bun: 5 GiB of samples, more than one ArrayBuffer holds (it was "out-of-memory", the heap made).
    calls.push([
      "allocate audio data (5368709120 bytes aligned to 4 in the audio region)",
      () => regions.allocateAudioData(5 * 2 ** 28),
    ]);
  }
  for (const [op, call] of calls) {
    assert.throws(call, (e: unknown) => {
      const message = (e as Error).message;
      if (maxViewBytes < 2 ** 47) {
        assert.ok(isCategory("unsupported")(e), message);
        assert.match(message, /nativeInfo\(\)\.maxViewBytes/);
      } else {
        assert.ok(e instanceof RangeError, message);
        assert.match(message, /more than the \d+ bytes a region's heap holds/);
      }
      assert.ok(message.startsWith(`Cannot ${op} `), message);
      assert.match(message, /allocate smaller blocks/, "what to do");
      assert.doesNotMatch(message, /maxCapacity|FreeListAllocator/, "nothing the program never saw");
      return true;
    }, op);
    assert.equal(JSON.stringify(regions.getMemoryReport()), before, `${op}: no heap was made`);
  }
  assert.equal(regions.region("texture").tryAlloc(2 ** 47), null);
  assert.equal(JSON.stringify(regions.getMemoryReport()), before, "tryAlloc made no heap either");
  // A block whose chunk a heap could hold, but the system cannot give (2^47 bytes at 16: all of the address
  // space): refused by the backing when the heap would take its first chunk, so no heap either.
  const systemRefuses: [string, () => unknown][] = [
    [
      "allocate 140737488355328 bytes aligned to 16 in the vertex region",
      () => regions.region("vertex").alloc(2 ** 47),
    ],
    [
      "allocate audio data (140737488355328 bytes aligned to 4 in the audio region)",
      () => regions.allocateAudioData(2 ** 45),
    ],
  ];
  for (const [op, call] of systemRefuses) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof AllocationError, String(e));
      assert.ok((e as Error).message.startsWith(`Cannot ${op}`), (e as Error).message);
      return true;
    }, op);
    assert.equal(JSON.stringify(regions.getMemoryReport()), before, `${op}: a refused first chunk makes no heap`);
  }
  const samples = regions.allocateAudioData(16); // the regions still serve
  assert.equal(regions.getMemoryReport().regions.audio.capacityBytes, 1 << 20, "the first chunk is 1 MiB as before");
  regions.deallocate(samples);
});

test("a backing that refuses the chunk a first block needs leaves the region without a heap", () => {
  using arena = new Arena({ capacity: 2 << 20, maxCapacity: 2 << 20 });
  using regions = new RegionAllocator({ backing: arena });
  const before = JSON.stringify(regions.getMemoryReport());
  assert.throws(() => regions.allocateAudioData(1 << 20), (e: unknown) => {
    assert.ok(isCategory("out-of-memory")(e), String(e));
    assert.match(
      (e as Error).message,
      /^Cannot allocate audio data \(4194304 bytes aligned to 4 in the audio region\): /,
    );
    assert.ok((e as Error).cause instanceof AllocationError);
    return true;
  });
  assert.equal(JSON.stringify(regions.getMemoryReport()), before, "no heap, no chunk kept");
  assert.equal(arena.stats().allocatedBytes, 0, "the backing holds nothing for the regions");
  const first = regions.allocateAudioData(3 << 17); // 1.5 MiB of samples: a first chunk the arena can give
  assert.equal(first.length, 3 << 17);
  assert.ok(regions.getMemoryReport().regions.audio.capacityBytes > 1 << 20, "the first chunk holds the block");
  regions.deallocate(first);
});
