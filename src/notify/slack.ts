// A deploy event as a Slack incoming-webhook message (Block Kit): a header, the fields (service,
// environment, old -> new version, strategy, actor, duration, result), the failure reason, and
// a link to the dashboard. `text` is the fallback Slack shows in notifications.
import { formatDuration } from '../config/units.js';
import { proofLines } from '../api/proof.js';
import type { Notification } from './event.js';
import type { NotifyEventType } from '../config/schema.js';

export interface SlackOptions {
  readonly environment?: string | undefined;
  readonly dashboardUrl?: string | undefined;
}

const EMOJI: Record<NotifyEventType, string> = {
  started: ':rocket:',
  step: ':arrow_forward:',
  paused: ':double_vertical_bar:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  'rolled-back': ':leftwards_arrow_with_hook:',
};

/** Slack's limits: header text 150 characters, a field 2000, a section's text 3000. */
const LIMIT = { header: 150, field: 2000, text: 3000 };

export function slackMessage(n: Notification, o: SlackOptions = {}): object {
  const d = n.deployment;
  const title = `${n.service} ${d.version}: ${headline(n)}`;
  const env = o.environment ? ` [${o.environment}]` : '';
  const fields: [string, string][] = [
    ['Service', n.service],
    ...(o.environment ? ([['Environment', o.environment]] as [string, string][]) : []),
    [
      'Version',
      `${d.previousVersion ?? '(none)'} → ${d.version}${d.previousVersion ? '' : ' (first deploy)'}`,
    ],
    ['Strategy', `${d.strategy}${d.rollback ? ' (rollback)' : ''}${d.forced ? ' (forced)' : ''}`],
    ['Actor', d.actor],
  ];
  if (n.durationMs !== undefined) fields.push(['Duration', formatDuration(n.durationMs)]);
  if (isResult(n.event)) fields.push(['Result', n.event]);
  else if (n.event === 'step' && n.step) fields.push(['Step', n.step]);
  const blocks: object[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: clip(`${EMOJI[n.event]} ${title}${env}`, LIMIT.header),
        emoji: true,
      },
    },
    {
      type: 'section',
      fields: fields.map(([k, v]) => ({ type: 'mrkdwn', text: clip(`*${k}*\n${escape(v)}`, LIMIT.field) })),
    },
  ];
  if (n.reason) {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: clip(`*Reason*\n\`\`\`${escape(n.reason)}\`\`\``, LIMIT.text, '…```') },
    });
  } else if (!isResult(n.event) && n.event !== 'started') {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(escape(n.message), LIMIT.text) } });
  }
  if (n.proof) {
    const lines = proofLines(
      { ...n.proof, series: { intervalMs: 0, samples: [] }, marks: [] },
      d.rollback ? 'rollback' : 'deploy',
    );
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: clip(`*Proof*\n${escape(lines.join('\n'))}`, LIMIT.text) },
    });
  }
  const context = [
    `deploy \`${d.id}\``,
    `<!date^${Math.floor(Date.parse(n.time) / 1000)}^{date_short_pretty} {time_secs}|${n.time}>`,
  ];
  if (o.dashboardUrl) context.push(`<${escape(o.dashboardUrl).replace(/\|/g, '%7C')}|Open the dashboard>`);
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: context.join('  ·  ') }] });
  return { text: `${EMOJI[n.event]} ${title}${env}`, blocks };
}

function headline(n: Notification): string {
  switch (n.event) {
    case 'started':
      return n.deployment.rollback ? 'rollback started' : 'deploy started';
    case 'step':
      return n.step ?? 'step';
    case 'paused':
      return 'deploy paused';
    case 'succeeded':
      return n.deployment.rollback ? 'rolled back (live)' : 'deployed';
    case 'failed':
      return 'deploy failed';
    case 'rolled-back':
      return 'deploy rolled back';
  }
}

function isResult(e: NotifyEventType): boolean {
  return e === 'succeeded' || e === 'failed' || e === 'rolled-back';
}

/** mrkdwn control characters (Slack's own escaping rules). */
function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(s: string, max: number, tail = '…'): string {
  return s.length <= max ? s : s.slice(0, max - tail.length) + tail;
}
