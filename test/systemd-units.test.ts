// The systemd units in examples/systemd/: systemd's own checker (`systemd-analyze verify`,
// offline: it needs no systemd running) accepts them without a warning, and they hold the
// settings that keep the data plane and the instances alive across the controller's stop,
// restart and crash (KillMode=process, no ExecStop=baton down, Restart=on-failure), and
// `systemctl reload` is a SIGHUP. The shipped unit runs /usr/local/bin/baton, which this
// machine may not have: the checked copy runs this checkout's bin/baton.js with this node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { BATON, ROOT } from './helpers/index.js';

const DIR = path.join(ROOT, 'examples/systemd');
const SERVICE = readFileSync(path.join(DIR, 'baton.service'), 'utf8');
const SOCKET = readFileSync(path.join(DIR, 'baton.socket'), 'utf8');
const SHIPPED_EXEC = /^ExecStart=\/usr\/local\/bin\/baton /m;

type Unit = Map<string, Map<string, string[]>>;

/** A unit file's sections and their settings (a key may repeat), as systemd reads it. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | null = null;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `line ${i + 1} is a setting in a section: ${raw}`);
    assert.ok(!line.endsWith('\\'), `line ${i + 1}: no continuation lines (keep each setting readable)`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

function setting(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** Runs `systemd-analyze verify` on the given units, written to a directory of their own. */
function verify(t: TestContext, units: Record<string, string>): { status: number | null; stderr: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-systemd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(units)) writeFileSync(path.join(dir, name), text);
  // --man=no: Documentation= names man pages, which a machine without them (a container) lacks.
  const r = spawnSync(
    'systemd-analyze',
    ['verify', '--man=no', ...Object.keys(units).map((n) => path.join(dir, n))],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(r.error, undefined, `systemd-analyze runs (Debian's systemd package; .ci/run installs it)`);
  return { status: r.status, stderr: r.stderr };
}

/** The shipped service, running this checkout's command instead of an installed one. */
function runnableService(text = SERVICE): string {
  assert.match(text, SHIPPED_EXEC);
  const quote = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;
  return text.replace(SHIPPED_EXEC, `ExecStart=${quote(process.execPath)} ${quote(BATON)} `);
}

describe('examples/systemd', () => {
  it('systemd-analyze verify accepts baton.service and baton.socket, with no warning', (t) => {
    const { status, stderr } = verify(t, { 'baton.service': runnableService(), 'baton.socket': SOCKET });
    assert.equal(status, 0, stderr);
    assert.equal(stderr.trim(), '', 'no warnings');
  });

  it('the check does see a broken unit (a misspelt KillMode, a missing command)', (t) => {
    const misspelt = verify(t, {
      'baton.service': runnableService().replace('KillMode=process', 'KillMode=proces'),
      'baton.socket': SOCKET,
    });
    assert.match(misspelt.stderr, /baton\.service:\d+: Failed to parse kill mode/);
    const missing = verify(t, {
      'baton.service': SERVICE.replace(SHIPPED_EXEC, 'ExecStart=/nonexistent/baton '),
      'baton.socket': SOCKET,
    });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /\/nonexistent\/baton is not executable/);
  });

  it('baton.service: the controller alone is stopped; instances and data plane outlive it', () => {
    const unit = parseUnit(SERVICE);
    const service = (key: string): string | undefined => setting(unit, 'Service', key);
    assert.equal(service('KillMode'), 'process');
    assert.ok(['exec', 'simple'].includes(service('Type') ?? ''), `Type=${service('Type')}`);
    assert.equal(service('ExecStart'), '/usr/local/bin/baton up -c /etc/baton/baton.yaml');
    assert.match(service('ExecReload') ?? '', /^\/bin\/kill -HUP \$MAINPID$/);
    // Not `always`: baton up exits 0 after `baton down`, which must stay down.
    assert.equal(service('Restart'), 'on-failure');
    assert.match(service('RestartSec') ?? '', /^\d+(ms|s)?$/);
    assert.equal(service('OOMPolicy'), 'continue');
    // A stop hook would run on every restart too: it must not stop the instances.
    assert.equal(unit.get('Service')?.has('ExecStop'), false);
    assert.equal(unit.get('Service')?.has('ExecStopPost'), false);
    // systemd empties it on every stop: the state directory must not be there.
    assert.equal(unit.get('Service')?.has('RuntimeDirectory'), false);
    assert.ok(service('StateDirectory'));
    assert.ok(service('User'));
    assert.ok(service('WorkingDirectory'));
    assert.match(service('EnvironmentFile') ?? '', /^-?\/etc\/baton\//);
    assert.match(setting(unit, 'Unit', 'After') ?? '', /\bbaton\.socket\b/);
    assert.equal(setting(unit, 'Install', 'WantedBy'), 'multi-user.target');
  });

  it('baton.socket: one listening socket, handed to baton.service', () => {
    const unit = parseUnit(SOCKET);
    assert.match(setting(unit, 'Socket', 'ListenStream') ?? '', /^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+$/);
    assert.equal(
      unit.get('Socket')?.get('ListenStream')?.length,
      1,
      'one socket: baton up takes one listener',
    );
    assert.equal(setting(unit, 'Socket', 'Accept') ?? 'no', 'no');
    assert.equal(setting(unit, 'Socket', 'Service') ?? 'baton.service', 'baton.service');
    assert.ok(setting(unit, 'Socket', 'FileDescriptorName'));
    assert.equal(setting(unit, 'Install', 'WantedBy'), 'sockets.target');
  });

  it('README.md beside them names both files and the commands it explains', () => {
    const readme = readFileSync(path.join(DIR, 'README.md'), 'utf8');
    for (const word of [
      'baton.service',
      'baton.socket',
      'KillMode=process',
      'baton down',
      'systemctl reload',
    ]) {
      assert.ok(readme.includes(word), `examples/systemd/README.md mentions ${word}`);
    }
  });
});
