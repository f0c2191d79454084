// Health-gating of the app's instances: ready (`healthyThreshold` passes in a row within
// `readyTimeout`) before they take traffic, healthy still while a strategy watches them after a
// switch, and healthy now when recovery adopts one. A wait for readiness says how it goes every
// READY_PROGRESS_MS, and stops early on an answer that will not change (a wrong health path).
// A failure says what the instance did and shows its last log lines.
import { STATUS_CODES } from 'node:http';
import { DEFAULTS } from '../config/defaults.js';
import type { AppConfig } from '../config/schema.js';
import type { Instance } from '../drivers/driver.js';
import { probe, probeTarget } from '../health/probe.js';
import { targetId } from '../edge/edge.js';
import { BatonError } from '../errors.js';
import type { Managed } from '../strategies/strategy.js';
import { sleep } from '../util/sleep.js';
import { indent } from '../util/text.js';

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

/** How often a wait for instances to be ready reports how it goes (a progress line). */
export const READY_PROGRESS_MS = 5000;

/**
 * Answers a starting app does not grow out of: it does not serve the path (404, 410), or not
 * with GET (405). A 5xx, a refused connection or a timeout may well change once it is up.
 */
const PATH_MISSING = new Set([404, 405, 410]);

/**
 * Waits until every instance is ready (see waitReady); the first to fail stops the others' wait
 * and is the error. Every READY_PROGRESS_MS until then, `progress` gets a line saying how many
 * are ready and what the last check answered.
 */
export async function waitAllReady(
  instances: readonly Instance[],
  app: AppConfig,
  progress: (message: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const began = Date.now();
  let ready = 0;
  let last = 'no check answered yet';
  const timer = setInterval(() => {
    const secs = Math.round((Date.now() - began) / 1000);
    progress(
      `waiting for ${instances.length} instance(s) to be ready: ${ready} ready, last check: ${last} ` +
        `(${secs}s of readyTimeout ${seconds(app.readyTimeout)})`,
    );
  }, READY_PROGRESS_MS);
  const stop = new AbortController();
  const stopped = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const onCheck = (failure: string | null, isReady: boolean): void => {
    if (isReady) ready++;
    else if (failure !== null) last = failure;
  };
  try {
    await Promise.all(
      instances.map((i) =>
        waitReady(i, app, stopped, onCheck).catch((err: unknown) => {
          stop.abort(err);
          throw err;
        }),
      ),
    );
  } finally {
    clearInterval(timer);
  }
}

/**
 * Readiness: `healthyThreshold` consecutive passes within `readyTimeout`, or why not. An answer
 * that will not change (PATH_MISSING, DEFAULTS.healthPathMissingChecks times in a row) fails it
 * at once. `onCheck` sees each check's failure (null: it passed) and whether it made it ready.
 */
export async function waitReady(
  instance: Instance,
  app: AppConfig,
  signal?: AbortSignal,
  onCheck?: (failure: string | null, ready: boolean) => void,
): Promise<void> {
  const h = app.health;
  const deadline = Date.now() + app.readyTimeout;
  const r = instance.record;
  let passes = 0;
  let missing = 0;
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
    const { failure, answered, status } = await probeTarget(origin(instance), h);
    if (signal?.aborted) throw signal.reason as Error;
    if (failure === null) {
      const ready = ++passes >= h.healthyThreshold;
      onCheck?.(null, ready);
      if (ready) return;
    } else {
      passes = 0;
      last = failure;
      everAnswered ||= answered;
      onCheck?.(failure, false);
    }
    missing = failure !== null && status !== null && PATH_MISSING.has(status) ? missing + 1 : 0;
    if (missing >= DEFAULTS.healthPathMissingChecks) {
      throw new BatonError(
        'BATON_E_DEPLOY_FAILED',
        `instance ${r.id} (port ${r.port}) answered GET ${h.path} with ${statusText(status!)} ${missing} times in a row: the app does not serve that path, and waiting out readyTimeout ` +
          `${app.readyTimeout}ms would not change the answer. Check app.health.path: it must be a path ` +
          `the app answers with ${String(h.expectStatus)} to a GET once it is up. Last log lines (${r.logFile}):\n` +
          indent(instance.logTail()),
      );
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

function statusText(status: number): string {
  const name = STATUS_CODES[status];
  return name ? `${status} ${name}` : String(status);
}

/** A duration for a progress line: whole seconds, or milliseconds under one. */
function seconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 1000)}s`;
}
