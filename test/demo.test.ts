// `baton demo` from the built CLI: every zero-downtime step fails 0 requests, recreate fails
// some, the report is written, and no process is left behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { DEFAULT_DEMO_REPORT } from '../src/cli/commands/demo.js';
import { BATON } from './helpers/index.js';

/** Pids of processes whose working directory is inside `dir`. */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

it('baton demo: zero failures for every zero-downtime step, the bad canary only in its share, failures for recreate', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'baton-demo-test-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  // No --report: the default goes under .baton/ of the current folder (ignored by git and the
  // format check, so the README's set-up block can run the demo before `npm test`).
  const report = path.join(out, DEFAULT_DEMO_REPORT);
  const child = spawn(process.execPath, [BATON, 'demo', '--rate', '100'], {
    cwd: out,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  const rows = Object.fromEntries(
    [
      ...stdout.matchAll(
        /^(blue-green|rolling|canary, promoted|bad canary, rolled back|bad release, rolled back|recreate \(the naive way\))\s+(\S+)\s+(\S+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)$/gm,
      ),
    ].map((m) => [
      m[1]!,
      { result: m[3]!, requests: Number(m[5]), failed: Number(m[6]), failedNew: Number(m[7]) },
    ]),
  );
  assert.equal(Object.keys(rows).length, 6, stdout);
  for (const step of ['blue-green', 'rolling', 'canary, promoted', 'bad release, rolled back']) {
    assert.ok(rows[step]!.requests > 50, `${step} ran under load`);
    assert.equal(rows[step]!.failed, 0, `${step} failed no request`);
  }
  assert.equal(rows['canary, promoted']!.result, 'succeeded');
  assert.equal(rows['bad release, rolled back']!.result, 'rolled-back');
  const bad = rows['bad canary, rolled back']!;
  assert.equal(bad.result, 'rolled-back');
  assert.equal(bad.failed, bad.failedNew, 'the bad canary failed only its own share: stable failed nothing');
  assert.ok(rows['recreate (the naive way)']!.failed > 0, 'recreate shows the downtime');
  assert.ok(existsSync(report), `the report is at ${report}`);
  // Its data (the charts draw it: test/load-report.test.ts checks that in Chromium): every
  // release answered, named by the proxy, each in its own colour; each deploy marked.
  const html = readFileSync(report, 'utf8');
  const json = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)?.[1];
  const data = JSON.parse(json ?? '{}') as {
    versions: { v: string; colour: string }[];
    marks: { kind: string }[];
  };
  const named = data.versions.filter((v) => v.v !== '-');
  for (const v of ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0-errors', '1.4.0'])
    assert.ok(
      named.some((n) => n.v === v),
      `${v} in the version chart`,
    );
  assert.equal(new Set(named.map((v) => v.colour)).size, named.length, 'a colour per version');
  const count = (kind: string): number => data.marks.filter((m) => m.kind === kind).length;
  assert.ok(count('start') >= 6 && count('end') >= 6 && count('switch') >= 6, JSON.stringify(data.marks));
  assert.match(html, /<table id="steps">/);
  assert.match(stdout, new RegExp(`report: ${report.replace(/[.]/g, '[.]')}`));
  const dir = /\((\/[^)]*baton-demo-[^)]*)\)/.exec(stdout)?.[1];
  assert.ok(dir, 'the demo names its folder');
  assert.deepEqual(processesIn(dir), [], 'no process left behind');
  assert.equal(existsSync(dir), false, 'its folder is removed');
});
