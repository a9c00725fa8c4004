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
  // Two headlines may share a case (push against two baselines): the verdict follows the times, not the index.
  const met = HEADLINES.map((h) =>
    avg.get(`${h.comparison} :: ${h.baseline}`)! / avg.get(`${h.comparison} :: ${h.memkit}`)! >= h.target
  );
  assert.ok(met.includes(true) && met.includes(false));
  assert.match(lines[0], new RegExp(`${met.filter(Boolean).length} of ${HEADLINES.length} targets met \\(12 s`));
  for (const [i, h] of HEADLINES.entries()) {
    const line = lines[i + 1];
    assert.ok(line.startsWith(met[i] ? "✓" : "✗"), line);
    assert.ok(line.includes(`than ${h.baseline}`), line);
    assert.match(line, met[i] ? /\(target .*: met\)$/ : /\(target .*: MISSED\)$/);
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

test("every headline names a comparison and cases registered in bench/", () => {
  const sources = readdirSync(new URL("../bench/", import.meta.url)).filter((f) => f.endsWith("_bench.ts"))
    .map((f) => readFileSync(new URL(`../bench/${f}`, import.meta.url), "utf8")).join("\n");
  for (const h of HEADLINES) {
    for (const name of [h.memkit, h.baseline]) assert.ok(sources.includes(`"${name}"`), `case "${name}" of ${h.what}`);
  }
  const filter = scorecardFilter();
  assert.ok(filter.test(`${HEADLINES[0].comparison} :: ${HEADLINES[0].memkit}`));
  assert.ok(!filter.test(`${HEADLINES[0].comparison} :: something else`));
});
