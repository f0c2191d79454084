// The `notify:` section of baton.yaml: a Slack incoming webhook and/or a generic JSON webhook,
// and which deploy events go to them. URLs are secrets: they may come from environment variables
// ($NAME, ${NAME}, or webhookEnv/urlEnv: NAME) and are never logged whole. src/notify/ sends them.
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { durationRangeProblem, parseDuration } from '../units.js';
import { ENV_NAME, isEnvRef, placeholdersFilled } from '../env-refs.js';
import { durationJson, editorSchemas } from './values.js';

export const NOTIFY_EVENTS = ['started', 'step', 'paused', 'succeeded', 'failed', 'rolled-back'] as const;
export type NotifyEventType = (typeof NOTIFY_EVENTS)[number];

/** An http(s) URL, or a reference to an environment variable that holds one. */
const secretUrl = z.string().refine(
  (v) => {
    if (isEnvRef(v)) return true;
    try {
      const u = new URL(placeholdersFilled(v));
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  },
  { message: 'an http(s) URL, or $NAME to read it from the environment variable NAME' },
);

const httpUrl = z.string().refine(
  (v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  },
  { message: 'an http(s) URL, e.g. https://grafana.example.com/d/web' },
);

const envName = z
  .string()
  .regex(ENV_NAME, { message: 'an environment variable name, e.g. SLACK_WEBHOOK_URL' });

/** Extra request headers (checked here: a record's key schema would lose the message). */
const headers = z.record(z.string(), z.string()).superRefine((h, ctx) => {
  for (const name of Object.keys(h)) {
    const message = !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)
      ? 'not an HTTP header name'
      : ['content-type', 'content-length', 'host'].includes(name.toLowerCase())
        ? 'Baton sets this header itself'
        : null;
    if (message) ctx.addIssue({ code: 'custom', path: [name], message });
  }
});

const timeout = z.union([z.string(), z.number()]).transform((v, ctx): number => {
  const ms = typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a timeout: write a duration above 0, e.g. 5s` });
    return z.NEVER;
  }
  const range = durationRangeProblem(String(v), ms);
  if (range !== undefined) {
    ctx.addIssue({ code: 'custom', message: range });
    return z.NEVER;
  }
  return ms;
});
editorSchemas.add(timeout, { jsonSchema: durationJson(1) });

/** Exactly one of the two ways to give a URL. */
function oneUrl(a: string, b: string, example: string) {
  return (o: Record<string, unknown>, ctx: z.RefinementCtx<unknown>): void => {
    if ((o[a] === undefined) === (o[b] === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [o[a] === undefined ? a : b],
        message:
          o[a] === undefined
            ? `give the URL: ${a}: ${example} (or ${b}: NAME of the environment variable holding it)`
            : `give ${a} or ${b}, not both`,
      });
    }
  };
}

export const slackSchema = z
  .strictObject({
    webhook: secretUrl
      .optional()
      .describe(
        'The Slack incoming-webhook URL, or $SLACK_WEBHOOK_URL to read it from that environment variable.',
      ),
    webhookEnv: envName
      .optional()
      .describe(
        'The name of the environment variable holding the incoming-webhook URL (instead of webhook).',
      ),
    environment: z.string().min(1).max(100).optional().describe('Shown in every message, e.g. production.'),
    dashboardUrl: httpUrl
      .optional()
      .describe('A link in every message, e.g. https://grafana.example.com/d/web.'),
  })
  .superRefine(oneUrl('webhook', 'webhookEnv', '$SLACK_WEBHOOK_URL'));

export const webhookSchema = z
  .strictObject({
    url: secretUrl
      .optional()
      .describe(
        'Receives every event as a JSON POST: an http(s) URL, or $NAME to read it from an environment variable.',
      ),
    urlEnv: envName
      .optional()
      .describe('The name of the environment variable holding the URL (instead of url).'),
    headers: headers
      .prefault({})
      .describe('Extra request headers; values may use ${NAME} for secrets from the environment.'),
  })
  .superRefine(oneUrl('url', 'urlEnv', '$DEPLOY_WEBHOOK_URL'));

export const notifySchema = z.strictObject({
  slack: slackSchema.optional().describe('A Slack incoming webhook: give webhook or webhookEnv.'),
  webhook: webhookSchema.optional().describe('A generic JSON webhook: give url or urlEnv.'),
  events: z
    .array(z.enum(NOTIFY_EVENTS))
    .min(1, { message: `name at least one of: ${NOTIFY_EVENTS.join(', ')}` })
    .prefault([...DEFAULTS.notify.events])
    .describe(`Which deploy events are sent, of: ${NOTIFY_EVENTS.join(', ')}.`),
  timeout: timeout
    .prefault(DEFAULTS.notify.timeout)
    .describe('How long one delivery attempt may take (three attempts in all).'),
});

export type SlackConfig = z.output<typeof slackSchema>;
export type WebhookConfig = z.output<typeof webhookSchema>;
export type NotifyConfig = z.output<typeof notifySchema>;
