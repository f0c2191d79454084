// `baton load --report report.html`: one self-contained page (Chart.js inlined, no network)
// with the run over time: rate, failures, p50/p99 latency and the version split.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { FAILURE_KINDS, type LoadResult } from './runner.js';

/** The single executable's asset name for Chart.js (scripts/build-binary.js embeds it). */
export const CHART_ASSET = 'chart.umd.min.js';

function chartJs(): string {
  if (isSea()) return getAsset(CHART_ASSET, 'utf8');
  // The UMD build sits next to the CommonJS entry (the package exports no path to it).
  const require = createRequire(import.meta.url);
  return readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
}

/** Text safe inside <script>: no early "</script", no HTML comment openers. */
function scriptSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function renderReport(r: LoadResult, title = 'Baton load report'): string {
  const data = JSON.stringify({
    t: r.timeline.map((s) => s.t),
    sent: r.timeline.map((s) => s.sent),
    ok: r.timeline.map((s) => s.ok),
    failed: r.timeline.map((s) => s.failed),
    p50: r.timeline.map((s) => s.p50),
    p99: r.timeline.map((s) => s.p99),
    versions: [...new Set(r.timeline.flatMap((s) => Object.keys(s.versions)))].map((v) => ({
      v,
      n: r.timeline.map((s) => s.versions[v] ?? 0),
    })),
  }).replace(/</g, '\\u003c');
  const failures = FAILURE_KINDS.filter((k) => r.failures[k] > 0)
    .map((k) => `${k} ${r.failures[k]}`)
    .join(', ');
  const verdict =
    r.failed === 0
      ? '<b class="ok">0 failed requests</b>'
      : `<b class="bad">${r.failed} failed requests</b> (${esc(failures)})`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:24px}
.card{border:1px solid #ddd;border-radius:8px;padding:12px}.ok{color:#17803d}.bad{color:#c62828}
td{padding:2px 12px 2px 0}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${esc(r.url)} at ${r.targetRate}/s for ${(r.durationMs / 1000).toFixed(1)}s: ${verdict}</p>
<table><tr><td>sent</td><td>${r.sent} (${r.achievedRate}/s)</td><td>completed</td><td>${r.completed}</td><td>ok</td><td>${r.ok}</td></tr>
<tr><td>p50</td><td>${r.latencyMs.p50} ms</td><td>p99</td><td>${r.latencyMs.p99} ms</td><td>max</td><td>${r.latencyMs.max} ms</td></tr></table>
<div class="grid">
<div class="card"><canvas id="rate"></canvas></div>
<div class="card"><canvas id="errors"></canvas></div>
<div class="card"><canvas id="latency"></canvas></div>
<div class="card"><canvas id="versions"></canvas></div>
</div>
<script>${scriptSafe(chartJs())}</script>
<script>
const d = ${data};
const opts = (title, stacked) => ({ animation: false, plugins: { title: { display: true, text: title } },
  scales: { x: { title: { display: true, text: 'second' }, stacked }, y: { beginAtZero: true, stacked } } });
const palette = ['#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457'];
const charts = [
  new Chart(document.getElementById('rate'), { type: 'line', data: { labels: d.t, datasets: [
    { label: 'sent/s', data: d.sent, borderColor: '#1565c0' }, { label: 'ok/s', data: d.ok, borderColor: '#2e7d32' }] },
    options: opts('Requests per second') }),
  new Chart(document.getElementById('errors'), { type: 'bar', data: { labels: d.t, datasets: [
    { label: 'failed/s', data: d.failed, backgroundColor: '#c62828' }] }, options: opts('Failed requests per second') }),
  new Chart(document.getElementById('latency'), { type: 'line', data: { labels: d.t, datasets: [
    { label: 'p50 ms', data: d.p50, borderColor: '#2e7d32' }, { label: 'p99 ms', data: d.p99, borderColor: '#ef6c00' }] },
    options: opts('Latency (from the intended send time)') }),
  new Chart(document.getElementById('versions'), { type: 'bar', data: { labels: d.t, datasets: d.versions.map((v, i) => (
    { label: v.v, data: v.n, backgroundColor: palette[i % palette.length] })) }, options: opts('Answers by version', true) }),
];
window.batonCharts = charts.length;
</script>
</body></html>
`;
}
