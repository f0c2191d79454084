// `proxy.workers: N`: the data plane serves with N processes, as nginx's worker_processes. The
// data plane is the first; it starts N-1 `baton dataplane` workers (src/dataplane/worker.ts)
// that inherit its listening socket (the kernel hands each new connection to one of the
// processes accepting on it) and routes the same table. Every change reaches every worker
// before it is answered: the controller drains nothing a worker may still route to. Drains,
// counters and /metrics are summed over all of them. A worker that dies is started again
// (backoff 250 ms to 10 s) with the table of now; one that does not answer within
// CALL_TIMEOUT_MS is killed and started again. The workers retire and stop with the data plane,
// and a worker whose data plane is gone (its IPC channel closed) finishes and exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { TargetOp } from '../admin/proxy-routes.js';
import type { EdgeRoutesBody } from '../api/edge.js';
import type { BatonConfig } from '../config/schema.js';
import type { BuiltinEdge } from '../edge/builtin/edge.js';
import type { TargetRow } from '../edge/builtin/metrics.js';
import type {
  DrainResult,
  EdgeTargetView,
  RouteSpec,
  SplitSpec,
  StatsSnapshot,
  TrafficSnapshot,
} from '../edge/edge.js';
import { sumStats } from '../edge/multi.js';
import { trafficSum } from '../edge/traffic.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { batonCommand, dataPlaneArgs } from './command.js';
import { LISTEN_FD_ENV } from './paths.js';
import { dataPlaneEnv } from './upgrade.js';
import { WORKER_ENV, type WorkerCall, type WorkerMessage } from './worker.js';

/** How long a worker has to answer a call (a drain: its timeout more). */
const CALL_TIMEOUT_MS = 10_000;
const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 10_000;

type Call = WorkerCall extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Worker {
  readonly n: number;
  child: ChildProcess | null;
  /** It listens and routes the table (its first call answered). */
  serving: boolean;
  readonly pending: Map<number, Pending>;
  restartMs: number;
  restartTimer: NodeJS.Timeout | null;
  startedAt: number;
}

/** The number of processes `proxy.workers` asks for (`auto`: one per CPU the process may use). */
export function workerCount(workers: number | 'auto', cpus: number): number {
  return workers === 'auto' ? Math.max(1, cpus) : workers;
}

export class ProxyWorkers {
  private readonly workers: Worker[] = [];
  private nextId = 1;
  private closing = false;

  constructor(
    private readonly config: BatonConfig,
    /**
     * What the data plane routes now, and the generation of that table (bumped by every change,
     * the targets API's too): what a worker is given when it starts.
     */
    private readonly current: () => { readonly generation: number; readonly table: EdgeRoutesBody },
    /** The data plane's listening socket, inherited by every worker as fd 4. */
    private readonly fd: number,
    /** The data plane's log: the workers write theirs there too. */
    private readonly logFile: string,
    private readonly log: Logger,
    /** Workers besides the data plane. */
    count: number,
  ) {
    for (let i = 0; i < count; i++) {
      this.workers.push({
        n: i + 2,
        child: null,
        serving: false,
        pending: new Map(),
        restartMs: RESTART_MIN_MS,
        restartTimer: null,
        startedAt: 0,
      });
    }
  }

  /** Starts every worker with the table of now; resolves when all of them serve. */
  async start(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.spawn(w)));
  }

  /** The pids of the workers running now. */
  pids(): number[] {
    return this.workers.flatMap((w) => (w.serving && w.child?.pid !== undefined ? [w.child.pid] : []));
  }

  /** The new table, in effect on every running worker when this resolves. */
  async apply(table: EdgeRoutesBody): Promise<void> {
    await this.all({ op: 'routes', table });
  }

  async drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[][]> {
    return this.all<DrainResult[]>({ op: 'drain', ids, timeoutMs }, timeoutMs);
  }

  stats(ids: readonly string[]): Promise<StatsSnapshot[]> {
    return this.all<StatsSnapshot>({ op: 'stats', ids });
  }

  traffic(): Promise<TrafficSnapshot[]> {
    return this.all<TrafficSnapshot>({ op: 'traffic' });
  }

  rows(): Promise<TargetRow[][]> {
    return this.all<TargetRow[]>({ op: 'rows' });
  }

  views(): Promise<EdgeTargetView[][]> {
    return this.all<EdgeTargetView[]>({ op: 'view' });
  }

  reloadCertificates(): Promise<boolean[]> {
    return this.all<boolean>({ op: 'certificates' });
  }

  /** A change of the targets API, made on every worker (a drain or removal waits for each). */
  target(op: TargetOp): Promise<unknown[]> {
    const wait = op.kind === 'drain' || op.kind === 'remove' ? op.timeoutMs : 0;
    return this.all({ op: 'target', target: op }, wait);
  }

  /**
   * After a handover (the new data plane has its own workers), or to stop: no more restarts;
   * each worker retires (`retire`: stops accepting, Connection: close, WebSockets closed) or
   * closes, and this resolves once all have exited or `timeoutMs` (and a grace) is over.
   */
  async stop(how: 'retire' | 'close', timeoutMs: number): Promise<void> {
    this.closing = true;
    const exits = this.workers.map((w) => {
      if (w.restartTimer) clearTimeout(w.restartTimer);
      const child = w.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      if (how === 'retire') this.call(w, { op: 'retire', timeoutMs }).catch(() => child.kill('SIGTERM'));
      else child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 2000);
      return exited.finally(() => clearTimeout(hard));
    });
    await Promise.all(exits);
  }

  /** `call` on every worker serving now; one that dies or hangs meanwhile is left out. */
  private async all<T>(call: Call, extraMs = 0): Promise<T[]> {
    const answers = await Promise.all(
      this.workers
        .filter((w) => w.serving)
        .map((w) =>
          this.call(w, call, extraMs).then(
            (r) => [r as T],
            (err: unknown) => this.lost(w, call, err),
          ),
        ),
    );
    return answers.flat();
  }

  /**
   * A worker that failed a call: gone already (it gets the table of now when it starts again),
   * or hung (killed, then started again). A call a live worker refused is thrown.
   */
  private lost(w: Worker, call: Call, err: unknown): never[] {
    if (err instanceof WorkerGone) return [];
    if (err instanceof WorkerLate) {
      this.log.error(
        { worker: w.n, pid: w.child?.pid, op: call.op },
        'data plane worker did not answer: killed',
      );
      w.child?.kill('SIGKILL');
      return [];
    }
    throw err;
  }

  private call(w: Worker, call: Call, extraMs = 0): Promise<unknown> {
    const child = w.child;
    if (!child?.connected) return Promise.reject(new WorkerGone());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        w.pending.delete(id);
        reject(new WorkerLate());
      }, CALL_TIMEOUT_MS + extraMs);
      w.pending.set(id, { resolve, reject, timer });
      child.send({ ...call, id }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        w.pending.delete(id);
        reject(new WorkerGone());
      });
    });
  }

  private spawn(w: Worker): Promise<void> {
    const { file, args } = batonCommand(dataPlaneArgs(this.config));
    const out = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: process.cwd(),
        stdio: ['ignore', out, out, 'ipc', this.fd],
        env: { ...dataPlaneEnv(this.config), [WORKER_ENV]: String(w.n), [LISTEN_FD_ENV]: '4' },
      });
    } finally {
      closeSync(out);
    }
    w.child = child;
    w.serving = false;
    w.startedAt = Date.now();
    child.on('message', (m: WorkerMessage) => {
      if (m?.type !== 'answer' && m?.type !== 'failed') return;
      const p = w.pending.get(m.id);
      if (!p) return;
      w.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.type === 'answer') p.resolve(m.result);
      else p.reject(new Error(`data plane worker ${w.n}: ${m.error}`));
    });
    child.once('exit', (code, signal) => this.exited(w, child, code, signal));
    child.on('error', (err) => this.log.error({ worker: w.n, error: messageOf(err) }, 'data plane worker'));
    // Its first call: the table, which it routes before it listens (never a request it cannot
    // route). A change made meanwhile reached only the workers serving: this one gets the table
    // again until it has the latest, and only then counts as serving (apply() reaches it).
    const catchUp = async (): Promise<void> => {
      let sent = -1;
      for (let now = this.current(); now.generation !== sent; now = this.current()) {
        sent = now.generation;
        await this.call(w, { op: 'routes', table: now.table });
      }
    };
    return catchUp().then(
      () => {
        w.serving = true;
        this.log.info({ worker: w.n, pid: child.pid }, 'data plane worker serving');
      },
      (err: unknown) => {
        this.log.error({ worker: w.n, error: messageOf(err) }, 'data plane worker did not start');
        child.kill('SIGKILL');
      },
    );
  }

  private exited(w: Worker, child: ChildProcess, code: number | null, signal: string | null): void {
    if (w.child !== child) return;
    for (const p of w.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new WorkerGone());
    }
    w.pending.clear();
    w.serving = false;
    w.child = null;
    if (this.closing) return;
    // Up for a while: it was not a crash loop.
    if (Date.now() - w.startedAt > 30_000) w.restartMs = RESTART_MIN_MS;
    this.log.warn(
      { worker: w.n, pid: child.pid, code, signal, restartInMs: w.restartMs },
      'data plane worker exited: starting it again (the other processes serve meanwhile)',
    );
    w.restartTimer = setTimeout(() => {
      w.restartTimer = null;
      if (!this.closing) void this.spawn(w);
    }, w.restartMs);
    w.restartTimer.unref();
    w.restartMs = Math.min(RESTART_MAX_MS, w.restartMs * 2);
  }
}

class WorkerGone extends Error {
  constructor() {
    super('the worker is not running');
  }
}

class WorkerLate extends Error {
  constructor() {
    super('the worker did not answer in time');
  }
}

/**
 * The data plane's own proxy and its workers as one edge, for the edge API: a change is answered
 * once in effect everywhere; drains wait for every process; counters are sums.
 */
export class WorkersEdge {
  constructor(
    private readonly own: BuiltinEdge,
    private readonly workers: ProxyWorkers,
  ) {}

  async apply(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<void> {
    await this.own.apply(routes, split);
    await this.workers.apply({ routes: [...routes], split });
  }

  async drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[]> {
    const [own, others] = await Promise.all([
      this.own.drain(ids, timeoutMs),
      this.workers.drain(ids, timeoutMs),
    ]);
    return own.map((r) => {
      const all = [r, ...others.flatMap((list) => list.filter((o) => o.id === r.id))];
      return {
        id: r.id,
        drained: all.every((x) => x.drained),
        waitedMs: Math.max(...all.map((x) => x.waitedMs)),
        inflightLeft: all.reduce((n, x) => n + x.inflightLeft, 0),
      };
    });
  }

  async stats(ids: readonly string[]): Promise<StatsSnapshot> {
    const [own, others] = await Promise.all([this.own.stats(ids), this.workers.stats(ids)]);
    return sumStats([own, ...others]);
  }

  /**
   * Summed; `since` is the newest of the processes' (trafficSum): a worker started again has
   * counted from then, and the proof sees counters that restarted and says so.
   */
  async traffic(): Promise<TrafficSnapshot> {
    const [own, others] = await Promise.all([this.own.traffic(), this.workers.traffic()]);
    return trafficSum([own, ...others]);
  }

  async view(): Promise<EdgeTargetView[]> {
    const [own, others] = await Promise.all([this.own.view(), this.workers.views()]);
    return own.map((v) => {
      const same = others.flatMap((list) => list.filter((o) => o.id === v.id));
      const sum = (pick: (x: EdgeTargetView) => number | null | undefined): number =>
        [v, ...same].reduce((n, x) => n + (pick(x) ?? 0), 0);
      return {
        ...v,
        inflight: sum((x) => x.inflight),
        requests: sum((x) => x.requests),
        clientAborts: sum((x) => x.clientAborts),
      };
    });
  }
}
