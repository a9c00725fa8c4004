/**
 * Finds, builds and caches libmemkit.
 *
 * Order: `MEMKIT_NATIVE=0` disables it; `MEMKIT_LIB` names a library to load
 * (failure is an error, since the user asked for it); otherwise the C source
 * next to this module (a local file, or fetched from the module's remote URL
 * as a JSR user has it) is compiled once with the system C compiler into
 * `<cache>/memkit/<version>-<key>/`, where the key hashes the source and the
 * compiler flags. Every attempt is recorded, so a failed load says which
 * paths and compilers were tried and why.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { granted, readEnv } from "./host.ts";
import type { PlatformConstants } from "./platform.ts";
import { MEMKIT_SYMBOLS } from "./symbols.ts";
import type { FfiAdapter, MemkitLibrary } from "./types.ts";
import { VERSION } from "./version.ts";

/** The ABI libmemkit must report (MEMKIT_ABI_VERSION in memkit.h). */
export const EXPECTED_ABI = 5;

/** Compiler flags; part of the cache key. */
export const COMPILE_FLAGS: readonly string[] = ["-O3", "-shared", "-fPIC", "-ffp-contract=off"];

/** The outcome of looking for libmemkit. */
export interface LibraryLoad {
  readonly library: MemkitLibrary | null;
  readonly path: string | null;
  /** Why no library was loaded: every path and compiler tried. */
  readonly error: string | null;
}

/** Options for {@linkcode loadLibmemkit}, mainly for `deno task build` and tests. */
export interface LoadOptions {
  /** Compile even when a cached build exists. */
  readonly rebuild?: boolean;
  /** Where the C sources are (default: this module's directory). */
  readonly sourceBase?: URL;
}

class Attempts {
  readonly lines: string[] = [];
  add(what: string, why: unknown): void {
    // Deno's dlopen error repeats its own prefix ("Could not open library: Could not open library: ...").
    const text = (why instanceof Error ? why.message : String(why)).replace(/(Could not open library: )\1+/, "$1");
    this.lines.push(`  - ${what}: ${text.split("\n").slice(0, 6).join("\n      ")}`);
  }
  toString(): string {
    return `libmemkit could not be loaded; tried:\n${this.lines.join("\n")}`;
  }
}

function openLibrary(adapter: FfiAdapter, path: string): MemkitLibrary {
  if (!granted({ name: "ffi", path })) throw new Error("no FFI permission (run Deno with --allow-ffi)");
  const library = adapter.open(path, MEMKIT_SYMBOLS) as unknown as MemkitLibrary;
  const abi = library.mk_abi_version();
  if (abi !== EXPECTED_ABI) throw new Error(`ABI version ${abi}, expected ${EXPECTED_ABI}`);
  return library;
}

/** The per-user cache directory memkit builds into. */
export function cacheRoot(os: string): string | null {
  const explicit = readEnv("MEMKIT_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = readEnv("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "memkit");
  if (!granted({ name: "sys", kind: "homedir" }) && !granted({ name: "env", variable: "HOME" })) {
    return null;
  }
  let home: string;
  try {
    home = readEnv("HOME") ?? homedir();
  } catch {
    return null;
  }
  if (!home) return null;
  return os === "darwin" ? join(home, "Library", "Caches", "memkit") : join(home, ".cache", "memkit");
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function readLocalSources(base: URL): { c: string; h: string } {
  return {
    c: readFileSync(fileURLToPath(new URL("memkit.c", base)), "utf8"),
    h: readFileSync(fileURLToPath(new URL("memkit.h", base)), "utf8"),
  };
}

async function readSources(base: URL): Promise<{ c: string; h: string }> {
  if (base.protocol === "file:") return readLocalSources(base);
  const [c, h] = await Promise.all([new URL("memkit.c", base), new URL("memkit.h", base)].map(async (url) => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
    return await response.text();
  }));
  return { c, h };
}

function compilers(): string[] {
  const list = [readEnv("CC"), "cc", "gcc", "clang"].filter((c): c is string => !!c);
  return [...new Set(list)];
}

// Compiler processes in flight. They do not keep the process alive (a short
// program exits at once and the build still finishes and lands in the cache),
// unless someone waits for them (holdBuilds).
const running = new Set<ChildProcess>();
let holding = 0;

/** While `on`, builds in flight keep the process alive (nativeReady() is waiting for one). */
export function holdBuilds(on: boolean): void {
  holding += on ? 1 : -1;
  for (const child of running) {
    if (holding > 0) child.ref();
    else child.unref();
  }
}

// The absolute path `command` runs from (PATH searched as a shell would), or
// null when there is none: Deno's spawn of a missing command throws where no
// handler can catch it, so memkit never spawns one it cannot find.
function findCommand(command: string): string | null {
  if (command.includes("/")) return existsSync(command) ? command : null;
  const path = readEnv("PATH");
  if (path === undefined) return command; // cannot search: let the spawn say
  for (const dir of path.split(":")) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  return null;
}

// Runs `command`, resolving with its exit code; its output goes to files, so
// the process holds no pipe that would keep this one alive.
function start(
  command: string,
  args: string[],
  cwd: string,
  env?: Record<string, string>,
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const found = findCommand(command);
    if (found === null) {
      reject(new Error(`spawn ${command} ENOENT (not found)`));
      return;
    }
    let child: ChildProcess;
    try {
      child = spawn(found, args, { cwd, stdio: "ignore", env: env && { ...process.env, ...env } });
    } catch (error) {
      reject(error); // Deno throws here for a command it cannot find; Node and Bun emit "error"
      return;
    }
    running.add(child);
    if (holding === 0) child.unref();
    child.on("error", (error) => {
      running.delete(child);
      reject(error);
    });
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    });
  });
}

/**
 * Compiles the sources in the private directory `work` into `libFile`. Where
 * a shell may be run, the shell renames the result into place itself, so a
 * program that exits mid-build still leaves a finished library in the cache;
 * the rename is atomic, so no process ever loads a half-written file, and each
 * build reads its own copy of the sources, so none compiles half-written ones.
 */
async function compile(work: string, libFile: string, attempts: Attempts): Promise<boolean> {
  const object = join(work, "libmemkit.tmp");
  const log = join(work, "cc.log");
  const flags = [...COMPILE_FLAGS, "-o", object, join(work, "memkit.c"), "-lm"];
  let shell = granted({ name: "run", command: "sh" }) && granted({ name: "env" });
  for (const cc of compilers()) {
    if (!granted({ name: "run", command: cc })) {
      attempts.add(cc, "no permission to run it (run Deno with --allow-run)");
      continue;
    }
    try {
      // Paths reach the shell as variables, never as script text.
      let code: number | null | undefined;
      if (shell) {
        code = await start("sh", ["-c", '"$0" "$@" 2>"$MK_LOG" && mv -f "$MK_OBJECT" "$MK_LIB"', cc, ...flags], work, {
          MK_LOG: log,
          MK_OBJECT: object,
          MK_LIB: libFile,
        }).catch(() => {
          shell = false; // no sh here: run the compiler directly (the rename then needs this process alive)
          return undefined;
        });
      }
      if (code === undefined) code = await start(cc, flags, work);
      if (code !== 0) throw new Error(readLog(log) || `exited with code ${code}`);
      if (!shell) renameSync(object, libFile);
      return true;
    } catch (error) {
      attempts.add(`compile with ${cc}`, error);
    }
  }
  return false;
}

function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}

// Build directories older than an hour are from builds whose process died
// before the shell could rename (or without a shell): remove them.
function removeStaleBuilds(dir: string): void {
  try {
    for (const name of readdirSync(dir)) {
      if (!name.startsWith("build-")) continue;
      const path = join(dir, name);
      if (Date.now() - statSync(path).mtimeMs > 3600_000) rmSync(path, { recursive: true, force: true });
    }
  } catch {
    // nothing to clean, or not ours to clean
  }
}

/** What a synchronous look for libmemkit found, and how to build it when it found no build. */
export interface LibraryLookup extends LibraryLoad {
  /** Builds (compiles into the cache) and opens libmemkit; null when there is nothing to build. */
  readonly build: (() => Promise<LibraryLoad>) | null;
}

/**
 * Looks for libmemkit without blocking on a build: `MEMKIT_NATIVE=0`,
 * `MEMKIT_LIB`, then the cached build for these sources (a synchronous
 * dlopen). When there is none, `build` compiles it asynchronously. Never
 * throws unless `MEMKIT_LIB` is set and unusable.
 */
export function findLibmemkit(
  adapter: FfiAdapter,
  platform: PlatformConstants,
  arch: string,
  options: LoadOptions = {},
): LibraryLookup {
  const none = (error: string): LibraryLookup => ({ library: null, path: null, error, build: null });
  if (readEnv("MEMKIT_NATIVE") === "0") return none("disabled by MEMKIT_NATIVE=0");
  const explicit = readEnv("MEMKIT_LIB");
  if (explicit) {
    try {
      return { library: openLibrary(adapter, explicit), path: explicit, error: null, build: null };
    } catch (error) {
      const attempts = new Attempts();
      attempts.add(`MEMKIT_LIB=${explicit}`, error);
      throw new Error(`${attempts}\nUnset MEMKIT_LIB to let memkit build its own library.`, {
        cause: error,
      });
    }
  }

  const attempts = new Attempts();
  const base = options.sourceBase ?? new URL("./", import.meta.url);
  const root = cacheRoot(platform.os);
  if (!root) {
    attempts.add(
      "cache directory",
      granted({ name: "env" })
        ? "no MEMKIT_CACHE_DIR, XDG_CACHE_HOME or HOME is set"
        : "no permission to read MEMKIT_CACHE_DIR, XDG_CACHE_HOME or HOME (run Deno with --allow-env)",
    );
    return none(attempts.toString());
  }

  // A remote (published) source never changes under one URL, so its URL is the
  // key and a cached build is found without fetching; local sources are hashed.
  const remote = base.protocol !== "file:";
  let sources: { c: string; h: string } | null = null;
  if (!remote && !granted({ name: "read", path: fileURLToPath(base) })) {
    // Asked first, so Deno never prompts (a terminal would wait for an answer).
    attempts.add(fileURLToPath(base), "no permission to read the C source (run Deno with --allow-read)");
    return none(attempts.toString());
  }
  try {
    if (!remote) sources = readLocalSources(base);
  } catch (error) {
    attempts.add(`read ${new URL("memkit.c", base)}`, error);
    return none(attempts.toString());
  }
  const identity = remote ? base.href : `${sources!.c}\n${sources!.h}`;
  const key = sha256Hex(`${COMPILE_FLAGS.join(" ")}\n${identity}`).slice(0, 16);
  const dir = join(root, `${VERSION}-${key}-${platform.os}-${arch}`);
  const libFile = join(dir, `libmemkit${platform.sharedLibrarySuffix}`);

  if (!granted({ name: "read", path: dir }) || !granted({ name: "write", path: dir })) {
    attempts.add(dir, "no permission to read and write the cache (run Deno with --allow-read --allow-write)");
    return none(attempts.toString());
  }
  if (!options.rebuild && existsSync(libFile)) {
    try {
      return { library: openLibrary(adapter, libFile), path: libFile, error: null, build: null };
    } catch (error) {
      attempts.add(libFile, error); // A stale or broken build: rebuild it below.
    }
  } else if (!options.rebuild) {
    attempts.add(libFile, "not built yet");
  }

  const build = async (): Promise<LibraryLoad> => {
    // A private directory per build: concurrent first uses never read each other's half-written sources.
    const work = join(dir, `build-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    try {
      sources ??= await readSources(base);
      mkdirSync(work, { recursive: true });
      removeStaleBuilds(dir);
      writeFileSync(join(work, "memkit.c"), sources.c);
      writeFileSync(join(work, "memkit.h"), sources.h);
    } catch (error) {
      attempts.add(`prepare ${work}`, error);
      return { library: null, path: null, error: attempts.toString() };
    }
    try {
      if (!(await compile(work, libFile, attempts))) {
        return { library: null, path: null, error: attempts.toString() };
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    try {
      return { library: openLibrary(adapter, libFile), path: libFile, error: null };
    } catch (error) {
      attempts.add(libFile, error);
      return { library: null, path: null, error: attempts.toString() };
    }
  };
  return { library: null, path: null, error: attempts.toString(), build };
}

/** Finds or builds libmemkit, waiting for the build; never throws unless `MEMKIT_LIB` is set and unusable. */
export async function loadLibmemkit(
  adapter: FfiAdapter,
  platform: PlatformConstants,
  arch: string,
  options: LoadOptions = {},
): Promise<LibraryLoad> {
  const found = findLibmemkit(adapter, platform, arch, options);
  return found.build === null ? found : await found.build();
}
