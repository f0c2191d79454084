// Deploy notifications as a controller extension: each progress event that `notify.events`
// names goes, in the background, to the Slack incoming webhook and/or the generic JSON webhook.
// Delivery never blocks or fails a deploy: each endpoint has its own queue (so messages arrive
// in order), bounded retries, and an endpoint that is down or slow is logged once per deploy.
// URLs are secrets: logs show only their scheme and host.
import type { BatonConfig } from '../config/schema.js';
import type { DeployExtension, ProgressEvent } from '../controller/events.js';
import type { DeploymentState } from '../controller/state.js';
import type { Logger } from '../log.js';
import { DeliveryError, postJson } from './deliver.js';
import { expandEnv, maskUrl } from '../config/env-refs.js';
import { notificationOf, type Notification } from './event.js';
import type { NotifyConfig, NotifyEventType } from '../config/schema.js';
import { slackMessage } from './slack.js';

/** Notifications waiting per endpoint beyond which new ones are dropped (an endpoint that hangs). */
const MAX_QUEUED = 50;

interface Endpoint {
  readonly name: 'slack' | 'webhook';
  readonly url: string;
  /** What logs may show of the URL. */
  readonly shown: string;
  readonly headers: Record<string, string>;
  readonly body: (n: Notification) => unknown;
  tail: Promise<void>;
  queued: number;
  /** Deploys whose failed delivery to this endpoint was already logged. */
  readonly reported: Set<string>;
}

interface Setup {
  readonly config: BatonConfig;
  readonly events: ReadonlySet<NotifyEventType>;
  readonly timeoutMs: number;
  readonly endpoints: readonly Endpoint[];
}

export class Notifier implements DeployExtension {
  private setup: Setup | null = null;
  private readonly stopping = new AbortController();

  /** `config` is read at every event, so a SIGHUP reload applies from the next one. */
  constructor(
    private readonly config: () => BatonConfig,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.current(); // a missing environment variable is reported at start-up, not at the first deploy
  }

  onEvent(e: ProgressEvent, d: DeploymentState): void {
    const setup = this.current();
    if (!setup.endpoints.length || this.stopping.signal.aborted) return;
    const n = notificationOf(e, d, setup.config.service);
    if (!n || !setup.events.has(n.event)) return;
    for (const ep of setup.endpoints) this.enqueue(ep, n, setup.timeoutMs);
  }

  /** Daemon shutdown: waits up to `graceMs` for queued notifications, then abandons the rest. */
  async close(graceMs = 2000): Promise<void> {
    const tails = Promise.all((this.setup?.endpoints ?? []).map((ep) => ep.tail));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([tails, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.stopping.abort();
    await tails;
  }

  private enqueue(ep: Endpoint, n: Notification, timeoutMs: number): void {
    if (ep.queued >= MAX_QUEUED) {
      this.failed(ep, n, `${MAX_QUEUED} notifications already waiting for this endpoint; dropped`);
      return;
    }
    ep.queued++;
    ep.tail = ep.tail.then(async () => {
      try {
        await postJson(ep.url, ep.body(n), {
          headers: ep.headers,
          timeoutMs,
          signal: this.stopping.signal,
          onRetry: (attempt, why) =>
            this.log.debug(
              { notify: ep.name, endpoint: ep.shown, event: n.event, attempt, error: this.hide(ep, why) },
              'notification attempt failed; retrying',
            ),
        });
        this.log.debug({ notify: ep.name, endpoint: ep.shown, event: n.event }, 'notification sent');
      } catch (err) {
        this.failed(ep, n, err instanceof DeliveryError ? err.message : String(err));
      } finally {
        ep.queued--;
      }
    });
  }

  /** Logged once per deploy and endpoint: a down endpoint does not flood the log. */
  private failed(ep: Endpoint, n: Notification, why: string): void {
    const id = n.deployment.id;
    if (ep.reported.has(id)) return;
    if (ep.reported.size > 100) ep.reported.clear();
    ep.reported.add(id);
    this.log.warn(
      { notify: ep.name, endpoint: ep.shown, deployment: id, event: n.event, error: this.hide(ep, why) },
      'notification not delivered (the deploy is not affected); further failures for this deploy are not logged',
    );
  }

  private hide(ep: Endpoint, text: string): string {
    return text.split(ep.url).join(ep.shown);
  }

  private current(): Setup {
    const config = this.config();
    if (this.setup?.config === config) return this.setup;
    const notify: NotifyConfig = config.notify;
    const endpoints: Endpoint[] = [];
    if (notify.slack) {
      const s = notify.slack;
      const url = this.resolve('notify.slack', s.webhook ?? `$${s.webhookEnv}`);
      // The --env name when the message does not name an environment itself.
      const options = {
        environment: s.environment ?? config.environment ?? undefined,
        dashboardUrl: s.dashboardUrl,
      };
      if (url) endpoints.push(endpoint('slack', url, {}, (n) => slackMessage(n, options)));
    }
    if (notify.webhook) {
      const w = notify.webhook;
      const url = this.resolve('notify.webhook', w.url ?? `$${w.urlEnv}`);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(w.headers)) {
        const h = expandEnv(v, this.env);
        if (h.missing.length)
          this.log.warn(
            { header: k, missing: h.missing },
            'notify.webhook: a header refers to an unset environment variable',
          );
        headers[k] = h.value;
      }
      if (url) endpoints.push(endpoint('webhook', url, headers, (n) => n));
    }
    // The same endpoint as before a reload keeps its queue, so its messages stay in order.
    for (const [i, ep] of endpoints.entries()) {
      const old = this.setup?.endpoints.find((o) => o.name === ep.name && o.url === ep.url);
      if (old) endpoints[i] = Object.assign(old, { headers: ep.headers, body: ep.body });
    }
    if (endpoints.length) {
      this.log.info(
        { notify: endpoints.map((ep) => `${ep.name} ${ep.shown}`), events: notify.events },
        'deploy notifications on',
      );
    }
    this.setup = {
      config,
      events: new Set(notify.events),
      timeoutMs: notify.timeout,
      endpoints,
    };
    return this.setup;
  }

  /** The URL from the config or the environment; null (and logged) when it is unusable. */
  private resolve(where: string, value: string): string | null {
    const { value: url, missing } = expandEnv(value, this.env);
    if (missing.length) {
      this.log.error(
        { missing },
        `${where}: environment variable ${missing.join(', ')} is not set in the daemon's environment; these notifications are off`,
      );
      return null;
    }
    try {
      const u = new URL(url);
      if (u.protocol === 'https:' || u.protocol === 'http:') return url;
    } catch {
      // reported below
    }
    this.log.error(
      `${where}: the URL from the environment is not an http(s) URL; these notifications are off`,
    );
    return null;
  }
}

function endpoint(
  name: Endpoint['name'],
  url: string,
  headers: Record<string, string>,
  body: (n: Notification) => unknown,
): Endpoint {
  return {
    name,
    url,
    shown: maskUrl(url),
    headers,
    body,
    tail: Promise.resolve(),
    queued: 0,
    reported: new Set(),
  };
}
