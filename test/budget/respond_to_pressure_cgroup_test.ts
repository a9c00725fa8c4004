// respondToPressure under real memory pressure (issue 16 item 6): a child in a
// cgroup v1 memory group limited to 384 MiB fills a frame pool, a heap and a
// budgeted cache of native buffers, then grows ballast until the level reaches
// Critical. Each response must make its resident memory fall (RSS read right
// before and after it) by at least half of what it says it freed; after the
// ballast goes, the budget's total comes back and the cache fills again.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { nativeInfo } from "../../mod.ts";
import { makeGroup, removeGroups, runPlaced, runtimeArgv, writableMemoryV1 } from "../pressure/_children.ts";

const MiB = 2 ** 20;
const LIMIT = 384 * MiB;

interface Episode {
  level: number;
  state: string;
  rssBefore: number;
  rssAfter: number;
  freed: number;
}

test("in a 384 MiB cgroup, each pressure response lowers RSS, and the pipeline recovers when pressure goes", async (t) => {
  const where = writableMemoryV1();
  if ("reason" in where) {
    console.log(`skipped: ${where.reason}`);
    t.skip?.(where.reason);
    return;
  }
  const group = `${where.mountPoint}/memkit-respond-${nativeInfo().runtime}-${process.pid}`;
  try {
    makeGroup(group, LIMIT);
  } catch (error) {
    await removeGroups([group]);
    console.log(`skipped: cannot create a memory cgroup (${(error as Error).message})`);
    t.skip?.(`cannot create a memory cgroup: ${(error as Error).message}`);
    return;
  }
  try {
    const script = fileURLToPath(new URL("./fixtures/pressure_pipeline.ts", import.meta.url));
    const child = runPlaced(runtimeArgv(script), { cgroup: group });
    assert.equal(child.status, 0, `child failed (${child.signal ?? child.status}): ${child.stderr}`);
    const seen = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
    const episodes: Episode[] = seen.episodes;
    const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
    for (const e of episodes) {
      console.log(
        `level ${e.level} → ${e.state}: RSS ${mib(e.rssBefore)} → ${mib(e.rssAfter)}, response freed ${mib(e.freed)}`,
      );
    }
    assert.equal(seen.limitBytes, LIMIT);
    assert.equal(seen.physical, LIMIT, "the budget's physical size is the cgroup limit");
    assert.equal(seen.reached, 4, "the ballast took the level to Critical");
    const warning = episodes.find((e) => e.state === "warning");
    const critical = episodes.find((e) => e.state === "critical");
    assert.ok(warning && critical, JSON.stringify(episodes));
    for (const e of [warning, critical]) {
      assert.ok(e.freed > 0, `${e.state} freed something`);
      assert.ok(
        e.rssBefore - e.rssAfter >= e.freed / 2,
        `${e.state}: RSS fell ${mib(e.rssBefore - e.rssAfter)}, the response freed ${mib(e.freed)}`,
      );
    }
    assert.equal(seen.atCritical.budgetTotal, LIMIT / 4);
    assert.ok(seen.atCritical.purgedBytes + seen.atCritical.trimmedBytes > 0);
    assert.ok(seen.atCritical.compactedBytes >= 8 * MiB, "the heap's freed 12 MiB went back");
    assert.ok(seen.atCritical.unmappedFrameBytes > 0, "idle frames were unmapped");
    const { recovered } = seen;
    assert.equal(recovered.state, "normal");
    assert.equal(recovered.budgetTotal, LIMIT / 2);
    assert.ok(recovered.refilled > 0 && recovered.cacheBytes > 0, "the cache takes entries again");
    assert.ok(recovered.rss < critical.rssAfter, "the ballast is gone");
  } finally {
    await removeGroups([group]);
  }
});
