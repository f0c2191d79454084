// The terminal summary of a load run: what was sent, what failed and how, latency, versions.
import { deployTimeline, type DeployRecord } from './deploys.js';
import { FAILURE_KINDS, type LoadResult } from './runner.js';

/** `deploys`: those watched during the run (null: none were). */
export function summarize(r: LoadResult, deploys: DeployRecord | null = null): string {
  const lines: string[] = [];
  const pct = (n: number): string => (r.sent ? `${((100 * n) / r.sent).toFixed(2)}%` : '0%');
  lines.push(`load ${r.url}: ${r.targetRate}/s for ${(r.durationMs / 1000).toFixed(1)}s`);
  lines.push(
    `  requests   sent ${r.sent} (${r.achievedRate}/s)  completed ${r.completed}  ok ${r.ok}  failed ${r.failed} (${pct(r.failed)})`,
  );
  const kinds = FAILURE_KINDS.filter((k) => r.failures[k] > 0).map((k) => `${k} ${r.failures[k]}`);
  if (kinds.length) lines.push(`  failures   ${kinds.join('  ')}`);
  const l = r.latencyMs;
  lines.push(
    `  latency    p50 ${l.p50}ms  p90 ${l.p90}ms  p99 ${l.p99}ms  p99.9 ${l.p999}ms  max ${l.max}ms`,
  );
  const versions = Object.entries(r.versions).sort((a, b) => b[1] - a[1]);
  if (versions.length) lines.push(`  versions   ${versions.map(([v, n]) => `${v} ${pct(n)}`).join('  ')}`);
  if (deploys) {
    const { marks } = deployTimeline(deploys, r.startedAt, r.durationMs);
    const line = marks.map((m) => `+${m.t.toFixed(1)}s ${m.label}`).join(', ');
    lines.push(`  deploys    ${line || 'none during the run'}`);
    if (deploys.problem) lines.push(`  deploys    partly seen: ${deploys.problem}`);
  }
  // One line per kind of failure, not twenty identical ones: `e.g. (x12) refused: ...`.
  for (const e of r.examples.slice(0, 5)) {
    lines.push(`  e.g.       ${e.count > 1 ? `(x${e.count}) ` : ''}${e.text}`);
  }
  lines.push(r.failed === 0 ? '  result     0 failed requests' : `  result     ${r.failed} FAILED requests`);
  return `${lines.join('\n')}\n`;
}
