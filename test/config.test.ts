// The config layer: units, defaults, frozen results, every problem of a bad file at once (with
// file:line:col, key path and a hint), and the JSON Schema export.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfigFile, parseConfigText, type ConfigProblem } from '../src/config/load.js';
import { DEFAULTS, configJsonSchema } from '../src/config/schema.js';
import { formatDuration, parseDuration, parseSize } from '../src/config/units.js';
import { BatonError } from '../src/errors.js';
import { tempDir, writeFile } from './helpers/cli.js';
import { config, refusedConfig } from './helpers/index.js';

/** The BatonError a bad config text throws. */
function configError(text: string, file = '/srv/web/baton.yaml'): BatonError {
  try {
    parseConfigText(text, file);
  } catch (err) {
    assert.ok(err instanceof BatonError, `expected a BatonError, got ${String(err)}`);
    assert.equal(err.code, 'BATON_E_CONFIG');
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail('expected the config to be refused');
}

function problems(err: BatonError): ConfigProblem[] {
  return err.details as ConfigProblem[];
}

function problemAt(err: BatonError, keyPath: string): ConfigProblem {
  const p = problems(err).find((x) => x.path === keyPath);
  assert.ok(p, `no problem at ${keyPath} in:\n${err.message}`);
  return p;
}

describe('units', () => {
  it('parses durations to milliseconds', () => {
    const cases: [string, number][] = [
      ['0', 0],
      ['500ms', 500],
      ['3s', 3000],
      ['1.5s', 1500],
      ['1m', 60_000],
      ['1m30s', 90_000],
      ['2h', 7_200_000],
      ['1d', 86_400_000],
      ['1h2m3s4ms', 3_723_004],
      [' 10s ', 10_000],
      ['0s', 0],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  it('refuses durations without a unit or with junk', () => {
    for (const text of ['', '30', '10 s', 's', '10x', '5s!', '-1s', '1.s', 'ms']) {
      assert.equal(parseDuration(text), undefined, JSON.stringify(text));
    }
  });

  it('parses sizes to bytes, k/m/g as powers of 1024', () => {
    const cases: [string, number][] = [
      ['0', 0],
      ['512', 512],
      ['100b', 100],
      ['16k', 16 * 1024],
      ['16K', 16 * 1024],
      ['16kb', 16 * 1024],
      ['1KiB', 1024],
      ['10m', 10 * 1024 ** 2],
      ['1MiB', 1024 ** 2],
      ['1.5m', 1.5 * 1024 ** 2],
      ['2g', 2 * 1024 ** 3],
      ['1 GB', 1024 ** 3],
    ];
    for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
    for (const text of ['', 'k', '10x', '-1k', '10 mbs', '1e3']) {
      assert.equal(parseSize(text), undefined, JSON.stringify(text));
    }
  });

  it('formats durations the way a user writes them', () => {
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(30_000), '30s');
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(90_000), '1m30s');
  });
});

describe('a valid config', () => {
  it('gets its defaults, resolved paths and is deeply frozen', () => {
    const file = '/srv/web/baton.yaml';
    const c = parseConfigText(
      [
        'service: web',
        'listen: 127.0.0.1:8080',
        'admin: unix:/run/baton.sock',
        'targets:',
        '  - address: 127.0.0.1:9001',
        '  - address: "[::1]:9002"',
        '    weight: 3',
        '    failTimeout: 1m30s',
        '    version: "2.0"',
        'proxy:',
        '  maxBodySize: 1m',
        '  drainTimeout: 5s',
        '',
      ].join('\n'),
      file,
    );
    assert.equal(c.service, 'web');
    assert.deepEqual(c.listen, { kind: 'tcp', host: '127.0.0.1', port: 8080 });
    assert.deepEqual(c.admin, { kind: 'unix', path: '/run/baton.sock' });
    assert.equal(c.file, file);
    assert.equal(c.baseDir, '/srv/web');
    assert.equal(c.stateDir, DEFAULTS.stateDir);
    assert.equal(c.stateDirPath, path.resolve('/srv/web', DEFAULTS.stateDir));
    assert.equal(c.healthCheck, undefined);
    assert.deepEqual(c.balance, { algorithm: 'round-robin' });

    const [a, b] = c.targets!;
    assert.deepEqual(a, {
      address: { kind: 'tcp', host: '127.0.0.1', port: 9001 },
      weight: DEFAULTS.weight,
      maxFails: DEFAULTS.maxFails,
      failTimeout: 10_000,
      backup: false,
    });
    assert.deepEqual(b!.address, { kind: 'tcp', host: '::1', port: 9002 });
    assert.equal(b!.weight, 3);
    assert.equal(b!.failTimeout, 90_000);
    assert.equal(b!.version, '2.0');

    // Given values win; everything else is the documented default, in milliseconds/bytes.
    assert.equal(c.proxy.maxBodySize, 1024 ** 2);
    assert.equal(c.proxy.drainTimeout, 5000);
    assert.equal(c.proxy.maxHeaderSize, 16 * 1024);
    assert.equal(c.proxy.clientHeaderTimeout, 10_000);
    assert.equal(c.proxy.clientRequestTimeout, 60_000);
    assert.equal(c.proxy.connectTimeout, 5000);
    assert.equal(c.proxy.upstreamIdleTimeout, 4000);
    assert.equal(c.proxy.retries, DEFAULTS.proxy.retries);
    assert.equal(c.proxy.retryTimeout, 10_000);
    assert.equal(c.proxy.slowStart, 0);
    assert.deepEqual(c.proxy.trustedProxies, []);
    assert.equal(c.proxy.accessLog, 'off');

    for (const o of [c, c.listen, c.proxy, c.balance, c.targets, a, a.address, c.proxy.trustedProxies]) {
      assert.ok(Object.isFrozen(o));
    }
    assert.throws(() => {
      (c as { service: string }).service = 'other';
    }, TypeError);
    assert.throws(() => {
      (c.proxy as { retries: number }).retries = 9;
    }, TypeError);
  });

  it('gets the health check defaults when healthCheck is given', () => {
    const c = parseConfigText('service: web\nlisten: :8080\nhealthCheck: {}\n', '/srv/baton.yaml');
    assert.deepEqual(c.listen, { kind: 'tcp', host: '0.0.0.0', port: 8080 });
    assert.deepEqual(c.healthCheck, {
      path: '/health',
      interval: 2000,
      timeout: 1000,
      expectStatus: '2xx',
      healthyThreshold: 2,
      unhealthyThreshold: 3,
    });
  });

  it('is read from a file, with relative stateDir anchored at the file', (t) => {
    const dir = tempDir(t);
    const file = writeFile(dir, 'baton.yaml', 'service: api\nlisten: 127.0.0.1:0\nstateDir: var/state\n');
    const c = loadConfigFile(file);
    assert.equal(c.service, 'api');
    assert.equal(c.stateDirPath, path.join(dir, 'var/state'));
  });

  it('a missing file is a clear error', (t) => {
    const missing = path.join(tempDir(t), 'nope.yaml');
    assert.throws(
      () => loadConfigFile(missing),
      (err: unknown) =>
        err instanceof BatonError &&
        err.code === 'BATON_E_CONFIG' &&
        err.message.includes(missing) &&
        err.message.includes('no such file'),
    );
  });
});

describe('an invalid config', () => {
  it('reports every problem at once with file:line:col, key path and a hint', () => {
    const text = [
      /* 1 */ 'service: web',
      /* 2 */ 'listen: 127.0.0.1:notaport',
      /* 3 */ 'admn: 127.0.0.1:9901',
      /* 4 */ 'targets:',
      /* 5 */ '  - address: 127.0.0.1:9001',
      /* 6 */ '    failTimeout: 30',
      /* 7 */ '  - address: 127.0.0.1:9001',
      /* 8 */ '  - address: localhost',
      /* 9 */ 'balance:',
      /* 10 */ '  algorithm: hash',
      /* 11 */ 'proxy:',
      /* 12 */ '  drainTimeot: 5s',
      /* 13 */ '  maxBodySize: lots',
      '',
    ].join('\n');
    const err = configError(text);
    const expected: [path: string, at: string, message: RegExp][] = [
      ['admn', '3:1', /unknown key "admn"; did you mean "admin"\?/],
      ['proxy.drainTimeot', '12:3', /unknown key "drainTimeot"; did you mean "drainTimeout"\?/],
      ['targets[0].failTimeout', '6:18', /30 has no unit: write a duration such as "30s" or "30ms"/],
      ['listen', '2:9', /"127\.0\.0\.1:notaport" is not an address: write host:port/],
      ['targets[2].address', '8:14', /"localhost" is not a target address: write host:port/],
      ['balance.hashKey', '10:3', /algorithm "hash" needs a hashKey: "ip", "header:NAME" or "cookie:NAME"/],
      ['proxy.maxBodySize', '13:16', /"lots" is not a size: write e\.g\. 16k/],
      ['targets[1].address', '7:14', /127\.0\.0\.1:9001 is listed twice/],
    ];
    for (const [keyPath, at, message] of expected) {
      const p = problemAt(err, keyPath);
      assert.equal(p.at, at, keyPath);
      assert.match(p.message, message);
      // The human message has the same, as "file:line:col key.path: message".
      assert.ok(
        err.message.includes(`  - baton.yaml:${at} ${keyPath}: ${p.message}`),
        `${keyPath} missing from:\n${err.message}`,
      );
    }
    assert.equal(problems(err).length, expected.length, err.message);
    assert.ok(err.message.startsWith(`invalid config /srv/web/baton.yaml (${expected.length} problems):\n`));
  });

  it('unknown keys far from any known key list the known ones', () => {
    const err = configError('service: web\nlisten: 127.0.0.1:1\nbalance:\n  zzzzzzzz: 1\n');
    const p = problemAt(err, 'balance.zzzzzzzz');
    assert.equal(p.at, '4:3');
    assert.match(p.message, /known keys: algorithm, hashKey/);
  });

  it('tells a missing key from a value of the wrong type', () => {
    const err = configError('listen: 127.0.0.1:1\ntargets:\n  - address: 127.0.0.1:9001\n    weight: two\n');
    assert.equal(problemAt(err, 'service').message, 'is required');
    const weight = problemAt(err, 'targets[0].weight');
    assert.equal(weight.at, '4:13');
    assert.match(weight.message, /expected number, received string/);
  });

  it('a bare-number duration anywhere gets the unit hint', () => {
    const err = configError('service: web\nlisten: 127.0.0.1:1\nhealthCheck:\n  interval: 5\n');
    const p = problemAt(err, 'healthCheck.interval');
    assert.equal(p.at, '4:13');
    assert.match(p.message, /5 has no unit: write a duration such as "5s" or "5ms"/);
  });

  it('a YAML syntax error is reported with its line', () => {
    const err = configError(
      'service: web\nlisten: 127.0.0.1:1\nproxy:\n  retries: 2\n  drainTimeout: 5s: x\n',
    );
    assert.equal(problems(err).length, 1);
    const [p] = problems(err);
    assert.match(p!.at!, /^5:\d+$/);
    assert.match(p!.message, /[Nn]ested mappings/);
    assert.match(err.message, /baton\.yaml:5:\d+: /);
  });

  it('a key given twice is a YAML error at its second line', () => {
    const err = configError('service: web\nlisten: 127.0.0.1:1\nservice: api\n');
    assert.equal(problems(err)[0]!.at, '3:1');
    assert.match(problems(err)[0]!.message, /unique/);
  });

  it('the file must be a mapping', () => {
    const err = configError('- a\n- b\n');
    assert.match(err.message, /must be a YAML mapping/);
  });
});

describe('configJsonSchema()', () => {
  it('describes the top-level keys for editors', () => {
    const schema = configJsonSchema() as {
      type: string;
      properties: Record<string, unknown>;
      required: string[];
      additionalProperties: unknown;
    };
    assert.equal(schema.type, 'object');
    assert.deepEqual(Object.keys(schema.properties).sort(), [
      'admin',
      'adminHosts',
      'app',
      'balance',
      'edge',
      'edges',
      'environments',
      'healthCheck',
      'hooks',
      'hosts',
      'hsts',
      'listen',
      'notify',
      'proxy',
      'redirectHttp',
      'service',
      'ssh',
      'stateDir',
      'strategy',
      'targets',
      'tls',
      'windows',
    ]);
    // listen is needed by the built-in edge only (a refinement says so).
    assert.deepEqual([...schema.required].sort(), ['service']);
    assert.equal(schema.additionalProperties, false);
    assert.doesNotThrow(() => JSON.stringify(schema));
  });
});

describe('hosts config', () => {
  it('counts instances per host, and needs an app with a port range', () => {
    const hosts =
      'hosts:\n  - { name: w1, address: 10.0.0.11, user: deploy }\n  - { name: w2, address: 10.0.0.12 }\n';
    const c = config(
      `service: web\nlisten: 127.0.0.1:0\n${hosts}app:\n  command: run --port {port}\n  ports: 8081-8084\n  instancesPerHost: 2\n`,
    );
    assert.equal(c.app?.instances, 4);
    assert.deepEqual(c.ssh, { options: [], connectTimeout: 5000 });
    assert.match(
      refusedConfig(`service: web\nlisten: 127.0.0.1:0\n${hosts}app:\n  command: run --port {port}\n`),
      /instances on hosts need a port range, e\.g\. ports: 8081-8082/,
    );
    assert.match(
      refusedConfig(`service: web\nlisten: 127.0.0.1:0\napp:\n  command: run\n  instancesPerHost: 1\n`),
      /instancesPerHost needs hosts/,
    );
    assert.match(
      refusedConfig(
        `service: web\nlisten: 127.0.0.1:0\nhosts: [{ name: a, address: x }, { name: a, address: y }]\napp:\n  command: run\n  ports: 1-2\n`,
      ),
      /a is listed twice/,
    );
  });
});

describe('edge config', () => {
  const app = 'app:\n  command: node app.js --port {port}\n';

  it('defaults to the built-in edge, and parses nginx and haproxy sections with defaults', () => {
    assert.equal(config('service: web\nlisten: 127.0.0.1:0\n').edge.type, 'builtin');
    const n = config(`service: web\n${app}edge: { type: nginx, upstreamFile: /etc/nginx/conf.d/web.conf }\n`);
    assert.deepEqual(n.edge, {
      type: 'nginx',
      upstreamFile: '/etc/nginx/conf.d/web.conf',
      test: 'nginx -t',
      reload: 'nginx -s reload',
      pidFile: '/run/nginx.pid',
      reloadTimeout: 10_000,
      keepalive: 16,
    });
    assert.equal(n.listen, undefined);
    const h = config(
      `service: web\n${app}edge: { type: haproxy, runtimeSocket: /run/haproxy/admin.sock, backend: web }\n`,
    );
    assert.equal(h.edge.type, 'haproxy');
    if (h.edge.type === 'haproxy') assert.equal(h.edge.serverPrefix, 'baton');
  });

  it('refuses what an edge cannot do with a clear message', () => {
    assert.match(refusedConfig('service: web\n'), /built-in edge needs a client address, e\.g\. listen/);
    assert.match(
      refusedConfig(
        `service: web\nlisten: 127.0.0.1:8080\n${app}edge: { type: nginx, upstreamFile: /x.conf }\n`,
      ),
      /with edge of type nginx the client port is theirs: remove listen/,
    );
    assert.match(
      refusedConfig('service: web\nedge: { type: haproxy, runtimeSocket: /s, backend: web }\ntargets: []\n'),
      /edge of type haproxy drive the instances of an app/,
    );
    assert.match(refusedConfig(`service: web\n${app}edge: { type: nginx }\n`), /upstreamFile/);
    assert.match(
      refusedConfig(`service: web\n${app}edge: { type: haproxy, runtimeSocket: /s, backend: "we b" }\n`),
      /a backend name from haproxy\.cfg/,
    );
    assert.match(refusedConfig(`service: web\n${app}edge: { type: traefik }\n`), /edge\.type|type/);
    const two = 'edges: [{ type: builtin }, { type: haproxy, runtimeSocket: /s, backend: web }]';
    assert.equal(config(`service: web\nlisten: 127.0.0.1:0\n${app}${two}\n`).edges?.length, 2);
    assert.match(refusedConfig(`service: web\n${app}${two}\n`), /built-in edge needs a client address/);
    assert.match(
      refusedConfig(
        `service: web\nlisten: 127.0.0.1:0\n${app}edges: [{ type: builtin }, { type: builtin }]\n`,
      ),
      /the built-in edge can be listed once/,
    );
    assert.match(
      refusedConfig(`service: web\n${app}edges: [{ type: nginx, upstreamFile: /a.conf }]\n`),
      /for one edge, write edge: instead/,
    );
  });

  it('edges on other machines: an nginx over SSH, another Baton by its admin address', () => {
    const n = config(
      `service: web\n${app}edge: { type: nginx, host: 'deploy@10.0.0.2:2222', upstreamFile: /etc/nginx/conf.d/web.conf }\n`,
    );
    assert.deepEqual(n.edge.type === 'nginx' && n.edge.host, {
      name: 'deploy@10.0.0.2:2222',
      address: '10.0.0.2',
      user: 'deploy',
      port: 2222,
    });
    const alias = config(`service: web\n${app}edge: { type: nginx, host: lb-1, upstreamFile: /e/w.conf }\n`);
    assert.deepEqual(alias.edge.type === 'nginx' && alias.edge.host, { name: 'lb-1', address: 'lb-1' });
    assert.match(
      refusedConfig(`service: web\n${app}edge: { type: nginx, host: lb-1, upstreamFile: conf.d/web.conf }\n`),
      /with host: lb-1, an absolute path on that machine/,
    );
    assert.match(
      refusedConfig(
        `service: web\n${app}edge: { type: nginx, host: '-oProxyCommand=x', upstreamFile: /w.conf }\n`,
      ),
      /is not an ssh destination/,
    );
    // Another Baton's proxy: no listen here (that Baton has it), an app to deploy.
    const remote = config(`service: web\n${app}edge: { type: builtin, admin: 10.0.0.2:9901 }\n`);
    assert.equal(remote.listen, undefined);
    assert.ok(remote.edge.type === 'builtin' && remote.edge.admin?.kind === 'tcp');
    assert.equal(remote.edge.type === 'builtin' && remote.edge.tokenEnv, 'BATON_ADMIN_TOKEN');
    assert.match(
      refusedConfig(
        `service: web\nlisten: 127.0.0.1:8080\n${app}edge: { type: builtin, admin: 10.0.0.2:9901 }\n`,
      ),
      /the client port is theirs: remove listen/,
    );
    assert.match(
      refusedConfig(`service: web\nedge: { type: builtin, admin: 10.0.0.2:9901 }\ntargets: []\n`),
      /builtin \(remote\) drive the instances of an app/,
    );
    // This daemon's proxy and two others kept in step.
    const three = config(
      `service: web\nlisten: 127.0.0.1:0\n${app}edges: [{ type: builtin }, { type: builtin, admin: 10.0.0.2:9901 }, { type: builtin, admin: 10.0.0.3:9901, tokenEnv: LB2_TOKEN }]\n`,
    );
    assert.equal(three.edges?.length, 3);
  });

  it('a canary on named hosts: only hosts that exist, only with hosts:', () => {
    const hosts = 'hosts: [{ name: worker-1, address: 10.0.0.11 }, { name: worker-2, address: 10.0.0.12 }]\n';
    const multi = `service: web\nlisten: 127.0.0.1:0\napp:\n  command: node app.js --port {port}\n  ports: 8081-8082\n${hosts}`;
    const canary = (h: string): string =>
      `strategy: { type: canary, hosts: ${h}, steps: [{ setWeight: 10 }] }\n`;
    const c = config(multi + canary('[worker-2]'));
    assert.deepEqual(c.strategy.type === 'canary' && c.strategy.hosts, ['worker-2']);
    assert.match(
      refusedConfig(multi + canary('[worker-3]')),
      /no host named worker-3 in hosts \(worker-1, worker-2\)/,
    );
    assert.match(
      refusedConfig(`service: web\nlisten: 127.0.0.1:0\n${app}${canary('[worker-1]')}`),
      /canary hosts name servers of hosts:/,
    );
  });
});

describe('hsts config', () => {
  const tls = 'service: web\nlisten: 127.0.0.1:0\ntargets: []\ntls: { cert: a.crt, key: a.key }\n';
  it("preload needs includeSubDomains and a max-age of a year or more (the preload list's rules)", () => {
    const header = (hsts: string): unknown => config(`${tls}hsts: ${hsts}\n`).hsts;
    assert.deepEqual(header('{ maxAge: 1y, includeSubDomains: true, preload: true }'), {
      maxAge: 31_536_000,
      includeSubDomains: true,
      preload: true,
    });
    assert.deepEqual(header('{ maxAge: 2y, includeSubDomains: true, preload: true }'), {
      maxAge: 63_072_000,
      includeSubDomains: true,
      preload: true,
    });
    // Control: without preload, both are the user's to choose.
    assert.deepEqual(header('{ maxAge: 180d }'), {
      maxAge: 15_552_000,
      includeSubDomains: false,
      preload: false,
    });
    const sub = configError(`${tls}hsts: { maxAge: 1y, preload: true }\n`);
    assert.match(
      problemAt(sub, 'hsts.includeSubDomains').message,
      /hsts\.preload needs hsts\.includeSubDomains: true/,
    );
    const short = configError(`${tls}hsts: { maxAge: 180d, includeSubDomains: true, preload: true }\n`);
    assert.match(
      problemAt(short, 'hsts.maxAge').message,
      /hsts\.preload needs hsts\.maxAge of 1y \(31536000 seconds\) or more, not 15552000/,
    );
    // Both at once, each at its key.
    const both = configError(`${tls}hsts: { maxAge: 300, preload: true }\n`);
    problemAt(both, 'hsts.includeSubDomains');
    problemAt(both, 'hsts.maxAge');
  });
});
