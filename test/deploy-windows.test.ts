// Deploy windows and freezes end to end: a real `baton up` with the example app, the CLI as
// real processes. Windows are built around the current time, so "now" is inside (or outside)
// them whenever the test runs.
import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { formatInZone } from '../src/controller/window-check.js';
import { waitFor } from './helpers/index.js';
import { ensureBuilt, runBaton, tempDir, writeFile, type RunResult } from './helpers/cli.js';
import { logsWith, Service } from './helpers/app-daemon.js';

const NO_CI = { CI: '', GITHUB_ACTIONS: '', GITLAB_CI: '', JENKINS_URL: '' };
const as = (actor: string): Record<string, string> => ({ ...NO_CI, BATON_ACTOR: actor });

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The wall clock of `t` in `zone`, floored to the minute: weekday ("fri") and "HH:MM". */
function wall(t: number, zone: string): { day: string; time: string; at: Date } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
    })
      .formatToParts(t)
      .map((p) => [p.type, p.value]),
  );
  return {
    day: parts.weekday!.toLowerCase(),
    time: `${parts.hour}:${parts.minute}`,
    at: new Date(Math.floor(t / MINUTE) * MINUTE),
  };
}

function baton(svc: Service, t: TestContext, args: string[], actor = 'ci'): Promise<RunResult> {
  return runBaton(t, [...args, '-c', svc.file], { env: as(actor), timeout: 30_000 });
}

function ok(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
}

function refused(r: RunResult, what: string): void {
  assert.equal(r.code, 13, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /Use --force to deploy anyway \(recorded in history\)/);
}

/** Rewrites baton.yaml and waits until the daemon has re-read it (SIGHUP). */
async function reload(svc: Service, windows: string[]): Promise<void> {
  const before = logsWith(svc.daemon, /^config reloaded/).length;
  svc.configure({ instances: 1, windows });
  svc.daemon.child.kill('SIGHUP');
  await waitFor(() => logsWith(svc.daemon, /^config reloaded/).length > before, {
    what: 'the daemon to reload its config',
  });
}

describe('deploy windows and freezes', { timeout: 120_000 }, () => {
  before(() => ensureBuilt());

  it('a deny window around now refuses a deploy (exit 13) with the next allowed time; --force passes and is recorded; SIGHUP applies new windows', async (t) => {
    const now = Date.now();
    const from = wall(now - HOUR, 'UTC');
    const to = wall(now + 2 * HOUR, 'UTC');
    const svc = await Service.create(t, {
      instances: 1,
      windows: [
        '  timezone: UTC',
        `  deny: [{ name: test blackout, from: "${from.day} ${from.time}", to: "${to.day} ${to.time}" }]`,
      ],
    });
    await svc.start();

    const first = await svc.deploy('1.0.0');
    refused(first, 'deploy inside the deny window');
    assert.match(
      first.stderr,
      /deploy of 1\.0\.0 refused: it is \w{3} \d{4}-\d\d-\d\d \d\d:\d\d UTC \(UTC\+00:00\), /,
    );
    assert.ok(
      first.stderr.includes(
        `inside the deny window "test blackout"; the next allowed time is ${formatInZone(to.at, 'UTC')}`,
      ),
      first.stderr,
    );
    assert.deepEqual(svc.pids(), [], 'nothing was started');
    assert.deepEqual(await svc.history(), [], 'a refused deploy is not in history');
    // `baton status` says why, and until when.
    const status = await baton(svc, t, ['status']);
    ok(status, 'status');
    assert.ok(
      status.stdout.includes(
        `window   closed: inside the deny window "test blackout"; the next allowed time is ${formatInZone(to.at, 'UTC')}`,
      ),
      status.stdout,
    );

    const forced = await svc.deploy('1.0.0', ['--force']);
    ok(forced, 'deploy --force');
    assert.equal(forced.done?.result, 'succeeded');
    assert.equal((await svc.status()).live?.version, '1.0.0');
    const [entry] = await svc.history();
    assert.equal(entry?.version, '1.0.0');
    assert.equal(entry.forced, true, 'history records the forced deploy');
    const table = await baton(svc, t, ['history']);
    ok(table, 'history');
    assert.match(table.stdout, /^\w{8} +1\.0\.0 +- +blue-green +succeeded \(forced\) /m);
    assert.ok(
      logsWith(svc.daemon, /^deploy forced/).some((l) => String(l.refused).includes('test blackout')),
      'the daemon logs what was forced',
    );

    // An allow window around now (in Asia/Seoul, the days form; past midnight when it must be):
    // reloaded with SIGHUP, it lets the next deploy through without --force.
    const sFrom = wall(now - HOUR, 'Asia/Seoul');
    const sTo = wall(now + 2 * HOUR, 'Asia/Seoul');
    await reload(svc, [
      '  timezone: Asia/Seoul',
      `  allow: [{ days: [${sFrom.day}], from: "${sFrom.time}", to: "${sTo.time}" }]`,
    ]);
    const inside = await svc.deploy('1.0.1');
    ok(inside, 'deploy inside the allow window');
    assert.equal((await svc.status()).live?.version, '1.0.1');

    // An allow window that starts in three hours: refused until then, in the zone's time.
    const later = wall(now + 3 * HOUR, 'Asia/Seoul');
    const end = wall(now + 4 * HOUR, 'Asia/Seoul');
    await reload(svc, [
      '  timezone: Asia/Seoul',
      `  allow: [{ name: later today, from: "${later.day} ${later.time}", to: "${end.day} ${end.time}" }]`,
    ]);
    const outside = await svc.deploy('1.0.2');
    refused(outside, 'deploy outside the allow window');
    assert.ok(
      outside.stderr.includes(
        `, outside the allow window "later today"; the next allowed time is ${formatInZone(later.at, 'Asia/Seoul')}`,
      ),
      outside.stderr,
    );
    assert.match(formatInZone(later.at, 'Asia/Seoul'), /Asia\/Seoul \(UTC\+09:00\)$/);
    // A rollback is always allowed, windows or not.
    ok(await baton(svc, t, ['rollback']), 'rollback outside the allow window');
    assert.equal((await svc.status()).live?.version, '1.0.0');

    assert.deepEqual(
      (await svc.history()).map((h) => [h.version, h.rollback, h.forced ?? false, h.result]),
      [
        ['1.0.0', true, false, 'succeeded'],
        ['1.0.1', false, false, 'succeeded'],
        ['1.0.0', false, true, 'succeeded'],
      ],
    );
  });

  it('baton freeze refuses deploys with the reason, survives a daemon restart, allows rollbacks; unfreeze lifts it', async (t) => {
    const svc = await Service.create(t, { instances: 1 });
    await svc.start();
    await svc.deployApi('1.0.0');
    await svc.deployApi('1.0.1');

    const noReason = await baton(svc, t, ['freeze']);
    assert.equal(noReason.code, 2, noReason.stderr);
    assert.match(noReason.stderr, /--reason/);

    const freeze = await baton(svc, t, ['freeze', '--reason', 'incident 42: payments down'], 'alice');
    ok(freeze, 'freeze');
    assert.match(
      freeze.stdout,
      /^deploys of web are frozen by alice since \S+: "incident 42: payments down"\n.*baton unfreeze/m,
    );

    const frozen =
      /deploy of 1\.0\.2 refused: deploys are frozen since (\S+) by alice: "incident 42: payments down" \(`baton unfreeze` lifts it\)/;
    const r1 = await baton(svc, t, ['deploy', '--version', '1.0.2'], 'bob');
    refused(r1, 'deploy while frozen');
    assert.match(r1.stderr, frozen);
    const since = frozen.exec(r1.stderr)![1]!;
    assert.ok(Math.abs(Date.parse(since) - Date.now()) < 60_000, since);

    // Shown by status (text and JSON) and by GET /v1/freeze.
    const [text, json] = await Promise.all([baton(svc, t, ['status']), baton(svc, t, ['status', '--json'])]);
    ok(text, 'status');
    assert.ok(
      text.stdout.includes(`frozen   by alice since ${since}: "incident 42: payments down"`),
      text.stdout,
    );
    ok(json, 'status --json');
    const view = JSON.parse(json.stdout) as { live: { version: string }; freeze: unknown; window: unknown };
    assert.equal(view.live.version, '1.0.1');
    assert.deepEqual(view.freeze, { reason: 'incident 42: payments down', actor: 'alice', since });
    assert.equal(view.window, null, 'no windows configured');

    // Restarted, the daemon still refuses.
    svc.daemon.child.kill('SIGTERM');
    assert.deepEqual(await svc.daemon.exited, { code: 0, signal: null });
    await svc.start();
    const r2 = await svc.deploy('1.0.2');
    refused(r2, 'deploy while frozen, after a restart');
    assert.match(r2.stderr, frozen);
    assert.equal((await svc.status()).live?.version, '1.0.1');

    // The emergency exit stays open.
    const back = await baton(svc, t, ['rollback'], 'carol');
    ok(back, 'rollback while frozen');
    assert.equal((await svc.status()).live?.version, '1.0.0');

    const un = await baton(svc, t, ['unfreeze'], 'alice');
    ok(un, 'unfreeze');
    assert.match(un.stdout, /^deploys of web are no longer frozen \(the freeze was by alice since /);
    ok(await baton(svc, t, ['deploy', '--version', '1.0.2'], 'dave'), 'deploy after unfreeze');
    assert.equal((await svc.status()).live?.version, '1.0.2');
    const again = await baton(svc, t, ['unfreeze']);
    ok(again, 'unfreeze when not frozen');
    assert.match(again.stdout, /were not frozen/);

    assert.deepEqual(
      (await svc.history()).map((h) => [h.version, h.rollback, h.actor, h.forced ?? false]),
      [
        ['1.0.2', false, 'dave', false],
        ['1.0.0', true, 'carol', false],
        ['1.0.1', false, 'test', false],
        ['1.0.0', false, 'test', false],
      ],
    );
  });

  it('an invalid time zone: `baton validate` exits 2 and names the line', async (t) => {
    const dir = tempDir(t);
    const file = writeFile(
      dir,
      'baton.yaml',
      [
        'service: web',
        'listen: 127.0.0.1:8080',
        'app:',
        '  command: node app.js --port {port}',
        'windows:',
        '  timezone: Asia/Seol',
        '  deny:',
        '    - { from: "fri 17:00", to: "mon 09:00" }',
        '    - { days: [sat, snu] }',
        '',
      ].join('\n'),
    );
    const r = await runBaton(t, ['validate', '-c', file]);
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(
      r.stderr,
      /baton\.yaml:6:13 windows\.timezone: "Asia\/Seol" is not a time zone: use an IANA name .*; did you mean "Asia\/Seoul"\?/,
    );
    assert.match(
      r.stderr,
      /baton\.yaml:9:21 windows\.deny\[1\]\.days\[1\]: "snu" is not a day: use mon, tue, /,
    );
  });
});
