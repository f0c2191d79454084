// `baton load --report report.html`: one self-contained page (Chart.js inlined, no network)
// with the run over time: rate, failures, p50/p99 latency and the version split, the deploys
// that ran meanwhile as markers on every chart, and a table of their steps.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { deployTimeline, type DeployRecord, type StepRow } from './deploys.js';
import { versionColours } from './palette.js';
import { MARK_STYLE, PAGE_SCRIPT } from './report-page.js';
import { DEFAULT_APP_VERSION_HEADER, FAILURE_KINDS, type LoadResult } from './runner.js';

/** The single executable's asset name for Chart.js (scripts/build-binary.js embeds it). */
export const CHART_ASSET = 'chart.umd.min.js';

/** Chart.js's UMD build, to inline (the proof report, src/load/proof-report.ts, too). */
export function chartJs(): string {
  if (isSea()) return getAsset(CHART_ASSET, 'utf8');
  // The UMD build sits next to the CommonJS entry (the package exports no path to it).
  const require = createRequire(import.meta.url);
  return readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
}

/** Text safe inside <script>: no early "</script", no HTML comment openers. */
export function scriptSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

export function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export interface ReportOptions {
  readonly title?: string;
  /** The deploys during the run; null: none were watched (the report says how to watch them). */
  readonly deploys?: DeployRecord | null;
}

/** What the report says when no deploys were watched. */
export const NO_DEPLOYS_NOTE =
  'Deploys not watched: run `baton load` with -c baton.yaml (or --admin host:port) to mark the deploys of the daemon on the charts.';

/** What it says when no answer named its version. */
export const NO_VERSIONS_NOTE =
  'No answer named its version: with the built-in proxy set proxy.versionHeader: true (X-Baton-Version); or have the app send x-version.';

export function renderReport(r: LoadResult, o: ReportOptions = {}): string {
  const title = o.title ?? 'Baton load report';
  const deploys = o.deploys ?? null;
  const { marks, steps } = deploys
    ? deployTimeline(deploys, r.startedAt, r.durationMs)
    : { marks: [], steps: [] };
  const names = [...new Set(r.timeline.flatMap((s) => Object.keys(s.versions)))];
  // The same colour for a version in the charts and in the step table.
  const colours = versionColours([...names, ...steps.map((s) => s.version).filter(Boolean)]);
  const data = JSON.stringify({
    t: r.timeline.map((s) => s.t),
    sent: r.timeline.map((s) => s.sent),
    ok: r.timeline.map((s) => s.ok),
    failed: r.timeline.map((s) => s.failed),
    p50: r.timeline.map((s) => s.p50),
    p99: r.timeline.map((s) => s.p99),
    versions: names.map((v) => ({ v, colour: colours[v]!, n: r.timeline.map((s) => s.versions[v] ?? 0) })),
    marks,
  }).replace(/</g, '\\u003c');
  const failures = FAILURE_KINDS.filter((k) => r.failures[k] > 0)
    .map((k) => `${k} ${r.failures[k]}`)
    .join(', ');
  const verdict =
    r.failed === 0
      ? '<b class="ok">0 failed requests</b>'
      : `<b class="bad">${r.failed} failed requests</b> (${esc(failures)})`;
  const notes: string[] = [];
  if (!deploys) notes.push(NO_DEPLOYS_NOTE);
  else if (deploys.problem) notes.push(`Deploys from ${deploys.source}, partly: ${deploys.problem}`);
  if (names.every((v) => v === '-') && r.completed > 0) notes.push(NO_VERSIONS_NOTE);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:24px}
.card{border:1px solid #ddd;border-radius:8px;padding:12px}.ok{color:#17803d}.bad{color:#c62828}
td,th{padding:2px 12px 2px 0;text-align:left;vertical-align:top}.note{color:#8a5a00}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.mark{display:inline-block;width:18px;border-top:2px solid;vertical-align:middle;margin:0 4px 0 12px}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${esc(r.url)} at ${r.targetRate}/s for ${(r.durationMs / 1000).toFixed(1)}s from ${esc(r.startedAt)}: ${verdict}</p>
<table><tr><td>sent</td><td>${r.sent} (${r.achievedRate}/s)</td><td>completed</td><td>${r.completed}</td><td>ok</td><td>${r.ok}</td></tr>
<tr><td>p50</td><td>${r.latencyMs.p50} ms</td><td>p99</td><td>${r.latencyMs.p99} ms</td><td>max</td><td>${r.latencyMs.max} ms</td></tr></table>
${notes.map((n) => `<p class="note">${esc(n)}</p>`).join('\n')}
<p id="legend">${legend(names, colours)}</p>
<div class="grid">
<div class="card"><canvas id="rate"></canvas></div>
<div class="card"><canvas id="errors"></canvas></div>
<div class="card"><canvas id="latency"></canvas></div>
<div class="card"><canvas id="versions"></canvas></div>
</div>
${deploys ? stepTable(steps, colours, deploys.source) : ''}
<script type="application/json" id="report-data">${data}</script>
<script>${scriptSafe(chartJs())}</script>
<script>${scriptSafe(PAGE_SCRIPT)}</script>
</body></html>
`;
}

/** Versions with their colours, and the marker kinds. */
function legend(names: readonly string[], colours: Record<string, string>): string {
  const versions = names.map(
    (v) =>
      `<span class="version"><span class="swatch" style="background:${colours[v]}"></span>${esc(v === '-' ? `no version (no answer, or neither X-Baton-Version nor ${DEFAULT_APP_VERSION_HEADER})` : v)}</span>`,
  );
  const kinds = (Object.keys(MARK_STYLE) as (keyof typeof MARK_STYLE)[]).map(
    (k) =>
      `<span class="mark" style="border-top:2px ${MARK_STYLE[k].dash.length ? 'dashed' : 'solid'} ${MARK_STYLE[k].colour}"></span>deploy ${k}`,
  );
  return [...versions, ...kinds].join(' ');
}

/** Seconds into the run, signed: "+1.2s", "-0.7s" (before it began). */
function runTime(t: number): string {
  const tenths = Math.round(t * 10);
  return `${tenths < 0 ? '-' : '+'}${(Math.abs(tenths) / 10).toFixed(1)}s`;
}

function stepTable(steps: readonly StepRow[], colours: Record<string, string>, source: string): string {
  const rows = steps.map(
    (s) =>
      `<tr><td>${esc(s.time.slice(11, 23))}</td><td>${runTime(s.t)}</td>` +
      `<td>${s.version ? `<span class="swatch" style="background:${colours[s.version] ?? 'transparent'}"></span>${esc(s.version)}` : ''}</td>` +
      `<td>${esc(s.step)}</td><td>${esc(s.detail)}</td></tr>`,
  );
  return `<h2>Deploy steps</h2>
<p>From ${esc(source)}${steps.length ? '' : ': no deploy ran during the load'}.</p>
<table id="steps"><thead><tr><th>time (UTC)</th><th>run</th><th>version</th><th>step</th><th>detail</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}
