// Bad input and misuse of mappings (issue 10): windows and copies out of
// range, views while the protection is below read-write, every method after
// unmap(), and mappings larger than one ArrayBuffer. Each row gets its
// documented error without a native call and leaves the mapping usable.
import assert from "node:assert/strict";
import { native } from "../../ffi/native.ts";
import { mapFile, mapPages, type Mapping } from "../../mod.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const live = (): Mapping => mapPages(8192);

function protectedAs(protection: "read" | "none"): () => Mapping {
  return () => {
    const mapping = mapPages(8192);
    mapping.bytes[0] = 1;
    mapping.protect(protection);
    return mapping;
  };
}

function unmapped(): Mapping {
  const mapping = mapPages(8192);
  mapping.unmap();
  return mapping;
}

// Checks the mapping still works after the row, then releases it.
function stillUsable(mapping: Mapping): void {
  if (mapping.byteLength === 0) return; // unmapped on purpose
  mapping.protect("read-write");
  mapping.view(0, 2)[1] = 2;
  assert.equal(mapping.read(0, 2)[1], 2);
  mapping.unmap();
}

const argumentRows: Omit<BadInputRow<Mapping>, "arrange" | "after">[] = [
  { name: "view('0')", act: (m) => m.view(any("0")), expect: TypeError },
  { name: "view(0, '4')", act: (m) => m.view(0, any("4")), expect: TypeError },
  { name: "view(0, 4n)", act: (m) => m.view(0, any(4n)), expect: TypeError },
  { name: "view(-1)", act: (m) => m.view(-1), expect: RangeError },
  { name: "view(1.5)", act: (m) => m.view(1.5), expect: RangeError },
  { name: "view(NaN)", act: (m) => m.view(NaN), expect: RangeError },
  { name: "view(0, 8193) of 8192 bytes", act: (m) => m.view(0, 8193), expect: RangeError },
  { name: "view(8192, 1) of 8192 bytes", act: (m) => m.view(8192, 1), expect: RangeError },
  { name: "view(4096, 4097) of 8192 bytes", act: (m) => m.view(4096, 4097), expect: RangeError },
  { name: "view(2**53)", act: (m) => m.view(2 ** 53), expect: RangeError },
  { name: "window('0')", act: (m) => m.window(any("0")), expect: TypeError },
  { name: "window(0, 4n)", act: (m) => m.window(0, any(4n)), expect: TypeError },
  { name: "window(-1)", act: (m) => m.window(-1), expect: RangeError },
  { name: "window(0.5, 1)", act: (m) => m.window(0.5, 1), expect: RangeError },
  { name: "window(4096, 4097) of 8192 bytes", act: (m) => m.window(4096, 4097), expect: RangeError },
  { name: "window(8193) of 8192 bytes", act: (m) => m.window(8193), expect: RangeError },
  { name: "read('0')", act: (m) => m.read(any("0")), expect: TypeError },
  { name: "read(0, -1)", act: (m) => m.read(0, -1), expect: RangeError },
  { name: "read(4096, 4097) of 8192 bytes", act: (m) => m.read(4096, 4097), expect: RangeError },
  { name: "protect('rw')", act: (m) => m.protect(any("rw")), expect: TypeError },
  { name: "protect(null)", act: (m) => m.protect(any(null)), expect: TypeError },
];
const rows: BadInputRow<Mapping>[] = argumentRows.map((row) => ({ ...row, arrange: live, after: stillUsable }));

for (const protection of ["read", "none"] as const) {
  rows.push(
    {
      name: `bytes while the protection is "${protection}"`,
      arrange: protectedAs(protection),
      act: (m) => m.bytes,
      expect: "unsupported",
      after: stillUsable,
    },
    {
      name: `view(0, 16) while the protection is "${protection}"`,
      arrange: protectedAs(protection),
      act: (m) => m.view(0, 16),
      expect: "unsupported",
      after: stillUsable,
    },
    {
      name: `window(0, 16) while the protection is "${protection}"`,
      arrange: protectedAs(protection),
      act: (m) => m.window(0, 16),
      expect: "unsupported",
      after: stillUsable,
    },
  );
}
rows.push({
  name: `read() while the protection is "none"`,
  arrange: protectedAs("none"),
  act: (m) => m.read(0, 1),
  expect: "unsupported",
  after: stillUsable,
});

for (
  const [name, act] of [
    ["protect('read')", (m: Mapping) => m.protect("read")],
    ["advise('normal')", (m: Mapping) => m.advise("normal")],
    ["lock()", (m: Mapping) => m.lock()],
    ["unlock()", (m: Mapping) => m.unlock()],
    ["sync()", (m: Mapping) => m.sync()],
    ["view(0, 1)", (m: Mapping) => m.view(0, 1)],
    ["window(0, 1)", (m: Mapping) => m.window(0, 1)],
    ["read(0, 1)", (m: Mapping) => m.read(0, 1)],
  ] as const
) {
  rows.push({
    name: `${name} after unmap()`,
    arrange: unmapped,
    act,
    expect: "use-after-free",
    after: (m) => {
      assert.equal(m.bytes.length, 0);
      m.unmap(); // still a no-op
    },
  });
}

// Bun holds at most 4 GiB in one ArrayBuffer; Deno's limit (2^53 - 1) is past any mapping.
if (native.maxViewBytes < 2 ** 33) {
  const huge = () => {
    const mapping = mapPages(2 ** 33, { protection: "none" }); // reserved: no RAM
    mapping.protect("read-write");
    return mapping;
  };
  rows.push(
    {
      name: "bytes of an 8 GiB mapping",
      arrange: huge,
      act: (m) => m.bytes,
      expect: "unsupported",
      after: stillUsable,
    },
    {
      name: "view(0, 4 GiB + 1) of an 8 GiB mapping",
      arrange: huge,
      act: (m) => m.view(0, 2 ** 32 + 1),
      expect: "unsupported",
      after: stillUsable,
    },
    {
      name: "window(0, 4 GiB + 1) of an 8 GiB mapping",
      arrange: huge,
      act: (m) => m.window(0, 2 ** 32 + 1),
      expect: "unsupported",
      after: stillUsable,
    },
  );
}

badInputTable("Mapping", rows);

badInputTable<string>("mapFile", [
  {
    name: "mapFile(path, { shared: 1 })",
    arrange: () => "/etc/hostname",
    act: (path) => mapFile(path, { shared: any(1) }),
    expect: TypeError,
  },
  {
    name: "mapFile(path, { mode: 'r' })",
    arrange: () => "/etc/hostname",
    act: (path) => mapFile(path, any({ mode: "r" })),
    expect: TypeError,
  },
]);
