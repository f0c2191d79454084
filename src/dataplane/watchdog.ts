// The controller watches its data plane: one that is gone (crashed, killed) is started again at
// once, and comes back with the route table it saved. Clients are refused in between unless
// systemd holds the listening socket (socket activation: the new one gets the same socket, and
// connections wait in its backlog). A data plane handing over (`baton upgrade`) is never gone:
// the new one takes the lock before the old one lets go.
import type { BatonConfig } from '../config/schema.js';
import type { RemoteBuiltinEdge } from '../edge/remote.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { DATAPLANE_LOCK, lockHolder } from '../state/lock.js';
import { connectDataPlane, type ConnectedDataPlane } from './connect.js';

const CHECK_MS = 250;

export class DataPlaneWatchdog {
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private stopped = false;

  constructor(
    private readonly config: BatonConfig,
    private readonly log: Logger,
    /** The edge the controller drives: it reconnects to the new process. */
    private readonly edge: RemoteBuiltinEdge,
    private readonly options: { readonly listenFd?: number; readonly listen?: string },
    private readonly restarted: (dp: ConnectedDataPlane) => void,
    /** Where the one that is gone listened (its successor binds the same address). */
    private readonly listen: () => string | null,
  ) {
    this.timer = setInterval(() => void this.check(), CHECK_MS);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.busy || this.stopped) return;
    if (lockHolder(this.config.stateDirPath, DATAPLANE_LOCK) !== null) return;
    this.busy = true;
    try {
      this.log.error(
        'the data plane is gone (crashed or killed): starting a new one, with the routes it saved',
      );
      const dp = await connectDataPlane(this.config, this.log, {
        ...this.options,
        ...(this.listen() !== null ? { listen: this.listen()! } : {}),
      });
      await dp.edge.close();
      await this.edge.reconnect();
      if (!this.stopped) this.restarted(dp);
    } catch (err) {
      this.log.error({ error: messageOf(err) }, 'could not start a new data plane; trying again');
    } finally {
      this.busy = false;
    }
  }

  /** Before `baton down` stops the data plane (or the controller exits). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
