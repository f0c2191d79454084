// Deploy windows and freezes, the pure parts: the `windows:` schema (through the real config
// loader, for line:column), checkWindow() at fixed instants across days and time zones (with the
// next allowed time), and the deploy gate extension with a freeze kept in a temp stateDir.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { parseConfigText } from '../src/config/load.js';
import { windowsSchema, type WindowsConfig } from '../src/config/windows.js';
import { FreezeStore } from '../src/controller/freeze.js';
import { DeployGate } from '../src/controller/gate.js';
import { checkWindow, formatInZone } from '../src/controller/window-check.js';
import { BatonError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';

const windows = (input: unknown): WindowsConfig => windowsSchema.parse(input);

/** checkWindow at an ISO instant: 'open', or [reason, next open as ISO]. */
function at(w: WindowsConfig, iso: string): 'open' | [string, string] {
  const c = checkWindow(w, new Date(iso));
  return c.open ? 'open' : [c.reason, c.nextOpen.toISOString()];
}

const WEEKEND = { from: 'fri 17:00', to: 'mon 09:00' };
const OFFICE = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '18:00' };

describe('checkWindow', () => {
  it('no windows: always open', () => {
    assert.deepEqual(checkWindow(undefined, new Date('2025-06-07T12:00:00Z')), { open: true });
  });

  it('a deny window spanning the weekend (Asia/Seoul): closed from Friday 17:00 to Monday 09:00 local', () => {
    const w = windows({ timezone: 'Asia/Seoul', deny: [WEEKEND] });
    const deny = 'inside the deny window "fri 17:00 to mon 09:00"';
    const monday9 = '2025-06-09T00:00:00.000Z'; // Mon 09:00 KST
    assert.equal(at(w, '2025-06-06T07:59:59Z'), 'open'); // Fri 16:59:59 KST
    assert.deepEqual(at(w, '2025-06-06T08:00:00Z'), [deny, monday9]); // Fri 17:00 KST
    assert.deepEqual(at(w, '2025-06-07T15:00:00Z'), [deny, monday9]); // Sun 00:00 KST
    assert.deepEqual(at(w, '2025-06-08T23:59:59Z'), [deny, monday9]); // Mon 08:59:59 KST
    assert.equal(at(w, '2025-06-09T00:00:00Z'), 'open'); // Mon 09:00 KST: the end is not inside
    assert.equal(at(w, '2025-06-11T12:00:00Z'), 'open'); // a Wednesday
  });

  it('the same windows read in UTC and in Asia/Seoul give other answers at the same instant', () => {
    const instant = '2025-06-06T10:00:00Z'; // Fri 10:00 UTC = Fri 19:00 KST
    assert.equal(at(windows({ timezone: 'UTC', deny: [WEEKEND] }), instant), 'open');
    assert.deepEqual(at(windows({ timezone: 'Asia/Seoul', deny: [WEEKEND] }), instant), [
      'inside the deny window "fri 17:00 to mon 09:00"',
      '2025-06-09T00:00:00.000Z',
    ]);
    // And in UTC the weekend ends at Mon 09:00 UTC, nine hours after Seoul's.
    assert.deepEqual(
      at(windows({ timezone: 'UTC', deny: [WEEKEND] }), '2025-06-07T00:00:00Z')[1],
      '2025-06-09T09:00:00.000Z',
    );
  });

  it('allow windows: office hours, the next one across a weekend, a later one the same day', () => {
    const w = windows({ timezone: 'UTC', allow: [OFFICE] });
    const outside = 'outside the allow window "mon-fri 09:00-18:00"';
    assert.equal(at(w, '2025-06-09T09:00:00Z'), 'open'); // Mon 09:00
    assert.equal(at(w, '2025-06-13T17:59:59Z'), 'open'); // Fri 17:59:59
    assert.deepEqual(at(w, '2025-06-13T18:00:00Z'), [outside, '2025-06-16T09:00:00.000Z']); // Fri 18:00
    assert.deepEqual(at(w, '2025-06-14T12:00:00Z'), [outside, '2025-06-16T09:00:00.000Z']); // Sat
    assert.deepEqual(at(w, '2025-06-10T08:59:30Z'), [outside, '2025-06-10T09:00:00.000Z']); // Tue, 30s before
    assert.deepEqual(at(w, '2025-06-10T20:00:00Z'), [outside, '2025-06-11T09:00:00.000Z']); // Tue evening
    // Two allow windows: the message names both, the next is the nearer one.
    const two = windows({
      timezone: 'UTC',
      allow: [OFFICE, { name: 'saturday', days: ['sat'], from: '10:00', to: '12:00' }],
    });
    assert.deepEqual(at(two, '2025-06-13T20:00:00Z'), [
      'outside the allow windows "mon-fri 09:00-18:00", "saturday"',
      '2025-06-14T10:00:00.000Z',
    ]);
  });

  it('a deny wins over an allow; the next allowed time is where the deny ends inside an allow', () => {
    const w = windows({
      timezone: 'Europe/Berlin',
      allow: [OFFICE],
      deny: [{ name: 'release review', days: ['wed'], from: '12:00', to: '14:00' }, WEEKEND],
    });
    // Wed 12:30 CEST (UTC+2) is in office hours but in the review: open at 14:00 CEST.
    assert.deepEqual(at(w, '2025-06-11T10:30:00Z'), [
      'inside the deny window "release review"',
      '2025-06-11T12:00:00.000Z',
    ]);
    // Fri 17:30 CEST: the weekend deny (inside office hours) is named, not the allow windows.
    assert.deepEqual(at(w, '2025-06-13T15:30:00Z'), [
      'inside the deny window "fri 17:00 to mon 09:00"',
      '2025-06-16T07:00:00.000Z',
    ]);
    // Thu 20:00: outside office hours; the next allowed time is Fri 09:00.
    assert.deepEqual(at(w, '2025-06-12T18:00:00Z')[1], '2025-06-13T07:00:00.000Z');
  });

  it('windows past midnight and across the end of the week', () => {
    const night = windows({ timezone: 'UTC', allow: [{ from: '22:00', to: '06:00' }] });
    assert.equal(at(night, '2025-06-10T23:00:00Z'), 'open');
    assert.equal(at(night, '2025-06-11T05:59:00Z'), 'open');
    assert.deepEqual(at(night, '2025-06-11T06:00:00Z'), [
      'outside the allow window "every day 22:00-06:00"',
      '2025-06-11T22:00:00.000Z',
    ]);
    // Sunday night into Monday: the span wraps past the end of the week.
    const sunday = windows({ timezone: 'UTC', deny: [{ from: 'sun 22:00', to: 'mon 02:00' }] });
    assert.deepEqual(at(sunday, '2025-06-15T23:00:00Z')[1], '2025-06-16T02:00:00.000Z');
    assert.deepEqual(at(sunday, '2025-06-16T01:00:00Z')[1], '2025-06-16T02:00:00.000Z');
    assert.equal(at(sunday, '2025-06-16T02:00:00Z'), 'open');
    // Whole days, and "24:00" as the end of a day.
    const weekend = windows({ timezone: 'UTC', deny: [{ days: ['sat', 'sun'] }] });
    assert.deepEqual(at(weekend, '2025-06-14T00:00:00Z'), [
      'inside the deny window "sat, sun (all day)"',
      '2025-06-16T00:00:00.000Z',
    ]);
    const evening = windows({ timezone: 'UTC', deny: [{ days: ['fri'], from: '17:00', to: '24:00' }] });
    assert.deepEqual(at(evening, '2025-06-13T20:00:00Z')[1], '2025-06-14T00:00:00.000Z');
  });

  it('offsets that are not whole hours, and daylight saving time', () => {
    // Asia/Kolkata is UTC+05:30: Mon 09:00 IST is 03:30 UTC.
    const kolkata = windows({ timezone: 'Asia/Kolkata', allow: [OFFICE] });
    assert.deepEqual(at(kolkata, '2025-06-08T12:00:00Z')[1], '2025-06-09T03:30:00.000Z');
    // Berlin moves from UTC+1 to UTC+2 on Sunday 2025-03-30: the weekend that spans the change
    // ends at Mon 09:00 CEST = 07:00 UTC (a week earlier, 08:00 UTC).
    const berlin = windows({ timezone: 'Europe/Berlin', deny: [WEEKEND] });
    assert.deepEqual(at(berlin, '2025-03-29T12:00:00Z')[1], '2025-03-31T07:00:00.000Z');
    assert.deepEqual(at(berlin, '2025-03-22T12:00:00Z')[1], '2025-03-24T08:00:00.000Z');
    // New York skips 02:00-03:00 on 2025-03-09: a window from 02:30 opens when the clock jumps.
    const ny = windows({ timezone: 'America/New_York', allow: [{ from: '02:30', to: '03:30' }] });
    assert.deepEqual(at(ny, '2025-03-08T12:00:00Z')[1], '2025-03-09T07:00:00.000Z');
    assert.equal(at(ny, '2025-03-09T07:00:00Z'), 'open');
  });

  it('formatInZone: weekday, date, time, zone and its offset', () => {
    const t = new Date('2025-06-09T00:00:00Z');
    assert.equal(formatInZone(t, 'Asia/Seoul'), 'Mon 2025-06-09 09:00 Asia/Seoul (UTC+09:00)');
    assert.equal(formatInZone(t, 'America/New_York'), 'Sun 2025-06-08 20:00 America/New_York (UTC-04:00)');
    assert.equal(formatInZone(t, 'Asia/Kolkata'), 'Mon 2025-06-09 05:30 Asia/Kolkata (UTC+05:30)');
  });
});

describe('windows: in baton.yaml', () => {
  const base = ['service: web', 'listen: 127.0.0.1:8080', 'app:', '  command: node app.js'];
  const load = (lines: string[]): ReturnType<typeof parseConfigText> =>
    parseConfigText([...base, 'windows:', ...lines, ''].join('\n'), '/srv/baton.yaml');
  const problems = (lines: string[]): string => {
    try {
      load(lines);
    } catch (err) {
      assert.ok(err instanceof BatonError);
      assert.equal(err.code, 'BATON_E_CONFIG');
      return err.message;
    }
    assert.fail('the config was accepted');
  };

  it('parses the example: time zone, allow-list and blackout, with readable labels', () => {
    const c = load([
      '  timezone: Asia/Seoul',
      '  allow:',
      '    - { days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00" }',
      '  deny:',
      '    - { from: "fri 17:00", to: "mon 09:00" }',
      '    - { name: year end, days: [Monday-Wednesday], from: "00:00", to: "24:00" }',
    ]);
    assert.equal(c.windows?.timezone, 'Asia/Seoul');
    assert.deepEqual(
      c.windows?.allow?.map((r) => r.label),
      ['mon-fri 09:00-18:00'],
    );
    assert.deepEqual(
      c.windows?.deny.map((r) => r.label),
      ['fri 17:00 to mon 09:00', 'year end'],
    );
    // Left out: the machine's zone, any time allowed, no deny.
    const d = load(['  deny: []']);
    assert.equal(d.windows?.timezone, Intl.DateTimeFormat().resolvedOptions().timeZone);
    assert.equal(d.windows?.allow, undefined);
    assert.equal(parseConfigText(`${base.join('\n')}\n`, '/srv/baton.yaml').windows, undefined);
  });

  it('an invalid time zone is a config error at its line, with a guess', () => {
    assert.match(
      problems(['  timezone: Asia/Seol']),
      /baton\.yaml:6:13 windows\.timezone: "Asia\/Seol" is not a time zone: use an IANA name .*did you mean "Asia\/Seoul"\?/,
    );
    assert.match(
      problems(['  timezone: Mars/Olympus']),
      /baton\.yaml:6:13 windows\.timezone: "Mars\/Olympus" is not a time zone/,
    );
  });

  it('bad days, times, from == to and half-qualified spans: every problem at once, each at its line', () => {
    const message = problems([
      '  allow:',
      '    - { days: [mon, fry], from: "09:00", to: "18:00" }',
      '    - { days: [sat], from: "9am", to: "12:00" }',
      '    - { from: "24:00", to: "02:00" }',
      '  deny:',
      '    - { from: "12:00", to: "12:00" }',
      '    - { from: "fri 17:00", to: "09:00" }',
      '    - { from: "fri 17:00", to: "fri 17:00" }',
      '    - { days: [fri], from: "fri 17:00", to: "mon 09:00" }',
      '    - { name: nothing }',
    ]);
    assert.match(message, /\(8 problems\)/);
    assert.match(
      message,
      /:7:21 windows\.allow\[0\]\.days\[1\]: "fry" is not a day: use mon, tue, .*did you mean "fri"\?/,
    );
    assert.match(message, /:8:28 windows\.allow\[1\]\.from: "9am" is not a time: write "HH:MM"/);
    assert.match(message, /:9:15 windows\.allow\[2\]\.from: "24:00" is not a time/);
    assert.match(
      message,
      /:11:28 windows\.deny\[0\]\.to: from and to are both 12:00: the window would be empty/,
    );
    assert.match(message, /:12:32 windows\.deny\[1\]\.to: give a day with both times/);
    assert.match(message, /:13:32 windows\.deny\[2\]\.to: from and to are the same moment/);
    assert.match(
      message,
      /:14:15 windows\.deny\[3\]\.days: leave out "days" when from and to name their day/,
    );
    assert.match(message, /:15:7 windows\.deny\[4\]\.days: a window needs days, from and to/);
  });

  it('windows that leave no time to deploy, and an empty allow list, are refused', () => {
    assert.match(
      problems(['  allow: [{ from: "09:00", to: "18:00" }]', '  deny: [{ from: "08:00", to: "19:00" }]']),
      /windows\.deny: the deny windows cover every allowed time: no deploy could ever run/,
    );
    assert.match(problems(['  allow: []']), /windows\.allow: an empty allow list allows nothing/);
    assert.match(problems(['  alow: []']), /unknown key "alow"; did you mean "allow"\?/);
  });
});

describe('deploy gate (freeze and windows)', () => {
  function stateDir(t: TestContext): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-gate-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }
  const refusal = (fn: () => void): BatonError => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof BatonError, String(err));
      return err;
    }
    assert.fail('not refused');
  };

  it('a freeze refuses deploys with who, when and why; --force and rollbacks pass; it survives a restart', (t) => {
    const dir = stateDir(t);
    const gate = new DeployGate(() => undefined, new FreezeStore(dir), silentLogger());
    gate.admit({ version: '1.0.0' });
    const { freeze, replaced } = gate.freezes.freeze(
      'incident 42',
      'alice',
      new Date('2025-06-06T10:00:00Z'),
    );
    assert.equal(replaced, null);
    assert.deepEqual(freeze, { reason: 'incident 42', actor: 'alice', since: '2025-06-06T10:00:00.000Z' });
    const e = refusal(() => gate.admit({ version: '1.0.1' }));
    assert.equal(e.code, 'BATON_E_REFUSED');
    assert.equal(e.status, 409);
    assert.equal(e.exitCode, 13);
    assert.equal(
      e.message,
      'deploy of 1.0.1 refused: deploys are frozen since 2025-06-06T10:00:00.000Z by alice: "incident 42" (`baton unfreeze` lifts it). ' +
        'Use --force to deploy anyway (recorded in history); `baton rollback` is always allowed',
    );
    gate.admit({ version: '1.0.1', force: true });
    gate.admit({ version: '0.9.0', rollback: true });
    // Written atomically in stateDir: a new store (a restarted daemon) reads it back.
    assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'freeze.json'), 'utf8')), { format: 1, freeze });
    const again = new DeployGate(() => undefined, new FreezeStore(dir), silentLogger());
    assert.deepEqual(again.state(), { freeze, window: null });
    assert.equal(refusal(() => again.admit({ version: '1.0.1' })).code, 'BATON_E_REFUSED');
    assert.deepEqual(again.freezes.unfreeze(), freeze);
    assert.equal(again.freezes.unfreeze(), null);
    again.admit({ version: '1.0.1' });
    assert.equal(new FreezeStore(dir).get(), null);
  });

  it('outside a window: the reason and the next allowed time in the zone; the windows are read at each deploy', (t) => {
    let config: WindowsConfig | undefined = windows({ timezone: 'Asia/Seoul', deny: [WEEKEND] });
    const now = new Date('2025-06-07T03:00:00Z'); // Sat 12:00 KST
    const gate = new DeployGate(
      () => config,
      new FreezeStore(stateDir(t)),
      silentLogger(),
      () => now,
    );
    const e = refusal(() => gate.admit({ version: '2.0.0' }));
    assert.equal(e.code, 'BATON_E_REFUSED');
    assert.equal(
      e.message,
      'deploy of 2.0.0 refused: it is Sat 2025-06-07 12:00 Asia/Seoul (UTC+09:00), inside the deny window "fri 17:00 to mon 09:00"; ' +
        'the next allowed time is Mon 2025-06-09 09:00 Asia/Seoul (UTC+09:00). Use --force to deploy anyway (recorded in history); `baton rollback` is always allowed',
    );
    assert.deepEqual(e.details, {
      freeze: null,
      window: {
        reason: 'inside the deny window "fri 17:00 to mon 09:00"',
        nextOpen: '2025-06-09T00:00:00.000Z',
        timezone: 'Asia/Seoul',
      },
    });
    assert.deepEqual(gate.state().window, {
      timezone: 'Asia/Seoul',
      allow: null,
      deny: ['fri 17:00 to mon 09:00'],
      open: false,
      reason: 'inside the deny window "fri 17:00 to mon 09:00"',
      nextOpen: '2025-06-09T00:00:00.000Z',
      nextOpenLocal: 'Mon 2025-06-09 09:00 Asia/Seoul (UTC+09:00)',
    });
    // Frozen too: both reasons.
    gate.freezes.freeze('db migration', 'bob');
    assert.match(
      refusal(() => gate.admit({ version: '2.0.0' })).message,
      /frozen .* by bob: "db migration" .*; and it is Sat/,
    );
    gate.freezes.unfreeze();
    // A reloaded config applies at the next deploy.
    config = windows({ timezone: 'UTC', deny: [WEEKEND] }); // Sat 03:00 UTC: still the weekend
    assert.match(
      refusal(() => gate.admit({ version: '2.0.0' })).message,
      /next allowed time is Mon 2025-06-09 09:00 UTC \(UTC\+00:00\)/,
    );
    config = undefined;
    gate.admit({ version: '2.0.0' });
  });
});
