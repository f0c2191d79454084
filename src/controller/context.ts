// The DeployContext a strategy runs with (src/strategies/strategy.ts): the controller's
// primitives for one deployment, each step persisted before it runs, every instance started
// recorded, every route change made on the edge before the live set says so.
import type { BatonConfig } from '../config/schema.js';
import type { Edge } from '../edge/edge.js';
import { BatonError } from '../errors.js';
import type { DeployContext, DeployStep } from '../strategies/strategy.js';
import type { DeployExtension, Emit } from './events.js';
import { routeOf, targetIdOf, type Fleet } from './fleet.js';
import type { Persistence } from './persist.js';
import { waitStep, type Running } from './running.js';
import { warmUp } from './warmup.js';

/** What a deployment's context is built from. */
export interface ContextHost {
  readonly config: BatonConfig;
  readonly edge: Edge;
  readonly fleet: Fleet;
  readonly persist: Pick<Persistence, 'persistStep'>;
  readonly extensions: readonly DeployExtension[];
}

export function deployContext(running: Running, emit: Emit, host: ContextHost): DeployContext {
  const d = running.deployment;
  const { config, edge, fleet, persist, extensions } = host;
  const app = config.app!;
  return {
    service: config.service,
    version: d.version,
    previousVersion: d.previousVersion,
    app,
    live: () => fleet.live,
    step: (step, detail) => {
      d.step = step;
      d.detail = detail;
      if (step === 'rolling-back') running.unwinding = true;
      // On disk before it runs (a crash resumes from there); if it cannot be, the deploy stops
      // here and goes back, and the way back is not stopped by the same full disk.
      persist.persistStep(running);
      emit({ kind: 'step', step, message: detail });
      crashHookForTests(step);
    },
    info: (message) => emit({ kind: 'info', message }),
    switched: async () => {
      for (const x of extensions) await x.afterSwitch?.(d, (message) => emit({ kind: 'info', message }));
    },
    start: async (count, version, onHosts) => {
      const started = await fleet.startReady(
        count,
        version,
        fleet.live,
        {
          signal: running.abort.signal,
          started: (record) => {
            d.started.push(record);
            persist.persistStep(running);
          },
          progress: (message) => emit({ kind: 'info', message }),
        },
        onHosts,
      );
      running.started.push(...started);
      for (const m of started) fleet.supervise(m);
      if (app.warmup) {
        for (const m of started) {
          emit({ kind: 'info', message: await warmUp(m.instance, app.warmup, running.abort.signal) });
        }
      }
      if (app.slowStart > 0) {
        emit({
          kind: 'info',
          message: `slow start: new instances ramp up to full weight over ${app.slowStart}ms`,
        });
      }
      return started;
    },
    route: async (instances, fallback = []) => {
      // The edge first: should it refuse the change, nothing moved and `live` stays as it was.
      await edge.apply(
        [
          ...instances.map((m) => routeOf(m, app)),
          ...fallback.map((m) => ({ ...routeOf(m, app), backup: true })),
        ],
        null,
      );
      fleet.split = null;
      fleet.live = [...instances];
      fleet.setLive(fleet.liveVersion(), fleet.live);
    },
    drain: async (instances) => {
      const routed = new Set(fleet.live.map((m) => targetIdOf(m.instance)));
      const ids = instances.map((m) => targetIdOf(m.instance)).filter((id) => !routed.has(id));
      const results = await edge.drain(ids, app.drainTimeout);
      for (const r of results) {
        if (!r.drained)
          emit({
            kind: 'info',
            message: `${r.id}: ${r.inflightLeft} request(s) still running after drainTimeout`,
          });
      }
    },
    stop: (instances) => fleet.stopAll(instances),
    verify: (instances, ms) => fleet.verify(instances, ms, running.abort.signal),
    keepStandby: (instances, ms) => {
      const stopAt = fleet.keepStandby(instances, ms);
      emit({ kind: 'info', message: `old set kept until ${stopAt} for an instant \`baton rollback\`` });
    },
    checkAborted: () => {
      if (running.abort.signal.aborted) throw running.abort.signal.reason as Error;
    },
    routeSplit: async (stable, canaries, split) => {
      const next = { spec: split, canary: new Set(canaries) };
      await fleet.applyRoutes([...stable, ...canaries], next);
      fleet.live = [...stable, ...canaries];
      fleet.split = next;
      fleet.setLive(fleet.liveVersion(), fleet.live);
      running.canary = {
        percent: split.canaryPercent,
        rules: [...split.rules],
        verdicts: running.canary?.verdicts ?? [],
      };
    },
    stats: (instances) => edge.stats(instances.map((m) => targetIdOf(m.instance))),
    verdict: (v) => {
      running.canary?.verdicts.push(v);
      for (const x of extensions) {
        try {
          x.onVerdict?.(v, d);
        } catch {
          // An extension's failure must not stop the analysis (it runs on a timer).
        }
      }
      emit({ kind: 'info', message: `analysis ${v.result}: ${v.reason}` });
    },
    fail: (reason) => running.abort.abort(new BatonError('BATON_E_DEPLOY_FAILED', reason)),
    wait: (ms) => waitStep(running, ms, emit),
    promotion: () => (running.control.promote === 'full' ? 'full' : null),
  };
}

/**
 * Test hook for the crash-safety tests: BATON_TEST_CRASH_AT=<step> kills the daemon with
 * SIGKILL right after that step is persisted, as a power cut would.
 */
function crashHookForTests(step: DeployStep): void {
  if (process.env.BATON_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
