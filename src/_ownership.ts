// Which allocator owns each native ArrayBuffer, across all allocators, so a
// free into the wrong allocator or a second free can be named precisely.

/** Live blocks' buffers → the allocator that handed them out. */
export const liveBuffers: WeakMap<ArrayBufferLike, object> = new WeakMap();
/** Buffers detached because their block was freed → the allocator that freed them. */
export const releasedBuffers: WeakMap<ArrayBufferLike, object> = new WeakMap();
