// Start-up after a daemon (re)start: back to one complete, healthy release from the state
// file, adopting the instances that still run (identity-checked, never by pid alone), starting
// the missing ones, and stopping every other recorded process: no orphan survives a restart.
import type { BatonConfig } from '../config/schema.js';
import type { Instance, InstanceDriver, InstanceRecord } from '../drivers/driver.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { recordedInstances } from './state.js';
import type { Managed } from '../strategies/strategy.js';
import type { Fleet } from './fleet.js';
import { historyEntry, type Persistence } from './persist.js';
import { andThen } from '../util/text.js';
import { uncountedProof } from './proof.js';

/** The proof of a deploy the controller was restarted during: its counts were kept in memory. */
export const RESTARTED_PROOF_NOTE = 'the controller restarted during the deploy: not counted';

/** What recovery works with. */
export interface RecoveryHost {
  /** The config and driver in effect (read at each use, as a SIGHUP may replace them). */
  config(): BatonConfig;
  driver(): InstanceDriver;
  readonly log: Logger;
  readonly fleet: Fleet;
  readonly persist: Persistence;
}

/**
 * Brings the service back to one complete, healthy release after a (re)start: the live one,
 * or the one a crashed deployment started from. Instances still running are adopted when
 * healthy; the missing ones are started; every other recorded process is stopped.
 */
export async function recover(host: RecoveryHost): Promise<void> {
  const { log, fleet, persist } = host;
  const app = (): NonNullable<BatonConfig['app']> => host.config().app!;
  const st = persist.state;
  // A recorded pid that another process holds now (a reboot, a pid wrap) is not ours: never
  // signalled, its record dropped (and the instance replaced, as a dead one is).
  const lost = new Map<string, string>();
  const adopt = (r: InstanceRecord): Instance | null =>
    host.driver().adopt(r, (reason) => {
      if (lost.has(r.id)) return;
      lost.set(r.id, reason);
      log.warn(
        { instance: r.id, host: r.host, pid: r.pid, reason },
        'recorded instance lost: its pid is another process now, left alone; not adopted',
      );
    });
  for (const r of st.orphans ?? []) {
    const instance = adopt(r);
    if (instance) fleet.orphans.set(r.id, instance);
  }
  fleet.scheduleOrphans();
  const records = recordedInstances(st);
  let version = st.live?.version ?? null;
  let note: string | null = null;
  if (st.deployment) {
    const d = st.deployment;
    const completed = d.step === 'finishing';
    version = completed ? d.version : d.previousVersion;
    note = `the daemon stopped during the deploy of ${d.version} (step ${d.step}); ${
      completed
        ? `${d.version} had taken all traffic and stays live`
        : version
          ? `back on ${version}`
          : 'nothing was live before it'
    }`;
    const c = host.config();
    const proof = uncountedProof(c.edges ? 'multi' : c.edge.type, d.startedAt, RESTARTED_PROOF_NOTE);
    persist.appendHistory(
      historyEntry(d, completed ? 'succeeded' : 'rolled-back', completed ? null : note, proof),
    );
    log.warn({ deployment: d.id }, note);
  }
  const keep: Managed[] = [];
  if (version !== null) {
    for (const r of records.values()) {
      if (r.version !== version || keep.length >= app().instances) continue;
      const instance = adopt(r);
      if (instance && (await fleet.readyNow(instance)))
        keep.push({ instance, slot: keep.length + 1, stopping: false });
    }
  }
  const adopted = new Set(keep.map((m) => m.instance.record.id));
  // Everything recorded and not kept is stopped, once the kept release is routed (below): the
  // edge may route to them still, having served on while no controller ran.
  let others: Managed[] = [...records.values()]
    .filter((r) => !adopted.has(r.id))
    .map((r) => adopt(r))
    .filter((i) => i !== null)
    .map((instance) => ({ instance, slot: 0, stopping: false }));
  st.deployment = null;
  st.standby = null;
  const lostNotes = [...lost].map(([id, reason]) =>
    andThen(`instance ${id} lost: ${reason}`, 'not signalled'),
  );
  st.lastRecovery =
    note === null && lostNotes.length === 0 ? null : [note, ...lostNotes].filter(Boolean).join('; ');
  if (version !== null && keep.length < app().instances) {
    try {
      keep.push(...(await fleet.startReady(app().instances - keep.length, version, keep)));
    } catch (err) {
      // Serve with what was adopted rather than nothing; the error says why not all.
      log.error(
        { version, instances: keep.length, error: messageOf(err) },
        'could not start the missing instances of the live release',
      );
    }
  }
  if (keep.length === 0 && others.length) {
    // Nothing of the release to go back to runs or could start, but the edge served on with the
    // others meanwhile (a deploy's new set): they stay, rather than stopping the service.
    const ready: Managed[] = [];
    for (const m of others) {
      if (ready.length < app().instances && (await fleet.readyNow(m.instance)))
        ready.push({ ...m, slot: ready.length + 1 });
    }
    const serving = ready[0]?.instance.record.version;
    if (serving !== undefined) {
      keep.push(...ready.filter((m) => m.instance.record.version === serving));
      others = others.filter((m) => !keep.some((k) => k.instance === m.instance));
      const why = `${version ?? 'no release'} could not be brought back; ${serving}, which served meanwhile, stays live`;
      log.error({ version, serving }, why);
      st.lastRecovery = st.lastRecovery ? andThen(st.lastRecovery, why) : why;
      version = serving;
    }
  }
  // Back in the route table: the built-in proxy of a fresh process starts with none, and an
  // nginx / HAProxy edge may still list instances that are gone now.
  fleet.live = keep;
  await fleet.routeLive();
  fleet.setLive(version, keep);
  // No orphan survives a restart: out of the routes now, their requests finish, then they stop.
  // One whose host does not answer is an orphan, stopped once it does.
  if (others.length) await fleet.retire(others);
  for (const m of keep) fleet.supervise(m);
  if (version !== null) {
    log.info({ version, adopted: adopted.size, instances: keep.length }, 'release restored');
  }
}
