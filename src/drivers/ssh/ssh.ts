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
// Beside this file: where a new instance goes (placement.ts), the instance object
// (instance.ts), its liveness, one monitor per host (monitor.ts), the remote shell scripts
// (scripts.ts) and the ssh calls (transport.ts).
//
// Identity: a pid alone may be another process's by now (the host rebooted, pids wrapped). The
// start token is also the instance's BATON_INSTANCE_ID, and its start time and the host's boot
// id are recorded; every remote script checks them (`ours` in scripts.ts) before it counts a
// process as the instance or signals it. One that is not is reported gone, never signalled.
import { randomBytes } from 'node:crypto';
import type { AppConfig } from '../../config/schema.js';
import { BatonError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type {
  Instance,
  InstanceDriver,
  InstanceRecord,
  LogText,
  Placement,
  StartSpec,
  StopOptions,
} from '../driver.js';
import { checkVersion, fillCommand, splitCommand } from '../../process/command.js';
import { lastLinesOf } from '../log-text.js';
import { shPath, shQuote } from './quote.js';
import { SshInstance, TAIL_AFTER_START_MS } from './instance.js';
import { HostMonitors } from './monitor.js';
import { place } from './placement.js';
import { parseStart, parseStop, identityWords, startScript, stopScript, tailScript } from './scripts.js';
import { destinationOf, lastLines, SshHostError, SshTransport, type SshHost } from './transport.js';

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
export class SshDriver implements InstanceDriver {
  private readonly words: string[];
  private readonly ports: { from: number; to: number };
  private readonly transport: SshTransport;
  private readonly monitors: HostMonitors;
  private readonly log: Logger;
  /** Baton's folder on each host, as given (~/ allowed). */
  readonly remoteDir: string;
  private readonly commandTimeoutMs: number;
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
    this.transport = new SshTransport({
      stateDir: opts.stateDir,
      sshOptions: opts.sshOptions,
      connectTimeoutMs: opts.connectTimeoutMs,
      maxPerHost: opts.maxPerHost,
      sshBinary: opts.sshBinary,
      env: opts.env,
    });
    this.monitors = new HostMonitors({
      transport: this.transport,
      log: this.log,
      pollMs: opts.pollIntervalMs ?? 1000,
      timeoutMs: this.quickMs,
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
    const { hosts, ports, transport, log } = this;
    return place({ hosts, ports, transport, timeoutMs: this.quickMs, log }, running, version, onHosts);
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
        this.monitors.cleanupLater(host, token, { pidFileWord: `${dir}/run/${shQuote(`${id}.pid`)}`, token });
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
    this.monitors.watch(instance);
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
    this.monitors.forget(inst);
    return { forced };
  }

  // --- logs, close -----------------------------------------------------------------------------

  /** The last `lines` lines of the instance's remote log (for `baton logs`), see InstanceDriver. */
  async fetchLog(record: InstanceRecord, lines = 100, from?: number): Promise<LogText> {
    this.assertOpen();
    const host = this.hostOf(record.host, record.id);
    if (!host) throw new BatonError('BATON_E_NOT_FOUND', `${record.host} is not one of the hosts`);
    const { stdout } = await this.transport.run(host, tailScript(record.logFile, lines, from), {
      timeoutMs: this.quickMs,
      what: `read ${record.logFile}`,
    });
    if (from === undefined) return { text: stdout };
    // One line more than asked came back: then the first is one too many, or the start of the
    // part (a line begun before `from`); fewer, and it is the whole part.
    const whole = stdout.trimEnd().split('\n').length <= lines;
    return lastLinesOf(stdout, whole && from > 0, lines);
  }

  /** Stops the monitors and ends the ssh master connections. Instances keep running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.monitors.close();
    await this.transport.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new BatonError('BATON_E_INTERNAL', 'the SSH driver is closed');
  }
}
