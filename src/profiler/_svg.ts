// Small helpers shared by the pictures (heatmap, block map, report): text
// escaping, byte formatting and colour ramps. SVG is written as strings so
// the pictures need nothing from a DOM and render the same everywhere.

/**
 * Text safe inside SVG/HTML elements and attributes. Characters XML 1.0
 * does not allow at all (controls other than tab, newline and return, lone
 * surrogates, U+FFFE and U+FFFF) become U+FFFD: one of them in an owner's
 * name would otherwise make the whole SVG file unreadable.
 */
export function escapeXml(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.toWellFormed().replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, "\uFFFD")
    .replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * `a + b` for sizes the pictures add up: each is at most Number.MAX_VALUE (the inputs are checked), but a
 * sum of them may not be, and an Infinity would come out as NaN after a division. Held at Number.MAX_VALUE.
 */
export function addBytes(a: number, b: number): number {
  const sum = a + b;
  return sum > Number.MAX_VALUE ? Number.MAX_VALUE : sum < -Number.MAX_VALUE ? -Number.MAX_VALUE : sum;
}

/** A colour from pale yellow (0) through orange to dark red (1): the heat ramp. */
export function heat(t: number): string {
  // NaN as 0 (Math.max passes it on): the stops are never read at a NaN index.
  const x = t > 0 ? Math.min(1, t) : 0;
  // Three stops: #fff7bc, #fe9929, #99000d.
  const stops = [[255, 247, 188], [254, 153, 41], [153, 0, 13]];
  const at = x * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(at));
  const f = at - i;
  const mix = (k: number) => Math.round(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f);
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}

/** A number fixed to 2 decimals without trailing zeros, for coordinates. */
export function n(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/**
 * About how wide `text` is drawn, in pixels, at `size` pixels in a sans-serif face: the pictures
 * cannot measure text (no DOM), so they lay it out with this and leave a margin. An average glyph is
 * about 0.6 em (DejaVu Sans, the widest common default, and Arial/Liberation Sans are narrower).
 */
export function textWidth(text: string, size: number, bold = false): number {
  return text.length * size * (bold ? 0.66 : 0.6);
}

/** `text` shortened with "…" to about `room` pixels at `size` (see `textWidth`). */
export function clipText(text: string, room: number, size: number, bold = false): string {
  if (textWidth(text, size, bold) <= room) return text;
  const max = Math.max(1, Math.floor(room / (size * (bold ? 0.66 : 0.6))));
  return max >= text.length ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** "1 snapshot", "2 snapshots". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
