// Issue 14: the data plane crashing while `baton up` runs. The controller starts a new one at
// once, which comes back with the routes it saved. On its own listener that is a short refusal;
// under systemd socket activation (LISTEN_FDS, the socket held outside both processes) not one
// connection is refused: they wait in the socket's backlog for the new data plane.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { before, describe, it, type TestContext } from 'node:test';
import { Service } from './helpers/app-daemon.js';
import { BATON, ROOT, startLoad, waitFor } from './helpers/index.js';
import { childEnv, dataPlanePids, ensureBuilt } from './helpers/cli.js';

const STRATEGY = ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s'];
const CONCURRENCY = 4;

/** `baton up` under `sh -c 'LISTEN_PID=$$ LISTEN_FDS=1 exec ...'` with a listening socket as fd 3. */
async function upWithSocket(t: TestContext, svc: Service): Promise<{ port: number; stdout: () => string }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const child = spawn(
    'sh',
    ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${BATON}" up -c "${svc.file}"`],
    { cwd: ROOT, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe', fd] },
  );
  // Only the child holds the socket now (this process would accept on it too).
  server.close();
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => out.includes('"admin API listening"'), { timeout: 15_000, what: `baton up: ${out}` });
  return { port, stdout: () => out };
}

async function killDataPlaneUnderLoad(
  t: TestContext,
  svc: Service,
  url: string,
  logs: () => string,
): Promise<{ failed: number; refused: number; sent: number; failures: string[] }> {
  const [first] = dataPlanePids(svc.file);
  assert.ok(first, 'a data plane runs');
  const load = startLoad(url, { concurrency: CONCURRENCY, maxMs: 60_000 });
  t.after(() => load.stop());
  await waitFor(() => load.result.ok > 100, { what: 'load through the data plane' });
  process.kill(first, 'SIGKILL');
  await waitFor(() => dataPlanePids(svc.file).some((p) => p !== first), {
    timeout: 15_000,
    what: 'the controller to start a new data plane',
  });
  const okAt = load.result.ok;
  await waitFor(() => load.result.ok > okAt + 200, {
    timeout: 20_000,
    what: 'answers from the new data plane',
  });
  const r = await load.stop();
  assert.match(logs(), /the data plane is gone \(crashed or killed\): starting a new one/);
  // The restarted data plane routes what it saved: a deploy through it works.
  const run = await svc.deploy('1.0.1', [], 60_000);
  assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);
  const refused = r.failures.filter((f) => f.includes('ECONNREFUSED')).length;
  t.diagnostic(
    `sent ${r.sent}, failed ${r.failed}, refused (of the first 20 failures) ${refused}: ${r.failures.slice(0, 3).join('; ')}`,
  );
  return { failed: r.failed, refused, sent: r.sent, failures: r.failures };
}

describe('the data plane crashes while baton up runs (issue 14)', { timeout: 120_000 }, () => {
  before(() => ensureBuilt());

  it('on its own listener: a new one serves within moments, with the saved routes (refusals only meanwhile)', async (t) => {
    const svc = await Service.create(t, { instances: 2, readyTimeout: '15s', strategy: STRATEGY });
    const d = await svc.start();
    await svc.deployApi('1.0.0');
    const r = await killDataPlaneUnderLoad(t, svc, svc.url, d.stdout);
    // Connections refused until the new process listens; the requests in flight on the killed
    // one cut: nothing else.
    for (const f of r.failures) assert.match(f, /ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed/);
  });

  it('under socket activation: not one connection refused, only the requests the killed process held fail', async (t) => {
    const svc = await Service.create(t, { instances: 2, readyTimeout: '15s', strategy: STRATEGY });
    const up = await upWithSocket(t, svc);
    await svc.deployApi('1.0.0');
    const r = await killDataPlaneUnderLoad(t, svc, `http://127.0.0.1:${up.port}`, up.stdout);
    assert.equal(r.refused, 0, r.failures.join('\n'));
    assert.ok(
      r.failed <= CONCURRENCY,
      `at most the ${CONCURRENCY} requests in flight fail: ${r.failures.join('\n')}`,
    );
  });
});
