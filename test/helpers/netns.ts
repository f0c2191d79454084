// Test hosts reachable over SSH, made of Linux network namespaces: a bridge in the root
// namespace with a private /24 (10.231.X.0/24, X random and unused, .1 on our side), and per
// host a namespace bt<rand>-<i> joined to it by a veth pair (eth0 = .10+i inside), running its
// own sshd (generated host key, a generated client key in a temporary authorized_keys). The
// file system is shared, so paths on "remote" hosts are the same as here. Needs root, `ip netns`
// and /usr/sbin/sshd; without them createHosts returns null (see sshHostsUnavailable for why).
//
// Teardown kills every process in each namespace, deletes the namespaces, veths and bridge:
// only what was created here, found by its random name.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { homedir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { SshHost } from '../../src/drivers/ssh/ssh.js';
import { waitFor } from './index.js';

const SSHD = '/usr/sbin/sshd';

export interface TestHosts {
  readonly hosts: SshHost[];
  /** ssh options that log in as root on every host (key, known_hosts, no user config). */
  readonly sshOptions: string[];
  /** The same with a second key that no host accepts. */
  readonly badKeyOptions: string[];
  /** The namespace of hosts[i], for `ip netns exec`. */
  readonly namespaces: string[];
  /** Runs a command inside hosts[i]'s namespace; throws when it fails. */
  exec(i: number, args: readonly string[]): string;
  /** Takes hosts[i] off the network (its eth0 down). */
  cut(i: number): void;
  /** Puts hosts[i] back (eth0 up, default route back). */
  restore(i: number): void;
  /** Temporary folder (keys, sshd configs), removed at teardown. */
  readonly dir: string;
}

function run(cmd: string, args: readonly string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

function must(cmd: string, args: readonly string[]): string {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.out.trim()}`);
  return r.out;
}

/** Why SSH test hosts cannot be made here, or null when they can. */
export function sshHostsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  if (!existsSync(SSHD)) return `${SSHD} is missing (apt install openssh-server)`;
  for (const bin of ['ssh', 'ssh-keygen', 'ip']) {
    if (!run('sh', ['-c', `command -v ${bin}`]).ok) return `${bin} is not installed`;
  }
  const probe = run('ip', ['netns', 'list']);
  if (!probe.ok) return `ip netns does not work here: ${probe.out.trim()}`;
  return null;
}

/** Whether an address is one of the test hosts' (the private 10.231.0.0/16 made here). */
export function isTestHostAddress(address: string): boolean {
  return /^10\.231\.\d{1,3}\.\d{1,3}$/.test(address);
}

function unusedSubnet(): number {
  const used = `${must('ip', ['-4', '-o', 'addr'])}\n${must('ip', ['-4', 'route', 'show', 'table', 'all'])}`;
  for (let tries = 0; tries < 50; tries++) {
    const x = randomInt(1, 255);
    if (!used.includes(`10.231.${x}.`)) return x;
  }
  throw new Error('no unused 10.231.X.0/24 subnet');
}

function sshdConfig(dir: string, i: number, address: string): string {
  return [
    `ListenAddress ${address}:22`,
    `HostKey ${path.join(dir, `host-${i}`)}`,
    `PidFile ${path.join(dir, `sshd-${i}.pid`)}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The temporary folder sits in world-writable /tmp.
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    'MaxStartups 50',
    'MaxSessions 50',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

/** Waits until something answers an SSH banner on address:22. */
function sshBanner(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port: 22 });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('data', (c: Buffer) => done(c.toString().startsWith('SSH-')));
    s.once('error', () => done(false));
  });
}

/**
 * `n` SSH hosts in network namespaces, removed at the test's teardown; null when this machine
 * cannot make them (sshHostsUnavailable() says why).
 */
export async function createHosts(t: TestContext, n: number): Promise<TestHosts | null> {
  if (sshHostsUnavailable() !== null) return null;
  const rand = randomBytes(2).toString('hex');
  const x = unusedSubnet();
  const bridge = `bt${rand}br`;
  const namespaces = Array.from({ length: n }, (_, i) => `bt${rand}-${i + 1}`);
  const rootVeths = Array.from({ length: n }, (_, i) => `bt${rand}h${i + 1}`);
  const existing = must('ip', ['-o', 'link']) + must('ip', ['netns', 'list']);
  if (existing.includes(`bt${rand}`)) throw new Error(`bt${rand}* exists already; run again`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-netns-'));
  const sshds: ChildProcess[] = [];
  const sshdOutput: string[] = [];

  const teardown = (): void => {
    // Again until none is left: a process may fork while the list is read (nginx's workers).
    for (let round = 0; round < 10; round++) {
      let found = 0;
      for (const ns of namespaces) {
        const pids = run('ip', ['netns', 'pids', ns]);
        if (!pids.ok) continue;
        for (const pid of pids.out.split(/\s+/).filter(Boolean).map(Number)) {
          found++;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      if (found === 0) break;
    }
    for (const c of sshds) if (c.exitCode === null) c.kill('SIGKILL');
    for (const ns of namespaces) run('ip', ['netns', 'del', ns]);
    for (const v of rootVeths) run('ip', ['link', 'del', v]);
    run('ip', ['link', 'del', bridge]);
    rmSync(dir, { recursive: true, force: true });
    const left = must('ip', ['netns', 'list']) + must('ip', ['-o', 'link']);
    if (left.includes(`bt${rand}`)) throw new Error(`teardown left bt${rand}* behind:\n${left}`);
  };
  // Last, after the test's own hooks (added later, run earlier) stopped its daemons and nginx:
  // a daemon still running could start or reload something in a namespace as it goes. A hook
  // added while the hooks run goes to the end of the line.
  t.after(() => {
    t.after(teardown);
  });

  const prefix = `10.231.${x}`;
  must('ip', ['link', 'add', bridge, 'type', 'bridge']);
  must('ip', ['addr', 'add', `${prefix}.1/24`, 'dev', bridge]);
  must('ip', ['link', 'set', bridge, 'up']);
  const addresses: string[] = [];
  for (let i = 0; i < n; i++) {
    const ns = namespaces[i]!;
    const inner = `bt${rand}n${i + 1}`;
    const address = `${prefix}.${11 + i}`;
    addresses.push(address);
    must('ip', ['netns', 'add', ns]);
    must('ip', ['link', 'add', rootVeths[i]!, 'type', 'veth', 'peer', 'name', inner]);
    must('ip', ['link', 'set', rootVeths[i]!, 'master', bridge, 'up']);
    must('ip', ['link', 'set', inner, 'netns', ns]);
    const inNs = (...args: string[]): string => must('ip', ['netns', 'exec', ns, ...args]);
    inNs('ip', 'link', 'set', inner, 'name', 'eth0');
    inNs('ip', 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    inNs('ip', 'link', 'set', 'eth0', 'up');
    inNs('ip', 'link', 'set', 'lo', 'up');
    inNs('ip', 'route', 'add', 'default', 'via', `${prefix}.1`);
  }

  const key = path.join(dir, 'client');
  const badKey = path.join(dir, 'stranger');
  for (const k of [key, badKey])
    must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'baton-test', '-f', k]);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${key}.pub`));
  // sshd's privilege separation folder, left in place at teardown: the sshds of another test
  // file running at the same time need it too (without it they reset every connection).
  mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
  for (let i = 0; i < n; i++) {
    must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, `host-${i}`)]);
    const cfg = path.join(dir, `sshd-${i}.conf`);
    writeFileSync(cfg, sshdConfig(dir, i, addresses[i]!));
    // Every ssh call runs the login shell, and bash run by sshd reads ~/.bashrc: this machine's
    // (root's pyenv init) can stall a session for a minute on a lock. Inside the namespace's
    // own mount namespace (ip netns exec makes one, a slave of ours), an empty file hides it
    // from these sshds only; the machine's file is untouched.
    const rc = path.join(homedir(), '.bashrc');
    const hide = existsSync(rc) ? `mount --bind ${dir}/empty-bashrc ${rc} && ` : '';
    writeFileSync(path.join(dir, 'empty-bashrc'), '');
    const child = spawn(
      'ip',
      ['netns', 'exec', namespaces[i]!, 'sh', '-c', `${hide}exec ${SSHD} -D -e -f ${cfg}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    sshdOutput[i] = '';
    const keep = (c: Buffer): void => {
      sshdOutput[i] = (sshdOutput[i]! + c.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.unref();
    sshds.push(child);
  }
  for (let i = 0; i < n; i++) {
    await waitFor(() => sshds[i]!.exitCode === null && sshBanner(addresses[i]!), {
      timeout: 10_000,
      interval: 50,
      what: `sshd on ${addresses[i]} (${sshdOutput[i]})`,
    }).catch((err: Error) => {
      throw new Error(`${err.message}; sshd said: ${sshdOutput[i]}`);
    });
  }

  const common = [
    '-F',
    '/dev/null',
    '-o',
    `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
  ];
  const exec = (i: number, args: readonly string[]): string =>
    must('ip', ['netns', 'exec', namespaces[i]!, ...args]);
  return {
    hosts: addresses.map((address, i) => ({ name: `host-${i + 1}`, address, user: 'root', port: 22 })),
    sshOptions: ['-i', key, ...common],
    badKeyOptions: ['-i', badKey, ...common],
    namespaces,
    exec,
    cut: (i) => {
      exec(i, ['ip', 'link', 'set', 'eth0', 'down']);
    },
    restore: (i) => {
      exec(i, ['ip', 'link', 'set', 'eth0', 'up']);
      // A link going down takes its routes along.
      exec(i, ['ip', 'route', 'replace', 'default', 'via', `${prefix}.1`]);
    },
    dir,
  };
}
