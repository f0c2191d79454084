// The deploys that ran during a load run, placed on its timeline: markers for each deploy's
// start, every traffic move (switch, batch, weight step, promotion, rollback) and end, and a
// table of every step. From the daemon's progress events (followed during the run, or the
// demo's own deploys), completed from its history for a deploy whose events were missed.
import type { DeployStep, HistoryEntry, ProgressEvent } from '../api/deploy.js';

/** What the report gets: the events seen and the history read, or why there are none. */
export interface DeployRecord {
  readonly events: readonly ProgressEvent[];
  readonly history: readonly HistoryEntry[];
  /** Where they came from ("the daemon on 127.0.0.1:9901"), or what went wrong reading them. */
  readonly source: string;
  readonly problem?: string;
}

export type MarkKind = 'start' | 'switch' | 'end';

export interface DeployMark {
  /** Seconds since the run's start. */
  readonly t: number;
  readonly kind: MarkKind;
  readonly label: string;
}

export interface StepRow {
  /** Seconds since the run's start (negative: before it). */
  readonly t: number;
  readonly time: string;
  readonly version: string;
  readonly step: string;
  readonly detail: string;
}

/** Steps after which traffic goes elsewhere. */
const TRAFFIC_MOVES: ReadonlySet<DeployStep> = new Set([
  'switching',
  'batch',
  'weight',
  'promoting',
  'rolling-back',
]);

/** Markers and step rows of `record` for a run that began at `startedAt` and lasted `durationMs`. */
export function deployTimeline(
  record: DeployRecord,
  startedAt: string,
  durationMs: number,
): { marks: DeployMark[]; steps: StepRow[] } {
  const t0 = Date.parse(startedAt);
  const at = (time: string): number => Math.round(Date.parse(time) - t0) / 1000;
  const inRun = (t: number): boolean => t >= 0 && t <= durationMs / 1000;
  const marks: DeployMark[] = [];
  const steps: StepRow[] = [];
  const versions = new Map<string, string>();
  for (const h of record.history) versions.set(h.id, h.version);
  const seen = new Set<string>();
  for (const e of record.events) {
    seen.add(e.deployId);
    // The start event names the version ("deploying 1.2.0 (blue-green, ...)"), as done's entry.
    const version = e.entry?.version ?? versions.get(e.deployId) ?? versionIn(e.message);
    if (version) versions.set(e.deployId, version);
  }
  for (const e of record.events) {
    const t = at(e.time);
    const version = versions.get(e.deployId) ?? '';
    const step = e.kind === 'step' ? (e.step ?? 'step') : e.kind === 'done' ? (e.result ?? 'done') : e.kind;
    steps.push({ t, time: e.time, version, step, detail: e.message });
    if (!inRun(t)) continue;
    if (e.kind === 'start') marks.push({ t, kind: 'start', label: `start ${version}`.trim() });
    else if (e.kind === 'done') marks.push({ t, kind: 'end', label: `end ${e.result ?? ''}`.trim() });
    else if (e.kind === 'step' && e.step && TRAFFIC_MOVES.has(e.step))
      marks.push({ t, kind: 'switch', label: e.step === 'switching' ? 'switch' : e.step });
  }
  // A deploy that began and ended between two looks at the daemon: its start and end only.
  for (const h of record.history) {
    if (seen.has(h.id)) continue;
    const start = at(h.startedAt);
    const end = at(h.endedAt);
    if (end < 0 || start > durationMs / 1000) continue;
    const what = `${h.rollback ? 'rollback' : 'deploy'} ${h.version} (${h.strategy}), from history`;
    steps.push({ t: start, time: h.startedAt, version: h.version, step: 'start', detail: what });
    steps.push({ t: end, time: h.endedAt, version: h.version, step: h.result, detail: h.reason ?? what });
    if (inRun(start)) marks.push({ t: start, kind: 'start', label: `start ${h.version}` });
    if (inRun(end)) marks.push({ t: end, kind: 'end', label: `end ${h.result}` });
  }
  marks.sort((a, b) => a.t - b.t);
  steps.sort((a, b) => a.t - b.t);
  return { marks, steps };
}

/** "deploying 1.2.0 ..." → 1.2.0; '' when the message names none. */
function versionIn(message: string): string {
  return /^deploying\s+(\S+)/.exec(message)?.[1] ?? '';
}
