// The budget family's JSDoc renders in `deno doc` as written: each tag on its
// own line, each @default value whole (see _jsdoc_tags.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { misplacedTags } from "./_jsdoc_tags.ts";

test("JSDoc of src/budget: each tag begins its own line, and every @default renders whole", () => {
  assert.deepEqual(misplacedTags("src/budget"), []);
});
