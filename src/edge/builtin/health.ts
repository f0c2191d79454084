// Active health checks: GET `path` on every target in rotation each `interval`; after
// `unhealthyThreshold` consecutive failures a target leaves rotation, after `healthyThreshold`
// consecutive passes it comes back (with slow start, if set). A target that stops answering
// at all (refused, timed out: the process or its host is gone) also hands back the requests
// still waiting for its answer, so those that are safe to resend go elsewhere at once.
import { Agent, request } from 'undici';
import type { HealthConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { Target } from './target.js';

/**
 * The connections health checks use. The connect timeout is the check's own: undici's default
 * (10s) would hold a check to a host that drops packets ten times longer than configured.
 */
export function healthAgent(cfg: Pick<HealthConfig, 'interval' | 'timeout'>): Agent {
  return new Agent({
    connect: { timeout: cfg.timeout },
    keepAliveTimeout: Math.min(cfg.interval + 1000, 4000),
    connections: 2,
  });
}

/** For probes made without an agent of their own: one per timeout, kept for the process. */
const sharedAgents = new Map<number, Agent>();

function sharedAgent(timeout: number): Agent {
  let a = sharedAgents.get(timeout);
  if (!a) {
    a = new Agent({ connect: { timeout }, keepAliveTimeout: 4000 });
    sharedAgents.set(timeout, a);
  }
  return a;
}

export function statusMatches(status: number, expect: HealthConfig['expectStatus']): boolean {
  if (typeof expect === 'number') return status === expect;
  if (Array.isArray(expect)) return expect.includes(status);
  return String(status)[0] === expect[0];
}

/** One health probe: resolves to null when it passed, else the reason it failed. */
export async function probe(
  origin: string,
  cfg: Pick<HealthConfig, 'path' | 'timeout' | 'expectStatus'>,
  dispatcher?: Agent,
): Promise<string | null> {
  return (await probeTarget(origin, cfg, dispatcher)).failure;
}

/**
 * One health probe, and whether the target answered at all: a wrong status comes from a
 * process that still serves, a refused or timed-out connection from one (or a host) that does not.
 */
export async function probeTarget(
  origin: string,
  cfg: Pick<HealthConfig, 'path' | 'timeout' | 'expectStatus'>,
  dispatcher?: Agent,
): Promise<{ failure: string | null; answered: boolean }> {
  try {
    const res = await request(origin + cfg.path, {
      method: 'GET',
      headers: { 'user-agent': 'baton-health-check' },
      headersTimeout: cfg.timeout,
      bodyTimeout: cfg.timeout,
      signal: AbortSignal.timeout(cfg.timeout),
      dispatcher: dispatcher ?? sharedAgent(cfg.timeout),
    });
    await res.body.dump();
    const failure = statusMatches(res.statusCode, cfg.expectStatus)
      ? null
      : `GET ${cfg.path} answered ${res.statusCode}, expected ${String(cfg.expectStatus)}`;
    return { failure, answered: true };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      failure: `GET ${cfg.path} failed: ${e.code ?? e.name}${e.message ? ` (${e.message})` : ''}`,
      answered: false,
    };
  }
}

export class HealthChecker {
  private readonly timers = new Map<Target, NodeJS.Timeout>();
  private readonly streak = new Map<Target, number>();
  private readonly agent: Agent;

  constructor(
    private readonly cfg: HealthConfig,
    private readonly log: Logger,
  ) {
    this.agent = healthAgent(cfg);
  }

  start(t: Target): void {
    if (this.timers.has(t)) return;
    const tick = (): void => {
      void this.check(t).finally(() => {
        if (this.timers.has(t)) this.timers.set(t, setTimeout(tick, this.cfg.interval).unref());
      });
    };
    this.timers.set(t, setTimeout(tick, 0).unref());
  }

  stop(t: Target): void {
    const timer = this.timers.get(t);
    if (timer) clearTimeout(timer);
    this.timers.delete(t);
    this.streak.delete(t);
  }

  stopAll(): void {
    for (const t of [...this.timers.keys()]) this.stop(t);
    void this.agent.close();
  }

  private async check(t: Target): Promise<void> {
    const { failure, answered } = await probeTarget(t.origin, this.cfg, this.agent);
    if (!this.timers.has(t)) return;
    // streak > 0: consecutive passes; < 0: consecutive failures.
    const prev = this.streak.get(t) ?? 0;
    const streak = failure === null ? Math.max(prev, 0) + 1 : Math.min(prev, 0) - 1;
    this.streak.set(t, streak);
    if (failure === null && t.health !== 'healthy' && streak >= this.cfg.healthyThreshold) {
      if (t.health === 'unhealthy') t.rotationSince = Date.now();
      t.health = 'healthy';
      this.log.info({ target: t.spec.id }, 'target is healthy');
    } else if (failure !== null && t.health !== 'unhealthy' && -streak >= this.cfg.unhealthyThreshold) {
      t.health = 'unhealthy';
      this.log.warn(
        { target: t.spec.id, reason: failure },
        'target is unhealthy; out of rotation until it passes again',
      );
    }
    if (t.health === 'unhealthy' && !answered) {
      // Gone, or its host cut off: what waits for its answer would wait for the upstream
      // timeout. Requests that are safe to send again go to another target now.
      const moved = t.abandonWaiting(`${t.spec.id} does not answer health checks (${failure})`);
      if (moved > 0) {
        this.log.warn(
          { target: t.spec.id, requests: moved },
          'requests waiting on an unreachable target sent elsewhere',
        );
      }
    }
  }
}
