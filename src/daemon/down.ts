// `baton down` with no controller running (it crashed, or was stopped with systemctl stop): the
// instances recorded in the state file are stopped, each identity-checked first (a pid that is
// another process's now is never signalled), nginx / HAProxy stop routing to them, and the data
// plane is asked to stop. The live release stays recorded: the next `baton up` starts it again.
import type { BatonConfig } from '../config/schema.js';
import { recordedInstances, StateStore } from '../controller/state.js';
import { askDataPlane } from '../dataplane/connect.js';
import { DataPlaneClient } from '../dataplane/forward.js';
import { dataPlanePaths } from '../dataplane/paths.js';
import type { InstanceRecord } from '../drivers/driver.js';
import { createEdge } from '../edge/create.js';
import { BatonError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { sleep } from '../util/sleep.js';
import { driverFor } from './daemon.js';
import { DATAPLANE_LOCK, lockHolder, takeDaemonLock } from '../state/lock.js';

export interface DownReport {
  /** The instances stopped (ids). */
  readonly stopped: string[];
  /** Recorded instances that were gone already, or whose pid is another process's now. */
  readonly gone: string[];
  /** The data plane's pid, when one was stopped. */
  readonly dataPlane: number | null;
  readonly errors: string[];
}

export async function downOffline(config: BatonConfig, log: Logger): Promise<DownReport> {
  // No controller may start while this runs (and none runs: it would hold this lock).
  const release = takeDaemonLock(config.stateDirPath, config.file, log);
  // The drivers' waits use unref'd timers (a daemon has other handles): this CLI has none.
  const keepAlive = setInterval(() => undefined, 1000);
  const errors: string[] = [];
  const stopped: string[] = [];
  const gone: string[] = [];
  try {
    const store = new StateStore(config.stateDirPath);
    const st = store.load();
    const records = recordedInstances(st, { orphans: true });
    // nginx / HAProxy first: nothing routed to what is about to stop.
    for (const e of (config.edges ?? [config.edge]).filter((x) => x.type !== 'builtin')) {
      try {
        const edge = await createEdge(e, config, log);
        await edge.start();
        await edge.apply([], null);
        await edge.close();
      } catch (err) {
        errors.push(`the ${e.type} edge: ${messageOf(err)}`);
      }
    }
    const paths = dataPlanePaths(config.stateDirPath);
    const dataPlane = lockHolder(config.stateDirPath, DATAPLANE_LOCK);
    if (dataPlane !== null && (await askDataPlane(paths))) {
      const client = new DataPlaneClient(paths);
      try {
        await client.call('PUT', '/v1/edge/routes', JSON.stringify({ routes: [], split: null }), 10_000);
      } catch (err) {
        // It is stopped below anyway; the instances' in-flight requests may fail then.
        errors.push(`the data plane would not take the instances out: ${messageOf(err)}`);
      } finally {
        await client.close();
      }
    }
    const unstopped: InstanceRecord[] = [];
    if (config.app && records.size) {
      const driver = driverFor(config, log);
      for (const r of records.values()) {
        const instance = driver.adopt(r, (reason) =>
          log.warn({ instance: r.id, reason }, 'not ours: left alone'),
        );
        if (!instance) {
          gone.push(r.id);
          continue;
        }
        try {
          await driver.stop(instance, { signal: config.app.stopSignal, timeoutMs: config.app.stopTimeout });
          stopped.push(r.id);
        } catch (err) {
          unstopped.push(r);
          errors.push(`instance ${r.id}: ${messageOf(err)}`);
        }
      }
      await driver.close?.();
    }
    st.standby = null;
    st.deployment = null;
    // Those it could not stop (their host unreachable) stay recorded: the next up tries again.
    st.orphans = unstopped;
    store.save(st);
    if (dataPlane !== null) await stopDataPlane(config, dataPlane, errors);
    return { stopped, gone, dataPlane, errors };
  } finally {
    clearInterval(keepAlive);
    release();
  }
}

async function stopDataPlane(config: BatonConfig, pid: number, errors: string[]): Promise<void> {
  const paths = dataPlanePaths(config.stateDirPath);
  try {
    const client = new DataPlaneClient(paths);
    await client.stop().finally(() => client.close());
  } catch {
    // Not answering: a signal does the same.
    try {
      process.kill(pid, 'SIGTERM');
    } catch (err) {
      errors.push(`the data plane (pid ${pid}): ${messageOf(err)}`);
      return;
    }
  }
  const deadline = Date.now() + config.proxy.drainTimeout + 5000;
  while (lockHolder(config.stateDirPath, DATAPLANE_LOCK) !== null) {
    if (Date.now() > deadline) {
      throw new BatonError(
        'BATON_E_EDGE',
        `the data plane (pid ${pid}) still runs after SIGTERM; see ${paths.log}`,
      );
    }
    await sleep(50);
  }
}
