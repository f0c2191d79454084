// `baton report <deploy id>`: a deploy's proof (src/api/proof.ts) as one self-contained HTML
// page, made the way `baton load --report` makes its own (Chart.js inlined, no network): the
// headline, the counts by version and kind, requests per version over the deploy (stacked), the
// failed ones, and the deploy's steps and analysis verdicts as marks on the time axis, then in
// a table. It leaves what it drew on window (batonProof) so a test in a real browser can check.
import type { HistoryEntry } from '../api/deploy.js';
import { proofLines, type DeployProof, type ProofMark } from '../api/proof.js';
import { versionColours } from './palette.js';
import { chartJs, esc, scriptSafe } from './report.js';

/** Colours and dashes of the marks, by kind; a verdict's colour says its result as its label does. */
export const PROOF_MARK_STYLE: Record<ProofMark['kind'], { colour: string; dash: number[] }> = {
  start: { colour: '#455a64', dash: [6, 4] },
  step: { colour: '#000000', dash: [] },
  verdict: { colour: '#6a1b9a', dash: [3, 3] },
  done: { colour: '#455a64', dash: [2, 3] },
};

/** What the page says of a version name ('' holds requests that reached no target). */
function versionName(v: string): string {
  return v === '' ? 'no target' : v;
}

export function renderProofReport(entry: HistoryEntry, service: string): string {
  const p = entry.proof;
  const what = entry.rollback ? 'rollback' : 'deploy';
  const title = `${service} ${entry.version}: ${what} ${entry.id}`;
  const lines = p ? proofLines(p, what) : [`no proof: this ${what} ran on a Baton that kept none`];
  // In the order they answered (the old version first), the same colour everywhere.
  const names = p ? [...new Set([...seriesNames(p), ...p.versions.map((v) => v.version)])] : [];
  const colours = versionColours(names.map((v) => (v === '' ? '-' : v)));
  const colourOf = (v: string): string => colours[v === '' ? '-' : v]!;
  const samples = p?.series.samples ?? [];
  const data = JSON.stringify({
    // Per second over each interval (the last one is shorter), drawn as steps from 0.
    t: [0, ...samples.map((s) => s.t / 1000)],
    end: p ? (Date.parse(p.endedAt) - Date.parse(p.startedAt)) / 1000 : 0,
    failed: [0, ...samples.map((s, i) => perSecond(s.failed, s.t - (samples[i - 1]?.t ?? 0)))],
    versions: names.map((v) => ({
      v: versionName(v),
      colour: colourOf(v),
      n: [0, ...samples.map((s, i) => perSecond(s.requests[v] ?? 0, s.t - (samples[i - 1]?.t ?? 0)))],
    })),
    marks: (p?.marks ?? []).map((m) => ({ t: m.t / 1000, kind: m.kind, label: m.label })),
    style: PROOF_MARK_STYLE,
  }).replace(/</g, '\\u003c');
  const ok = p?.failed === 0;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:24px}
.card{border:1px solid #ddd;border-radius:8px;padding:12px}.ok{color:#17803d}.bad{color:#c62828}
td,th{padding:2px 12px 2px 0;text-align:left;vertical-align:top}.note{color:#8a5a00}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${esc(entry.previousVersion ?? '(nothing)')} → ${esc(entry.version)}, ${esc(entry.strategy)}, by ${esc(entry.actor)}, ${esc(entry.startedAt)} to ${esc(entry.endedAt)} (${(entry.durationMs / 1000).toFixed(1)}s): <b>${esc(entry.result)}</b>${entry.reason ? ` — ${esc(entry.reason)}` : ''}</p>
<p id="headline" class="${ok ? 'ok' : p?.failed ? 'bad' : 'note'}"><b>${esc(lines[0]!)}</b></p>
${lines
  .slice(1)
  .map((l) => `<p class="note">${esc(l)}</p>`)
  .join('\n')}
${p ? versionTable(p, colourOf) : ''}
<div class="grid">
<div class="card"><canvas id="share"></canvas></div>
<div class="card"><canvas id="failed"></canvas></div>
</div>
${p ? markTable(p.marks) : ''}
<script type="application/json" id="proof-data">${data}</script>
<script>${scriptSafe(chartJs())}</script>
<script>${scriptSafe(PROOF_PAGE_SCRIPT)}</script>
</body></html>
`;
}

function perSecond(count: number, ms: number): number {
  return ms > 0 ? Math.round((count * 10000) / ms) / 10 : 0;
}

const EDGE_NAMES: Record<string, string> = {
  builtin: 'the built-in proxy',
  haproxy: 'HAProxy',
  nginx: 'nginx',
  multi: 'the edges',
};

function seriesNames(p: DeployProof): string[] {
  return p.series.samples.flatMap((s) => Object.keys(s.requests));
}

function cell(n: number | null, unit = ''): string {
  return n === null ? 'unknown' : `${n.toLocaleString('en-US')}${unit}`;
}

function versionTable(p: DeployProof, colourOf: (v: string) => string): string {
  const seen = [...new Set(seriesNames(p))];
  const order = (v: string): number => (seen.includes(v) ? seen.indexOf(v) : seen.length);
  const rows = [
    ...[...p.versions]
      .sort((a, b) => order(a.version) - order(b.version))
      .map(
        (v) =>
          `<tr><td><span class="swatch" style="background:${colourOf(v.version)}"></span>${esc(versionName(v.version))}</td>` +
          `<td>${cell(v.requests)}</td><td>${cell(v.status5xx)}</td><td>${cell(v.proxyErrors)}</td>` +
          `<td>${cell(v.clientAborts)}</td><td>${cell(v.p50Ms, ' ms')}</td><td>${cell(v.p99Ms, ' ms')}</td></tr>`,
      ),
    `<tr><th>all</th><th>${cell(p.requests)}</th><th>${cell(p.status5xx)}</th><th>${cell(p.proxyErrors)}</th>` +
      `<th>${cell(p.clientAborts)}</th><th>${cell(p.p50Ms, ' ms')}</th><th>${cell(p.p99Ms, ' ms')}</th></tr>`,
  ];
  return `<h2>What ${esc(EDGE_NAMES[p.edge] ?? p.edge)} counted, ${esc(p.startedAt)} to ${esc(p.endedAt)}</h2>
<table id="versions"><thead><tr><th>version</th><th>requests</th><th>5xx from the app</th><th>proxy errors</th><th>client aborts (not failed)</th><th>p50</th><th>p99</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

function markTable(marks: readonly ProofMark[]): string {
  const rows = marks.map(
    (m) =>
      `<tr><td>${esc(m.at.slice(11, 23))}</td><td>+${(m.t / 1000).toFixed(1)}s</td><td>${esc(m.kind)}</td>` +
      `<td>${esc(m.label)}</td><td>${esc(m.message)}</td></tr>`,
  );
  return `<h2>Steps and verdicts</h2>
<table id="marks"><thead><tr><th>time (UTC)</th><th>since start</th><th>kind</th><th>what</th><th>detail</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

/** Run by the browser: the two charts, the marks drawn as labelled vertical lines on both. */
const PROOF_PAGE_SCRIPT = `
const d = JSON.parse(document.getElementById('proof-data').textContent);
window.batonProof = { charts: 0, marks: {} };
const markers = {
  id: 'batonProofMarks',
  afterDatasetsDraw(chart) {
    const x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx, drawn = [];
    ctx.save();
    d.marks.forEach((m, i) => {
      const px = Math.round(x.getPixelForValue(m.t));
      if (!(px >= area.left && px <= area.right)) return;
      const s = d.style[m.kind];
      ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = 2; ctx.setLineDash(s.dash);
      ctx.beginPath(); ctx.moveTo(px, Math.round(area.top)); ctx.lineTo(px, Math.round(area.bottom)); ctx.stroke();
      ctx.font = '10px system-ui, sans-serif';
      ctx.fillText((m.kind === 'verdict' ? 'analysis ' : '') + m.label, px + 3, area.top + 10 + (i % 3) * 11);
      drawn.push({ kind: m.kind, label: m.label, x: px });
    });
    ctx.restore();
    window.batonProof.marks[chart.canvas.id] = drawn;
  },
};
const opts = (title, stacked) => ({ animation: false, plugins: { title: { display: true, text: title } },
  scales: { x: { type: 'linear', min: 0, max: Math.max(d.end, d.t[d.t.length - 1] || 0), title: { display: true, text: 'seconds since the start' }, stacked },
    y: { beginAtZero: true, stacked } } });
const xy = (n) => n.map((y, i) => ({ x: d.t[i], y }));
new Chart(document.getElementById('share'), { type: 'line', plugins: [markers], options: opts('Requests per second, by version', true),
  data: { datasets: d.versions.map((v, i) => ({ label: v.v, data: xy(v.n), borderColor: v.colour, backgroundColor: v.colour, fill: i === 0 ? 'origin' : '-1', pointRadius: 0, stepped: 'after' })) } });
new Chart(document.getElementById('failed'), { type: 'line', plugins: [markers], options: opts('Failed requests per second', false),
  data: { datasets: [{ label: 'failed', data: xy(d.failed), borderColor: '#c62828', backgroundColor: '#c62828', pointRadius: 0, stepped: 'after' }] } });
window.batonProof.charts = 2;
`;
