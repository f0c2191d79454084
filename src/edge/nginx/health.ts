// The nginx edge's active health checks: open-source nginx has none, so Baton probes every
// routed, non-backup target itself and tells the edge when one goes unhealthy or comes back
// (the edge then renders it `down`, or not, and reloads).
import type { Agent } from 'undici';
import type { HealthConfig } from '../../config/schema.js';
import { healthAgent, probe } from '../../health/probe.js';
import type { Logger } from '../../log.js';

export type TargetHealth = 'unknown' | 'healthy' | 'unhealthy';

interface Tracker {
  health: TargetHealth;
  /** > 0: consecutive passes; < 0: consecutive failures. */
  streak: number;
  timer: NodeJS.Timeout | null;
}

export class NginxHealthChecks {
  private readonly trackers = new Map<string, Tracker>();
  private readonly agent: Agent;
  private closed = false;

  constructor(
    private readonly cfg: HealthConfig,
    private readonly log: Logger,
    /** A target went unhealthy or came back: the edge re-renders. */
    private readonly changed: () => void,
  ) {
    this.agent = healthAgent(cfg);
  }

  /** Checks exactly these targets (`host:port`): new ones start `unknown`, others stop. */
  sync(ids: ReadonlySet<string>): void {
    if (this.closed) return;
    for (const [id, t] of this.trackers) {
      if (ids.has(id)) continue;
      if (t.timer) clearTimeout(t.timer);
      this.trackers.delete(id);
    }
    for (const id of ids) if (!this.trackers.has(id)) this.start(id);
  }

  healthOf(id: string): TargetHealth {
    return this.trackers.get(id)?.health ?? 'unknown';
  }

  unhealthy(): Set<string> {
    return new Set([...this.trackers].filter(([, t]) => t.health === 'unhealthy').map(([id]) => id));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.trackers.values()) if (t.timer) clearTimeout(t.timer);
    this.trackers.clear();
    await this.agent.close();
  }

  private start(id: string): void {
    const tracker: Tracker = { health: 'unknown', streak: 0, timer: null };
    const tick = (): void => {
      void this.check(id, tracker).finally(() => {
        if (this.trackers.get(id) === tracker) tracker.timer = setTimeout(tick, this.cfg.interval).unref();
      });
    };
    tracker.timer = setTimeout(tick, 0).unref();
    this.trackers.set(id, tracker);
  }

  private async check(id: string, t: Tracker): Promise<void> {
    const cfg = this.cfg;
    const failure = await probe(`http://${id}`, cfg, this.agent);
    if (this.trackers.get(id) !== t) return;
    t.streak = failure === null ? Math.max(t.streak, 0) + 1 : Math.min(t.streak, 0) - 1;
    if (failure === null && t.health !== 'healthy' && t.streak >= cfg.healthyThreshold) {
      const back = t.health === 'unhealthy';
      t.health = 'healthy';
      if (!back) return;
      this.log.info({ target: id }, 'target is healthy again; back in the nginx upstream');
      this.changed();
    } else if (failure !== null && t.health !== 'unhealthy' && -t.streak >= cfg.unhealthyThreshold) {
      t.health = 'unhealthy';
      this.log.warn(
        { target: id, reason: failure },
        'target is unhealthy; marked down in the nginx upstream',
      );
      this.changed();
    }
  }
}
