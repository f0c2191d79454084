// `npm run build:binary`: the single executable runs on its own, copied to a folder with no
// package, no node_modules and no dist/ next to it: --version, validate, and load --report
// (Chart.js comes from the executable's embedded asset).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { childEnv, tempDir, writeFile, type RunResult } from './helpers/cli.js';
import { ROOT, startBackend } from './helpers/index.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** Runs `./baton ...args` in `dir` to completion (killed after 15 s). */
function runBinary(t: TestContext, dir: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('./baton', args, { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('single executable (npm run build:binary)', () => {
  // One build for the file (about 10 s here), copied to a fresh folder per test.
  let built: string | null = null;
  function binaryIn(t: TestContext): string {
    if (built === null) {
      const r = spawnSync('npm', ['run', 'build:binary'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, `npm run build:binary failed:\n${r.stdout}\n${r.stderr}`);
      built = path.join(ROOT, 'dist/baton');
    }
    const dir = tempDir(t);
    copyFileSync(built, path.join(dir, 'baton'));
    return dir;
  }

  it('prints the package version', async (t) => {
    const dir = binaryIn(t);
    const r = await runBinary(t, dir, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${pkg.version}\n`);
    assert.equal(r.stderr, '', 'no experimental-SEA warning');
  });

  it('validate exits 0 on a valid config and 2 on an invalid one', async (t) => {
    const dir = binaryIn(t);
    writeFile(
      dir,
      'baton.yaml',
      'service: web\nlisten: 127.0.0.1:8080\ntargets:\n  - address: 127.0.0.1:9001\n',
    );
    const ok = await runBinary(t, dir, ['validate', '-c', 'baton.yaml']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /baton\.yaml: ok \(service web\)\n$/);

    writeFile(dir, 'bad.yaml', 'service: web\nlisten: 127.0.0.1:8080\nadmn: 127.0.0.1:9\n');
    const bad = await runBinary(t, dir, ['validate', '-c', 'bad.yaml']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yaml:3:1 admn: unknown key "admn"; did you mean "admin"\?/);
  });

  it('load --report inlines Chart.js from the embedded asset', async (t) => {
    const dir = binaryIn(t);
    const backend = await startBackend(t, 'v1');
    const r = await runBinary(t, dir, [
      'load',
      `http://127.0.0.1:${backend.port}/`,
      '--rate',
      '20',
      '--duration',
      '500ms',
      '--report',
      'report.html',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const html = readFileSync(path.join(dir, 'report.html'), 'utf8');
    const chart = readFileSync(path.join(ROOT, 'node_modules/chart.js/dist/chart.umd.min.js'), 'utf8');
    // The report holds the library (made script-safe), so check a stretch of it.
    assert.ok(html.includes(chart.slice(200, 400)), 'Chart.js is inlined in the report');
  });

  it('demo says it needs the package', async (t) => {
    const dir = binaryIn(t);
    const r = await runBinary(t, dir, ['demo']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /`baton demo` needs Node\.js and the package .*`npm install -g baton-deploy`/);
  });
});
