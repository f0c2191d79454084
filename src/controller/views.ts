// What `baton status` and `baton logs` show of the controller: the live release with each
// instance as the edge sees it, the kept set, the orphans, the deploy in progress; and the log
// tails of the instances asked for, read where each runs.
import type { InstanceLog } from '../api/logs.js';
import type { StatusView } from '../api/status.js';
import type { InstanceDriver } from '../drivers/driver.js';
import type { Edge } from '../edge/edge.js';
import { BatonError, messageOf } from '../errors.js';
import { targetIdOf, type Fleet } from './fleet.js';
import type { Running } from './running.js';
import type { ServiceState } from './state.js';

/** What the views read. */
export interface ViewHost {
  readonly service: string;
  readonly edge: Edge;
  readonly driver: InstanceDriver;
  readonly fleet: Fleet;
  readonly state: ServiceState;
  /** The deployment running now (read after the edge answered, as it may have ended). */
  running(): Running | null;
}

export async function statusView(host: ViewHost): Promise<StatusView> {
  const { fleet, state } = host;
  const views = new Map((await host.edge.view().catch(() => [])).map((v) => [v.id, v]));
  const running = host.running();
  const d = running?.deployment ?? null;
  return {
    service: host.service,
    live: state.live && {
      version: state.live.version,
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
    deployment: d && {
      ...d,
      elapsedMs: Date.now() - Date.parse(d.startedAt),
      paused: running?.control.paused ?? false,
      canary: running?.canary ?? null,
    },
    lastRecovery: state.lastRecovery,
  };
}

/**
 * The last `lines` lines of each instance's log that `select` names (an instance id, a
 * version, or a host's address; none: the live instances), read where each runs. An instance
 * whose host cannot be reached gets its error instead of its text.
 */
export async function instanceLogs(
  host: ViewHost,
  select: string | undefined,
  lines: number,
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
        return { ...base, text: await host.driver.fetchLog(r, lines) };
      } catch (err) {
        return { ...base, text: '', error: messageOf(err) };
      }
    }),
  );
}
