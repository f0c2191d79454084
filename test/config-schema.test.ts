// `baton validate --schema` (issue 15): the JSON Schema an editor checks baton.yaml with. It is
// draft 2020-12 and compiles in ajv 8's strict mode; every property has a description (the
// editor's hover); durations and sizes are patterns that agree with Baton's own parser, value by
// value; the repo's example configs and the README's blocks pass it, a broken one does not; and
// the README's config reference names every key the schema has.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { parse, stringify } from 'yaml';
import { parseConfigText } from '../src/config/load.js';
import { configJsonSchema } from '../src/config/schema.js';
import { ensureBuilt, runBaton } from './helpers/cli.js';
import { ROOT } from './helpers/index.js';

type Json = Record<string, unknown>;

const schema = configJsonSchema();
const ajv = new Ajv2020({ strict: true, allErrors: true });
const validate = ajv.compile(schema);
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** What ajv says of `config`: [] when valid, else "path: message" lines. */
function ajvProblems(config: unknown): string[] {
  if (validate(config)) return [];
  return (validate.errors ?? []).map(
    (e: ErrorObject) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}`,
  );
}

/** Whether Baton's own loader (what `baton validate` runs) accepts `config`, written as YAML. */
function batonAccepts(config: unknown, file = path.join(ROOT, 'baton.yaml')): boolean {
  try {
    parseConfigText(stringify(config), file);
    return true;
  } catch {
    return false;
  }
}

/** Every property of the schema, as a dotted path, with its schema (through unions and items). */
function properties(node: unknown, at = ''): [string, Json][] {
  if (!node || typeof node !== 'object') return [];
  if (Array.isArray(node)) return node.flatMap((n) => properties(n, at));
  const o = node as Json;
  const own = Object.entries((o.properties ?? {}) as Record<string, Json>).flatMap(
    ([k, v]): [string, Json][] => [[`${at}${k}`, v], ...properties(v, `${at}${k}.`)],
  );
  const nested = ['items', 'anyOf', 'oneOf', 'allOf', 'additionalProperties'].flatMap((k) =>
    properties(o[k], at),
  );
  return [...own, ...nested];
}

describe('the JSON Schema of baton.yaml', () => {
  it('is draft 2020-12 and compiles in ajv strict mode', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.type, 'object');
    // Compiled above; strict mode throws on unknown formats, union types, unknown keywords.
    assert.equal(typeof validate, 'function');
    assert.deepEqual(ajvProblems({ service: 'web', listen: '127.0.0.1:8080' }), []);
    assert.match(ajvProblems({ service: 'web', lisen: '127.0.0.1:8080' }).join('\n'), /additional/);
  });

  it('describes every property (what an editor shows on hover)', () => {
    const all = properties(schema);
    assert.ok(all.length > 150, `only ${all.length} properties found: the walk is broken`);
    const bare = [
      ...new Set(
        all.filter(([, s]) => !(typeof s.description === 'string' && s.description.trim())).map(([p]) => p),
      ),
    ];
    assert.deepEqual(bare, [], 'add .describe("...") to these keys in src/config/schema*');
    assert.equal(typeof schema.description, 'string');
  });

  it('is what `baton validate --schema` prints, as JSON on stdout', async (t) => {
    ensureBuilt();
    const r = await runBaton(t, ['validate', '--schema']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), schema);
  });
});

/** A config with one value set: what both validators are asked about. */
type Case = (v: unknown) => Json;
const base = { service: 'web', listen: '127.0.0.1:8080' };
const withApp = (app: Json, extra: Json = {}): Json => ({
  ...base,
  app: { command: 'node app.js --port {port}', ...app },
  ...extra,
});

const DURATION_KEYS: Record<string, Case> = {
  'proxy.drainTimeout (0 allowed)': (v) => ({ ...base, proxy: { drainTimeout: v } }),
  'proxy.connectTimeout (above 0)': (v) => ({ ...base, proxy: { connectTimeout: v } }),
  'app.readyTimeout': (v) => withApp({ readyTimeout: v }),
  'strategy.keepOld': (v) => withApp({}, { strategy: { type: 'blue-green', keepOld: v } }),
  'canary step pause': (v) =>
    withApp({}, { strategy: { type: 'canary', steps: [{ setWeight: 10 }, { pause: v }] } }),
  'hooks.preDeploy.timeout': (v) => ({
    ...base,
    hooks: { preDeploy: { command: './check.sh', timeout: v } },
  }),
  'notify.timeout': (v) => ({ ...base, notify: { timeout: v } }),
};
// prettier-ignore
const DURATIONS: unknown[] = [
  '500ms', '10s', '1m', '1h', '2d', '1m30s', '1h2m3s4ms', '1.5s', '0.5ms', ' 10s ', '\t3s\n', '0',
  '0s', '0ms', '0m0s', 0, '60 seconds', '10', '10 s', '1m 30s', '10S', '5sec', '', ' ', 's', '.5s',
  '1.s', '-1s', '+1s', '1e3ms', '10s5', '1,5s', '１s', 10, -1, 1.5, true, null, [], {},
];

const SIZE_KEYS: Record<string, Case> = {
  'proxy.maxBodySize (1 byte or more)': (v) => ({ ...base, proxy: { maxBodySize: v } }),
  'proxy.maxHeaderSize (1k or more)': (v) => ({ ...base, proxy: { maxHeaderSize: v } }),
};
// prettier-ignore
const SIZES: unknown[] = [
  '16k', '16K', '16kb', '16KiB', '1m', '10M', '1mb', '1MiB', '1g', '1GB', '2gib', '2048', ' 16k ',
  '16 k', '1.5k', '0.5m', '2048b', 2048, 1024, '0', '0k', '0.0m', 0, -1, 1.5, '16 kilobytes', 'k',
  '', '1kk', '-1k', '1e3', '1t', '16 k b', true, null,
];

describe('durations and sizes: the editor says what `baton validate` says', () => {
  for (const [kind, keys, values] of [
    ['durations', DURATION_KEYS, DURATIONS],
    ['sizes', SIZE_KEYS, SIZES],
  ] as const) {
    it(`agrees on ${values.length} ${kind} for each of ${Object.keys(keys).length} keys`, () => {
      const differ: string[] = [];
      let accepted = 0;
      for (const [key, make] of Object.entries(keys)) {
        for (const v of values) {
          const editor = ajvProblems(make(v)).length === 0;
          const baton = batonAccepts(make(v));
          if (editor !== baton)
            differ.push(`${key} = ${JSON.stringify(v)}: schema ${editor}, baton ${baton}`);
          if (baton) accepted++;
        }
      }
      assert.deepEqual(differ, []);
      // Both sides of the list are exercised: good values and bad ones.
      assert.ok(accepted > 10 && accepted < values.length * Object.keys(keys).length - 10, `${accepted}`);
    });
  }

  it('"60 seconds" is refused by both, with the key in the editor\'s error', () => {
    const bad = withApp({ readyTimeout: '60 seconds' });
    assert.match(ajvProblems(bad).join('\n'), /^\/app\/readyTimeout: must match pattern/m);
    assert.equal(batonAccepts(bad), false);
  });

  it('leaves ranges to `baton validate`: a pattern checks the form only', () => {
    // Each is well-formed but out of range: the schema lets it through, Baton's loader does not.
    for (const cfg of [
      { ...base, proxy: { connectTimeout: '25d' } }, // more than a timer can wait (24.8 days)
      { ...base, proxy: { connectTimeout: '0.4ms' } }, // rounds to 0
      { ...base, proxy: { maxHeaderSize: '1000' } }, // below 1k
    ]) {
      assert.deepEqual(ajvProblems(cfg), [], JSON.stringify(cfg));
      assert.equal(batonAccepts(cfg), false, JSON.stringify(cfg));
    }
  });
});

/** Sample values for the __NAME__ placeholders of the examples (run.sh fills them in). */
const PLACEHOLDERS: Record<string, string> = {
  PREFIX: '/srv/nginx',
  ADMIN_PORT: '9901',
  APP_PORTS: '8081-8082',
  NGINX: '/usr/sbin/nginx',
  NODE: '/usr/bin/node',
  APP: '/srv/app/app.js',
};

function exampleConfigs(): string[] {
  const dir = path.join(ROOT, 'examples');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /(^|\/)baton[^/]*\.ya?ml$/.test(f))
    .map((f) => path.join(dir, f));
}

function exampleConfig(file: string): Json {
  // Outside comments (which may name a placeholder, e.g. __NAME__).
  const text = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => {
      const hash = line.search(/(^|\s)#/);
      const code = hash < 0 ? line : line.slice(0, hash);
      return code.replace(/__([A-Z_]+)__/g, (_, name: string) => {
        const v = PLACEHOLDERS[name];
        assert.ok(v !== undefined, `${file}: add a sample value for __${name}__ to PLACEHOLDERS`);
        return v;
      });
    })
    .join('\n');
  return parse(text) as Json;
}

/** The README's yaml blocks, each a whole file or a section of one: completed to a whole file. */
function readmeBlocks(): { line: number; config: Json }[] {
  const blocks: { line: number; config: Json }[] = [];
  for (const m of README.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)) {
    const config = (parse(m[1]!) ?? {}) as Json; // {} for a block of comments only
    const app = config.app as Json | undefined;
    blocks.push({
      line: README.slice(0, m.index).split('\n').length,
      config: {
        service: 'web',
        ...config,
        ...(app && !app.command ? { app: { command: 'node app.js', ...app } } : {}),
      },
    });
  }
  return blocks;
}

describe('the configs in the repo pass the schema', () => {
  it('examples/**/baton*.yaml: valid for the schema and for Baton', () => {
    const files = exampleConfigs();
    assert.ok(files.length >= 1, 'no example config found');
    for (const file of files) {
      const config = exampleConfig(file);
      assert.deepEqual(ajvProblems(config), [], path.relative(ROOT, file));
      assert.ok(batonAccepts(config, file), path.relative(ROOT, file));
    }
  });

  it('a broken example fails, at the broken key', () => {
    const config = exampleConfig(exampleConfigs()[0]!);
    const app = config.app as Json;
    assert.match(
      ajvProblems({ ...config, app: { ...app, stopTimeout: '10 secs' } }).join('\n'),
      /\/app\/stopTimeout/,
    );
    assert.match(
      ajvProblems({ ...config, app: { ...app, stopTimout: '10s' } }).join('\n'),
      /^\/app: .*additional/m,
    );
    assert.match(ajvProblems({ ...config, strategy: { type: 'blue-grean' } }).join('\n'), /^\/strategy/m);
  });

  it("the README's yaml blocks", () => {
    const blocks = readmeBlocks();
    assert.ok(blocks.length >= 5, `${blocks.length} yaml blocks`);
    for (const b of blocks) assert.deepEqual(ajvProblems(b.config), [], `README.md line ${b.line}`);
  });
});

describe('the README', () => {
  it('names every key of the schema in its config reference', () => {
    const at = README.indexOf('## Config reference');
    assert.ok(at >= 0, 'README.md has a "## Config reference" section');
    const reference = README.slice(at, README.indexOf('\n## ', at + 1));
    const names = [...new Set(properties(schema).map(([p]) => p.split('.').pop()!))];
    // As a YAML key (`name:`) or in backticks.
    const missing = names.filter((k) => !new RegExp(`(^|[^A-Za-z])${k}:|\`${k}\``, 'm').test(reference));
    assert.deepEqual(missing, [], 'add these keys to the README\'s "Config reference"');
  });

  it('tells how to point an editor at the schema', () => {
    for (const line of [
      'baton validate --schema > baton.schema.json',
      '# yaml-language-server: $schema=./baton.schema.json',
    ])
      assert.ok(README.includes(line), `README.md has the line: ${line}`);
  });
});
