// memkit as a JSR user gets it: only the files `deno publish --dry-run` lists,
// served over HTTP (Deno) or copied to a directory (Bun), with the native
// library built from that copy of the C source into a fresh cache.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { nativeInfo } from "../mod.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

function publishedFiles(): string[] {
  const result = spawnSync(join(root, "node_modules/.bin/deno"), ["publish", "--dry-run", "--allow-dirty"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  assert.equal(result.status, 0, result.stderr);
  const files = [...`${result.stdout}\n${result.stderr}`.matchAll(/^\s+file:\/\/(\S+) \(/gm)].map((m) =>
    m[1].slice(root.length)
  );
  assert.ok(files.includes("mod.ts") && files.includes("ffi/memkit.c"), files.join(", "));
  return files;
}

test("the published files hold no test hooks and cite no documents outside the package", () => {
  for (const file of publishedFiles()) {
    const text = readFileSync(join(root, file), "utf8");
    assert.doesNotMatch(text, /\bexport function (spyOnNativeCalls|useKernels)\b/, `${file} exports a test hook`);
    assert.doesNotMatch(
      text,
      /\.\.\/shared\/|shared\/reference|shared\/seeds|DESIGN\.md/,
      `${file} cites a document outside`,
    );
    assert.doesNotMatch(
      text,
      /MufiZ|MetalHead|RVF design|allocator anchors/i,
      `${file} uses a name a reader cannot know`,
    );
  }
});

test("every relative link and picture in a published Markdown file points to a published file", () => {
  const files = publishedFiles();
  const published = new Set(files);
  for (const file of files.filter((f) => f.endsWith(".md"))) {
    const text = readFileSync(join(root, file), "utf8");
    // [text](target) and ![alt](target), outside code blocks; a target with a scheme or only an anchor is not a file.
    const prose = text.replace(/^```[\s\S]*?^```/gm, "");
    for (const [, target] of prose.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const resolved = join(dirname(file), target).replaceAll("\\", "/");
      assert.ok(published.has(resolved), `${file} links to ${target}, which is not published`);
    }
  }
});

function copyPublished(files: string[], target: string): void {
  for (const file of files) {
    mkdirSync(dirname(join(target, file)), { recursive: true });
    cpSync(join(root, file), join(target, file));
  }
}

const CONSUMER = (moduleUrl: string) => `
import { nativeReady, simd, SystemAllocator } from ${JSON.stringify(moduleUrl)};
const allocator = new SystemAllocator();
const block = allocator.alloc(4096, 64);
block.fill(7);
const other = block.slice();
other[3000] = 1;
const found = simd.compare(block, other);
allocator.free(block);
// The first use started the native build in the background; wait for it.
console.log(JSON.stringify({ ...(await nativeReady()), found, detached: block.length === 0 }));
`;

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: { ...process.env, NO_COLOR: "1", ...env } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => resolve({ code, out }));
  });
}

/** Starts test/fixtures/static_server.ts over `dir` in a child of this runtime; resolves once it listens. */
function serveDirectory(dir: string): Promise<{ port: number; stop: () => void }> {
  const script = join(root, "test/fixtures/static_server.ts");
  const argv = nativeInfo().runtime === "deno"
    ? ["run", "-A", `--config=${join(root, "deno.json")}`, script, dir]
    : ["run", script, dir];
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout!.on("data", (chunk) => {
      text += chunk;
      const port = /\{"port":(\d+)\}/.exec(text)?.[1];
      if (port) resolve({ port: Number(port), stop: () => child.kill("SIGKILL") });
    });
    child.on("error", reject);
    child.on("close", (status) => reject(new Error(`the file server exited (${status}) before listening: ${text}`)));
  });
}

function lastJson(out: string): Record<string, unknown> {
  const line = out.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  assert.ok(line, out);
  return JSON.parse(line);
}

test("a Deno user importing the published files over HTTP gets a working memkit with a fresh native build", async () => {
  const work = mkdtempSync(`${tmpdir()}/memkit-jsr-`);
  const served = join(work, "served");
  copyPublished(publishedFiles(), served);
  // The server runs in a child process of this runtime (test/fixtures/static_server.ts says why).
  const server = await serveDirectory(served);
  try {
    const port = server.port;
    writeFileSync(join(work, "consumer.ts"), CONSUMER(`http://127.0.0.1:${port}/mod.ts`));
    // JSR rewrites bare specifiers to npm: at publish time; an import map does the same here.
    writeFileSync(join(work, "import_map.json"), JSON.stringify({ imports: { zod: "npm:zod@^4.6.7" } }));
    const cache = join(work, "cache");
    const result = await run(join(root, "node_modules/.bin/deno"), [
      "run",
      "-A",
      "--no-config",
      `--import-map=${join(work, "import_map.json")}`,
      join(work, "consumer.ts"),
    ], { MEMKIT_CACHE_DIR: cache });
    assert.equal(result.code, 0, result.out);
    const info = lastJson(result.out);
    assert.equal(info.runtime, "deno");
    assert.equal(info.found, 3000);
    assert.equal(info.detached, true);
    assert.ok(String(info.library).startsWith(cache), `library ${info.library}: ${info.libraryError}`);
    assert.equal(info.simd, nativeInfo().simd);
  } finally {
    server.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test("a Bun user importing a copy of the published files gets a working memkit with a fresh native build", async () => {
  const work = mkdtempSync(`${tmpdir()}/memkit-jsr-`);
  try {
    const copy = join(work, "memkit");
    copyPublished(publishedFiles(), copy);
    // The user's project has installed memkit's npm dependency (zod).
    symlinkSync(join(root, "node_modules"), join(work, "node_modules"));
    writeFileSync(join(work, "consumer.ts"), CONSUMER("./memkit/mod.ts"));
    const cache = join(work, "cache");
    const result = await run(join(root, "node_modules/.bin/bun"), ["run", join(work, "consumer.ts")], {
      MEMKIT_CACHE_DIR: cache,
    });
    assert.equal(result.code, 0, result.out);
    const info = lastJson(result.out);
    assert.equal(info.runtime, "bun");
    assert.equal(info.found, 3000);
    assert.equal(info.detached, true);
    assert.ok(String(info.library).startsWith(cache), `library ${info.library}: ${info.libraryError}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
