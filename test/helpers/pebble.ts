// Debian's pebble (an ACME test server) for the ACME tests, on loopback: its own listener
// certificate (signed by a test CA the data plane is told to trust with NODE_EXTRA_CA_CERTS),
// its validation authority pointed at the test's ports (httpPort: redirectHttp's, tlsPort:
// listen's), and pebble-challtestsrv as its DNS server, answering 127.0.0.1 for every name.
// Started per test, killed at teardown; restart() starts it again with other settings on the
// same ports (pebble keeps no state: a new root, accounts unknown).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { installLeaf, issue, makeCa } from './certs.js';
import { freePort, tempDir } from './cli.js';
import { waitFor } from './index.js';

/** Why the ACME tests cannot run here, or null when pebble is installed. */
export function pebbleMissing(): string | null {
  for (const bin of ['pebble', 'pebble-challtestsrv']) {
    const r = spawnSync(bin, ['-h'], { stdio: 'ignore' });
    if (r.error) return `${bin} is not installed (Debian: apt-get install -y pebble)`;
  }
  return null;
}

export interface PebbleOptions {
  /** Where pebble's VA sends HTTP-01 validations (redirectHttp's port). */
  readonly httpPort: number;
  /** Where it sends TLS-ALPN-01 validations (listen's port). */
  readonly tlsPort: number;
  /** The issued certificates' lifetime, seconds (pebble's default: 5 years). */
  readonly validitySeconds?: number;
  /** Names pebble refuses to issue for (rejectedIdentifier). */
  readonly blocklist?: readonly string[];
}

export interface Pebble {
  /** The ACME directory URL. */
  readonly directory: string;
  /** For baton's processes: trust pebble's listener certificate. */
  readonly env: Record<string, string>;
  /** The CA of pebble's listener certificate (PEM). */
  readonly listenerCa: string;
  /** The root of the chains it issues now (PEM), from its management port. */
  root(): Promise<string>;
  restart(o: PebbleOptions): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startPebble(t: TestContext, first: PebbleOptions): Promise<Pebble> {
  const dir = tempDir(t);
  const ca = makeCa(dir, 'Pebble Listener Test CA');
  installLeaf(
    issue(ca, dir, ['localhost'], 'AC1E'),
    path.join(dir, 'pebble.crt'),
    path.join(dir, 'pebble.key'),
  );
  const [acmePort, managementPort, dnsPort, dnsManagementPort] = [
    await freePort(),
    await freePort(),
    await freeUdpPort(),
    await freePort(),
  ];
  const children: ChildProcess[] = [];
  const run = (cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess => {
    const child = spawn(cmd, args, {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
    child.stderr.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
    child.on('exit', (code, signal) => {
      if (code !== null && code !== 0) console.error(`${cmd} exited ${code ?? signal}:\n${out}`);
    });
    children.push(child);
    return child;
  };
  t.after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  run('pebble-challtestsrv', [
    '-dns01',
    `127.0.0.1:${dnsPort}`,
    '-http01',
    '',
    '-https01',
    '',
    '-tlsalpn01',
    '',
    '-management',
    `127.0.0.1:${dnsManagementPort}`,
    '-defaultIPv4',
    '127.0.0.1',
    '-defaultIPv6',
    '',
  ]);
  const dispatcher = new Agent({ connect: { ca: ca.pem } });
  t.after(() => dispatcher.close());
  let pebble: ChildProcess | null = null;
  const directory = `https://127.0.0.1:${acmePort}/dir`;
  const start = async (o: PebbleOptions): Promise<void> => {
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: path.join(dir, 'pebble.crt'),
        privateKey: path.join(dir, 'pebble.key'),
        httpPort: o.httpPort,
        tlsPort: o.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(o.validitySeconds !== undefined ? { certificateValidityPeriod: o.validitySeconds } : {}),
        ...(o.blocklist ? { domainBlocklist: o.blocklist } : {}),
      },
    };
    writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify(config, null, 2));
    pebble = run(
      'pebble',
      ['-config', 'pebble.json', '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'],
      {
        PEBBLE_VA_NOSLEEP: '1',
        PEBBLE_WFE_NONCEREJECT: '0',
        PEBBLE_AUTHZREUSE: '0',
      },
    );
    await waitFor(
      async () => {
        try {
          const r = await request(directory, { dispatcher });
          await r.body.text();
          return r.statusCode === 200;
        } catch {
          return false;
        }
      },
      { timeout: 15_000, what: 'pebble to answer' },
    );
  };
  await start(first);
  return {
    directory,
    env: { NODE_EXTRA_CA_CERTS: ca.certFile },
    listenerCa: ca.pem,
    root: async () => {
      const r = await request(`https://127.0.0.1:${managementPort}/roots/0`, { dispatcher });
      return r.body.text();
    },
    restart: async (o) => {
      const p = pebble!;
      if (p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await gone;
      }
      await start(o);
    },
  };
}
