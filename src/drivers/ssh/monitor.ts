// Liveness of remote instances: one monitor per host polls all its instances in one multiplexed
// ssh call. An instance is gone only when the host answered and the process is not there; while
// a host cannot be reached its instances stay alive() (unknown is not dead): the edges' health
// checks take them out of rotation. The exit code of a remote process is not known (code null).
// The same poll kills, by token, starts that failed but may still have run.
import { messageOf } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { SshInstance } from './instance.js';
import { identityWords, parsePoll, pollScript, type Cleanup } from './scripts.js';
import type { SshHost, SshTransport } from './transport.js';

interface Monitor {
  readonly host: SshHost;
  readonly instances: Set<SshInstance>;
  /** Starts that failed and may still have run: killed on the next contact (by token). */
  readonly cleanups: Map<string, Cleanup>;
  timer: NodeJS.Timeout | null;
  busy: boolean;
  /** Set while the host does not answer (logged once). */
  failing: string | null;
}

export interface MonitorOptions {
  readonly transport: SshTransport;
  readonly log: Logger;
  /** How often each host's instances are checked. */
  readonly pollMs: number;
  /** Deadline of one poll (connecting plus the command). */
  readonly timeoutMs: number;
}

/** The monitors of one SSH driver, one per host, created on first use. */
export class HostMonitors {
  private readonly monitors = new Map<string, Monitor>();
  private closed = false;

  constructor(private readonly opts: MonitorOptions) {}

  /** Polls `instance` with its host's others until it is seen gone or forgotten. */
  watch(instance: SshInstance): void {
    if (!instance.alive() || this.closed) return;
    const m = this.monitor(instance.host);
    m.instances.add(instance);
    this.schedule(m);
  }

  /** A start that failed but may have run anyway: kill it on the next contact with `host`. */
  cleanupLater(host: SshHost, token: string, cleanup: Cleanup): void {
    const m = this.monitor(host);
    m.cleanups.set(token, cleanup);
    this.schedule(m);
  }

  /** No longer polled (stopped). */
  forget(instance: SshInstance): void {
    this.monitors.get(instance.host.name)?.instances.delete(instance);
  }

  /** Stops every timer; a poll in flight ends without logging. */
  close(): void {
    this.closed = true;
    for (const m of this.monitors.values()) {
      if (m.timer) clearTimeout(m.timer);
      m.timer = null;
    }
  }

  private monitor(host: SshHost): Monitor {
    let m = this.monitors.get(host.name);
    if (!m) {
      m = { host, instances: new Set(), cleanups: new Map(), timer: null, busy: false, failing: null };
      this.monitors.set(host.name, m);
    }
    return m;
  }

  private schedule(m: Monitor): void {
    if (this.closed || m.timer || m.busy) return;
    if (m.instances.size === 0 && m.cleanups.size === 0) return;
    m.timer = setTimeout(() => {
      m.timer = null;
      void this.poll(m);
    }, this.opts.pollMs);
    m.timer.unref();
  }

  private async poll(m: Monitor): Promise<void> {
    const watched = [...m.instances].filter((i) => {
      if (!i.alive()) m.instances.delete(i);
      return i.alive() && !i.stopping;
    });
    const cleanups = [...m.cleanups.values()];
    if (this.closed || (watched.length === 0 && cleanups.length === 0)) return;
    const log = this.opts.log;
    m.busy = true;
    try {
      const now = Date.now();
      const script = pollScript(
        watched.map((i) => ({
          pid: i.record.pid,
          logFile: i.record.logFile,
          pidFile: i.pidFile,
          tail: now < i.tailUntil,
          identity: identityWords(i.record),
        })),
        cleanups,
      );
      const { stdout } = await this.opts.transport.run(m.host, script, {
        timeoutMs: this.opts.timeoutMs,
        what: 'check instances',
      });
      if (m.failing) {
        log.info({ host: m.host.name }, 'host answers again');
        m.failing = null;
      }
      const r = parsePoll(stdout);
      const answeredAt = Date.now();
      for (const i of watched) {
        const pid = i.record.pid;
        const tail = r.tails.get(pid);
        if (tail !== undefined) i.tailText = tail;
        const bytes = r.logBytes.get(pid);
        // The time of the answer, not of the ask: the size was read before it (LogIndex).
        if (bytes !== undefined) i.lastLogSize = { bytes, at: answeredAt };
        if (r.gone.has(pid) && !i.stopping) {
          const lost = r.lost.get(pid);
          if (lost !== undefined) {
            log.warn(
              { instance: i.record.id, host: m.host.name, pid, reason: lost },
              'instance gone: its pid is another process now, which Baton leaves alone',
            );
          }
          m.instances.delete(i);
          i.markExited({ code: null, signal: null });
        }
      }
      for (const token of r.cleaned) m.cleanups.delete(token);
    } catch (err) {
      if (this.closed) return;
      const message = messageOf(err);
      if (m.failing === null) {
        log.warn(
          { host: m.host.name, instances: watched.map((i) => i.record.id), error: message },
          'cannot check the instances of this host: they count as running until it answers (health checks decide their traffic)',
        );
      }
      m.failing = message;
    } finally {
      m.busy = false;
      this.schedule(m);
    }
  }
}
