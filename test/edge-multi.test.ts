// Several edges kept in step (edges: [...]): a change reaches every edge before apply() resolves;
// one edge refusing puts the others back, so no edge is left half-switched. Real edges: the
// built-in proxy, nginx and HAProxy, started by the test.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { edgeSchema } from '../src/config/schema.js';
import { BuiltinEdge } from '../src/edge/builtin/edge.js';
import { EdgeError, type Edge, type RouteSpec } from '../src/edge/edge.js';
import { HaproxyEdge } from '../src/edge/haproxy/haproxy.js';
import { MultiEdge } from '../src/edge/multi.js';
import { NginxEdge } from '../src/edge/nginx/nginx.js';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, tempDir, writeFile } from './helpers/cli.js';
import { startHaproxy } from './helpers/haproxy.js';
import { startBackend, startLoad, startProxy, waitFor, type Backend } from './helpers/index.js';
import { edgeOptions } from './helpers/edges.js';
import { startNginx } from './helpers/nginx.js';

const routeTo = (b: Backend): RouteSpec => ({ host: '127.0.0.1', port: b.port, weight: 1, version: b.name });

async function answer(url: string): Promise<string> {
  const res = await request(url, { headers: { connection: 'close' }, reset: true });
  return res.body.text();
}

/** Three real edges; nginx's config test fails while `broken` exists. */
async function threeEdges(t: TestContext): Promise<{ multi: MultiEdge; urls: string[]; broken: string }> {
  const { proxy, url: builtinUrl } = await startProxy(t, []);
  const nginx = await startNginx(t);
  const dir = tempDir(t);
  const broken = path.join(dir, 'broken');
  const check = writeFile(
    dir,
    'nginx-test.sh',
    `#!/bin/sh\n[ -e ${broken} ] && { echo 'nginx: [emerg] simulated failure' >&2; exit 1; }\nexec ${nginx.edgeConfig.test}\n`,
  );
  chmodSync(check, 0o755);
  const ncfg = edgeSchema.parse({ ...nginx.edgeConfig, test: check });
  const haproxy = await startHaproxy(t);
  const hcfg = edgeSchema.parse(haproxy.edgeConfig);
  if (ncfg.type !== 'nginx' || hcfg.type !== 'haproxy') throw new Error('edge configs');
  const edges: Edge[] = [
    new BuiltinEdge(proxy),
    new NginxEdge(ncfg, edgeOptions()),
    new HaproxyEdge(hcfg, edgeOptions()),
  ];
  const multi = new MultiEdge(edges);
  await multi.start();
  t.after(() => multi.close());
  return { multi, urls: [builtinUrl, `http://127.0.0.1:${nginx.port}`, haproxy.url], broken };
}

describe('several edges in step', () => {
  it('applies to all before resolving, and puts the others back when one refuses', async (t) => {
    const { multi, urls, broken } = await threeEdges(t);
    const [a, b] = await Promise.all([startBackend(t, 'a'), startBackend(t, 'b')]);
    assert.deepEqual(multi.can.matchRules, false, 'HAProxy cannot: neither can the set');
    await multi.apply([routeTo(a)], null);
    assert.deepEqual(await Promise.all(urls.map(answer)), ['a', 'a', 'a']);
    await multi.apply([routeTo(b)], null);
    assert.deepEqual(await Promise.all(urls.map(answer)), ['b', 'b', 'b']);
    await multi.drain([`127.0.0.1:${a.port}`], 5000);

    writeFileSync(broken, '');
    await assert.rejects(multi.apply([routeTo(a)], null), (err: unknown) => {
      assert.ok(err instanceof EdgeError);
      assert.match(err.message, /1 of 3 edges refused the change: nginx \(.*simulated failure/s);
      assert.match(err.message, /put back the previous routes on the built-in proxy, haproxy/);
      return true;
    });
    assert.deepEqual(await Promise.all(urls.map(answer)), ['b', 'b', 'b'], 'every edge still on b');
    rmSync(broken);
    await multi.apply([routeTo(a)], null);
    assert.deepEqual(await Promise.all(urls.map(answer)), ['a', 'a', 'a']);
  });

  it('baton up with edges [builtin, nginx]: blue-green deploys under load on both, 0 failed', async (t) => {
    ensureBuilt();
    const nginx = await startNginx(t);
    const svc = await Service.create(t, {
      edge: {
        lines: ['listen: 127.0.0.1:0', `edges: [{ type: builtin }, ${JSON.stringify(nginx.edgeConfig)}]`],
        url: `http://127.0.0.1:${nginx.port}`,
      },
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const viaNginx = startLoad(svc.url, { concurrency: 3, keepAlive: false, maxMs: 60_000 });
    const viaBuiltin = startLoad(svc.daemon.url, { concurrency: 3, maxMs: 60_000 });
    try {
      for (const v of ['1.0.1', '1.0.2']) {
        const run = await svc.deploy(v);
        assert.equal(run.done?.result, 'succeeded', run.stdout + run.stderr);
      }
      await waitFor(() => viaNginx.result.ok > 50 && viaBuiltin.result.ok > 50, { what: 'load on both' });
    } finally {
      await Promise.all([viaNginx.stop(), viaBuiltin.stop()]);
    }
    assert.equal(viaNginx.result.failed, 0, viaNginx.result.failures.join('; '));
    assert.equal(viaBuiltin.result.failed, 0, viaBuiltin.result.failures.join('; '));
    assert.equal((await answer(svc.url)).trim(), '1.0.2');
    assert.equal((await answer(svc.daemon.url)).trim(), '1.0.2');
  });
});
