// A parent's own bulk release (an Arena scope's end or reset(), a StackAllocator's rewind() or reset()) of memory a
// child allocator holds through an Allocator written in JavaScript that forwards to the parent: the child is
// revoked and gives its other chunks (outside the released range) back to the parent. That give-back must wait
// until the parent's release is made (see beginChange in src/alloc/_lease.ts): made while the parent is still
// busy telling its holders, it is refused ("unsupported") and the chunk stays allocated in the parent for good.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Allocator, Arena, PoolAllocator, StackAllocator } from "../../mod.ts";
import { outcome } from "../_helpers.ts";

type Parent = Arena | StackAllocator;

/** An Allocator written in JavaScript forwarding to `parent`, recording what its frees did. */
function forwarding(parent: Parent): { backing: Allocator; frees: string[]; given: Uint8Array[] } {
  const frees: string[] = [];
  const given: Uint8Array[] = [];
  const backing = {
    kind: "system",
    alloc: (size: number, align?: number) => given[given.push(parent.alloc(size, align)) - 1],
    tryAlloc: (size: number, align?: number) => {
      const block = parent.tryAlloc(size, align);
      if (block !== null) given.push(block);
      return block;
    },
    array: () => {
      throw new Error("not used");
    },
    free: (view: ArrayBufferView) => {
      frees.push(outcome(() => parent.free(view)));
    },
    resize: (view: ArrayBufferView, size: number) => parent.resize(view, size),
    owns: (view: ArrayBufferView) => parent.owns(view),
    stats: () => parent.stats(),
  } as unknown as Allocator;
  return { backing, frees, given };
}

type Child = Allocator & { dispose(): void };
const CHILDREN: [string, (backing: Allocator) => { child: Child; grow: () => Uint8Array }][] = [
  ["a PoolAllocator", (backing) => {
    const child = new PoolAllocator({ blockSize: 256, blocksPerChunk: 1, backing });
    return { child, grow: () => child.alloc(256) }; // one chunk per block
  }],
  ["an Arena", (backing) => {
    const child = new Arena({ capacity: 4096, growth: "linear", backing });
    return { child, grow: () => child.alloc(4096) }; // one chunk per block
  }],
];

// Each parent: make it, open the release (a scope, a marker), and release what was taken since.
const PARENTS: [string, () => { parent: Parent; open: () => void; release: () => void }][] = [
  ["an Arena's scope end", () => {
    const parent = new Arena({ capacity: 1 << 16 });
    let scope: { [Symbol.dispose](): void } | null = null;
    return { parent, open: () => void (scope = parent.scope()), release: () => scope![Symbol.dispose]() };
  }],
  ["an Arena's (safety) scope end", () => {
    const parent = new Arena({ capacity: 1 << 16, safety: true });
    let scope: { [Symbol.dispose](): void } | null = null;
    return { parent, open: () => void (scope = parent.scope()), release: () => scope![Symbol.dispose]() };
  }],
  ["a StackAllocator's rewind()", () => {
    const parent = new StackAllocator({ capacity: 1 << 16 });
    let marker: ReturnType<StackAllocator["mark"]> | null = null;
    return { parent, open: () => void (marker = parent.mark()), release: () => parent.rewind(marker!) };
  }],
];

for (const [parentName, makeParent] of PARENTS) {
  for (const [childName, makeChild] of CHILDREN) {
    test(`${childName} over ${parentName.replace(/'s .*/, "")} through a forwarding backing: ${parentName} releases one of its chunks, the other goes back`, () => {
      const { parent, open, release } = makeParent();
      const { backing, frees, given } = forwarding(parent);
      const { child, grow } = makeChild(backing);
      const first = grow(); // outside the range released
      open();
      const second = grow(); // inside it
      assert.equal(given.length, 2, "two chunks");
      const live = parent.stats().liveAllocations;
      release();
      assert.equal(second.length, 0, "the released chunk's views read as length 0");
      assert.equal(first.length, 0, "the revoked child's views all read as length 0");
      assert.equal(outcome(() => grow()), "use-after-free", "the child is revoked");
      assert.deepEqual(frees, ["ok"], "the other chunk went back to the parent once its release was made");
      if (parent instanceof StackAllocator) {
        assert.equal(parent.stats().liveAllocations, 0, "nothing left in the stack");
      } else {
        assert.ok(parent.stats().liveAllocations < live, "the scope's chunk went");
      }
      child.dispose();
      parent.dispose();
    });
  }
}

// A release of everything (reset) revokes the child through both chunks: what it gives back is memory the parent
// already took back, and its frees reach the parent only once the reset is made (never "unsupported").
const RESETS: [string, () => { parent: Parent; reset: () => void }][] = [
  ["an Arena's reset()", () => {
    const parent = new Arena({ capacity: 1 << 16 });
    return { parent, reset: () => parent.reset() };
  }],
  ['an Arena\'s reset("free-all")', () => {
    const parent = new Arena({ capacity: 1 << 16, safety: true });
    return { parent, reset: () => parent.reset("free-all") };
  }],
  ["an Arena's reset() with a scope open", () => {
    const parent = new Arena({ capacity: 1 << 16 });
    const scope = parent.scope();
    void scope;
    return { parent, reset: () => parent.reset() };
  }],
  ["a StackAllocator's reset()", () => {
    const parent = new StackAllocator({ capacity: 1 << 16 });
    return { parent, reset: () => parent.reset() };
  }],
];

for (const [parentName, makeParent] of RESETS) {
  for (const [childName, makeChild] of CHILDREN) {
    test(`${childName} over ${parentName.replace(/'s .*/, "")} through a forwarding backing: ${parentName} revokes it, and nothing it gives back is refused`, () => {
      const { parent, reset } = makeParent();
      const { backing, frees } = forwarding(parent);
      const { child, grow } = makeChild(backing);
      const views = [grow(), grow()];
      reset();
      views.forEach((view, i) => assert.equal(view.length, 0, `view ${i} outlived the reset`));
      assert.equal(outcome(() => grow()), "use-after-free", "the child is revoked");
      assert.ok(!frees.includes("unsupported"), `a give-back reached the parent while it was busy: ${frees}`);
      assert.equal(parent.stats().liveAllocations, 0);
      child.dispose();
      parent.dispose();
    });
  }
}
