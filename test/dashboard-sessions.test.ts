// The dashboard's parts that need no browser, fast: sessions (the cookie's attributes, per-port
// names, expiry, logout), the limit on wrong tokens, and the environments picker's links.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfigText } from '../src/config/load.js';
import { environmentLinks } from '../src/dashboard/environments.js';
import { reportPolicy } from '../src/dashboard/report-route.js';
import { MAX_FAILURES, Sessions } from '../src/dashboard/sessions.js';
import { tempDir, writeFile } from './helpers/cli.js';

function req(headers: Record<string, string>): IncomingMessage {
  return { headers, socket: {} } as unknown as IncomingMessage;
}

describe('dashboard sessions', () => {
  it('sets an HttpOnly, SameSite=Strict cookie named per port, Secure behind https; expires and logs out', () => {
    const s = new Sessions();
    const login = req({ host: '127.0.0.1:9901', origin: 'http://127.0.0.1:9901' });
    const a = s.create(login);
    assert.match(
      a.cookie,
      /^baton_session_9901=[\w-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/,
    );
    const id = /=([^;]+)/.exec(a.cookie)![1]!;
    assert.equal(s.csrfOf(req({ host: '127.0.0.1:9901', cookie: `x=1; baton_session_9901=${id}` })), a.csrf);
    // Another daemon's port, an unknown id, no cookie: no session.
    assert.equal(s.csrfOf(req({ host: '127.0.0.1:9902', cookie: `baton_session_9901=${id}` })), null);
    assert.equal(s.csrfOf(req({ host: '127.0.0.1:9901', cookie: 'baton_session_9901=forged' })), null);
    assert.equal(s.csrfOf(req({ host: '127.0.0.1:9901' })), null);
    assert.match(
      s.create(req({ host: 'baton.example:443', origin: 'https://baton.example' })).cookie,
      /; Secure$/,
    );
    const out = s.end(req({ host: '127.0.0.1:9901', cookie: `baton_session_9901=${id}` }));
    assert.match(out, /^baton_session_9901=; .*Max-Age=0$/);
    assert.equal(s.csrfOf(req({ host: '127.0.0.1:9901', cookie: `baton_session_9901=${id}` })), null);
    const expired = new Sessions(0);
    const e = expired.create(login);
    assert.equal(expired.csrfOf(req({ host: '127.0.0.1:9901', cookie: e.cookie.split(';')[0]! })), null);
  });

  it('refuses an address after a few wrong tokens, not the others; a right one clears it', () => {
    const s = new Sessions();
    for (let i = 0; i < MAX_FAILURES - 1; i++) s.failed('10.0.0.1');
    assert.equal(s.blockedFor('10.0.0.1'), 0);
    s.failed('10.0.0.1');
    assert.ok(s.blockedFor('10.0.0.1') > 50_000);
    assert.equal(s.blockedFor('10.0.0.2'), 0);
    s.succeeded('10.0.0.1');
    assert.equal(s.blockedFor('10.0.0.1'), 0);
  });
});

describe('dashboard environments and report policy', () => {
  it("links each environment of the file to its own admin address's dashboard", (t) => {
    const dir = tempDir(t);
    const text = [
      'service: web',
      'listen: 127.0.0.1:18080',
      'admin: 127.0.0.1:19901',
      "app: { command: 'node app.js --port {port}' }",
      'environments:',
      '  staging: { admin: 127.0.0.1:19902 }',
      '  production: {}',
      '  local: { admin: unix:/run/baton.sock }',
      '',
    ].join('\n');
    const file = writeFile(dir, 'baton.yaml', text);
    const config = parseConfigText(text, path.resolve(file), 'staging');
    assert.deepEqual(environmentLinks(config), [
      { name: 'staging', url: 'http://127.0.0.1:19902/' },
      { name: 'production', url: 'http://127.0.0.1:19901/' },
      { name: 'local', url: null },
    ]);
    assert.deepEqual(
      environmentLinks(
        parseConfigText(
          'service: web\nlisten: 127.0.0.1:2\nadmin: 127.0.0.1:1\ntargets: [{ address: 127.0.0.1:3 }]\n',
          file,
        ),
      ),
      [],
    );
  });

  it("allows a report's inline scripts by their hashes only", () => {
    const policy = reportPolicy('<script type="application/json" id="d">{}</script><script>go()</script>');
    assert.match(policy, /script-src 'sha256-[\w+/=]+'; /);
    assert.equal(policy.match(/sha256-/g)?.length, 1, 'the JSON data block is not a script to allow');
    assert.doesNotMatch(policy, /unsafe-inline'[^;]*script|script-src[^;]*unsafe/);
  });
});
