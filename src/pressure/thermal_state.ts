/**
 * How hot the machine runs, where the platform says.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { granted, native } from "../../ffi/native.ts";

/**
 * Thermal pressure, in NSProcessInfo's terms: `fair` means throttling may
 * start, `serious` that it has, `critical` that the system is about to act.
 * `unknown` where the platform exposes nothing (VMs and most containers).
 *
 * @example
 * ```ts
 * import { readThermalState, type ThermalState } from "@memkit/memkit";
 *
 * const state: ThermalState = readThermalState();
 * if (state === "serious" || state === "critical") console.log("do less work");
 * ```
 */
export type ThermalState = "nominal" | "fair" | "serious" | "critical" | "unknown";

/** Lists a directory, reads a file: injectable for tests. */
export interface ThermalReader {
  list(dir: string): string[];
  read(path: string): string | null;
}

// Permission is asked first, so Deno never prompts (a terminal would wait for an answer).
const fsReader: ThermalReader = {
  list(dir) {
    if (!granted({ name: "read", path: dir })) return [];
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  read(path) {
    if (!granted({ name: "read", path })) return null;
    try {
      return readFileSync(path, "utf8");
    } catch {
      return null;
    }
  },
};

/**
 * Linux thermal zones: the hottest zone against its own trip points
 * (`critical` → critical, `hot` → serious, `passive` → fair).
 */
export function linuxThermalState(reader: ThermalReader = fsReader): ThermalState {
  const base = "/sys/class/thermal";
  let state: ThermalState = "unknown";
  const rank: Record<ThermalState, number> = { unknown: -1, nominal: 0, fair: 1, serious: 2, critical: 3 };
  for (const zone of reader.list(base).filter((n) => n.startsWith("thermal_zone"))) {
    const temp = Number(reader.read(`${base}/${zone}/temp`)?.trim());
    if (!Number.isFinite(temp)) continue;
    let zoneState: ThermalState = "nominal";
    for (let i = 0; i < 32; i++) {
      const type = reader.read(`${base}/${zone}/trip_point_${i}_type`)?.trim();
      if (type === undefined) break;
      const trip = Number(reader.read(`${base}/${zone}/trip_point_${i}_temp`)?.trim());
      if (!Number.isFinite(trip) || temp < trip) continue;
      const reached: ThermalState = type === "critical"
        ? "critical"
        : type === "hot"
        ? "serious"
        : type === "passive"
        ? "fair"
        : "nominal";
      if (rank[reached] > rank[zoneState]) zoneState = reached;
    }
    if (rank[zoneState] > rank[state]) state = zoneState;
  }
  return state;
}

/**
 * macOS's `com.apple.system.thermalpressurelevel` value as a state: 0
 * nominal, 1 moderate and 2 heavy → fair, 3 trapping → serious, 4 sleeping →
 * critical; values from 10 up are iOS's scale (tens).
 */
export function darwinThermalState(value: number): ThermalState {
  const level = value >= 10 ? Math.floor(value / 10) - 1 : value;
  if (!Number.isFinite(level) || level < 0) return "unknown";
  if (level === 0) return "nominal";
  if (level <= 2) return "fair";
  if (level === 3) return "serious";
  return "critical";
}

let thermalToken: number | null = null;

// macOS: the value libnotify holds for com.apple.system.thermalpressurelevel
// (the route RPCS3 uses: no Objective-C, one shared-memory read).
function darwinThermal(): ThermalState {
  const libc = native.libc;
  if (!libc.notify_register_check || !libc.notify_get_state) return "unknown";
  if (thermalToken === null) {
    const token = new Int32Array(1);
    const name = new TextEncoder().encode("com.apple.system.thermalpressurelevel\0");
    if (libc.notify_register_check(name, new Uint8Array(token.buffer)) !== 0) return "unknown";
    thermalToken = token[0];
  }
  const state = new BigUint64Array(1);
  if (libc.notify_get_state(thermalToken, new Uint8Array(state.buffer)) !== 0) return "unknown";
  return darwinThermalState(Number(state[0]));
}

/**
 * Reads the thermal state: Linux thermal zones, macOS's thermal pressure
 * level through libnotify (untested: this project has no Mac), else "unknown".
 *
 * @returns The state.
 *
 * @example
 * ```ts
 * import { readThermalState } from "@memkit/memkit";
 *
 * console.log(readThermalState()); // "unknown" in most VMs
 * ```
 */
export function readThermalState(): ThermalState {
  if (native.os === "linux") return linuxThermalState();
  if (native.os === "darwin") return darwinThermal();
  return "unknown";
}
