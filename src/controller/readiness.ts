// Health-gating of the app's instances: ready (`healthyThreshold` passes in a row within
// `readyTimeout`) before they take traffic, healthy still while a strategy watches them after a
// switch, and healthy now when recovery adopts one. A failure says what the instance did and
// shows its last log lines.
import type { AppConfig } from '../config/schema.js';
import type { Instance } from '../drivers/driver.js';
import { probe, probeTarget } from '../health/probe.js';
import { targetId } from '../edge/edge.js';
import { BatonError } from '../errors.js';
import type { Managed } from '../strategies/strategy.js';
import { sleep } from '../util/sleep.js';

/** Healthy now (recovery's check of an instance it adopts), within a few health intervals. */
export async function readyNow(instance: Instance, app: AppConfig): Promise<boolean> {
  const h = app.health;
  for (let i = 0; i < h.healthyThreshold + 2; i++) {
    if (!instance.alive()) return false;
    if ((await probe(origin(instance), h)) === null) return true;
    await sleep(h.interval);
  }
  return false;
}

/** Readiness: `healthyThreshold` consecutive passes within `readyTimeout`, or why not. */
export async function waitReady(instance: Instance, app: AppConfig, signal?: AbortSignal): Promise<void> {
  const h = app.health;
  const deadline = Date.now() + app.readyTimeout;
  const r = instance.record;
  let passes = 0;
  let last = 'no check answered yet';
  let everAnswered = false;
  for (;;) {
    if (signal?.aborted) throw signal.reason as Error;
    if (!instance.alive()) {
      const exit = await Promise.race([instance.exited, sleep(200).then(() => null)]);
      const how = exit
        ? exit.signal
          ? `was killed by ${exit.signal}`
          : exit.code === null
            ? 'exited (its exit code is not known on a remote host)'
            : `exited with code ${exit.code}`
        : 'exited';
      throw new BatonError(
        'BATON_E_DEPLOY_FAILED',
        `instance ${r.id} (pid ${r.pid}, port ${r.port}) ${how} before it was ready. Last log lines (${r.logFile}):\n${indent(instance.logTail())}`,
      );
    }
    const { failure, answered } = await probeTarget(origin(instance), h);
    if (failure === null) {
      if (++passes >= h.healthyThreshold) return;
    } else {
      passes = 0;
      last = failure;
      everAnswered ||= answered;
    }
    if (Date.now() > deadline) {
      const remote = !['127.0.0.1', '::1', 'localhost'].includes(r.host);
      const hint = everAnswered
        ? 'Check app.health.path.'
        : remote
          ? `Nothing answered on ${r.host}:${r.port} from here: the host may be down or cut off, or the app listens on 127.0.0.1 only (it must listen on an address the edges reach, e.g. 0.0.0.0).`
          : 'Check that the app listens on {port}.';
      throw new BatonError(
        'BATON_E_DEPLOY_FAILED',
        `instance ${r.id} (port ${r.port}) was not ready within readyTimeout ${app.readyTimeout}ms: ${last}. ` +
          `${hint} Last log lines (${r.logFile}):\n${indent(instance.logTail())}`,
      );
    }
    await sleep(h.interval);
  }
}

/** Watches the instances for `ms`: throws if one exits or fails its health checks. */
export async function verifyHealthy(
  instances: readonly Managed[],
  app: AppConfig,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const h = app.health;
  const until = Date.now() + ms;
  const failures = new Map<Managed, number>();
  while (Date.now() < until) {
    if (signal.aborted) throw signal.reason as Error;
    for (const m of instances) {
      const r = m.instance.record;
      if (!m.instance.alive()) {
        throw new BatonError(
          'BATON_E_DEPLOY_FAILED',
          `instance ${r.id} exited after the switch. Last log lines:\n${indent(m.instance.logTail())}`,
        );
      }
      const failure = await probe(origin(m.instance), h);
      const n = failure === null ? 0 : (failures.get(m) ?? 0) + 1;
      failures.set(m, n);
      if (n >= h.unhealthyThreshold) {
        throw new BatonError(
          'BATON_E_DEPLOY_FAILED',
          `instance ${r.id} became unhealthy after the switch: ${failure}`,
        );
      }
    }
    await sleep(Math.min(h.interval, Math.max(10, until - Date.now())));
  }
}

/** The instance's own address, for probes and warm-up requests. */
export function origin(i: Instance): string {
  return `http://${targetId(i.record)}`;
}

function indent(text: string): string {
  return text ? text.replace(/^/gm, '    ') : '    (no output)';
}
