// What `baton status` and `baton logs` show of the controller: the live release with each
// instance as the edge sees it, the kept set, the orphans, the deploy in progress; and the log
// tails of the instances asked for, read where each runs.
import type { InstanceLog } from '../api/logs.js';
import type { LogIndex } from './log-index.js';
import type { CanaryView, StatusView } from '../api/status.js';
import type { InstanceDriver } from '../drivers/driver.js';
import type { Edge } from '../edge/edge.js';
import { BatonError, messageOf } from '../errors.js';
import { targetIdOf, type Fleet } from './fleet.js';
import type { Running } from './running.js';
import type { DeploymentState, ServiceState } from './state.js';

/** What the views read. */
export interface ViewHost {
  readonly service: string;
  readonly edge: Edge;
  readonly driver: InstanceDriver;
  readonly fleet: Fleet;
  readonly state: ServiceState;
  /** The deployment running now (read after the edge answered, as it may have ended). */
  running(): Running | null;
  /** Where in each log lines of a time begin (`baton logs --since`). */
  readonly logIndex: LogIndex;
}

export async function statusView(host: ViewHost): Promise<StatusView> {
  const { fleet, state } = host;
  const views = new Map((await host.edge.view().catch(() => [])).map((v) => [v.id, v]));
  const running = host.running();
  return {
    service: host.service,
    live: state.live && {
      // During a canary the state names the release being deployed; stable serves until promotion.
      version: (running && fleet.split && stableVersion(running, fleet)) || state.live.version,
      instances: fleet.live.map((m) => {
        const r = m.instance.record;
        const v = views.get(targetIdOf(m.instance));
        return {
          id: r.id,
          slot: m.slot,
          version: r.version,
          host: r.host,
          port: r.port,
          pid: r.pid,
          alive: m.instance.alive(),
          health: v?.health ?? 'unknown',
          inflight: v?.inflight ?? 0,
          requests: v?.requests ?? 0,
          // Abandoned by their client: in no success or error count (null: the edge cannot tell).
          clientAborts: v?.clientAborts ?? null,
          crashLoop: fleet.crashLoops.has(m.slot),
        };
      }),
    },
    standby: state.standby,
    orphans: [...fleet.orphans.values()].map(({ record: r }) => ({
      id: r.id,
      version: r.version,
      host: r.host,
      port: r.port,
      pid: r.pid,
    })),
    deployment: running && {
      ...running.deployment,
      elapsedMs: Date.now() - Date.parse(running.deployment.startedAt),
      paused: running.control.paused,
      canary: canaryView(running, fleet, state),
    },
    lastRecovery: state.lastRecovery,
  };
}

/** What serves now, for /metrics: read from memory, the edge is not asked. */
export interface ServingView {
  /** The live version (during a canary, the stable one until promotion); null: none. */
  readonly version: string | null;
  /** The canary's share of traffic in percent, as status shows it; 0 when no canary runs. */
  readonly canaryPercent: number;
}

export function servingView(host: Pick<ViewHost, 'fleet' | 'state' | 'running'>): ServingView {
  const { fleet, state } = host;
  const running = host.running();
  const version = (running && fleet.split && stableVersion(running, fleet)) || state.live?.version || null;
  // As canaryView's share: the split ends at promotion (all new) or on the way back (all stable).
  const canaryPercent = !running?.canary
    ? 0
    : fleet.split
      ? running.canary.percent
      : running.deployment.step === 'rolling-back'
        ? 0
        : 100;
  return { version, canaryPercent };
}

/** The version of a canary split's stable side. */
function stableVersion(running: Running, fleet: Fleet): string | null {
  const split = fleet.split;
  const stable = split && fleet.live.find((m) => !split.canary.has(m));
  return stable?.instance.record.version ?? running.deployment.previousVersion;
}

/** The canary strategy's details start with its position: "step 3/6: ...". */
const POSITION = /^step (\d+)\/(\d+): /;

/** A canary in progress: both sides and their shares, its step, its verdicts, what comes next. */
function canaryView(running: Running, fleet: Fleet, state: ServiceState): CanaryView | null {
  const c = running.canary;
  if (!c) return null;
  const d = running.deployment;
  const stable = stableVersion(running, fleet) ?? state.live?.version ?? '';
  // The split ends at promotion (all to the new set) or on the way back (all to stable).
  const share = fleet.split ? c.percent : d.step === 'rolling-back' ? 0 : 100;
  const m = POSITION.exec(d.detail);
  const step = m ? { index: Number(m[1]), total: Number(m[2]) } : null;
  const paused = running.control.paused;
  return {
    stable: { version: stable, percent: 100 - share },
    canary: { version: d.version, percent: share },
    percent: c.percent,
    rules: c.rules,
    step,
    paused,
    verdicts: c.verdicts,
    next: nextAction(d, step, paused, stable),
  };
}

function nextAction(d: DeploymentState, step: CanaryView['step'], paused: boolean, stable: string): string {
  if (d.step === 'rolling-back') return `going back: all traffic to ${stable}`;
  if (d.step === 'promoting' || d.step === 'draining' || d.step === 'stopping' || d.step === 'finishing')
    return `promoted: ${d.version} takes all traffic, then ${stable} is drained and stopped`;
  if (paused) return 'held by `baton pause`: `baton resume` goes on';
  if (!step) return `the canary steps start; \`baton abort\` goes back to ${stable}`;
  const after = step.index < step.total ? `step ${step.index + 1}/${step.total}` : 'promotion to 100%';
  const full = step.index < step.total ? '; `baton promote --full` goes to 100% now' : '';
  if (d.step !== 'paused') return `${after} next`;
  return d.detail.includes('until `baton promote`')
    ? `waiting for \`baton promote\` (then ${after})${full}`
    : `${after} once this pause ends; \`baton promote\` goes on now${full}`;
}

/**
 * The last `lines` lines of each instance's log that `select` names (an instance id, a
 * version, or a host's address; none: the live instances), read where each runs; with `since`
 * (epoch ms), of those written since then (log-index.ts: and up to a second before). An
 * instance whose host cannot be reached gets its error instead of its text.
 */
export async function instanceLogs(
  host: ViewHost,
  select: string | undefined,
  lines: number,
  since?: number,
): Promise<InstanceLog[]> {
  const { fleet } = host;
  const all = fleet.managed(host.running()?.started ?? []).map((i) => i.record);
  const chosen =
    select === undefined
      ? fleet.live.map((m) => m.instance.record)
      : all.filter(
          (r) => r.id === select || r.version === select || r.host === select || r.id.includes(`-${select}-`),
        );
  if (chosen.length === 0) {
    throw new BatonError(
      'BATON_E_NOT_FOUND',
      select === undefined
        ? 'no instance is live'
        : `no instance matches "${select}" (give an instance id, a version or a host; running: ${all.map((r) => r.id).join(', ') || 'none'})`,
    );
  }
  return Promise.all(
    chosen.map(async (r) => {
      const base = { id: r.id, version: r.version, host: r.host, port: r.port, logFile: r.logFile };
      try {
        if (since === undefined) return { ...base, text: (await host.driver.fetchLog(r, lines)).text };
        const start = host.logIndex.startOf(r.id, since);
        const got = await host.driver.fetchLog(r, lines, start.offset);
        return {
          ...base,
          text: got.text,
          ...(got.cut ? { cut: true } : {}),
          from: start.at === null ? null : new Date(start.at).toISOString(),
        };
      } catch (err) {
        return { ...base, text: '', error: messageOf(err) };
      }
    }),
  );
}
