// Remote commands over the system's OpenSSH client: the user's keys, agent and ~/.ssh/config
// work as they do for `ssh` by hand. One multiplexed connection per host (ControlMaster), a
// bounded number of calls in flight per host, a deadline on every call, and ssh's failures
// turned into errors that name the host and say what to do.
//
// Each call runs `sh -s` remotely and writes the script to its stdin: the remote login shell
// only ever parses those two words, so the user's shell (bash, zsh, fish...) does not matter
// and scripts are not limited by the command line's length.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_TOKEN_ENV, withoutSecrets } from '../../config/secrets.js';
import { BatonError, type ErrorCode } from '../../errors.js';
import { indent } from '../../util/text.js';

/** A server instances run on. `address` is what ssh connects to and what the edges route to. */
export interface SshHost {
  readonly name: string;
  readonly address: string;
  readonly user?: string;
  readonly port?: number;
}

/**
 * The code of every host failure: BATON_E_DEPLOY_FAILED (a start or stop that cannot reach its
 * host fails the deploy). Callers tell host failures apart by SshHostError and its `kind`.
 */
export const HOST_ERROR_CODE: ErrorCode = 'BATON_E_DEPLOY_FAILED';

export type SshFailure =
  /** The host refused our key (or any other way to log in). */
  | 'auth'
  /** The host's key is unknown or changed (known_hosts). */
  | 'hostkey'
  /** No connection: refused, no route, name not resolved, connect timeout, connection lost. */
  | 'unreachable'
  /** Connected (or a connection in place) but no answer within the call's deadline. */
  | 'timeout'
  /** ssh itself failed for another reason (exit 255). */
  | 'ssh'
  /** The remote command ran and failed. */
  | 'remote';

/** A host could not do what was asked; `kind` says whether it is the host, the login or the command. */
export class SshHostError extends BatonError {
  constructor(
    readonly host: SshHost,
    readonly kind: SshFailure,
    message: string,
    readonly stderr = '',
    readonly sshExit: number | null = null,
  ) {
    super(HOST_ERROR_CODE, message, { details: { host: host.name, address: host.address, kind } });
  }

  /** True when the host may be fine and only the way to it is not (retry later). */
  get transient(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout';
  }
}

/** `user@address:port` as shown in messages (no user: the one ssh picks, from ~/.ssh/config or $USER). */
export function destinationOf(h: SshHost): string {
  return `${h.user ? `${h.user}@` : ''}${h.address}:${h.port ?? 22}`;
}

export interface TransportOptions {
  /** Base for the control sockets (`<stateDir>/ssh`, mode 700). */
  readonly stateDir: string;
  /** Given first, so they win over Baton's own -o options (ssh keeps the first value of an option). */
  readonly sshOptions?: readonly string[];
  readonly connectTimeoutMs?: number;
  /** Calls in flight per host; more wait their turn. */
  readonly maxPerHost?: number;
  /** The ssh binary (default: `ssh` from PATH). */
  readonly sshBinary?: string;
  /**
   * The ssh client's environment, which its SendEnv may forward to the host (default: the
   * daemon's without BATON_ADMIN_TOKEN; the driver's leaves out all of Baton's secrets).
   */
  readonly env?: NodeJS.ProcessEnv;
}

export interface RunOptions {
  /** The whole call's deadline: connect, login and the script itself. */
  readonly timeoutMs: number;
  /** What the call does, for messages: "start web-1.2.0-worker-1-8081". */
  readonly what: string;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

const MAX_OUTPUT = 1024 * 1024;
// A Unix socket path has room for 107 bytes; ssh adds ".<16 random chars>" while it sets up
// the master, and %C is 40 hex digits.
const MAX_SOCKET_DIR = 107 - 1 - 40 - 17;

class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A freed slot goes straight to the next in line, so no newcomer can slip in between.
    if (this.active >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Transports open per control folder in this process: two drivers with the same stateDir (the
 * one before a config reload and the next) share the master connections, and only the last to
 * close ends them.
 */
const controlDirs = new Map<string, { open: number; hosts: Map<string, SshHost> }>();

export class SshTransport {
  readonly connectTimeoutMs: number;
  readonly controlDir: string;
  private readonly limiters = new Map<string, Limiter>();
  private readonly children = new Set<ChildProcess>();
  /** Hosts connected to through this control folder (shared by its transports), by destination. */
  private readonly used: Map<string, SshHost>;
  private closed = false;

  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly opts: TransportOptions) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.env = opts.env ?? withoutSecrets(process.env, [ADMIN_TOKEN_ENV]);
    this.controlDir = controlDirFor(opts.stateDir);
    const shared = controlDirs.get(this.controlDir) ?? { open: 0, hosts: new Map<string, SshHost>() };
    shared.open++;
    controlDirs.set(this.controlDir, shared);
    this.used = shared.hosts;
  }

  /** The ssh arguments up to and including the destination. */
  argsFor(host: SshHost): string[] {
    if (host.address.startsWith('-') || (host.user ?? '').startsWith('-')) {
      throw new BatonError('BATON_E_CONFIG', `host ${host.name}: address and user cannot start with "-"`);
    }
    return [
      ...(this.opts.sshOptions ?? []),
      '-T',
      '-o',
      'BatchMode=yes',
      '-o',
      `ConnectTimeout=${Math.max(1, Math.ceil(this.connectTimeoutMs / 1000))}`,
      '-o',
      'ServerAliveInterval=2',
      '-o',
      'ServerAliveCountMax=2',
      '-o',
      'ControlMaster=auto',
      '-o',
      `ControlPath=${path.join(this.controlDir, '%C')}`,
      '-o',
      'ControlPersist=60',
      // Errors only: no "Warning: Permanently added ..." in the stderr we show.
      '-o',
      'LogLevel=ERROR',
      ...(host.port !== undefined ? ['-p', String(host.port)] : []),
      ...(host.user !== undefined ? ['-l', host.user] : []),
      host.address,
    ];
  }

  /** Runs `script` with sh on the host; resolves with its output when it exits 0. */
  run(host: SshHost, script: string, opts: RunOptions): Promise<RunResult> {
    if (this.closed) return Promise.reject(new BatonError('BATON_E_INTERNAL', 'the SSH driver is closed'));
    let limiter = this.limiters.get(host.name);
    if (!limiter) {
      limiter = new Limiter(this.opts.maxPerHost ?? 4);
      this.limiters.set(host.name, limiter);
    }
    return limiter.run(() => this.spawnOnce(host, script, opts));
  }

  private spawnOnce(host: SshHost, script: string, { timeoutMs, what }: RunOptions): Promise<RunResult> {
    this.ensureControlDir();
    this.used.set(destinationOf(host), host);
    const args = [...this.argsFor(host), 'sh -s'];
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(this.opts.sshBinary ?? 'ssh', args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: this.env,
      });
      this.children.add(child);
      let stdout = '';
      let stderr = '';
      let settled = false;
      let timedOut = false;
      const finish = (err: Error | null, result?: RunResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(result!);
      };
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (c: string) => {
        if (stdout.length < MAX_OUTPUT) stdout += c;
      });
      child.stderr.on('data', (c: string) => {
        if (stderr.length < MAX_OUTPUT) stderr += c;
      });
      child.stdin.on('error', () => undefined); // ssh gone before reading it: its exit says why
      child.stdin.end(script);
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 1000).unref();
        finish(
          new SshHostError(
            host,
            'timeout',
            `host ${host.name} (${destinationOf(host)}) did not answer within ${timeoutMs}ms (${what}): ` +
              `it may be down or cut off from this machine. Check it with: ${checkCommand(host)}`,
          ),
        );
      }, timeoutMs);
      timer.unref();
      child.once('error', (err: NodeJS.ErrnoException) => {
        this.children.delete(child);
        finish(
          err.code === 'ENOENT'
            ? new BatonError(
                'BATON_E_CONFIG',
                `the ssh client "${this.opts.sshBinary ?? 'ssh'}" was not found: install OpenSSH's client (apt install openssh-client) to run instances on hosts`,
                { cause: err },
              )
            : new SshHostError(host, 'ssh', `cannot run ssh for host ${host.name}: ${err.message}`),
        );
      });
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.children.delete(child);
        if (timedOut) return;
        if (code === 0) return finish(null, { stdout, stderr });
        finish(classify(host, code, signal, stderr, what, this.connectTimeoutMs));
      };
      // 'close' waits for the output to be read. A ControlPersist master forked by this call
      // must not hold our pipes open; if one ever does, 'exit' plus a moment is enough.
      child.once('close', done);
      child.once('exit', (code, signal) => {
        setTimeout(() => done(code, signal), 500).unref();
      });
    });
  }

  private ensureControlDir(): void {
    mkdirSync(this.controlDir, { recursive: true, mode: 0o700 });
    chmodSync(this.controlDir, 0o700);
  }

  /**
   * Kills the calls still running and, unless another open transport shares the control
   * folder, ends the master connections this one used.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    const shared = controlDirs.get(this.controlDir);
    if (shared && --shared.open > 0) return;
    controlDirs.delete(this.controlDir);
    await Promise.all(
      [...this.used.values()].map(
        (host) =>
          new Promise<void>((resolve) => {
            const c = spawn(
              this.opts.sshBinary ?? 'ssh',
              [...this.argsFor(host).slice(0, -1), '-O', 'exit', host.address],
              { stdio: 'ignore', env: this.env },
            );
            const t = setTimeout(() => c.kill('SIGKILL'), 3000);
            t.unref();
            c.once('error', () => resolve());
            c.once('close', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

/** `<stateDir>/ssh`, or a short folder in the temp dir when that path is too long for a socket. */
export function controlDirFor(stateDir: string): string {
  const dir = path.resolve(stateDir, 'ssh');
  if (Buffer.byteLength(dir) <= MAX_SOCKET_DIR) return dir;
  const hash = createHash('sha1').update(dir).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `baton-ssh-${process.getuid?.() ?? 'u'}-${hash}`);
}

/** ssh's exit and stderr as an error that names the host and says what to do. */
export function classify(
  host: SshHost,
  code: number | null,
  signal: NodeJS.Signals | null,
  stderrText: string,
  what: string,
  connectTimeoutMs: number,
): SshHostError {
  const stderr = stderrText.replace(/\r/g, '').trim();
  const dest = destinationOf(host);
  // ssh's own words, without a final period: the message goes on after them.
  const said = stderr ? `: ${lastLines(stderr, 6).replace(/\.+$/, '')}` : '';
  if (code !== 255) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const out = stderr ? `:\n${indent(lastLines(stderr, 25))}` : ' (nothing on stderr)';
    return new SshHostError(
      host,
      'remote',
      `${what} failed on host ${host.name} (${dest}): ${how}${out}`,
      stderr,
      code,
    );
  }
  if (
    /Permission denied|Too many authentication failures|no matching (host key|key exchange)/i.test(stderr)
  ) {
    return new SshHostError(
      host,
      'auth',
      `cannot log in to host ${host.name} (${dest}) over SSH${said}. ` +
        `Baton runs ssh with BatchMode=yes (no password prompts): the key it uses (ssh.options -i, ~/.ssh/config ` +
        `IdentityFile or the ssh agent) must be in ~${host.user ?? ''}/.ssh/authorized_keys on ${host.address}. ` +
        `Check with: ${checkCommand(host)}`,
      stderr,
      code,
    );
  }
  if (
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(
      stderr,
    )
  ) {
    return new SshHostError(
      host,
      'hostkey',
      `the host key of ${host.name} (${dest}) is not known or has changed${said}. ` +
        `Connect once by hand to accept it (ssh ${host.address}), or add it with ssh-keyscan to known_hosts; ` +
        `if it changed on purpose, remove the old one with ssh-keygen -R ${host.address}`,
      stderr,
      code,
    );
  }
  if (
    /timed out|Connection refused|No route to host|Network is unreachable|Could not resolve|Name or service not known|Connection closed|Connection reset|closed by remote host|Broken pipe|Timeout, server .* not responding|kex_exchange_identification/i.test(
      stderr,
    )
  ) {
    const timeout = /timed out/i.test(stderr) ? `; connect timeout ${connectTimeoutMs}ms` : '';
    return new SshHostError(
      host,
      'unreachable',
      `host ${host.name} (${dest}) is unreachable over SSH (${what}${timeout})${said}`,
      stderr,
      code,
    );
  }
  return new SshHostError(
    host,
    'ssh',
    `ssh to host ${host.name} (${dest}) failed (${what})${said}`,
    stderr,
    code,
  );
}

/** The command a user runs to check a host by hand, as Baton connects. */
export function checkCommand(h: SshHost): string {
  return `ssh -o BatchMode=yes ${h.port !== undefined ? `-p ${h.port} ` : ''}${h.user ? `${h.user}@` : ''}${h.address} true`;
}

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}
