// The nginx edge: Baton renders the one upstream file it owns (render.ts), has nginx check the
// whole config (`edge.test`), reloads it (`edge.reload`) and confirms the reload by looking at
// nginx's processes: apply() resolves once the master runs workers of the new generation and
// every older worker has stopped accepting (retitled "is shutting down", or gone). Old workers
// finish their requests, then exit; drain() waits for exactly those.
//
// Open-source nginx has neither active health checks nor slow start, so Baton does both: each
// change of health or of a slow-start step is one more render + test + reload. Every render
// goes through one queue, so an apply and a health change never interleave.
//
// Every reload closes the idle keep-alive connections of clients, so a render that nginx
// already serves is no reload, and backup routes (a blue-green switch keeps the old set as
// backup while the new one is watched) stay out of the file while Baton's health checks see a
// primary up: taking them out afterwards then changes nothing, and one switch is one reload.
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { EdgeConfig } from '../../config/schema.js';
import { BatonError, messageOf } from '../../errors.js';
import { splitCommand } from '../../process/command.js';
import {
  EdgeError,
  targetId,
  type DrainResult,
  type Edge,
  type EdgeCapabilities,
  type EdgeOptions,
  type EdgeTargetView,
  type RouteSpec,
  type SplitSpec,
  type StatsSnapshot,
} from '../edge.js';
import { NginxHealthChecks } from './health.js';
import { HostFileError, LocalNginxHost, type NginxHost, type NginxWorker } from './host.js';
import { fileHeader, parseGeneration, RAMP_STEPS, renderUpstream } from './render.js';
import { thenSentence } from '../../util/text.js';

export { isAlive, workersOf, type NginxWorker } from './host.js';

export type NginxEdgeConfig = Extract<EdgeConfig, { type: 'nginx' }>;

const CONFIRM_POLL_MS = 20;
const DRAIN_POLL_MS = 50;
/** Lines of nginx's output (or error log) quoted in an error. */
const OUTPUT_LINES = 10;

interface Ramp {
  /** Quarters of the target's weight now (1..RAMP_STEPS-1). */
  level: number;
  timer: NodeJS.Timeout | null;
}

interface Desired {
  readonly routes: readonly RouteSpec[];
  readonly split: SplitSpec | null;
  readonly ramp: ReadonlyMap<string, number>;
}

export class NginxEdge implements Edge {
  readonly kind = 'nginx';
  readonly describe: string;
  readonly can: EdgeCapabilities = {
    weightedSplit: true,
    matchRules: true,
    sticky: 'named',
    statusCounters: false,
    latencyBuckets: false,
  };
  private readonly file: string;
  private readonly pidFile: string;
  private readonly testCmd: string[];
  private readonly reloadCmd: string[];
  private routes: readonly RouteSpec[] = [];
  private split: SplitSpec | null = null;
  /** The last file body nginx confirmed (without the header); a refresh that changes nothing is skipped. */
  private lastBody: string | null = null;
  /** The targets in that file (backups held out are not): what a reload takes out is drained. */
  private rendered: ReadonlySet<string> = new Set();
  private generation = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly ramps = new Map<string, Ramp>();
  /** Workers that served a target before the reload that took it out: drain() awaits them. */
  private readonly removed = new Map<string, NginxWorker[]>();
  /** Baton's own checks of the primaries, when the app has a health check. */
  private readonly health: NginxHealthChecks | null;
  private warnedSticky = false;
  private closed = false;

  constructor(
    private readonly cfg: NginxEdgeConfig,
    private readonly opts: EdgeOptions,
    /** Where nginx runs: this machine, or the load balancer over SSH (see create.ts). */
    private readonly host: NginxHost = new LocalNginxHost(),
  ) {
    // Paths on another machine are taken as written (the schema wants them absolute there).
    const resolve = (p: string): string => (host.where ? p : path.resolve(opts.baseDir, p));
    this.file = resolve(cfg.upstreamFile);
    this.pidFile = resolve(cfg.pidFile);
    this.describe = `nginx${host.where} (${this.file})`;
    this.testCmd = commandWords(cfg.test, 'test');
    this.reloadCmd = commandWords(cfg.reload, 'reload');
    this.health = opts.health
      ? new NginxHealthChecks(opts.health, opts.log, () => void this.serialize(() => this.refresh('health')))
      : null;
  }

  /**
   * Checks nginx can be driven: its binaries, the file's folder, a running master. Writes only
   * a missing upstream file (see placeholder()); health checks start with the first apply().
   */
  async start(): Promise<void> {
    try {
      for (const [key, words] of [
        ['test', this.testCmd],
        ['reload', this.reloadCmd],
      ] as const) {
        if (!(await this.host.executable(words[0]!))) {
          throw new EdgeError(
            `nginx not found${this.host.where}: "${words[0]}" (edge.${key}: ${this.cfg[key]}) is not an executable file on PATH${this.host.where ? '' : ` (${process.env.PATH ?? ''})`}. Install nginx, or set edge.test / edge.reload to commands that run it, e.g. /usr/sbin/nginx -t`,
          );
        }
      }
      await this.host.writableDir(path.dirname(this.file));
      const wrote = await this.placeholder();
      await this.master().catch((err: unknown) => {
        if (wrote && err instanceof EdgeError) {
          throw new EdgeError(`${err.message} The upstream file ${this.file} is in place now.`);
        }
        throw err;
      });
    } catch (err) {
      throw this.edgeError(err);
    }
  }

  apply(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<void> {
    return this.serialize(async () => {
      this.warnBatonSticky(split);
      const before = new Set(this.routes.map(targetId));
      const ids = new Set(routes.map(targetId));
      // A ramp is relative to targets already serving: with none, there is nothing to ramp against.
      const serving = routes.some((r) => !r.backup && before.has(targetId(r)));
      const fresh = serving
        ? routes.filter((r) => (r.slowStartMs ?? 0) > 0 && !r.backup && !before.has(targetId(r)))
        : [];
      const ramp = new Map([...this.rampLevels()].filter(([id]) => ids.has(id)));
      for (const r of fresh) ramp.set(targetId(r), 1);
      const d: Desired = { routes, split, ramp };
      // What nginx serves already (the old set left as backup, now dropped): no reload.
      if (this.render(d) !== this.lastBody) await this.publish(d);
      this.routes = routes;
      this.split = split;
      this.syncRamps(ids, fresh);
      this.health?.sync(new Set(routes.filter((r) => !r.backup).map(targetId)));
    });
  }

  /**
   * Waits until every nginx worker that ran before the reload that took these targets out has
   * exited: nginx lets an old worker finish its requests first. `inflightLeft` is the number of
   * such workers still alive (nginx does not tell requests per target), 0 when drained.
   */
  async drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[]> {
    const routed = new Set(this.routes.map(targetId));
    const busy = ids.find((id) => routed.has(id));
    if (busy !== undefined) {
      throw new BatonError(
        'BATON_E_CONFLICT',
        `target ${busy} is still in the nginx upstream; take it out first`,
      );
    }
    return Promise.all(ids.map((id) => this.drainOne(id, timeoutMs)));
  }

  /** Open-source nginx keeps no per-server counters. */
  async stats(): Promise<StatsSnapshot | null> {
    return null;
  }

  async view(): Promise<EdgeTargetView[]> {
    return this.routes.map((r) => {
      const id = targetId(r);
      return {
        id,
        version: r.version ?? '',
        weight: r.weight,
        backup: r.backup ?? false,
        health: this.health?.healthOf(id) ?? 'unknown',
        inflight: null,
        requests: null,
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.ramps.values()) if (r.timer) clearTimeout(r.timer);
    this.ramps.clear();
    await this.health?.close();
    await this.queue;
    await this.host.close();
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes the file for `d`, has nginx test it, reloads and confirms. On any failure the
   * previous file is back (and nginx on it) before the EdgeError is thrown. The targets it
   * takes out of the file are drained by the workers of the generation before this one.
   */
  private async publish(d: Desired): Promise<void> {
    try {
      await this.publishOnce(d);
    } catch (err) {
      // What nginx serves is the previous file, or (lost while confirming) not known.
      this.lastBody = null;
      throw this.edgeError(err);
    }
  }

  private async publishOnce(d: Desired): Promise<void> {
    const master = await this.master(); // before touching anything
    const body = this.render(d);
    const previous = await this.readFile();
    const generation = Math.max(this.generation, parseGeneration(previous ?? '')) + 1;
    await this.writeFile(fileHeader(this.opts.service, generation, new Date()) + '\n' + body);
    this.generation = generation;

    const test = await this.host.run(this.testCmd, this.cfg.reloadTimeout);
    if (!test.ok) {
      await this.restore(previous);
      throw new EdgeError(
        `nginx${this.host.where} refused the new upstream file ${this.file}: \`${this.cfg.test}\` ${test.status}:\n${relevant(test.output)}\nThe previous file is back; traffic stays on the previous routes. Fix the nginx configuration (or edge.test) and try again.`,
        { details: { file: this.file, command: this.cfg.test, output: test.output } },
      );
    }
    const old = await this.host.workers(master);
    const reload = await this.host.run(this.reloadCmd, this.cfg.reloadTimeout);
    if (!reload.ok) {
      await this.restore(previous);
      throw new EdgeError(
        `nginx reload failed${this.host.where}: \`${this.cfg.reload}\` ${reload.status}:\n${relevant(reload.output)}\nThe previous upstream file ${this.file} is back; traffic stays on the previous routes. Baton must be allowed to signal nginx: run it as nginx's user, or set edge.reload (e.g. sudo -n nginx -s reload).`,
        { details: { file: this.file, command: this.cfg.reload, output: reload.output } },
      );
    }
    const confirmed = await this.confirm(master, old).catch((err: unknown) => err as Error);
    if (confirmed instanceof Error) {
      // The host stopped answering (SSH) after the reload: what nginx serves is not known.
      await this.restore(previous);
      await this.host.run(this.reloadCmd, this.cfg.reloadTimeout);
      throw new EdgeError(
        thenSentence(
          `lost nginx${this.host.where} while confirming the reload of ${this.file}: ${messageOf(confirmed)}`,
          'Baton tried to put the previous file back and reload it; check that host: nginx may serve the new routes or the previous ones.',
        ),
        { cause: confirmed, details: { file: this.file } },
      );
    }
    if (!confirmed) {
      await this.restore(previous);
      // Best effort: should the reload still happen, it must find the previous file again.
      await this.host.run(this.reloadCmd, this.cfg.reloadTimeout);
      const log = relevant(await this.host.errorLog(master).catch(() => ''));
      throw new EdgeError(
        `nginx${this.host.where} did not take the new upstream file ${this.file}: no new worker processes within ${this.cfg.reloadTimeout}ms of \`${this.cfg.reload}\` (master pid ${master}). nginx most likely refused the configuration at reload (a port it cannot bind, a file it cannot open)${log ? `; its error log ends with:\n${log}` : ''}\nThe previous file is back and nginx was told to reload it; traffic stays on the previous routes. Check nginx's error log.`,
        { details: { file: this.file, command: this.cfg.reload, errorLog: log } },
      );
    }
    this.lastBody = body;
    const shown = new Set(this.shown(d.routes).map(targetId));
    for (const id of this.rendered) if (!shown.has(id)) this.removed.set(id, old);
    for (const id of shown) this.removed.delete(id);
    this.rendered = shown;
    this.opts.log.info({ file: this.file, generation, routes: shown.size }, 'nginx reloaded');
  }

  /** Polls until a new-generation worker runs and no older one still accepts connections. */
  private async confirm(master: number, old: readonly NginxWorker[]): Promise<boolean> {
    const oldPids = new Set(old.map((w) => w.pid));
    const deadline = Date.now() + this.cfg.reloadTimeout;
    for (;;) {
      const now = await this.host.workers(master);
      const fresh = now.some((w) => !oldPids.has(w.pid) && !w.shuttingDown);
      // nginx starts the new workers ~100ms before it tells the old ones to quit; until then
      // an old worker may still accept a new connection onto the old routes.
      const oldAccepting = now.some((w) => oldPids.has(w.pid) && !w.shuttingDown);
      if (fresh && !oldAccepting) return true;
      if (Date.now() >= deadline || !(await this.host.running(master))) return false;
      await delay(CONFIRM_POLL_MS);
    }
  }

  private async drainOne(id: string, timeoutMs: number): Promise<DrainResult> {
    const started = Date.now();
    const workers = this.removed.get(id) ?? [];
    for (;;) {
      const left = (await this.host.alive(workers).catch(() => workers.map(() => true))).filter(
        Boolean,
      ).length;
      const waitedMs = Date.now() - started;
      if (left === 0) return { id, drained: true, waitedMs, inflightLeft: 0 };
      if (waitedMs >= timeoutMs) return { id, drained: false, waitedMs, inflightLeft: left };
      await delay(Math.min(DRAIN_POLL_MS, timeoutMs - waitedMs));
    }
  }

  /** Re-renders what is applied (health or slow start changed); logs, never throws. */
  private async refresh(reason: string): Promise<void> {
    if (this.closed) return;
    const d: Desired = { routes: this.routes, split: this.split, ramp: this.rampLevels() };
    try {
      if (this.render(d) === this.lastBody) return;
      await this.publish(d);
    } catch (err) {
      this.opts.log.error(
        { reason, file: this.file, err: messageOf(err) },
        'nginx edge: could not update nginx',
      );
    }
  }

  private render(d: Desired): string {
    return renderUpstream({
      service: this.opts.service,
      routes: this.shown(d.routes),
      split: d.split,
      balance: this.opts.balance,
      keepalive: this.cfg.keepalive,
      down: this.unhealthy(),
      ramp: d.ramp,
    });
  }

  /**
   * The routes the file holds. With Baton's health checks on, backups only while no primary can
   * take requests (all failing, weight 0, or none): a health change brings them in, one reload.
   * Without them nginx's own `backup` is all there is, so they are always in.
   */
  private shown(routes: readonly RouteSpec[]): readonly RouteSpec[] {
    if (!this.health || !routes.some((r) => r.backup)) return routes;
    const down = this.health.unhealthy();
    const up = routes.some((r) => !r.backup && r.weight > 0 && !down.has(targetId(r)));
    return up ? routes.filter((r) => !r.backup) : routes;
  }

  /**
   * An upstream file that nginx loads (one `down` placeholder server) where there is none yet,
   * so that the user's nginx.conf can include it before the first deploy. True when written.
   */
  private async placeholder(): Promise<boolean> {
    if ((await this.readFile()) !== null) return false;
    const empty = this.render({ routes: [], split: null, ramp: new Map() });
    await this.writeFile(fileHeader(this.opts.service, 0, new Date()) + '\n' + empty);
    this.opts.log.info(
      { file: this.file },
      `nginx upstream file was missing: wrote one with no target (upstream ${this.opts.service} answers 502) for nginx to load until the first deploy`,
    );
    return true;
  }

  /** The master's pid from the pid file, checked against /proc (a stale file can name a reused pid). */
  private async master(): Promise<number> {
    const m = await this.host.master(this.pidFile);
    if ('pid' in m) return m.pid;
    throw new EdgeError(
      `nginx is not running${this.host.where} (pid file ${this.pidFile}: ${m.why}): start nginx before Baton, or set edge.pidFile to the pid file of the running nginx (its pid directive).`,
    );
  }

  private async readFile(): Promise<string | null> {
    try {
      return await this.host.readFile(this.file);
    } catch (err) {
      throw this.writeError(err);
    }
  }

  /** Atomically (nginx reads the old file or the new one), keeping the file's mode. */
  private async writeFile(text: string): Promise<void> {
    try {
      await this.host.writeFile(this.file, text);
    } catch (err) {
      throw this.writeError(err);
    }
  }

  private async restore(previous: string | null): Promise<void> {
    try {
      if (previous === null) await this.host.removeFile(this.file);
      else await this.host.writeFile(this.file, previous);
    } catch (err) {
      this.opts.log.error(
        { file: this.file, err: messageOf(err) },
        'could not put the previous nginx upstream file back: fix it by hand before the next nginx reload',
      );
    }
  }

  /** An EdgeError as it is, a file error with what to do, anything else (SSH) with the previous routes. */
  private edgeError(err: unknown): EdgeError {
    if (err instanceof EdgeError) return err;
    if (err instanceof HostFileError) return this.writeError(err);
    return new EdgeError(
      thenSentence(
        `cannot drive nginx${this.host.where}: ${messageOf(err)}`,
        'Traffic stays on the previous routes.',
      ),
      { cause: err },
    );
  }

  private writeError(err: unknown): EdgeError {
    if (!(err instanceof HostFileError)) return this.edgeError(err);
    const dir = path.dirname(this.file);
    const fix =
      err.code === 'ENOENT' || err.code === 'ENOTDIR'
        ? `the folder ${dir} does not exist${this.host.where}: create it, or set edge.upstreamFile to a file in an existing folder`
        : `give the user running Baton${this.host.where ? ' there' : ''} write access to ${dir} (Baton replaces the file by renaming a new one into that folder), or set edge.upstreamFile to a file in a folder it can write`;
    return new EdgeError(
      `cannot write the nginx upstream file ${this.file}${this.host.where}: ${err.code ?? err.message}; ${fix}. nginx was not touched.`,
      { cause: err },
    );
  }

  private unhealthy(): Set<string> {
    return this.health?.unhealthy() ?? new Set();
  }

  private warnBatonSticky(split: SplitSpec | null): void {
    // With balance.algorithm hash, nginx keeps a client on one side by that key instead.
    if (this.warnedSticky || this.opts.balance.algorithm === 'hash' || split?.sticky !== 'baton') return;
    if (split.canaryPercent <= 0 || split.canaryPercent >= 100) return;
    this.warnedSticky = true;
    this.opts.log.warn(
      { edge: this.describe },
      "nginx cannot set Baton's sticky cookie: the canary share is per request. Set strategy.sticky to { header: NAME } or { cookie: NAME } to keep each client on one side",
    );
  }

  // --- slow start: a new target's weight in RAMP_STEPS steps, one reload each --------------

  private rampLevels(): Map<string, number> {
    return new Map([...this.ramps].map(([id, r]) => [id, r.level]));
  }

  private syncRamps(ids: ReadonlySet<string>, fresh: readonly RouteSpec[]): void {
    for (const [id, r] of this.ramps) {
      if (ids.has(id)) continue;
      if (r.timer) clearTimeout(r.timer);
      this.ramps.delete(id);
    }
    for (const r of fresh) this.startRamp(targetId(r), r.slowStartMs ?? 0);
  }

  /** Level 1 is applied with the route; levels 2, 3 and full weight follow every slowStart/3. */
  private startRamp(id: string, slowStartMs: number): void {
    const stepMs = slowStartMs / (RAMP_STEPS - 1);
    const ramp: Ramp = { level: 1, timer: null };
    const step = (): void => {
      if (this.ramps.get(id) !== ramp) return;
      ramp.level++;
      if (ramp.level >= RAMP_STEPS) this.ramps.delete(id);
      else ramp.timer = setTimeout(step, stepMs).unref();
      void this.serialize(() => this.refresh('slow start'));
    };
    ramp.timer = setTimeout(step, stepMs).unref();
    this.ramps.set(id, ramp);
  }
}

function commandWords(command: string, key: 'test' | 'reload'): string[] {
  try {
    return splitCommand(command);
  } catch (err) {
    throw new EdgeError(`edge.${key} (${command}): ${messageOf(err)}`);
  }
}

/** nginx's complaints ([emerg], [alert]...) from its output, else its last lines. */
function relevant(output: string): string {
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const flagged = lines.filter((l) => /\[(emerg|alert|crit|error)\]|failed/.test(l));
  return (flagged.length > 0 ? flagged : lines)
    .slice(-OUTPUT_LINES)
    .map((l) => `  ${l.slice(0, 500)}`)
    .join('\n');
}
