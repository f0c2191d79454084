// Where the nginx edge does its work: this machine (files and /proc read directly, commands run
// without a shell), or the load balancer over SSH (`edge.host`), where the same steps run as
// small POSIX sh scripts through one multiplexed connection. NginxEdge only sees this interface:
// write the upstream file, run `test` and `reload`, find the master and its workers, see them go.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { shJoin, shQuote } from '../../drivers/ssh/quote.js';
import { destinationOf, SshHostError, SshTransport, type SshHost } from '../../drivers/ssh/transport.js';
import { messageOf } from '../../errors.js';
import { writeFileAtomic } from '../../state/atomic.js';

export interface NginxWorker {
  readonly pid: number;
  readonly start: string;
  /** Retitled by nginx once told to quit: it accepts nothing new and exits when idle. */
  readonly shuttingDown: boolean;
}

export interface RunOutcome {
  readonly ok: boolean;
  /** "succeeded", "failed (exit 1)", "gave no answer within 5000ms"... */
  readonly status: string;
  readonly output: string;
}

/** A file operation that failed: its errno code (ENOENT, EACCES...) when known. */
export class HostFileError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface NginxHost {
  /** '' on this machine, else " on lb-1 (deploy@10.0.0.2:22)", for messages. */
  readonly where: string;
  /** Whether `bin` is an executable file (a bare name: on the PATH). */
  executable(bin: string): Promise<boolean>;
  /** Throws a HostFileError unless Baton can create files in `dir`. */
  writableDir(dir: string): Promise<void>;
  /** The file's text, or null when it does not exist. */
  readFile(file: string): Promise<string | null>;
  /** Replaces the file atomically (nginx reads the old one or the new one), keeping its mode. */
  writeFile(file: string, text: string): Promise<void>;
  removeFile(file: string): Promise<void>;
  /** Runs a command (no shell on this machine; words quoted remotely), output merged. */
  run(words: readonly string[], timeoutMs: number): Promise<RunOutcome>;
  /** The nginx master named by the pid file: its pid, or why there is none. */
  master(pidFile: string): Promise<{ pid: number } | { why: string }>;
  /** The master's worker processes (not its cache manager or loader). */
  workers(master: number): Promise<NginxWorker[]>;
  /** Whether a process runs under that pid (not a zombie). */
  running(pid: number): Promise<boolean>;
  /** Which of these workers still run (same pid and start time). */
  alive(workers: readonly NginxWorker[]): Promise<boolean[]>;
  /** The end of nginx's error log, found among the master's open files; '' when unreadable. */
  errorLog(master: number): Promise<string>;
  close(): Promise<void>;
}

// --- this machine ----------------------------------------------------------------------------

/** A process as /proc tells it; `start` (clock ticks after boot) tells a reused pid apart. */
interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly start: string;
  readonly zombie: boolean;
}

// /proc lives in memory: a synchronous read costs microseconds, far less than a round trip
// through libuv's thread pool per file (a scan of every process: ~1ms instead of ~20ms).

function readProc(pid: number): Proc | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ... starttime ...": comm may hold spaces and parentheses.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(f[1]), start: f[19] ?? '', zombie: f[0] === 'Z' };
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+/g, ' ').trim();
  } catch {
    return '';
  }
}

/** The worker processes of an nginx master on this machine, from /proc. */
export function workersOf(master: number): NginxWorker[] {
  const workers: NginxWorker[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p === null || p.ppid !== master || p.zombie) continue;
    const cmd = cmdline(p.pid);
    if (cmd.startsWith('nginx: worker process')) {
      workers.push({ pid: p.pid, start: p.start, shuttingDown: cmd.includes('shutting down') });
    }
  }
  return workers;
}

export function isAlive(w: Pick<NginxWorker, 'pid' | 'start'>): boolean {
  const p = readProc(w.pid);
  return p !== null && !p.zombie && p.start === w.start;
}

function runLocal(words: readonly string[], timeoutMs: number): Promise<RunOutcome> {
  return new Promise((resolve) => {
    execFile(
      words[0]!,
      words.slice(1),
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim();
        if (!err) return resolve({ ok: true, status: 'succeeded', output });
        const status =
          err.code === 'ENOENT'
            ? 'failed: command not found'
            : err.killed
              ? `gave no answer within ${timeoutMs}ms`
              : typeof err.code === 'number'
                ? `failed (exit ${err.code})`
                : `failed (${err.signal ?? err.code ?? 'error'})`;
        resolve({ ok: false, status, output: output || '(no output)' });
      },
    );
  });
}

export class LocalNginxHost implements NginxHost {
  readonly where = '';

  async executable(bin: string): Promise<boolean> {
    const candidates = bin.includes('/')
      ? [bin]
      : (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir || '.', bin));
    for (const file of candidates) {
      try {
        await fs.access(file, constants.X_OK);
        if ((await fs.stat(file)).isFile()) return true;
      } catch {
        // not this one
      }
    }
    return false;
  }

  async writableDir(dir: string): Promise<void> {
    try {
      await fs.access(dir, constants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new HostFileError(e.code, messageOf(err));
    }
  }

  async readFile(file: string): Promise<string | null> {
    try {
      return await fs.readFile(file, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return null;
      throw new HostFileError(e.code, messageOf(err));
    }
  }

  async writeFile(file: string, text: string): Promise<void> {
    try {
      const mode = await fs.stat(file).then(
        (s) => s.mode & 0o777,
        () => 0o644,
      );
      writeFileAtomic(file, text, { mode, mkdir: false });
    } catch (err) {
      throw new HostFileError((err as NodeJS.ErrnoException).code, messageOf(err));
    }
  }

  async removeFile(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  run(words: readonly string[], timeoutMs: number): Promise<RunOutcome> {
    return runLocal(words, timeoutMs);
  }

  async master(pidFile: string): Promise<{ pid: number } | { why: string }> {
    let text: string;
    try {
      text = await fs.readFile(pidFile, 'utf8');
    } catch (err) {
      return { why: (err as NodeJS.ErrnoException).code ?? messageOf(err) };
    }
    const pid = Number(text.trim());
    if (!Number.isSafeInteger(pid) || pid <= 0) return { why: 'no pid in it' };
    const proc = readProc(pid);
    if (proc === null || proc.zombie) return { why: `no process ${pid}` };
    const cmd = cmdline(pid);
    if (!cmd.includes('nginx')) return { why: `process ${pid} is "${cmd}", not nginx` };
    return { pid };
  }

  async workers(master: number): Promise<NginxWorker[]> {
    return workersOf(master);
  }

  async running(pid: number): Promise<boolean> {
    const p = readProc(pid);
    return p !== null && !p.zombie;
  }

  async alive(workers: readonly NginxWorker[]): Promise<boolean[]> {
    return workers.map(isAlive);
  }

  async errorLog(master: number): Promise<string> {
    const fdDir = `/proc/${master}/fd`;
    const fds = await fs.readdir(fdDir).catch(() => [] as string[]);
    const targets = await Promise.all(fds.map((fd) => fs.readlink(path.join(fdDir, fd)).catch(() => '')));
    const log = targets.find((t) => /error[^/]*\.log$/.test(t));
    if (!log) return '';
    return (await fs.readFile(log, 'utf8').catch(() => '')).slice(-8192);
  }

  async close(): Promise<void> {}
}

// --- the load balancer over SSH --------------------------------------------------------------

/** `stat`'s fields after "(comm) ": $1 state, $2 ppid, ${20} start time. */
const PROC_FIELDS = `pf() { l=; read -r l < "/proc/$1/stat" 2>/dev/null || return 1; set -- \${l##*) }; echo "$1 $2 \${20}"; }`;

export interface RemoteHostOptions {
  readonly host: SshHost;
  /** Control sockets go under <stateDir>/ssh. */
  readonly stateDir: string;
  readonly sshOptions?: readonly string[];
  readonly connectTimeoutMs?: number;
}

/**
 * The same steps on the load balancer, each one ssh call (a multiplexed session, a deadline
 * each). A host that does not answer is an SshHostError: the caller turns it into an EdgeError
 * with the previous routes still in effect (the file is only replaced by a rename there).
 */
export class RemoteNginxHost implements NginxHost {
  readonly where: string;
  private readonly transport: SshTransport;
  private readonly host: SshHost;

  constructor(o: RemoteHostOptions) {
    this.host = o.host;
    // "on lb-1 (deploy@10.0.0.2:22)" for an alias; "on deploy@10.0.0.2" as written otherwise.
    this.where = o.host.name.includes(o.host.address)
      ? ` on ${o.host.name}`
      : ` on ${o.host.name} (${destinationOf(o.host)})`;
    this.transport = new SshTransport({
      stateDir: o.stateDir,
      sshOptions: o.sshOptions,
      connectTimeoutMs: o.connectTimeoutMs,
      // One at a time would do; two let a health refresh wait less behind a drain poll.
      maxPerHost: 2,
    });
  }

  private async sh(script: string, what: string, timeoutMs = 10_000): Promise<string> {
    const { stdout } = await this.transport.run(this.host, script, {
      timeoutMs: this.transport.connectTimeoutMs + timeoutMs,
      what,
    });
    return stdout;
  }

  async executable(bin: string): Promise<boolean> {
    const out = await this.sh(
      bin.includes('/')
        ? `[ -f ${shQuote(bin)} ] && [ -x ${shQuote(bin)} ] && echo yes; exit 0`
        : `command -v ${shQuote(bin)} >/dev/null 2>&1 && echo yes; exit 0`,
      `look for ${bin}`,
    );
    return out.trim() === 'yes';
  }

  async writableDir(dir: string): Promise<void> {
    const out = await this.sh(
      `if [ ! -d ${shQuote(dir)} ]; then echo ENOENT; elif [ ! -w ${shQuote(dir)} ]; then echo EACCES; else echo ok; fi`,
      `check ${dir}`,
    );
    const r = out.trim();
    if (r !== 'ok') throw new HostFileError(r, `${dir}: ${r}${this.where}`);
  }

  async readFile(file: string): Promise<string | null> {
    // A marker first: an empty file and a missing one differ.
    const out = await this.sh(
      `if [ -e ${shQuote(file)} ]; then printf 'Y'; cat ${shQuote(file)} || exit 3; else printf 'N'; fi`,
      `read ${file}`,
    ).catch((err: unknown) => {
      throw new HostFileError(
        err instanceof SshHostError && err.kind === 'remote' ? 'EACCES' : undefined,
        messageOf(err),
      );
    });
    return out.startsWith('Y') ? out.slice(1) : null;
  }

  async writeFile(file: string, text: string): Promise<void> {
    const dir = path.posix.dirname(file);
    const tmp = `${dir}/.${path.posix.basename(file)}.baton-${randomBytes(4).toString('hex')}`;
    // The new file next to the old one, its mode copied, then renamed over it: atomic there.
    const script = [
      `f=${shQuote(file)}; t=${shQuote(tmp)}`,
      `[ -d ${shQuote(dir)} ] || { echo ENOENT >&2; exit 3; }`,
      `printf '%s' ${shQuote(text)} > "$t" || { rm -f "$t"; echo EACCES >&2; exit 3; }`,
      'if [ -e "$f" ]; then chmod "$(stat -c %a "$f")" "$t" 2>/dev/null; else chmod 644 "$t"; fi',
      'mv -f "$t" "$f" || { rm -f "$t"; echo EACCES >&2; exit 3; }',
    ].join('\n');
    await this.sh(script, `write ${file}`).catch((err: unknown) => {
      const code =
        err instanceof SshHostError && err.kind === 'remote' ? /E[A-Z]+/.exec(err.stderr)?.[0] : undefined;
      throw new HostFileError(code, messageOf(err));
    });
  }

  async removeFile(file: string): Promise<void> {
    await this.sh(`rm -f ${shQuote(file)}`, `remove ${file}`);
  }

  async run(words: readonly string[], timeoutMs: number): Promise<RunOutcome> {
    let out: string;
    try {
      // stdin is the script itself (sh -s): the command must not read the rest of it.
      out = await this.sh(
        `${shJoin(words)} < /dev/null 2>&1; echo "@exit $?"`,
        `run ${words.join(' ')}`,
        timeoutMs,
      );
    } catch (err) {
      return { ok: false, status: `could not be run${this.where}: ${messageOf(err)}`, output: '(no output)' };
    }
    const m = /@exit (\d+)\s*$/.exec(out);
    const output = (m ? out.slice(0, m.index) : out).trim();
    const code = m ? Number(m[1]) : -1;
    if (code === 0) return { ok: true, status: 'succeeded', output };
    return {
      ok: false,
      status: code === 127 ? 'failed: command not found' : `failed (exit ${code})`,
      output: output || '(no output)',
    };
  }

  async master(pidFile: string): Promise<{ pid: number } | { why: string }> {
    const out = await this.sh(
      [
        PROC_FIELDS,
        `[ -r ${shQuote(pidFile)} ] || { echo "X ENOENT"; exit 0; }`,
        `p=$(cat ${shQuote(pidFile)} 2>/dev/null | tr -d ' \\n')`,
        'case $p in ""|*[!0-9]*) echo "X no pid in it"; exit 0;; esac',
        'f=$(pf "$p") || { echo "X no process $p"; exit 0; }',
        'case $f in Z*) echo "X no process $p"; exit 0;; esac',
        'c=$(tr "\\0" " " < "/proc/$p/cmdline" 2>/dev/null)',
        'case $c in *nginx*) echo "M $p";; *) echo "X process $p is \\"$c\\", not nginx";; esac',
      ].join('\n'),
      `read ${pidFile}`,
    );
    const m = /^M (\d+)$/m.exec(out);
    if (m) return { pid: Number(m[1]) };
    return { why: /^X (.*)$/m.exec(out)?.[1] ?? `unexpected answer: ${out.trim().slice(0, 200)}` };
  }

  async workers(master: number): Promise<NginxWorker[]> {
    const out = await this.sh(
      [
        `m=${master}`,
        'for s in /proc/[0-9]*/stat; do',
        '  l=; read -r l < "$s" 2>/dev/null || continue',
        '  set -- ${l##*) }',
        '  [ "$2" = "$m" ] && [ "$1" != Z ] || continue',
        '  p=${s#/proc/}; p=${p%/stat}',
        '  c=$(tr "\\0" " " < "/proc/$p/cmdline" 2>/dev/null)',
        '  case $c in "nginx: worker process"*) echo "W $p ${20} $c";; esac',
        'done',
        'exit 0',
      ].join('\n'),
      'list nginx workers',
    );
    return out
      .split('\n')
      .map((l) => /^W (\d+) (\d+) (.*)$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ pid: Number(m[1]), start: m[2]!, shuttingDown: m[3]!.includes('shutting down') }));
  }

  async running(pid: number): Promise<boolean> {
    const out = await this.sh(
      `${PROC_FIELDS}\nf=$(pf ${pid}) && case $f in Z*) ;; *) echo yes;; esac; exit 0`,
      'check nginx',
    );
    return out.trim() === 'yes';
  }

  async alive(workers: readonly NginxWorker[]): Promise<boolean[]> {
    if (workers.length === 0) return [];
    const out = await this.sh(
      [
        PROC_FIELDS,
        ...workers.map(
          (w) =>
            `f=$(pf ${w.pid}) && set -- $f && [ "$1" != Z ] && [ "$3" = ${shQuote(w.start)} ] && echo "A ${w.pid}"`,
        ),
        'exit 0',
      ].join('\n'),
      'check old nginx workers',
    );
    const live = new Set(
      out
        .split('\n')
        .map((l) => /^A (\d+)$/.exec(l)?.[1])
        .filter(Boolean)
        .map(Number),
    );
    return workers.map((w) => live.has(w.pid));
  }

  async errorLog(master: number): Promise<string> {
    return this.sh(
      [
        `for fd in /proc/${master}/fd/*; do`,
        '  t=$(readlink "$fd" 2>/dev/null) || continue',
        '  case $t in */error*.log) tail -c 8192 "$t" 2>/dev/null; exit 0;; esac',
        'done',
        'exit 0',
      ].join('\n'),
      "read nginx's error log",
    ).catch(() => '');
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
