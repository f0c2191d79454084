// Active health checks: GET `path` on every target in rotation each `interval`; after
// `unhealthyThreshold` consecutive failures a target leaves rotation, after `healthyThreshold`
// consecutive passes it comes back (with slow start, if set). A target that stops answering
// at all (refused, timed out: the process or its host is gone) also hands back the requests
// still waiting for its answer, so those that are safe to resend go elsewhere at once.
import type { Agent } from 'undici';
import type { HealthConfig } from '../../config/schema.js';
import { healthAgent, probeTarget } from '../../health/probe.js';
import type { Logger } from '../../log.js';
import type { Target } from './target.js';

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
