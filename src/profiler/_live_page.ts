// The live view's page: self-contained (inline script and styles, nothing
// fetched but its own event stream). It keeps the last 300 snapshots and
// redraws on each: bars of the native total over time with their scale
// (#chart, whose data-count says how many snapshots arrived), and the
// latest bytes per owner (#owners).
export const LIVE_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>memkit live memory</title>
<style>
body { font-family: sans-serif; margin: 20px; color: #222; }
#chart { border: 1px solid #ddd; background: #fff; }
table { border-collapse: collapse; margin-top: 12px; }
td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #eee; }
td.bytes { text-align: right; font-variant-numeric: tabular-nums; }
#status { color: #666; }
</style>
</head>
<body>
<h1>memkit live memory</h1>
<p id="status">waiting for snapshots…</p>
<svg id="chart" width="800" height="240" viewBox="0 0 800 240" data-count="0"></svg>
<table id="owners"><thead><tr><th>owner</th><th>bytes</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const KEEP = 300;
const snapshots = [];
const chart = document.getElementById("chart");
const status = document.getElementById("status");
const body = document.querySelector("#owners tbody");
let received = 0;
const SVG = "http://www.w3.org/2000/svg";
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}
function label(x, y, anchor, text) {
  const t = document.createElementNS(SVG, "text");
  t.setAttribute("x", String(x));
  t.setAttribute("y", String(y));
  t.setAttribute("text-anchor", anchor);
  t.setAttribute("font-size", "12");
  t.setAttribute("fill", "#555");
  t.textContent = text;
  chart.appendChild(t);
}
function draw() {
  while (chart.firstChild) chart.removeChild(chart.firstChild);
  const highest = Math.max(1, ...snapshots.map((s) => s.totalAllocated));
  const width = 800 / KEEP;
  snapshots.forEach((s, i) => {
    const h = (s.totalAllocated / highest) * 200;
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", String(i * width));
    bar.setAttribute("y", String(230 - h));
    bar.setAttribute("width", String(Math.max(width - 0.5, 0.5)));
    bar.setAttribute("height", String(Math.max(h, 1)));
    bar.setAttribute("fill", "#3b6fb6");
    chart.appendChild(bar);
  });
  // The scale: bars are drawn against the highest total shown, which changes as snapshots come and go.
  const first = snapshots[0], seconds = (snapshots[snapshots.length - 1].timestamp - first.timestamp) / 1000;
  label(4, 14, "start", "tallest bar: " + bytes(highest) + " native");
  label(796, 14, "end", "the last " + snapshots.length + " snapshots, " + seconds.toFixed(1) + " s");
  chart.setAttribute("data-count", String(received));
  const last = snapshots[snapshots.length - 1];
  status.textContent = received + " snapshots; latest " + bytes(last.totalAllocated) + " native, RSS " +
    bytes(last.rssBytes) + ", fragmentation " + last.fragmentation.toFixed(2);
  body.textContent = "";
  Object.entries(last.categoryBreakdown).sort((a, b) => b[1] - a[1]).forEach(([owner, n]) => {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = owner;
    const size = document.createElement("td");
    size.className = "bytes";
    size.textContent = bytes(n);
    row.append(name, size);
    body.appendChild(row);
  });
}
const events = new EventSource("events" + location.search);
events.onmessage = (message) => {
  snapshots.push(JSON.parse(message.data));
  if (snapshots.length > KEEP) snapshots.shift();
  received++;
  draw();
};
// Each connection starts with every snapshot the profiler kept: start over rather than draw them twice.
events.onopen = () => { snapshots.length = 0; received = 0; };
// A stream that ends is retried by the browser; the server answers 204 once the profiler is gone, which ends it.
events.onerror = () => {
  status.textContent = (events.readyState === EventSource.CLOSED ? "the profiler stopped" : "disconnected, retrying") +
    " (" + received + " snapshots)";
};
</script>
</body>
</html>
`;
