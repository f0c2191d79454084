// `baton status` and `baton history`: what runs now, and what was deployed when, by whom.
// `baton status --watch` asks again every --interval until Ctrl-C or until stdout closes.
import { repeatUntilStopped } from '../repeat.js';
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { HistoryAnswer } from '../../api/deploy.js';
import type { FreezeView } from '../../api/freeze.js';
import { historyPath, PATHS } from '../../api/paths.js';
import type { CanaryView, StatusView, VerdictView } from '../../api/status.js';
import { durationRangeProblem, parseDuration } from '../../config/units.js';
import { BatonError, isBatonError } from '../../errors.js';
import { oneLine } from '../../util/text.js';
import { printJson, readConfig, withConfig } from '../options.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** The REASON column of `baton history`: one line, shortened (`--logs` prints it whole). */
const REASON_WIDTH = 100;

/** Verdicts printed in full; `--json` has them all. */
const VERDICTS_SHOWN = 5;

/** A canary in progress: both sides, the step, the analysis, what comes next. */
function canaryLines(c: CanaryView): string {
  const rules = c.rules.length ? ` (and requests matching its ${c.rules.length} rule(s))` : '';
  let out = `stable   ${c.stable.version} ${c.stable.percent}%\ncanary   ${c.canary.version} ${c.canary.percent}%${rules}\n`;
  if (c.step)
    out += `step     ${c.step.index}/${c.step.total}${c.paused ? ' (held by `baton pause`)' : ''}\n`;
  if (!c.verdicts.length) out += 'analysis no verdict (none configured, or its first interval not over)\n';
  else {
    const count = (r: VerdictView['result']): number => c.verdicts.filter((v) => v.result === r).length;
    const earlier = c.verdicts.length - VERDICTS_SHOWN;
    out += `analysis ${c.verdicts.length} verdict(s): ${count('pass')} pass, ${count('fail')} fail, ${count('inconclusive')} inconclusive${earlier > 0 ? ` (the last ${VERDICTS_SHOWN}; --json has all)` : ''}\n`;
    for (const v of c.verdicts.slice(-VERDICTS_SHOWN)) out += `verdict  ${v.at} ${v.result}: ${v.reason}\n`;
  }
  return `${out}next     ${c.next}\n`;
}

interface StatusOpts {
  config: string;
  env?: string;
  json?: boolean;
  watch?: boolean;
  interval: string;
}

const WATCH_INTERVAL_DEFAULT = '2s';
/** Faster than this, --watch would mostly load the daemon. */
const WATCH_INTERVAL_MIN_MS = 100;

function watchInterval(text: string): number {
  const ms = parseDuration(text);
  const problem =
    ms === undefined
      ? `"${text}" is not a duration`
      : ms < WATCH_INTERVAL_MIN_MS
        ? `"${text}" is shorter than ${WATCH_INTERVAL_MIN_MS}ms`
        : durationRangeProblem(text, ms, 1);
  if (problem !== undefined || ms === undefined) {
    throw new BatonError('BATON_E_USAGE', `--interval: ${problem}; write e.g. --interval 2s`);
  }
  return ms;
}

/**
 * Redraws the status every `intervalMs` on a terminal; elsewhere (a pipe, a CI log) one block
 * per interval, a blank line between, or with --json one JSON line each. A daemon that does not
 * answer is a line of its own, and the watch goes on (it may be restarting). Ends with exit 0 on
 * SIGINT, or when stdout closes (EPIPE: `| head`).
 */
async function watchStatus(client: AdminClient, json: boolean, intervalMs: number): Promise<void> {
  const tty = process.stdout.isTTY === true && !json;
  await repeatUntilStopped(intervalMs, async (first, stopped) => {
    let text: string;
    try {
      text = await statusText(client, json, true);
    } catch (err) {
      if (!isBatonError(err)) throw err;
      text = json ? `${JSON.stringify({ error: err.toJSON() })}\n` : `baton: ${err.message}\n`;
    }
    if (stopped()) return;
    const header = `every ${formatInterval(intervalMs)}: baton status, ${new Date().toISOString()}\n\n`;
    // \x1b[H\x1b[2J: cursor home, clear the screen.
    if (tty) process.stdout.write(`\x1b[H\x1b[2J${header}${text}`);
    else process.stdout.write(json ? text : `${first ? '' : '\n'}${header}${text}`);
  });
}

function formatInterval(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** What `baton status` prints (`--json`: the view; `watching`, on one line). */
async function statusText(client: AdminClient, json: boolean, watching = false): Promise<string> {
  const [s, gate] = await Promise.all([
    client.call<StatusView>('GET', PATHS.status),
    // The freeze and the deploy windows (none from an older daemon).
    client.call<FreezeView>('GET', PATHS.freeze).catch(() => null),
  ]);
  if (json) {
    const view = gate ? { ...s, freeze: gate.freeze, window: gate.window } : s;
    return `${JSON.stringify(view, null, watching ? undefined : 2)}\n`;
  }
  const canary = s.deployment?.canary;
  // During a canary the stable version is live; it says until when.
  const until =
    canary && canary.stable.percent > 0 && s.live?.version === canary.stable.version
      ? ` (stable until ${canary.canary.version} is promoted)`
      : '';
  let out = `service  ${s.service}\nlive     ${s.live ? s.live.version + until : '(nothing deployed yet: baton deploy --version V)'}\n`;
  if (s.standby)
    out += `standby  ${s.standby.version} (kept until ${s.standby.stopAt} for instant rollback)\n`;
  if (s.deployment) {
    const d = s.deployment;
    out += `deploy   ${d.version} (${d.strategy}) by ${d.actor}: ${d.step}, ${(d.elapsedMs / 1000).toFixed(1)}s, ${d.detail}\n`;
    if (d.canary) out += canaryLines(d.canary);
  }
  if (s.lastRecovery) out += `recovery ${s.lastRecovery}\n`;
  for (const o of s.orphans ?? []) {
    out += `orphan   ${o.id} on ${o.host}:${o.port} (pid ${o.pid}): could not be stopped, its host out of reach; stopped once it answers\n`;
  }
  const f = gate?.freeze;
  if (f) out += `frozen   by ${f.actor} since ${f.since}: "${f.reason}" (\`baton unfreeze\` lifts it)\n`;
  const w = gate?.window;
  if (w && !w.open) out += `window   closed: ${w.reason}; the next allowed time is ${w.nextOpenLocal}\n`;
  if (s.live?.instances.length) {
    const rows = [['INSTANCE', 'ADDRESS', 'PID', 'HEALTH', 'IN-FLIGHT', 'REQUESTS', 'CLIENT-ABORTS']];
    for (const i of s.live.instances) {
      const health = !i.alive ? 'exited' : i.crashLoop ? `${i.health} (crash loop)` : i.health;
      rows.push([
        i.id,
        `${i.host ?? '127.0.0.1'}:${i.port}`,
        String(i.pid),
        health,
        String(i.inflight),
        String(i.requests ?? '-'),
        String(i.clientAborts ?? '-'),
      ]);
    }
    out += `\n${table(rows)}`;
  }
  return out;
}

export function registerStatus(program: Command): void {
  withConfig(program.command('status'))
    .description(
      'the live version, its instances, and the deploy in progress (a canary: both sides with their shares, its step, every verdict, what comes next)',
    )
    .option('--json', 'print JSON')
    .option(
      '-w, --watch',
      'redraw every --interval until Ctrl-C (without a terminal: one block per interval, a blank line between; with --json: one JSON line each)',
    )
    .option('--interval <duration>', 'how often --watch asks the daemon', WATCH_INTERVAL_DEFAULT)
    .action(async (opts: StatusOpts) => {
      const client = AdminClient.fromConfig(readConfig(opts));
      if (opts.watch) return watchStatus(client, opts.json ?? false, watchInterval(opts.interval));
      process.stdout.write(await statusText(client, opts.json ?? false));
    });

  withConfig(program.command('history'))
    .description(
      'past deploys: version, strategy, who, when, how long, failed of all requests meanwhile (its proof), result and why, a line each',
    )
    .option('--limit <n>', 'how many', '20')
    .option('--logs', "print each failed deploy's whole reason too, with its log or output lines")
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean; limit: string; logs?: boolean }) => {
      const r = await AdminClient.fromConfig(readConfig(opts)).call<HistoryAnswer>(
        'GET',
        historyPath(opts.limit),
      );
      if (opts.json) return printJson(r);
      if (!r.history.length) return void process.stdout.write('no deploys yet\n');
      const rows = [
        ['ID', 'VERSION', 'FROM', 'STRATEGY', 'RESULT', 'WHO', 'STARTED', 'TOOK', 'FAILED', 'REASON'],
      ];
      for (const h of r.history) {
        rows.push([
          h.id,
          h.version,
          h.previousVersion ?? '-',
          h.rollback ? `${h.strategy} (rollback)` : h.strategy,
          h.forced ? `${h.result} (forced)` : h.result,
          h.actor,
          h.startedAt,
          `${(h.durationMs / 1000).toFixed(1)}s`,
          // Its proof: failed of all requests the edge saw meanwhile (`?`: the edge cannot count).
          !h.proof ? '-' : h.proof.requests === null ? '?' : `${h.proof.failed ?? '?'}/${h.proof.requests}`,
          h.reason ? oneLine(h.reason, REASON_WIDTH) : '-',
        ]);
      }
      process.stdout.write(table(rows));
      const failed = r.history.filter((h) => h.reason);
      if (opts.logs) for (const h of failed) process.stdout.write(`\n${h.id}: ${h.reason}\n`);
      else if (failed.some((h) => h.reason!.includes('\n'))) {
        process.stdout.write('\n(`baton history --logs`: the reasons whole, with their log lines)\n');
      }
    });
}
