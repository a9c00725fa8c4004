// The "Dreamcast" pattern of the Flight HAL design: a whole game in a 16 MiB
// budget, with a pool of sprites (fixed-size blocks: no fragmentation) and a
// linear per-frame buffer (bump allocation, released at once at the end of
// each frame). Run: `deno run -A examples/hal_dreamcast.ts` or `bun examples/hal_dreamcast.ts`.
import { MemoryAlignment, MemoryInterface, struct } from "../mod.ts"; // "@memkit/memkit" in your project

const Sprite = struct({ position: "f32x2", velocity: "f32x2", frame: "u16", flags: "u16" });
using memory = new MemoryInterface({ budgets: { system: 16 << 20 } }); // all of it: system memory, 16 MiB

// 1,024 sprites from the pool allocator: one cache-line-aligned block each.
const sprites = Array.from({ length: 1024 }, () =>
  memory.allocate({
    size: Sprite.size,
    type: "system",
    alignment: MemoryAlignment.Cache,
    preferredAllocator: "pool",
  }));
console.log(`sprites: ${sprites.length} × ${Sprite.size} B from the ${sprites[0].allocator} allocator`);

for (let frame = 0; frame < 60; frame++) {
  // A 256 KiB frame buffer from the linear allocator (the arena), gone at endFrame().
  const frameBuffer = memory.allocate({
    size: 256 << 10,
    type: "system",
    alignment: MemoryAlignment.Cache,
    preferredAllocator: "arena",
  });
  const positions = new Float32Array(frameBuffer.bytes.buffer, frameBuffer.bytes.byteOffset, 2 * sprites.length);
  for (let i = 0; i < sprites.length; i++) {
    const sprite = new Float32Array(sprites[i].bytes.buffer, sprites[i].bytes.byteOffset, 4);
    sprite[0] += sprite[2]; // position += velocity
    positions[2 * i] = sprite[0];
  }
  memory.endFrame();
  if (frame === 0) console.log(`frame buffer: ${frameBuffer.bytes.length} bytes after endFrame()`);
}

const stats = memory.getMemoryStats("system");
console.log(`budget ${stats.totalBytes >> 20} MiB, in use ${stats.usedBytes} B, peak ${stats.peakUsedBytes} B`);
for (const sprite of sprites) memory.deallocate(sprite);
console.log(`after freeing the sprites: ${memory.getMemoryStats("system").usedBytes} B in use`);
