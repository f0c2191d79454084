// Helpers for deploy tests against a real `baton up` child with an `app:` section: the example
// app behind a tiny wrapper (per-version failure flags from flags.json), a unique marker in every
// app command line to find each app process in /proc, and a teardown that kills the daemons
// first (so no supervisor restarts anything) and then every marked process group.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import type { HistoryAnswer, HistoryEntry, ProgressEvent } from '../../src/api/deploy.js';
import type { StatusView } from '../../src/api/status.js';
import type { ServiceState } from '../../src/controller/state.js';
import { APP, waitFor } from './index.js';
import { freePort, runBaton, startDaemon, writeFile, type DaemonProcess, type RunResult } from './cli.js';

export type { StatusInstance, StatusView } from '../../src/api/status.js';
/** One NDJSON line of a deploy's progress. */
export type DeployEvent = ProgressEvent;

export interface DeployRun extends RunResult {
  readonly events: DeployEvent[];
  readonly done: DeployEvent | undefined;
}

export interface ServiceOptions {
  /** app.command; default: the wrapper around the example app. */
  readonly command?: string;
  readonly instances?: number;
  readonly readyTimeout?: string;
  /** Extra lines of the app section, indented by two spaces. */
  readonly app?: string[];
  /** The strategy section's lines, indented by two spaces. */
  readonly strategy?: string[];
  /** The windows section's lines (deploy windows), indented by two spaces. */
  readonly windows?: string[];
  /** Extra top-level lines (e.g. hooks: and notify: sections), as they are. */
  readonly extra?: string[];
  /** An nginx / HAProxy edge instead of the built-in one: its `edge:` lines and client URL. */
  readonly edge?: { readonly lines: string[]; readonly url: string };
}

/** The example app started through wrap.mjs: flags.json adds flags per version. */
const WRAPPER = `// node wrap.mjs --port P --version V --marker M: the example app, plus the flags that
// flags.json lists for version V; "--health-404" runs a server whose /health is a 404.
import { readFileSync } from 'node:fs';
import http from 'node:http';
const argv = process.argv.slice(2);
const opt = (name) => argv[argv.indexOf('--' + name) + 1];
const version = opt('version');
const port = Number(opt('port'));
const flags = JSON.parse(readFileSync(new URL('./flags.json', import.meta.url), 'utf8'))[version] ?? [];
if (flags.includes('--health-404')) {
  http
    .createServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(404);
        res.end('no such page\\n');
      } else res.end(version + '\\n');
    })
    .listen(port, '127.0.0.1', () => console.log('app ' + version + ' listening on 127.0.0.1:' + port + ' (no /health)'));
} else {
  process.argv = [process.argv[0], ${JSON.stringify(APP)}, ...argv, ...flags];
  await import(${JSON.stringify(pathToFileURL(APP).href)});
}
`;

/** ServiceOptions.strategy for a canary of one instance: `steps` and `extra` lines as written. */
export function canaryStrategy(steps: readonly string[], extra: readonly string[] = []): string[] {
  return ['  type: canary', '  canaryInstances: 1', '  steps:', ...steps.map((s) => `    - ${s}`), ...extra];
}

export class Service {
  readonly dir: string;
  readonly file: string;
  readonly stateDir: string;
  /** In every app command line, and nowhere else. */
  readonly marker = `mk${randomBytes(6).toString('hex')}`;
  readonly daemons: DaemonProcess[] = [];
  private flags: Record<string, string[]> = {};
  /** The client URL of an nginx / HAProxy edge; the built-in one's comes from the daemon. */
  private edgeUrl: string | null = null;

  private constructor(
    private readonly t: TestContext,
    readonly adminPort: number,
    options: ServiceOptions,
  ) {
    // Removed at the end of teardown(), once nothing can write into it any more (a t.after of
    // tempDir would run first: hooks run in the order they were added).
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'baton-test-'));
    this.stateDir = path.join(this.dir, 'state');
    writeFile(this.dir, 'wrap.mjs', WRAPPER);
    this.setFlags({});
    this.file = path.join(this.dir, 'baton.yaml');
    this.configure(options);
  }

  /** A service in a temp folder; its daemons and app processes are killed at teardown. */
  static async create(t: TestContext, options: ServiceOptions = {}): Promise<Service> {
    const s = new Service(t, await freePort(), options);
    t.after(() => s.teardown());
    return s;
  }

  get defaultCommand(): string {
    return `node ${path.join(this.dir, 'wrap.mjs')} --port {port} --version {version} --marker ${this.marker}`;
  }

  /** (Re)writes baton.yaml. Short health intervals and timeouts throughout. */
  configure(o: ServiceOptions): void {
    this.edgeUrl = o.edge?.url ?? null;
    const lines = [
      'service: web',
      ...(o.edge?.lines ?? ['listen: 127.0.0.1:0']),
      `admin: 127.0.0.1:${this.adminPort}`,
      'stateDir: state',
      'app:',
      `  command: ${o.command ?? this.defaultCommand}`,
      `  instances: ${o.instances ?? 2}`,
      `  readyTimeout: ${o.readyTimeout ?? '3s'}`,
      '  drainTimeout: 1s',
      '  stopTimeout: 1s',
      '  health: { path: /health, interval: 100ms, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 2 }',
      ...(o.app ?? []),
      'strategy:',
      ...(o.strategy ?? ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s']),
      ...(o.windows ? ['windows:', ...o.windows] : []),
      ...(o.extra ?? []),
    ];
    writeFileSync(this.file, `${lines.join('\n')}\n`);
  }

  /** Extra example-app flags per version, read by the wrapper when an instance starts. */
  setFlags(flags: Record<string, string[]>): void {
    this.flags = flags;
    writeFile(this.dir, 'flags.json', JSON.stringify(this.flags));
  }

  get daemon(): DaemonProcess {
    const d = this.daemons.at(-1);
    if (!d) throw new Error('no daemon started');
    return d;
  }

  async start(
    env: Record<string, string> = {},
    args: readonly string[] = [],
    bin?: string,
  ): Promise<DaemonProcess> {
    const d = await startDaemon(this.t, this.file, { env, args, ...(bin ? { bin } : {}) });
    this.daemons.push(d);
    return d;
  }

  /** `baton deploy --json`; the events it printed, and the final one. */
  async deploy(version: string, args: string[] = [], timeout = 30_000): Promise<DeployRun> {
    const r = await runBaton(this.t, ['deploy', '-c', this.file, '--version', version, '--json', ...args], {
      timeout,
    });
    // Progress events only: a refused deploy prints its `{"error": ...}` line there too.
    const events = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{') && !l.startsWith('{"error":'))
      .map((l) => JSON.parse(l) as DeployEvent);
    return { ...r, events, done: events.find((e) => e.kind === 'done') };
  }

  /**
   * A deploy straight through the admin API (no CLI process to start: cheaper, for the setup
   * deploys); resolves with the 'done' event and throws unless it succeeded.
   */
  async deployApi(version: string): Promise<DeployEvent> {
    const res = await request(`http://127.0.0.1:${this.adminPort}/v1/deploy`, {
      method: 'POST',
      reset: true,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version, actor: 'test' }),
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    const done = text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as DeployEvent)
      .find((e) => e.kind === 'done');
    if (res.statusCode !== 200 || done?.result !== 'succeeded') {
      throw new Error(`deploy of ${version} did not succeed (${res.statusCode}):\n${text}`);
    }
    return done;
  }

  async status(): Promise<StatusView> {
    const res = await request(`http://127.0.0.1:${this.adminPort}/v1/status`, { reset: true });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status answered ${res.statusCode}: ${text}`);
    return JSON.parse(text) as StatusView;
  }

  async history(): Promise<HistoryEntry[]> {
    const res = await request(`http://127.0.0.1:${this.adminPort}/v1/history`, { reset: true });
    return ((await res.body.json()) as HistoryAnswer).history;
  }

  /** service.json as the daemon last persisted it. */
  state(): ServiceState {
    return JSON.parse(readFileSync(path.join(this.stateDir, 'service.json'), 'utf8')) as ServiceState;
  }

  /** Where clients send requests: the built-in proxy of the current daemon, or nginx / HAProxy. */
  get url(): string {
    return this.edgeUrl ?? this.daemon.url;
  }

  /** GET through the edge, on a fresh connection. */
  async get(urlPath = '/'): Promise<{ status: number; body: string }> {
    const res = await request(this.url + urlPath, {
      reset: true,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    return { status: res.statusCode, body: (await res.body.text()).trim() };
  }

  /** `n` GETs through the proxy; the set of versions that answered (each must be a 200). */
  async versionsServed(n = 10): Promise<string[]> {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await this.get();
      if (r.status !== 200) throw new Error(`GET / through the proxy answered ${r.status}: ${r.body}`);
      seen.add(r.body);
    }
    return [...seen].sort();
  }

  /** Running app processes of this service (by the marker), with the version they run. */
  processes(): { pid: number; version: string }[] {
    const found: { pid: number; version: string }[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      let args: string[];
      try {
        args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
        // A zombie (exited, not yet reaped) has an empty command line and is not running.
        if (readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
      } catch {
        continue; // gone meanwhile
      }
      if (!args.includes(this.marker)) continue;
      found.push({ pid: Number(name), version: args[args.indexOf('--version') + 1] ?? '' });
    }
    return found;
  }

  pids(version?: string): number[] {
    return this.processes()
      .filter((p) => version === undefined || p.version === version)
      .map((p) => p.pid)
      .sort((a, b) => a - b);
  }

  /** Waits until no process of `version` runs (stops are asynchronous after a deploy ends). */
  async noneLeft(version: string, timeout = 5000): Promise<void> {
    await waitFor(() => this.pids(version).length === 0, {
      timeout,
      what: `every ${version} process to be gone (left: ${this.pids(version).join(', ')})`,
    });
  }

  private async teardown(): Promise<void> {
    // The daemons first, so that no supervisor starts anything while we clean up.
    for (const d of this.daemons) {
      if (d.child.exitCode === null && d.child.signalCode === null) {
        d.child.kill('SIGKILL');
        await d.exited;
      }
    }
    for (const pid of this.pids()) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // not a group leader, or gone
        }
      }
    }
    await waitFor(() => this.pids().length === 0, { timeout: 5000, what: 'app processes to die' });
    // What a killed daemon leaves behind in its folder: SSH control masters (hosts: configs).
    for (const pid of pidsMentioning(this.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitFor(() => pidsMentioning(this.dir).length === 0, { what: 'helper processes to die' });
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

/** Live (not zombie) processes whose command line mentions `text`. */
function pidsMentioning(text: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The daemon's JSON log lines with this message. */
export function logsWith(d: DaemonProcess, msg: string | RegExp): Record<string, unknown>[] {
  return d.logs().filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
}
