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
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { granted, readEnv } from "./host.ts";
import type { PlatformConstants } from "./platform.ts";
import { MEMKIT_SYMBOLS } from "./symbols.ts";
import type { FfiAdapter, MemkitLibrary } from "./types.ts";
import { VERSION } from "./version.ts";

/** The ABI libmemkit must report (MEMKIT_ABI_VERSION in memkit.h). */
export const EXPECTED_ABI = 2;

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

// The compiler as a child process that does not block this thread (the build
// runs while the program goes on with the TypeScript kernels).
function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: 120_000, encoding: "utf8" }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(stderr && stderr.trim().length > 0 ? new Error(stderr.trim()) : error);
    });
  });
}

async function compile(dir: string, libFile: string, attempts: Attempts): Promise<boolean> {
  for (const cc of compilers()) {
    if (!granted({ name: "run", command: cc })) {
      attempts.add(cc, "no permission to run it (run Deno with --allow-run)");
      continue;
    }
    const temporary = `${libFile}.${Date.now()}-${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await run(cc, [...COMPILE_FLAGS, "-o", temporary, join(dir, "memkit.c"), "-lm"], dir);
      // Rename is atomic, so concurrent first uses never load a half-written file.
      renameSync(temporary, libFile);
      return true;
    } catch (error) {
      attempts.add(`compile with ${cc}`, error);
      try {
        rmSync(temporary, { force: true });
      } catch { /* nothing to clean */ }
    }
  }
  return false;
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
    try {
      sources ??= await readSources(base);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "memkit.c"), sources.c);
      writeFileSync(join(dir, "memkit.h"), sources.h);
    } catch (error) {
      attempts.add(`prepare ${dir}`, error);
      return { library: null, path: null, error: attempts.toString() };
    }
    if (!(await compile(dir, libFile, attempts))) {
      return { library: null, path: null, error: attempts.toString() };
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
