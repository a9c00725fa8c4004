import assert from "node:assert/strict";
import { test } from "node:test";
import { darwinThermalState, linuxThermalState, type ThermalReader } from "../../src/pressure/thermal_state.ts";
import { readThermalState } from "../../mod.ts";

function zones(files: Record<string, string>): ThermalReader {
  return {
    list: (
      dir,
    ) => [
      ...new Set(
        Object.keys(files).filter((p) => p.startsWith(`${dir}/`)).map((p) => p.slice(dir.length + 1).split("/")[0]),
      ),
    ],
    read: (path) => files[path] ?? null,
  };
}

test("linuxThermalState compares the hottest zone with its trip points", () => {
  const z = "/sys/class/thermal/thermal_zone0";
  const trips = {
    [`${z}/trip_point_0_type`]: "passive\n",
    [`${z}/trip_point_0_temp`]: "80000\n",
    [`${z}/trip_point_1_type`]: "hot\n",
    [`${z}/trip_point_1_temp`]: "95000\n",
    [`${z}/trip_point_2_type`]: "critical\n",
    [`${z}/trip_point_2_temp`]: "105000\n",
  };
  const rows: [string, string][] = [["45000", "nominal"], ["80000", "fair"], ["96000", "serious"], [
    "110000",
    "critical",
  ]];
  for (const [temp, expected] of rows) {
    assert.equal(linuxThermalState(zones({ ...trips, [`${z}/temp`]: `${temp}\n` })), expected, temp);
  }
  const two = zones({
    ...trips,
    [`${z}/temp`]: "40000\n",
    "/sys/class/thermal/thermal_zone1/temp": "99000\n",
    "/sys/class/thermal/thermal_zone1/trip_point_0_type": "hot\n",
    "/sys/class/thermal/thermal_zone1/trip_point_0_temp": "90000\n",
  });
  assert.equal(linuxThermalState(two), "serious", "the hottest zone decides");
  assert.equal(linuxThermalState(zones({})), "unknown", "no zones (VMs, containers)");
  assert.equal(linuxThermalState(zones({ [`${z}/temp`]: "garbage" })), "unknown");
});

test("darwinThermalState maps macOS and iOS thermal pressure levels", () => {
  const rows: [number, string][] = [
    [0, "nominal"],
    [1, "fair"],
    [2, "fair"],
    [3, "serious"],
    [4, "critical"],
    [10, "nominal"],
    [20, "fair"],
    [40, "serious"],
    [50, "critical"],
    [-1, "unknown"],
  ];
  for (const [value, expected] of rows) assert.equal(darwinThermalState(value), expected, String(value));
});

test("readThermalState() answers on this machine", () => {
  assert.ok(["nominal", "fair", "serious", "critical", "unknown"].includes(readThermalState()));
});
