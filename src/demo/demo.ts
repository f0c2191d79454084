// `baton demo`: the whole story on one machine with no setup. A daemon with the bundled
// example app, steady load through the proxy, and a series of deploys: blue-green, rolling,
// a bad release rolled back on its own, and recreate for contrast. One table at the end (the
// zero-downtime strategies fail nothing; recreate does), and an HTML report of the run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../admin/client.js';
import type { DeployBody, ProgressEvent } from '../api/deploy.js';
import { PATHS } from '../api/paths.js';
import type { StatusView } from '../api/status.js';
import { BatonError } from '../errors.js';
import { renderReport } from '../load/report.js';
import { runLoad, type LiveCounters, type LoadResult } from '../load/runner.js';

// The single executable has no import.meta.url (nor a node to run the example app with).
const ROOT = isSea() ? '' : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const APP = path.join(ROOT, 'examples/app/app.js');
const BIN = path.join(ROOT, 'bin/baton.js');

export interface DemoStep {
  readonly title: string;
  readonly version: string;
  readonly strategy: 'blue-green' | 'rolling' | 'recreate' | 'canary';
  /** Failures this step is expected to show: none, only from its own new version, or any. */
  readonly expect: 'none' | 'canary-only' | 'some';
}

export const DEMO_STEPS: readonly DemoStep[] = [
  { title: 'blue-green', version: '1.1.0', strategy: 'blue-green', expect: 'none' },
  { title: 'rolling', version: '1.2.0', strategy: 'rolling', expect: 'none' },
  { title: 'canary, promoted', version: '1.3.0', strategy: 'canary', expect: 'none' },
  // 30% of the canary's answers are 500s: analysis stops it; stable never fails.
  { title: 'bad canary, rolled back', version: '1.4.0-errors', strategy: 'canary', expect: 'canary-only' },
  // Healthy at first, unhealthy 300ms later: blue-green's verify switches straight back.
  { title: 'bad release, rolled back', version: '1.4.0-bad', strategy: 'blue-green', expect: 'none' },
  { title: 'recreate (the naive way)', version: '1.4.0', strategy: 'recreate', expect: 'some' },
];

export interface DemoRow {
  readonly step: string;
  readonly version: string;
  readonly result: string;
  readonly seconds: number;
  readonly requests: number;
  readonly failed: number;
  /** Failed answers that came from the step's own new version (a canary's share). */
  readonly failedNew: number;
  readonly expect: DemoStep['expect'];
}

export interface DemoOptions {
  readonly rate: number;
  readonly reportFile: string | null;
  readonly out: (line: string) => void;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function demoConfig(listen: number, admin: number): string {
  return `# Written by baton demo
service: demo
listen: 127.0.0.1:${listen}
admin: 127.0.0.1:${admin}
stateDir: state
# Each answer names its version (X-Baton-Version): the report charts answers by version.
proxy: { versionHeader: true }
app:
  command: '${`${quoteWord(process.execPath)} ${quoteWord(APP)} --port {port} --version {version}`.replace(/'/g, "''")}'
  instances: 3
  health: { path: /health, interval: 100ms, healthyThreshold: 2, unhealthyThreshold: 2 }
  readyTimeout: 10s
  drainTimeout: 5s
  stopTimeout: 5s
strategy:
  type: canary
  steps:
    - setWeight: 20
    - pause: 2s
    - setWeight: 50
    - pause: 2s
  analysis: { interval: 500ms, failureLimit: 2, minRequests: 10, successRate: 95 }
`;
}

/** A word of app.command, quoted when it has spaces (the command is split like a shell would). */
function quoteWord(w: string): string {
  return /[\s"'\\]/.test(w) ? `"${w.replace(/["\\]/g, '\\$&')}"` : w;
}

export async function runDemo(o: DemoOptions): Promise<DemoRow[]> {
  if (isSea()) {
    // The demo runs its example app with node: the single executable cannot be that node.
    throw new BatonError(
      'BATON_E_USAGE',
      '`baton demo` needs Node.js and the package (it runs examples/app/app.js with node); the single executable cannot run it. Install with `npm install -g baton-deploy` or run `npx baton demo` in a checkout.',
    );
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-demo-'));
  const [listen, admin] = [await freePort(), await freePort()];
  const configFile = path.join(dir, 'baton.yaml');
  writeFileSync(configFile, demoConfig(listen, admin));
  const daemon = spawn(process.execPath, [BIN, 'up', '-c', configFile, '--stop-on-exit'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let daemonLog = '';
  daemon.stdout.on('data', (c: Buffer) => (daemonLog += c.toString()));
  daemon.stderr.on('data', (c: Buffer) => (daemonLog += c.toString()));
  const client = new AdminClient({ kind: 'tcp', host: '127.0.0.1', port: admin });
  const rows: DemoRow[] = [];
  const stopLoad = new AbortController();
  let load: Promise<LoadResult> | null = null;
  try {
    await waitForDaemon(client, daemon, () => daemonLog);
    o.out(`daemon up: proxy on 127.0.0.1:${listen}, 3 instances of the example app per release (${dir})`);
    // Every deploy's progress, for the report's markers and step table.
    const events: ProgressEvent[] = [];
    const progress = (e: ProgressEvent): void => void events.push(e);
    await deploy(client, '1.0.0', 'blue-green', o.out, progress);
    const url = `http://127.0.0.1:${listen}/`;
    const live: LiveCounters = { sent: 0, failed: 0, failedBy: {} };
    o.out(`load: ${o.rate} requests/s through the proxy for the rest of the demo`);
    load = runLoad({
      url,
      rate: o.rate,
      durationMs: 10 * 60_000,
      signal: stopLoad.signal,
      live,
      timeoutMs: 5000,
    });
    await waitUntil(() => live.sent >= o.rate / 2);
    for (const step of DEMO_STEPS) {
      const before = { ...live, failedBy: { ...live.failedBy } };
      const t0 = Date.now();
      const result = await deploy(client, step.version, step.strategy, o.out, progress);
      // A second of traffic after the switch belongs to the step too.
      await new Promise((r) => setTimeout(r, 1000));
      rows.push({
        step: step.title,
        version: step.version,
        result,
        seconds: (Date.now() - t0) / 1000,
        requests: live.sent - before.sent,
        failed: live.failed - before.failed,
        failedNew: (live.failedBy[step.version] ?? 0) - (before.failedBy[step.version] ?? 0),
        expect: step.expect,
      });
    }
    stopLoad.abort();
    const result = await load;
    load = null;
    if (o.reportFile) {
      mkdirSync(path.dirname(o.reportFile), { recursive: true });
      const deploys = { events, history: [], source: 'the demo, which ran these deploys' };
      writeFileSync(
        o.reportFile,
        renderReport(result, { title: 'baton demo: load through every deploy', deploys }),
      );
    }
    return rows;
  } finally {
    stopLoad.abort();
    await load?.catch(() => undefined);
    await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function deploy(
  client: AdminClient,
  version: string,
  strategy: DemoStep['strategy'],
  out: (l: string) => void,
  progress: (e: ProgressEvent) => void,
): Promise<string> {
  let result = 'unknown';
  const body: DeployBody = { version, strategy, actor: 'baton demo' };
  await client.stream<ProgressEvent>('POST', PATHS.deploy, body, (e) => {
    progress(e);
    if (e.kind === 'done') result = e.result ?? 'unknown';
    out(`  ${(e.elapsedMs / 1000).toFixed(1).padStart(5)}s  ${(e.step ?? e.kind).padEnd(12)} ${e.message}`);
  });
  return result;
}

async function waitForDaemon(client: AdminClient, daemon: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (daemon.exitCode !== null)
      throw new BatonError('BATON_E_INTERNAL', `the demo daemon exited:\n${log()}`);
    try {
      await client.call<StatusView>('GET', PATHS.status);
      return;
    } catch {
      if (Date.now() > deadline)
        throw new BatonError('BATON_E_INTERNAL', `the demo daemon did not answer:\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function waitUntil(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** SIGTERM (with --stop-on-exit): the daemon drains and stops every app instance and its data plane; SIGKILL if it hangs. */
async function stopDaemon(daemon: ChildProcess): Promise<void> {
  if (daemon.exitCode !== null || daemon.signalCode !== null) return;
  const exited = new Promise<void>((r) => daemon.once('exit', () => r()));
  daemon.kill('SIGTERM');
  const timer = setTimeout(() => daemon.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

export function demoTable(rows: readonly DemoRow[]): string {
  const head = ['STEP', 'VERSION', 'RESULT', 'SECONDS', 'REQUESTS', 'FAILED', 'BY NEW VERSION'];
  const body = rows.map((r) => [
    r.step,
    r.version,
    r.result,
    r.seconds.toFixed(1),
    String(r.requests),
    String(r.failed),
    String(r.failedNew),
  ]);
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all
    .map((r) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}
