// Deploy notifications against a real daemon: a local Slack-compatible receiver gets Block Kit
// messages for started and the result (with service, environment, old -> new version, strategy,
// actor, duration, result, reason, dashboard link), a generic webhook gets the events as JSON;
// a receiver answering 500 is retried, one that never answers does not slow the deploy, and the
// webhook URL (a secret) never reaches the daemon log. Plus the config errors of `notify:`.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { before, describe, it, type TestContext } from 'node:test';
import { parseConfigText } from '../src/config/load.js';
import type { ProgressEvent } from '../src/controller/events.js';
import type { DeploymentState } from '../src/controller/state.js';
import { notificationOf } from '../src/notify/event.js';
import { slackMessage } from '../src/notify/slack.js';
import { refusedConfig, startBackend, waitFor, type Backend } from './helpers/index.js';
import { ensureBuilt, runBaton } from './helpers/cli.js';
import { logsWith, Service, type DeployEvent, type DeployRun } from './helpers/app-daemon.js';

const NO_CI = { CI: '', GITHUB_ACTIONS: '', GITLAB_CI: '', JENKINS_URL: '', GITHUB_ACTOR: '' };
/** The secret part of the webhook URLs: it must never show in a log. */
const SECRET = 'T0001/B0002/Xy9sEcReTtOkEn';

interface SlackBlock {
  type: string;
  text?: { type: string; text: string };
  fields?: { type: string; text: string }[];
  elements?: { type: string; text: string }[];
}
interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

async function deployAs(t: TestContext, svc: Service, version: string, actor: string): Promise<DeployRun> {
  const r = await runBaton(t, ['deploy', '-c', svc.file, '--version', version, '--json'], {
    env: { ...NO_CI, BATON_ACTOR: actor },
    timeout: 30_000,
  });
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as DeployEvent);
  return { ...r, events, done: events.find((e) => e.kind === 'done') };
}

function slackMessages(receiver: Backend, urlPath: string): SlackMessage[] {
  return receiver.seen.filter((s) => s.url === urlPath).map((s) => JSON.parse(s.body) as SlackMessage);
}

function header(m: SlackMessage): string {
  return m.blocks.find((b) => b.type === 'header')?.text?.text ?? '';
}

/** The message's fields as { Name: value }. */
function fields(m: SlackMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of m.blocks.find((b) => b.fields)?.fields ?? []) {
    const [k, ...v] = f.text.split('\n');
    out[k!.replace(/\*/g, '')] = v.join('\n');
  }
  return out;
}

function allText(m: SlackMessage): string {
  return JSON.stringify(m);
}

describe('deploy notifications', () => {
  before(() => ensureBuilt());

  it('Slack gets Block Kit messages for started and the result; the webhook gets the events as JSON', async (t) => {
    const receiver = await startBackend(t, 'slack', (_req, res) => res.end('ok'));
    const slackPath = `/services/${SECRET}`;
    const hookPath = `/deploys/${SECRET}`;
    const svc = await Service.create(t, {
      extra: [
        'hooks:',
        // A release whose smoke test fails after the switch: rolled back.
        `  postSwitch: ${JSON.stringify('case "$BATON_VERSION" in *smokefail*) echo "smoke test failed: GET /orders 500"; exit 1;; esac')}`,
        'notify:',
        '  slack:',
        '    webhook: $BATON_TEST_SLACK_URL',
        '    environment: staging',
        '    dashboardUrl: https://grafana.example.com/d/web',
        '  webhook:',
        '    urlEnv: BATON_TEST_HOOK_URL',
        '    headers: { Authorization: "Bearer ${BATON_TEST_TOKEN}", X-Team: payments }',
      ],
    });
    await svc.start({
      BATON_TEST_SLACK_URL: `http://127.0.0.1:${receiver.port}${slackPath}`,
      BATON_TEST_HOOK_URL: `http://127.0.0.1:${receiver.port}${hookPath}`,
      BATON_TEST_TOKEN: 'tok123',
    });
    await svc.deployApi('1.0.0');
    const good = await deployAs(t, svc, '1.1.0', 'alice');
    assert.equal(good.code, 0, good.stdout);
    const bad = await deployAs(t, svc, '1.2.0-smokefail', 'bob');
    assert.equal(bad.code, 10, bad.stdout);
    assert.equal(bad.done?.result, 'rolled-back');

    await waitFor(() => slackMessages(receiver, slackPath).length === 6, {
      what: 'six Slack messages (started and the result of three deploys)',
    });
    await waitFor(() => receiver.seen.filter((s) => s.url === hookPath).length === 6, {
      what: 'six webhook events',
    });
    const slack = slackMessages(receiver, slackPath);
    assert.deepEqual(
      slack.map((m) => header(m).replace(/^:[a-z_]+: /, '')),
      [
        'web 1.0.0: deploy started [staging]',
        'web 1.0.0: deployed [staging]',
        'web 1.1.0: deploy started [staging]',
        'web 1.1.0: deployed [staging]',
        'web 1.2.0-smokefail: deploy started [staging]',
        'web 1.2.0-smokefail: deploy rolled back [staging]',
      ],
    );
    for (const m of slack) {
      assert.ok(m.text.includes('web'), 'a fallback text for notifications');
      assert.match(allText(m), /<https:\/\/grafana\.example\.com\/d\/web\|Open the dashboard>/);
    }
    assert.deepEqual(fields(slack[0]!), {
      Service: 'web',
      Environment: 'staging',
      Version: '(none) → 1.0.0 (first deploy)',
      Strategy: 'blue-green',
      Actor: 'test',
    });
    assert.deepEqual(fields(slack[2]!), {
      Service: 'web',
      Environment: 'staging',
      Version: '1.0.0 → 1.1.0',
      Strategy: 'blue-green',
      Actor: 'alice',
    });
    const succeeded = fields(slack[3]!);
    assert.equal(succeeded.Result, 'succeeded');
    assert.equal(succeeded.Actor, 'alice');
    assert.match(succeeded.Duration!, /^\d+(\.\d+)?m?s$/);
    const rolledBack = slack[5]!;
    assert.equal(fields(rolledBack).Result, 'rolled-back');
    assert.equal(fields(rolledBack).Version, '1.1.0 → 1.2.0-smokefail');
    assert.equal(fields(rolledBack).Actor, 'bob');
    const reason = rolledBack.blocks.find((b) => b.text?.text.startsWith('*Reason*'));
    assert.match(
      reason?.text?.text ?? '',
      /postSwitch hook .* exited with code 1[\s\S]*smoke test failed: GET \/orders 500/,
    );
    assert.ok(!allText(slack[3]!).includes('*Reason*'), 'no reason block on success');

    // The generic webhook: each event as JSON, with its headers.
    const events = receiver.seen.filter((s) => s.url === hookPath);
    assert.ok(events.every((e) => e.method === 'POST' && e.headers['content-type'] === 'application/json'));
    assert.ok(
      events.every((e) => e.headers.authorization === 'Bearer tok123' && e.headers['x-team'] === 'payments'),
    );
    const bodies = events.map(
      (e) =>
        JSON.parse(e.body) as {
          event: string;
          service: string;
          deployment: { id: string; version: string; previousVersion: string | null; actor: string };
          durationMs?: number;
          reason?: string | null;
        },
    );
    assert.deepEqual(
      bodies.map((b) => `${b.event} ${b.deployment.version}`),
      [
        'started 1.0.0',
        'succeeded 1.0.0',
        'started 1.1.0',
        'succeeded 1.1.0',
        'started 1.2.0-smokefail',
        'rolled-back 1.2.0-smokefail',
      ],
    );
    assert.equal(bodies[3]!.deployment.id, good.done?.deployId);
    assert.equal(bodies[3]!.deployment.previousVersion, '1.0.0');
    assert.equal(bodies[3]!.service, 'web');
    assert.equal(typeof bodies[3]!.durationMs, 'number');
    assert.match(bodies[5]!.reason ?? '', /postSwitch hook/);

    // Logs show where notifications go, never the URL.
    assert.ok(!svc.daemon.stdout().includes(SECRET), 'the webhook URL is not in the daemon log');
    const on = logsWith(svc.daemon, 'deploy notifications on')[0];
    assert.deepEqual(on?.notify, [
      `slack http://127.0.0.1:${receiver.port}/…`,
      `webhook http://127.0.0.1:${receiver.port}/…`,
    ]);
  });

  it('retries a receiver that answers 500; one that keeps failing is logged once per deploy, URL masked', async (t) => {
    let failures = 2;
    const receiver = await startBackend(t, 'slack', (_req: IncomingMessage, res: ServerResponse) => {
      if (failures-- > 0) {
        res.writeHead(500);
        res.end('internal_error');
      } else res.end('ok');
    });
    const slackPath = `/services/${SECRET}`;
    const svc = await Service.create(t, {
      extra: ['notify:', '  slack: { webhookEnv: BATON_TEST_SLACK_URL }'],
    });
    await svc.start({ BATON_TEST_SLACK_URL: `http://127.0.0.1:${receiver.port}${slackPath}` });
    await svc.deployApi('1.0.0');
    // started: 500, 500, then 200; succeeded: 200.
    await waitFor(() => receiver.seen.length === 4, { timeout: 10_000, what: 'four requests' });
    assert.deepEqual(
      receiver.seen.map((s) => header(JSON.parse(s.body) as SlackMessage).replace(/^:[a-z_]+: /, '')),
      [
        'web 1.0.0: deploy started',
        'web 1.0.0: deploy started',
        'web 1.0.0: deploy started',
        'web 1.0.0: deployed',
      ],
    );
    assert.deepEqual(logsWith(svc.daemon, /^notification not delivered/), []);

    // Down for good: each message tried 3 times, one log line for the deploy.
    failures = Infinity;
    const r = await svc.deploy('1.0.1');
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.done?.result, 'succeeded');
    await waitFor(() => receiver.seen.length === 10, { timeout: 15_000, what: 'three attempts per message' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const warned = logsWith(svc.daemon, /^notification not delivered/);
    assert.equal(warned.length, 1, JSON.stringify(warned));
    assert.equal(warned[0]!.endpoint, `http://127.0.0.1:${receiver.port}/…`);
    assert.equal(warned[0]!.deployment, r.done.deployId);
    assert.match(String(warned[0]!.error), /HTTP 500 "internal_error" \(after 3 attempts\)/);
    assert.ok(!svc.daemon.stdout().includes(SECRET), 'the webhook URL is not in the daemon log');
  });

  it('a receiver that never answers does not slow the deploy, nor the daemon stop', async (t) => {
    const receiver = await startBackend(t, 'slack', () => {
      // never answers
    });
    const svc = await Service.create(t, {
      extra: ['notify:', '  slack: { webhook: $BATON_TEST_SLACK_URL }', '  timeout: 1s'],
    });
    await svc.start({ BATON_TEST_SLACK_URL: `http://127.0.0.1:${receiver.port}/services/${SECRET}` });
    const t0 = Date.now();
    await svc.deployApi('1.0.0');
    const first = Date.now() - t0;
    const t1 = Date.now();
    const r = await svc.deploy('1.0.1');
    const second = Date.now() - t1;
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.done?.result, 'succeeded');
    assert.ok(first < 4000 && second < 4000, `deploys took ${first}ms and ${second}ms`);
    assert.ok(receiver.seen.length >= 1, 'the receiver was called');

    // SIGTERM: queued notifications get a short grace, not their retries.
    const t2 = Date.now();
    svc.daemon.child.kill('SIGTERM');
    const exit = await svc.daemon.exited;
    assert.equal(exit.code, 0, svc.daemon.stderr());
    assert.ok(Date.now() - t2 < 6000, `the daemon took ${Date.now() - t2}ms to stop`);
    assert.ok(!svc.daemon.stdout().includes(SECRET));
  });
});

describe('notification messages', () => {
  const d: DeploymentState = {
    id: 'abc123',
    version: '1.0.1',
    previousVersion: '1.0.0',
    strategy: 'blue-green',
    actor: 'alice',
    startedAt: '2026-01-01T00:00:00.000Z',
    rollback: false,
    step: 'starting',
    detail: '',
    started: [],
  };
  const event = (e: Partial<ProgressEvent>): ProgressEvent => ({
    time: '2026-01-01T00:00:01.000Z',
    deployId: 'abc123',
    kind: 'info',
    message: 'm',
    elapsedMs: 1000,
    ...e,
  });

  it('maps progress events: start, step, a canary pause, the result; never info', () => {
    const kinds = [
      event({ kind: 'start' }),
      event({ kind: 'step', step: 'switching' }),
      event({ kind: 'step', step: 'paused' }),
      event({ kind: 'info' }),
      event({ kind: 'done', result: 'failed' }),
      event({ kind: 'done', result: 'rolled-back' }),
      event({ kind: 'done', result: 'succeeded' }),
    ].map((e) => notificationOf(e, d, 'web')?.event ?? null);
    assert.deepEqual(kinds, ['started', 'step', 'paused', null, 'failed', 'rolled-back', 'succeeded']);
  });

  it("keeps within Slack's limits and escapes mrkdwn", () => {
    const n = notificationOf(
      event({
        kind: 'done',
        result: 'failed',
        entry: {
          id: 'abc123',
          version: '1.0.1',
          previousVersion: '1.0.0',
          strategy: 'blue-green',
          actor: 'alice <ops@example.com>',
          rollback: false,
          startedAt: d.startedAt,
          endedAt: '2026-01-01T00:00:01.000Z',
          durationMs: 1000,
          result: 'failed',
          reason: 'x'.repeat(10_000),
        },
      }),
      { ...d, actor: 'alice <ops@example.com>' },
      'web',
    )!;
    const m = slackMessage(n, { environment: 'e'.repeat(200) }) as SlackMessage;
    assert.ok(header(m).length <= 150);
    const reason = m.blocks.find((b) => b.text?.text.startsWith('*Reason*'))!.text!.text;
    assert.ok(reason.length <= 3000 && reason.endsWith('…```'), reason.slice(-10));
    assert.equal(fields(m).Actor, 'alice &lt;ops@example.com&gt;');
    assert.equal(fields(m).Result, 'failed');
  });
});

describe('notify config', () => {
  const base = 'service: web\nlisten: 127.0.0.1:8080\napp:\n  command: node app.js --port {port}\n';
  const parse = (text: string) => parseConfigText(base + text, '/srv/web/baton.yaml');
  const refused = (text: string): string => refusedConfig(base + text);

  it('has defaults: every event but step, 5s per attempt', () => {
    const c = parse('notify:\n  slack: { webhook: $SLACK_WEBHOOK_URL, environment: production }\n');
    assert.deepEqual(c.notify, {
      slack: { webhook: '$SLACK_WEBHOOK_URL', environment: 'production' },
      events: ['started', 'paused', 'succeeded', 'failed', 'rolled-back'],
      timeout: 5000,
    });
    assert.deepEqual(parse('').notify.events, ['started', 'paused', 'succeeded', 'failed', 'rolled-back']);
  });

  it('says what is wrong, and where', () => {
    assert.match(
      refused('notify:\n  slack: { environment: prod }\n'),
      /baton\.yaml:6:10 notify\.slack\.webhook: give the URL/,
    );
    assert.match(
      refused('notify:\n  slack: { webhook: "hooks.slack.com/x" }\n'),
      /notify\.slack\.webhook: an http\(s\) URL, or \$NAME/,
    );
    assert.match(
      refused('notify:\n  slack: { webhook: $A, webhookEnv: A }\n'),
      /notify\.slack\.webhookEnv: give webhook or webhookEnv, not both/,
    );
    assert.match(
      refused('notify:\n  slack: { webhookEnv: "not a name" }\n'),
      /notify\.slack\.webhookEnv: an environment variable name/,
    );
    assert.match(
      refused('notify:\n  events: [started, done]\n'),
      /baton\.yaml:6:21 notify\.events\[1\]: must be one of: "started", "step", "paused"/,
    );
    assert.match(
      refused('notify:\n  slak: {}\n'),
      /notify\.slak: unknown key "slak"; did you mean "slack"\?/,
    );
    assert.match(
      refused(
        'notify:\n  webhook: { url: "https://example.com/x", headers: { Content-Type: text/plain } }\n',
      ),
      /notify\.webhook\.headers\.Content-Type: Baton sets this header itself/,
    );
  });
});
