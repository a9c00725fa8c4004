// The main job's scorecard: how it reads for given mean times (no timing is
// measured here), and that every headline names a comparison and cases the
// benchmark files really register.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { HEADLINES, scorecard, scorecardFilter } from "../bench/scorecard.ts";

test("the scorecard says N× faster or slower than the baseline, the target and a verdict, one line each", () => {
  const avg = new Map<string, number>();
  for (const [i, h] of HEADLINES.entries()) {
    avg.set(`${h.comparison} :: ${h.baseline}`, 1000);
    // Even headlines meet their target twice over; odd ones run at a tenth of it.
    avg.set(`${h.comparison} :: ${h.memkit}`, i % 2 === 0 ? 1000 / (2 * h.target) : 1000 / (h.target / 10));
  }
  const text = scorecard(avg, 12);
  const lines = text.split("\n");
  assert.equal(lines.length, HEADLINES.length + 2);
  // Two headlines may share a case (push against two baselines): the verdict follows the times, not the index;
  // a headline's ceiling case may be another's baseline (then measured, and it decides "out of reach").
  const time = (h: typeof HEADLINES[number], name: string) => avg.get(`${h.comparison} :: ${name}`);
  const verdicts = HEADLINES.map((h) => {
    if (time(h, h.baseline)! / time(h, h.memkit)! >= h.target) return "met";
    const bound = h.ceiling && time(h, h.ceiling.case);
    return bound !== undefined && time(h, h.baseline)! / bound < h.target ? "out of reach" : "MISSED";
  });
  assert.ok(verdicts.includes("met") && verdicts.includes("MISSED"));
  const met = verdicts.filter((v) => v === "met").length, out = verdicts.filter((v) => v === "out of reach").length;
  assert.match(
    lines[0],
    new RegExp(`${met} of ${HEADLINES.length} targets met${out > 0 ? `, ${out} out of reach \\(.*\\)` : ""} \\(12 s`),
  );
  for (const [i, h] of HEADLINES.entries()) {
    const line = lines[i + 1];
    assert.ok(line.startsWith({ met: "✓", MISSED: "✗", "out of reach": "–" }[verdicts[i]]), line);
    assert.ok(line.includes(`than ${h.baseline}`), line);
    assert.match(
      line,
      { met: /\(target .*: met\)$/, MISSED: /\(target .*: MISSED\)$/, "out of reach": /: out of reach here: .*\)$/ }[
        verdicts[i]
      ],
    );
    assert.match(line, / \d[\d,.]*× (faster|slower) than /);
  }
  assert.match(scorecard(new Map(), 1), /not measured/);
});

test("a ratio that rounds to its target is printed with two decimals, so a miss never reads as the target", () => {
  const slower = HEADLINES.find((h) => h.target === 1 / 1.5)!;
  const faster = HEADLINES.find((h) => h.target === 5)!;
  const line = (h: typeof slower, mine: number) => {
    const avg = new Map([[`${h.comparison} :: ${h.baseline}`, 100], [`${h.comparison} :: ${h.memkit}`, mine]]);
    return scorecard(avg, 1).split("\n").find((l) => l.includes(h.what))!;
  };
  assert.match(line(slower, 154), /1\.54× slower .*MISSED/);
  assert.match(line(slower, 146), /1\.46× slower .*met/);
  assert.match(line(slower, 180), /1\.8× slower .*MISSED/);
  assert.match(line(faster, 100 / 4.97), /4\.97× faster .*MISSED/);
  assert.match(line(faster, 100 / 7), /7\.0× faster .*met/);
});

test("a miss reads 'out of reach' only when a case doing less than memkit's misses the target too", () => {
  const h = HEADLINES.find((h) => h.ceiling !== undefined && h.target === 3)!;
  const line = (mine: number, ceiling: number | undefined) => {
    const avg = new Map([[`${h.comparison} :: ${h.baseline}`, 300], [`${h.comparison} :: ${h.memkit}`, mine]]);
    if (ceiling !== undefined) avg.set(`${h.comparison} :: ${h.ceiling!.case}`, ceiling);
    return scorecard(avg, 1).split("\n");
  };
  // The ceiling reaches 2.5× (under 3×), memkit 1.5×: out of reach, counted apart, marked "–".
  const [head, ...rows] = line(200, 120);
  const row = rows.find((l) => l.includes(h.what) && l.includes(`than ${h.baseline}`))!;
  assert.match(row, /^– .*1\.5× faster .*out of reach here: ".*" \(.*\) is 2\.5× faster\)$/);
  assert.match(head, /1 out of reach/);
  // The ceiling meets the target: memkit's miss is a miss.
  assert.match(line(200, 50).find((l) => l.includes(`than ${h.baseline}`))!, /^✗ .*MISSED\)$/);
  // Not measured: a miss.
  assert.match(line(200, undefined).find((l) => l.includes(`than ${h.baseline}`))!, /^✗ .*MISSED\)$/);
  // memkit meets it: met, whatever the ceiling does.
  assert.match(line(90, 120).find((l) => l.includes(`than ${h.baseline}`))!, /^✓ .*met\)$/);
});

test("every headline names a comparison and cases registered in bench/", () => {
  const sources = readdirSync(new URL("../bench/", import.meta.url)).filter((f) => f.endsWith("_bench.ts"))
    .map((f) => readFileSync(new URL(`../bench/${f}`, import.meta.url), "utf8")).join("\n");
  for (const h of HEADLINES) {
    for (const name of [h.memkit, h.baseline, ...(h.ceiling ? [h.ceiling.case] : [])]) {
      assert.ok(sources.includes(`"${name}"`), `case "${name}" of ${h.what}`);
    }
  }
  const filter = scorecardFilter();
  assert.ok(filter.test(`${HEADLINES[0].comparison} :: ${HEADLINES[0].memkit}`));
  assert.ok(!filter.test(`${HEADLINES[0].comparison} :: something else`));
});

test("every cross-thread append case a headline names (ceilings included) is one the append harness runs", async () => {
  const { SHARED_APPEND, sharedAppendNames } = await import("../bench/shared_array_bench.ts");
  const titles = new Set<string>(Object.values(SHARED_APPEND));
  const runs = new Set(sharedAppendNames());
  const named = HEADLINES.filter((h) => titles.has(h.comparison)).flatMap((h) =>
    [h.memkit, h.baseline, ...(h.ceiling ? [h.ceiling.case] : [])].map((name) => `${h.comparison} :: ${name}`)
  );
  assert.ok(named.some((name) => name.includes("their keys checked")), "the records' ceiling is among them");
  for (const name of named) assert.ok(runs.has(name), name);
});
