// The controller watches its data plane:
// - one that is gone (crashed, killed) is started again, on the address it had and with the
//   routes it saved, and then given the controller's last table again (its file may be older:
//   a save that failed). Clients are refused in between unless systemd holds the listening
//   socket (socket activation: the new one gets the same socket, connections wait in its
//   backlog). Tries that fail back off, up to 10 s apart.
// - one that another process replaced (`baton upgrade` straight on its socket, or SIGUSR2) is
//   reconnected to: the kept-alive connections went to the old one.
// A data plane handing over is never gone: the new one takes the lock before the old one exits.
import type { BatonConfig } from '../config/schema.js';
import type { RemoteBuiltinEdge } from '../edge/remote.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { DATAPLANE_LOCK, lockHolder } from '../state/lock.js';
import { askDataPlane, connectDataPlane } from './connect.js';
import type { DataPlanePaths } from './paths.js';
import type { DataPlaneHealth } from './process.js';

const CHECK_MS = 250;
const MAX_BACKOFF_MS = 10_000;

export interface WatchedDataPlane {
  readonly paths: DataPlanePaths;
  /** The edge the controller drives: it reconnects to the new process. */
  readonly edge: RemoteBuiltinEdge;
  /** The one it runs now (its pid, and where it listens). */
  health(): DataPlaneHealth;
  /** A new one serves: its health answer. */
  replaced(health: DataPlaneHealth): void;
}

export class DataPlaneWatchdog {
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private stopped = false;
  private backoffMs = CHECK_MS;
  private nextTry = 0;

  constructor(
    private readonly config: BatonConfig,
    private readonly log: Logger,
    private readonly watched: WatchedDataPlane,
    private readonly options: { readonly listenFd?: number },
  ) {
    this.timer = setInterval(() => void this.check(), CHECK_MS);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.busy || this.stopped || Date.now() < this.nextTry) return;
    this.busy = true;
    try {
      const holder = lockHolder(this.config.stateDirPath, DATAPLANE_LOCK);
      if (holder === this.watched.health().pid) return;
      if (holder !== null) await this.follow(holder);
      else await this.restart();
      this.backoffMs = CHECK_MS;
    } catch (err) {
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      this.nextTry = Date.now() + this.backoffMs;
      this.log.error(
        { error: messageOf(err), retryInMs: this.backoffMs },
        'could not start a new data plane; trying again',
      );
    } finally {
      this.busy = false;
    }
  }

  /** Another data plane took over (an upgrade the controller did not make). */
  private async follow(pid: number): Promise<void> {
    const health = await askDataPlane(this.watched.paths);
    if (!health || health.pid !== pid) return; // mid-handover: next time
    await this.watched.edge.reconnect();
    if (this.stopped) return;
    this.watched.replaced(health);
    this.log.info({ pid, version: health.version }, 'the data plane was replaced (an upgrade); following it');
  }

  private async restart(): Promise<void> {
    const was = this.watched.health();
    this.log.error(
      { pid: was.pid },
      'the data plane is gone (crashed or killed): starting a new one, with the routes it saved',
    );
    const dp = await connectDataPlane(this.config, this.log, {
      ...this.options,
      ...(was.listen !== null ? { listen: was.listen } : {}),
    });
    await dp.edge.close();
    await this.watched.edge.reconnect();
    // Its file may be behind what it was told last (a save that failed): tell it again.
    await this.watched.edge.reapply();
    if (!this.stopped) this.watched.replaced(dp.health);
  }

  /** Before `baton down` stops the data plane (or the controller exits). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
