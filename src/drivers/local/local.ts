// Instances as local processes: spawned without a shell in their own process group, output
// appended to a log file per instance in stateDir/logs, stopped group-wide with the configured
// signal and then SIGKILL. Processes outlive a killed daemon and are adopted back by pid, once
// proc.ts has shown that pid is still theirs (start time, BATON_INSTANCE_ID).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { AppConfig } from '../../config/schema.js';
import { ADMIN_TOKEN_ENV, withoutSecrets } from '../../config/secrets.js';
import { BatonError } from '../../errors.js';
import type {
  ExitInfo,
  Instance,
  InstanceDriver,
  InstanceRecord,
  LogText,
  Placement,
  StartSpec,
  StopOptions,
} from '../driver.js';
import { fillCommand, splitCommand } from '../../process/command.js';
import { lastLinesOf } from '../log-text.js';
import { identify, identityOf, running, sameProcess } from './proc.js';

export { pidAlive } from './proc.js';

const HOST = '127.0.0.1';
const ADOPTED_POLL_MS = 250;

/** True when nothing listens on the port (we could bind it). */
export function portFree(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

class LocalInstance implements Instance {
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;

  constructor(
    readonly record: InstanceRecord,
    exited: Promise<ExitInfo>,
  ) {
    this.exited = exited.then((info) => (this.exitInfo = info));
  }

  alive(): boolean {
    // By start time too: once it is gone, its pid may be another process's.
    const r = this.record;
    return this.exitInfo === null && sameProcess(r.pid, r.startTime, r.bootId);
  }

  logTail(lines = 20): string {
    return tail(this.record.logFile, lines);
  }

  logSize(): { bytes: number; at: number } | null {
    try {
      const bytes = statSync(this.record.logFile).size;
      return { bytes, at: Date.now() };
    } catch {
      return null;
    }
  }
}

/** The last lines of a log for an error message (its last 16 KiB at most); '' when unreadable. */
export function tail(file: string, lines: number): string {
  try {
    return readLog(file, lines, undefined, 16 * 1024).text;
  } catch {
    return '';
  }
}

/**
 * The last `lines` lines of a file, read from its last `maxBytes` only (a log may be huge); with
 * `from`, of the lines that begin at or after that byte (see InstanceDriver.fetchLog).
 */
export function readLog(file: string, lines: number, from?: number, maxBytes = 1024 * 1024): LogText {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { text: '' };
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    // From the byte before `from`: whether it ends a line tells if `from` starts one.
    const wanted = from === undefined || from === 0 ? 0 : Math.min(from - 1, size);
    const start = Math.max(wanted, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const r = lastLinesOf(buf.toString('utf8'), start > 0 || (from ?? 0) > 0, lines);
    return from === undefined ? { text: r.text } : { text: r.text, cut: r.cut || start > wanted };
  } finally {
    closeSync(fd);
  }
}

export class LocalDriver implements InstanceDriver {
  private readonly words: string[];
  private readonly logDir: string;
  private readonly cwd: string;

  constructor(
    private readonly app: AppConfig,
    baseDir: string,
    stateDir: string,
    /** What instances inherit: the daemon's environment without Baton's secrets (config/secrets.ts). */
    private readonly baseEnv: NodeJS.ProcessEnv = withoutSecrets(process.env, [ADMIN_TOKEN_ENV]),
  ) {
    this.words = splitCommand(app.command);
    this.logDir = path.join(stateDir, 'logs');
    this.cwd = path.resolve(baseDir, app.cwd ?? '.');
  }

  async allocate(running: readonly InstanceRecord[]): Promise<Placement> {
    return { host: HOST, port: await this.allocatePort(new Set(running.map((r) => r.port))) };
  }

  private async allocatePort(taken: ReadonlySet<number>): Promise<number> {
    const range = this.app.ports;
    if (range) {
      for (let p = range.from; p <= range.to; p++) if (!taken.has(p) && (await portFree(p))) return p;
      throw new BatonError(
        'BATON_E_CONFLICT',
        `no free port left in app.ports ${range.from}-${range.to} (${taken.size} used by Baton, the rest by other processes). Widen the range or stop what holds them.`,
      );
    }
    for (let i = 0; i < 20; i++) {
      const port = await new Promise<number>((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen(0, HOST, () => {
          const a = s.address() as net.AddressInfo;
          s.close(() => resolve(a.port));
        });
      });
      if (!taken.has(port)) return port;
    }
    throw new BatonError('BATON_E_CONFLICT', 'could not find a free port');
  }

  async start(spec: StartSpec): Promise<Instance> {
    if (!existsSync(this.cwd)) {
      throw new BatonError('BATON_E_CONFIG', `app working directory ${this.cwd} does not exist (app.cwd)`);
    }
    const values = {
      port: String(spec.port),
      version: spec.version,
      service: spec.service,
      instance: String(spec.slot),
    };
    const [file, ...args] = fillCommand(this.words, values);
    const id = `${spec.service}-${spec.version}-${spec.port}`;
    // In its environment, to know it again after a restart (its pid may be another's by then).
    const instanceId = randomBytes(8).toString('hex');
    mkdirSync(this.logDir, { recursive: true });
    const logFile = path.join(this.logDir, `${id}.log`);
    const fd = openSync(logFile, 'a');
    const child = (() => {
      try {
        return spawn(file!, args, {
          cwd: this.cwd,
          // Its own process group: stop signals reach its children too, and a Ctrl-C meant
          // for the daemon's terminal does not.
          detached: true,
          stdio: ['ignore', fd, fd],
          env: {
            ...this.baseEnv,
            ...this.app.env,
            PORT: String(spec.port),
            BATON_VERSION: spec.version,
            BATON_SERVICE: spec.service,
            BATON_INSTANCE: String(spec.slot),
            BATON_INSTANCE_ID: instanceId,
          },
        });
      } finally {
        closeSync(fd);
      }
    })();
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', resolve);
    });
    if (spawned) {
      const code = (spawned as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? `command not found: "${file}" (app.command). Check the path (relative paths start from ${this.cwd}) or PATH.`
          : code === 'EACCES'
            ? `"${file}" is not executable (app.command): chmod +x it or run it through its interpreter.`
            : `cannot start "${file}": ${spawned.message}`;
      throw new BatonError('BATON_E_BAD_REQUEST', why, { cause: spawned });
    }
    child.unref();
    const exited = new Promise<ExitInfo>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const record: InstanceRecord = {
      id,
      version: spec.version,
      host: HOST,
      port: spec.port,
      pid: child.pid!,
      logFile,
      startedAt: new Date().toISOString(),
      ...identityOf(child.pid!),
      instanceId,
    };
    return new LocalInstance(record, exited);
  }

  fetchLog(record: InstanceRecord, lines: number, from?: number): Promise<LogText> {
    return Promise.resolve(readLog(record.logFile, lines, from));
  }

  adopt(record: InstanceRecord, lost?: (reason: string) => void): Instance | null {
    const who = identify(record);
    if (who !== 'ours') {
      if (who !== 'gone') lost?.(who.notOurs);
      return null;
    }
    const exited = new Promise<ExitInfo>((resolve) => {
      const timer = setInterval(() => {
        if (!sameProcess(record.pid, record.startTime, record.bootId)) {
          clearInterval(timer);
          resolve({ code: null, signal: null });
        }
      }, ADOPTED_POLL_MS);
      timer.unref();
    });
    return new LocalInstance(record, exited);
  }

  async stop(instance: Instance, { signal, timeoutMs }: StopOptions): Promise<{ forced: boolean }> {
    const pid = instance.record.pid;
    if (!instance.alive()) return { forced: false };
    signalGroup(pid, signal);
    const gone = await Promise.race([
      instance.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref()),
    ]);
    // The leader may be gone while others in its group still run: the group goes too. Unless
    // its pid is another process's already (that one would lead a group of its own).
    const r = instance.record;
    if (!running(pid) || sameProcess(pid, r.startTime, r.bootId)) signalGroup(pid, 'SIGKILL');
    if (!gone) {
      await Promise.race([instance.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    return { forced: !gone };
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
