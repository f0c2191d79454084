// Instances on remote hosts over OpenSSH, with the local driver's semantics: each instance in a
// process group of its own (setsid), output appended to a log file per instance, stopped
// group-wide with the configured signal and then SIGKILL, {port}/{version}/{service}/{instance}
// filled in per word of app.command, PORT and BATON_* in its environment.
//
// On each host, Baton keeps its files under one folder, `remoteDir` (default
// ~/.baton/<service>, in the home of the ssh user):
//   logs/<id>.log   the instance's stdout and stderr (appended)
//   run/<id>.pid    "<pid> <start token>", removed once the instance is seen gone or stopped
// The id is <service>-<version>-<host name>-<port>; the record's `host` is the host's address
// (what the edges route to), its `logFile` the absolute remote path.
//
// Liveness: one monitor per host polls all its instances in one multiplexed ssh call. An
// instance is gone only when the host answered and the process is not there; while a host
// cannot be reached its instances stay alive() (unknown is not dead): the edges' health checks
// take them out of rotation. The exit code of a remote process is not known (code null).
//
// Identity: a pid alone may be another process's by now (the host rebooted, pids wrapped). The
// start token is also the instance's BATON_INSTANCE_ID, and its start time and the host's boot
// id are recorded; every remote script checks them (`ours` in scripts.ts) before it counts a
// process as the instance or signals it. One that is not is reported gone, never signalled.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { AppConfig } from '../../config/schema.js';
import { BatonError, messageOf } from '../../errors.js';
import type { Logger } from '../../log.js';
import type {
  ExitInfo,
  Instance,
  InstanceDriver,
  InstanceRecord,
  Placement,
  StartSpec,
  StopOptions,
} from '../driver.js';
import { checkVersion, fillCommand, splitCommand } from '../local/command.js';
import { shPath, shQuote } from './quote.js';
import {
  parsePoll,
  parsePorts,
  parseStart,
  parseStop,
  identityWords,
  pollScript,
  portsScript,
  startScript,
  stopScript,
  tailScript,
  type Cleanup,
} from './scripts.js';
import {
  destinationOf,
  HOST_ERROR_CODE,
  lastLines,
  SshHostError,
  SshTransport,
  type SshHost,
} from './transport.js';

export { SshHostError, type SshHost, type SshFailure } from './transport.js';
export { shQuote, shJoin } from './quote.js';

export interface SshDriverOptions {
  readonly service: string;
  /** Local state folder: the ssh control sockets go in <stateDir>/ssh (mode 700). */
  readonly stateDir: string;
  readonly log: Logger;
  /** Extra ssh arguments, given before Baton's own (so they win): ["-i", "/path/key", ...]. */
  readonly sshOptions?: readonly string[];
  /** ssh's ConnectTimeout (default 5000). */
  readonly connectTimeoutMs?: number;
  /** Time a short remote command may take once connected (default 10000). */
  readonly commandTimeoutMs?: number;
  /** Baton's folder on each host (default ~/.baton/<service>; ~/ is the ssh user's home). */
  readonly remoteDir?: string;
  /** Remote working directory of the app (default app.cwd; relative: from the login folder). */
  readonly cwd?: string;
  /** How often each host's instances are checked (default 1000). */
  readonly pollIntervalMs?: number;
  /** ssh calls in flight per host (default 4). */
  readonly maxPerHost?: number;
  readonly sshBinary?: string;
  /**
   * The ssh client's environment (its SendEnv may forward variables to the hosts): the
   * daemon's without Baton's secrets (config/secrets.ts); default without BATON_ADMIN_TOKEN.
   */
  readonly env?: NodeJS.ProcessEnv;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Ports asked about per host and allocation (the /dev/tcp fallback tries each). */
const MAX_CANDIDATES = 64;
/** How long after its start an instance's log tail rides along with each poll. */
const TAIL_AFTER_START_MS = 5000;

/** A remote instance: alive until a host that answers says it is gone. */
export class SshInstance implements Instance {
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private resolveExited!: (info: ExitInfo) => void;
  /** The last log tail fetched (at start-up, while it gets ready, when seen gone, at stop). */
  tailText = '';
  /** A stop is in progress: the monitor leaves it to the stop. */
  stopping = false;

  constructor(
    readonly record: InstanceRecord,
    readonly host: SshHost,
    /** Until then, each poll fetches its log tail too (its readiness window). */
    public tailUntil: number,
  ) {
    this.exited = new Promise<ExitInfo>((r) => (this.resolveExited = r));
  }

  alive(): boolean {
    return this.exitInfo === null;
  }

  /** The last lines fetched from the remote log (logTail is sync; SshDriver.fetchLog reads it). */
  logTail(lines = 20): string {
    return this.tailText === '' ? '' : lastLines(this.tailText, lines);
  }

  /** The remote pid file, next to the log: <dir>/run/<id>.pid. */
  get pidFile(): string {
    return pidFileOf(this.record);
  }

  markExited(info: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = info;
    this.resolveExited(info);
  }
}

function pidFileOf(r: InstanceRecord): string {
  return path.posix.join(path.posix.dirname(path.posix.dirname(r.logFile)), 'run', `${r.id}.pid`);
}

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

export class SshDriver implements InstanceDriver {
  private readonly words: string[];
  private readonly ports: { from: number; to: number };
  private readonly transport: SshTransport;
  private readonly monitors = new Map<string, Monitor>();
  private readonly log: Logger;
  /** Baton's folder on each host, as given (~/ allowed). */
  readonly remoteDir: string;
  private readonly commandTimeoutMs: number;
  private readonly pollMs: number;
  private closed = false;

  constructor(
    private readonly app: AppConfig,
    readonly hosts: readonly SshHost[],
    private readonly opts: SshDriverOptions,
  ) {
    if (hosts.length === 0) throw new BatonError('BATON_E_CONFIG', 'the SSH driver needs at least one host');
    const names = new Set<string>();
    for (const h of hosts) {
      if (names.has(h.name)) throw new BatonError('BATON_E_CONFIG', `host ${h.name} is listed twice`);
      names.add(h.name);
    }
    if (!app.ports) {
      throw new BatonError(
        'BATON_E_CONFIG',
        'instances on hosts need a port range (app.ports, e.g. 8081-8082): Baton picks a port free on the host from it',
      );
    }
    for (const k of Object.keys(app.env)) {
      if (!ENV_NAME.test(k)) {
        throw new BatonError(
          'BATON_E_CONFIG',
          `app.env: "${k}" is not a variable name a remote shell accepts (letters, digits and _, not starting with a digit)`,
        );
      }
    }
    this.ports = app.ports;
    this.words = splitCommand(app.command);
    this.log = opts.log;
    this.remoteDir = opts.remoteDir ?? `~/.baton/${opts.service}`;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 10_000;
    this.pollMs = opts.pollIntervalMs ?? 1000;
    this.transport = new SshTransport({
      stateDir: opts.stateDir,
      sshOptions: opts.sshOptions,
      connectTimeoutMs: opts.connectTimeoutMs,
      maxPerHost: opts.maxPerHost,
      sshBinary: opts.sshBinary,
      env: opts.env,
    });
  }

  /** Deadline of a short call: connecting plus the command. */
  private get quickMs(): number {
    return this.transport.connectTimeoutMs + this.commandTimeoutMs;
  }

  /** The host of a record: by address (what records carry), then by the name in its id. */
  hostOf(address: string, id?: string): SshHost | undefined {
    const matches = this.hosts.filter((h) => h.address === address);
    if (matches.length > 1 && id !== undefined) {
      const byName = matches.find((h) => id.includes(`-${h.name}-`));
      if (byName) return byName;
    }
    return matches[0];
  }

  // --- placement -------------------------------------------------------------------------------

  async allocate(
    running: readonly InstanceRecord[],
    version?: string,
    onHosts?: readonly string[],
  ): Promise<Placement> {
    const count = (host: SshHost, v?: string): number =>
      running.filter((r) => r.host === host.address && (v === undefined || r.version === v)).length;
    // Fewest instances of this version first (a new set spreads over the hosts, whatever the
    // old set left where), then fewest in all; the order of `hosts` breaks ties.
    const order = this.hosts
      .filter((h) => onHosts === undefined || onHosts.includes(h.name))
      .map((h, i) => ({ h, i, mine: version === undefined ? 0 : count(h, version), all: count(h) }))
      .sort((a, b) => a.mine - b.mine || a.all - b.all || a.i - b.i)
      .map((x) => x.h);
    const failures: SshHostError[] = [];
    const full: string[] = [];
    const { from, to } = this.ports;
    for (const host of order) {
      const taken = new Set(running.filter((r) => r.host === host.address).map((r) => r.port));
      const candidates: number[] = [];
      for (let p = from; p <= to && candidates.length < MAX_CANDIDATES; p++)
        if (!taken.has(p)) candidates.push(p);
      if (candidates.length === 0) {
        full.push(`${host.name}: all ${to - from + 1} used by Baton`);
        continue;
      }
      let used: Set<number> | null;
      try {
        const { stdout } = await this.transport.run(host, portsScript(candidates), {
          timeoutMs: this.quickMs,
          what: 'list listening ports',
        });
        used = parsePorts(stdout);
      } catch (err) {
        if (!(err instanceof SshHostError)) throw err;
        this.log.warn(
          { host: host.name, error: err.message },
          'cannot place an instance on this host; trying the next',
        );
        failures.push(err);
        continue;
      }
      if (used === null) {
        this.log.warn(
          { host: host.name },
          'neither ss nor bash on this host: cannot tell which ports are free, taking the first unused by Baton',
        );
      }
      const port = candidates.find((p) => !used?.has(p));
      if (port !== undefined) return { host: host.address, port };
      full.push(`${host.name}: ${taken.size} used by Baton, ${candidates.length} by other processes`);
    }
    if (failures.length === 1 && full.length === 0) throw failures[0]!;
    if (failures.length > 0) {
      throw new BatonError(
        HOST_ERROR_CODE,
        `no host can take a new instance:\n${[...failures.map((f) => `- ${f.message}`), ...full.map((f) => `- ${f} (app.ports ${from}-${to})`)].join('\n')}`,
        { details: { hosts: failures.map((f) => ({ host: f.host.name, kind: f.kind })) } },
      );
    }
    throw new BatonError(
      'BATON_E_CONFLICT',
      `no free port left in app.ports ${from}-${to} on any host (${full.join('; ')}). Widen the range, add hosts or stop what holds them.`,
    );
  }

  // --- start -----------------------------------------------------------------------------------

  async start(spec: StartSpec): Promise<Instance> {
    this.assertOpen();
    checkVersion(spec.version);
    const host = this.hostOf(spec.host);
    if (!host) {
      throw new BatonError(
        'BATON_E_BAD_REQUEST',
        `${spec.host} is not one of the hosts (${this.hosts.map((h) => `${h.name} ${h.address}`).join(', ')})`,
      );
    }
    const id = `${spec.service}-${spec.version}-${host.name}-${spec.port}`;
    const words = fillCommand(this.words, {
      port: String(spec.port),
      version: spec.version,
      service: spec.service,
      instance: String(spec.slot),
    });
    // Also its BATON_INSTANCE_ID: how it is known again (its pid may be another's one day).
    const token = randomBytes(8).toString('hex');
    const env = {
      ...this.app.env,
      PORT: String(spec.port),
      BATON_VERSION: spec.version,
      BATON_SERVICE: spec.service,
      BATON_INSTANCE: String(spec.slot),
      BATON_INSTANCE_ID: token,
    };
    const dir = shPath(this.remoteDir);
    const script = startScript({ dir, id, token, cwd: this.opts.cwd ?? this.app.cwd, env, words });
    let stdout: string;
    try {
      ({ stdout } = await this.transport.run(host, script, {
        // The script waits up to 3s for the pid file.
        timeoutMs: this.quickMs + 3000,
        what: `start ${id}`,
      }));
    } catch (err) {
      if (err instanceof SshHostError && err.kind !== 'auth' && err.kind !== 'hostkey') {
        // It may have run anyway (a lost answer, a late start): kill it on the next contact.
        const m = this.monitor(host);
        m.cleanups.set(token, { pidFileWord: `${dir}/run/${shQuote(`${id}.pid`)}`, token });
        this.schedule(m);
      }
      throw err;
    }
    const started = parseStart(stdout);
    if (!started) {
      throw new SshHostError(
        host,
        'remote',
        `start ${id} on host ${host.name} (${destinationOf(host)}) printed no pid: ${lastLines(stdout, 5) || '(nothing)'}`,
      );
    }
    const record: InstanceRecord = {
      id,
      version: spec.version,
      host: host.address,
      port: spec.port,
      pid: started.pid,
      logFile: started.logFile,
      startedAt: new Date().toISOString(),
      ...(started.startTime !== undefined ? { startTime: started.startTime } : {}),
      ...(started.bootId !== undefined ? { bootId: started.bootId } : {}),
      instanceId: token,
    };
    this.log.info(
      { instance: id, host: host.name, pid: started.pid, log: started.logFile },
      'instance started',
    );
    const instance = new SshInstance(record, host, Date.now() + this.app.readyTimeout + TAIL_AFTER_START_MS);
    this.watch(instance);
    return instance;
  }

  // --- adopt, watch ----------------------------------------------------------------------------

  adopt(record: InstanceRecord): Instance | null {
    const host = this.hostOf(record.host, record.id);
    if (!host) {
      this.log.warn(
        { instance: record.id, host: record.host, pid: record.pid },
        'instance on a host that is no longer in hosts: not adopted (stop it there by hand)',
      );
      return null;
    }
    const instance = new SshInstance(record, host, Date.now() + TAIL_AFTER_START_MS);
    this.watch(instance);
    return instance;
  }

  /**
   * Keeps `instance` under this driver's monitor: one this driver started or adopted, or one of
   * another SshDriver (the one before a config reload) that is closed next.
   */
  watch(instance: Instance): void {
    if (!(instance instanceof SshInstance) || !instance.alive() || this.closed) return;
    const m = this.monitor(instance.host);
    m.instances.add(instance);
    this.schedule(m);
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
    }, this.pollMs);
    m.timer.unref();
  }

  private async poll(m: Monitor): Promise<void> {
    const watched = [...m.instances].filter((i) => {
      if (!i.alive()) m.instances.delete(i);
      return i.alive() && !i.stopping;
    });
    const cleanups = [...m.cleanups.values()];
    if (this.closed || (watched.length === 0 && cleanups.length === 0)) return;
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
      const { stdout } = await this.transport.run(m.host, script, {
        timeoutMs: this.quickMs,
        what: 'check instances',
      });
      if (m.failing) {
        this.log.info({ host: m.host.name }, 'host answers again');
        m.failing = null;
      }
      const r = parsePoll(stdout);
      for (const i of watched) {
        const pid = i.record.pid;
        const tail = r.tails.get(pid);
        if (tail !== undefined) i.tailText = tail;
        if (r.gone.has(pid) && !i.stopping) {
          const lost = r.lost.get(pid);
          if (lost !== undefined) {
            this.log.warn(
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
        this.log.warn(
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

  // --- stop ------------------------------------------------------------------------------------

  async stop(instance: Instance, { signal, timeoutMs }: StopOptions): Promise<{ forced: boolean }> {
    this.assertOpen();
    const inst =
      instance instanceof SshInstance ? instance : (this.adopt(instance.record) as SshInstance | null);
    if (!inst) {
      throw new BatonError(
        'BATON_E_NOT_FOUND',
        `instance ${instance.record.id} is on ${instance.record.host}, which is not one of the hosts: stop it there by hand`,
      );
    }
    if (!inst.alive()) return { forced: false };
    const r = inst.record;
    inst.stopping = true;
    let stdout: string;
    try {
      ({ stdout } = await this.transport.run(
        inst.host,
        stopScript({
          pid: r.pid,
          signal: signal.replace(/^SIG/, ''),
          timeoutMs,
          logFile: r.logFile,
          pidFile: inst.pidFile,
          identity: identityWords(r),
        }),
        // Connecting, the signal's grace time, up to 5s after SIGKILL, and the command itself.
        { timeoutMs: this.quickMs + timeoutMs + 5000, what: `stop ${r.id}` },
      ));
    } catch (err) {
      // Still watched: it may well be running. The caller decides (see the report).
      inst.stopping = false;
      throw err;
    }
    const { result, tail, lost } = parseStop(stdout);
    if (tail) inst.tailText = tail;
    if (lost !== null) {
      this.log.warn(
        { instance: r.id, host: inst.host.name, pid: r.pid, reason: lost },
        'not stopped: its pid is another process now, which Baton leaves alone; the instance is gone',
      );
    }
    if (result === null) {
      inst.stopping = false;
      throw new SshHostError(
        inst.host,
        'remote',
        `stop ${r.id} on host ${inst.host.name}: unexpected answer ${lastLines(stdout, 3) || '(nothing)'}`,
      );
    }
    if (result === 'stuck') {
      this.log.warn(
        { instance: r.id, host: inst.host.name, pid: r.pid },
        'still there 5s after SIGKILL (uninterruptible?); no longer watched',
      );
    }
    const forced = result === 'forced' || result === 'stuck';
    inst.markExited({ code: null, signal: forced ? 'SIGKILL' : null });
    this.monitors.get(inst.host.name)?.instances.delete(inst);
    return { forced };
  }

  // --- logs, close -----------------------------------------------------------------------------

  /** The last `lines` lines of the instance's remote log (for `baton logs`). */
  async fetchLog(record: InstanceRecord, lines = 100): Promise<string> {
    this.assertOpen();
    const host = this.hostOf(record.host, record.id);
    if (!host) throw new BatonError('BATON_E_NOT_FOUND', `${record.host} is not one of the hosts`);
    const { stdout } = await this.transport.run(host, tailScript(record.logFile, lines), {
      timeoutMs: this.quickMs,
      what: `read ${record.logFile}`,
    });
    return stdout;
  }

  /** Stops the monitors and ends the ssh master connections. Instances keep running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.monitors.values()) {
      if (m.timer) clearTimeout(m.timer);
      m.timer = null;
    }
    await this.transport.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new BatonError('BATON_E_INTERNAL', 'the SSH driver is closed');
  }
}
