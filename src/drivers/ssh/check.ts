// `baton hosts check`: before the first deploy (and whenever a host was rebuilt), whether each
// host can run the service's instances. Per host, two ssh calls: one that logs in and looks at
// everything a deploy needs (the tools Baton's scripts use, the app command, its working folder,
// Baton's remote folder and the free space under it, the ports of app.ports that are free), and
// a second, on the connection the first opened, that reads the host's clock (the round trip is
// short then, so the skew is known within a few milliseconds).
//
// Nothing is started and nothing is left behind but Baton's remote folder (logs/, run/), which a
// deploy would create anyway.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AppConfig } from '../../config/schema.js';
import { messageOf } from '../../errors.js';
import { fillCommand, splitCommand } from '../../process/command.js';
import { shPath, shQuote } from './quote.js';
import { parsePorts, portsScript } from './scripts.js';
import { destinationOf, SshHostError, SshTransport, type SshHost } from './transport.js';

/** What Baton's own remote scripts run (scripts.ts). */
// cut, tr, grep, head and cat: the scripts' identity check (`ours` in scripts.ts).
const TOOLS = [
  'sh',
  'setsid',
  'kill',
  'sed',
  'tail',
  'mkdir',
  'rm',
  'sleep',
  'cut',
  'tr',
  'grep',
  'head',
  'cat',
] as const;
/** Less than this free under the remote folder is worth a warning (logs grow). */
const LOW_SPACE_KIB = 100 * 1024;
/** A clock further off than this (beyond what the round trip leaves unknown) is a problem. */
const SKEW_PROBLEM_MS = 5000;
const SKEW_NOTE_MS = 1000;
const MAX_PORTS = 64;

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckItem {
  /** ssh, clock, tools, command, folder, disk, ports */
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export interface HostReport {
  readonly host: string;
  readonly destination: string;
  readonly ok: boolean;
  readonly checks: CheckItem[];
}

export interface HostCheckOptions {
  readonly app: AppConfig;
  /** How many instances a host must have room for (app.instancesPerHost). */
  readonly perHost: number;
  readonly service: string;
  readonly sshOptions?: readonly string[];
  readonly connectTimeoutMs?: number;
  readonly remoteDir?: string;
  /** Fills {version} in app.command when its program depends on it. */
  readonly version?: string;
  readonly sshBinary?: string;
}

/** Checks every host at once; one report per host, in the order given. */
export async function checkHosts(hosts: readonly SshHost[], o: HostCheckOptions): Promise<HostReport[]> {
  // A control folder of its own: the daemon's master connections are not this command's to end.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-check-'));
  const transport = new SshTransport({
    stateDir: dir,
    sshOptions: o.sshOptions,
    connectTimeoutMs: o.connectTimeoutMs,
    sshBinary: o.sshBinary,
  });
  try {
    return await Promise.all(hosts.map((h) => checkHost(transport, h, o)));
  } finally {
    await transport.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The program app.command runs, filled in; null when it depends on {version} and none was given. */
function programOf(o: HostCheckOptions): string | null {
  const [first] = splitCommand(o.app.command);
  if (first === undefined) return null;
  if (first.includes('{version}') && o.version === undefined) return null;
  const [filled] = fillCommand([first], {
    port: String(o.app.ports?.from ?? 0),
    version: o.version ?? '',
    service: o.service,
    instance: '1',
  });
  return filled ?? null;
}

function inspectScript(o: HostCheckOptions, program: string | null, candidates: readonly number[]): string {
  const cwd = o.app.cwd;
  return [
    ...TOOLS.map((t) => `command -v ${t} >/dev/null 2>&1 && echo "Y ${t}" || echo "N ${t}"`),
    `d=${shPath(o.remoteDir ?? `~/.baton/${o.service}`)}`,
    // A byte written, not only a file made: a full disk still has inodes for empty files.
    'if mkdir -p "$d/logs" "$d/run" 2>/dev/null && echo x > "$d/.baton-check" 2>/dev/null; then rm -f "$d/.baton-check"; echo "W $(cd "$d" && pwd)"; else echo "w $d"; rm -f "$d/.baton-check" 2>/dev/null; fi',
    'echo "F $(df -Pk "$d" 2>/dev/null | awk \'NR==2 {print $4}\')"',
    cwd !== undefined ? `cd ${shQuote(cwd)} 2>/dev/null && echo "D $(pwd)" || echo "d"` : '',
    program !== null
      ? `p=$(command -v ${shQuote(program)} 2>/dev/null) && echo "X $p" || echo "x $PATH"`
      : '',
    'echo "@ports"',
    portsScript(candidates).replace(/\nexit 0$/, ''),
    'exit 0',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

async function checkHost(transport: SshTransport, host: SshHost, o: HostCheckOptions): Promise<HostReport> {
  const checks: CheckItem[] = [];
  const report = (): HostReport => ({
    host: host.name,
    destination: destinationOf(host),
    ok: checks.every((c) => c.status !== 'fail'),
    checks,
  });
  const timeoutMs = transport.connectTimeoutMs + 10_000;
  const program = programOf(o);
  const ports = o.app.ports;
  const candidates: number[] = [];
  if (ports) for (let p = ports.from; p <= ports.to && candidates.length < MAX_PORTS; p++) candidates.push(p);

  const t0 = Date.now();
  let out: string;
  try {
    ({ stdout: out } = await transport.run(host, inspectScript(o, program, candidates), {
      timeoutMs,
      what: 'check the host',
    }));
  } catch (err) {
    const kind = err instanceof SshHostError ? err.kind : 'ssh';
    checks.push({ name: 'ssh', status: 'fail', detail: `${kind}: ${messageOf(err)}` });
    return report();
  }
  checks.push({ name: 'ssh', status: 'ok', detail: `logged in, ran a command (${Date.now() - t0} ms)` });
  checks.push(await clock(transport, host, timeoutMs));

  const lines = out.split('\n');
  const tagged = (tag: string): string[] =>
    lines.filter((l) => l === tag || l.startsWith(`${tag} `)).map((l) => l.slice(tag.length + 1));
  const missing = tagged('N');
  checks.push(
    missing.length === 0
      ? { name: 'tools', status: 'ok', detail: TOOLS.join(', ') }
      : {
          name: 'tools',
          status: 'fail',
          detail: `missing: ${missing.join(', ')}${missing.includes('setsid') ? ' (setsid is in util-linux)' : ''}`,
        },
  );

  if (o.app.cwd !== undefined) {
    const [dir] = tagged('D');
    checks.push(
      dir !== undefined
        ? { name: 'cwd', status: 'ok', detail: dir }
        : {
            name: 'cwd',
            status: 'fail',
            detail: `app.cwd ${o.app.cwd} does not exist (a relative one starts from the login folder)`,
          },
    );
  }

  if (program === null) {
    checks.push({
      name: 'command',
      status: 'skip',
      detail: 'app.command runs a program that depends on {version}: give --version to check it',
    });
  } else {
    const [found] = tagged('X');
    const [pathVar] = tagged('x');
    checks.push(
      found !== undefined
        ? { name: 'command', status: 'ok', detail: `${program}: ${found}` }
        : {
            name: 'command',
            status: 'fail',
            detail: `${program} not found (app.command; PATH=${pathVar ?? '?'}${o.app.cwd ? `, in ${o.app.cwd}` : ''})`,
          },
    );
  }

  const [folder] = tagged('W');
  const [unwritable] = tagged('w');
  checks.push(
    folder !== undefined
      ? { name: 'folder', status: 'ok', detail: `${folder} writable (logs, pid files)` }
      : {
          name: 'folder',
          status: 'fail',
          detail: `cannot write in ${unwritable ?? 'the remote folder'} (ssh.remoteDir): a full disk, or no permission for ${host.user ?? 'this user'}`,
        },
  );
  const freeKiB = Number(tagged('F')[0]);
  if (Number.isFinite(freeKiB) && tagged('F')[0] !== '') {
    const gib = freeKiB / 1024 / 1024;
    const shown = gib >= 1 ? `${gib.toFixed(1)} GiB` : `${(freeKiB / 1024).toFixed(0)} MiB`;
    checks.push({
      name: 'disk',
      status: freeKiB < LOW_SPACE_KIB ? 'warn' : 'ok',
      detail: `${shown} free under the remote folder${freeKiB < LOW_SPACE_KIB ? ': instance logs may fill it' : ''}`,
    });
  }

  if (!ports) {
    checks.push({ name: 'ports', status: 'fail', detail: 'app.ports is not set: hosts need a port range' });
  } else {
    const at = lines.indexOf('@ports');
    const used = parsePorts(lines.slice(at + 1).join('\n'));
    const range = `${ports.from}-${ports.to}`;
    if (used === null) {
      checks.push({
        name: 'ports',
        status: 'warn',
        detail: `neither ss nor bash here: cannot tell which of ${range} are free`,
      });
    } else {
      const busy = candidates.filter((p) => used.has(p));
      const free = candidates.length - busy.length;
      const need = o.perHost;
      checks.push({
        name: 'ports',
        status: free >= need ? 'ok' : 'fail',
        detail:
          `${range}: ${free} free${busy.length ? `, in use: ${busy.join(', ')}` : ''}` +
          (free >= need
            ? ` (a deploy starts ${need} beside what runs)`
            : `; a deploy needs ${need} free beside what runs: widen app.ports or free them`),
      });
    }
  }
  return report();
}

/** The host's clock against ours, over the open connection: skew ± half the round trip. */
async function clock(transport: SshTransport, host: SshHost, timeoutMs: number): Promise<CheckItem> {
  const t0 = Date.now();
  let out: string;
  try {
    ({ stdout: out } = await transport.run(host, 'date +%s%N', { timeoutMs, what: 'read the clock' }));
  } catch (err) {
    return { name: 'clock', status: 'warn', detail: `cannot read the clock: ${messageOf(err)}` };
  }
  const t1 = Date.now();
  const text = out.trim();
  // GNU date: nanoseconds; one without %N prints it as is (or "N"): seconds then.
  const remoteMs = /^\d{19}$/.test(text)
    ? Number(BigInt(text) / 1_000_000n)
    : /^\d+/.test(text)
      ? Number(/^\d+/.exec(text)![0].slice(0, 10)) * 1000 + 500
      : NaN;
  if (!Number.isFinite(remoteMs)) return { name: 'clock', status: 'warn', detail: `date printed ${text}` };
  const precise = /^\d{19}$/.test(text);
  const skew = remoteMs - (t0 + t1) / 2;
  const unsure = (t1 - t0) / 2 + (precise ? 0 : 500);
  const beyond = Math.abs(skew) - unsure;
  const shown = `${skew >= 0 ? '+' : '-'}${(Math.abs(skew) / 1000).toFixed(3)}s from this machine (±${(unsure / 1000).toFixed(3)}s)`;
  if (beyond > SKEW_PROBLEM_MS) {
    return {
      name: 'clock',
      status: 'fail',
      detail: `${shown}: log times and deploy windows disagree between machines; run NTP (chrony, systemd-timesyncd)`,
    };
  }
  return { name: 'clock', status: beyond > SKEW_NOTE_MS ? 'warn' : 'ok', detail: shown };
}

const MARK: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' };

/** The reports as text, one block per host. */
export function formatReports(reports: readonly HostReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    out.push(`${r.host} (${r.destination}): ${r.ok ? 'ready' : 'NOT READY'}`);
    for (const c of r.checks)
      out.push(`  ${MARK[c.status]}  ${c.name.padEnd(8)} ${c.detail.replace(/\n/g, '\n                  ')}`);
  }
  return `${out.join('\n')}\n`;
}
