// The profiler's JSDoc renders in `deno doc` as written: each tag on its own
// line, each @default value whole (see test/budget/_jsdoc_tags.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { misplacedTags } from "../budget/_jsdoc_tags.ts";

test("JSDoc of src/profiler: each tag begins its own line, and every @default renders whole", () => {
  assert.deepEqual(misplacedTags("src/profiler"), []);
});
