// `baton logs`: the last lines of instances' logs, read where each instance runs (this machine,
// or its host over SSH), through the daemon, which knows where every instance is. `-f` asks
// again every second and prints the lines that are new per instance (see newLines). `--since`:
// the lines carry no time of their own (the app writes them as they are), so the daemon answers
// from its log index (src/controller/log-index.ts): the lines written since then, and up to a
// second before, never fewer.
import { repeatUntilStopped } from '../repeat.js';
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import { SINCE_HELP, sinceTime, type InstanceLog, type LogsAnswer } from '../../api/logs.js';
import { logsPath } from '../../api/paths.js';
import { BatonError, isBatonError } from '../../errors.js';
import { printJson, readConfig, withConfig } from '../options.js';

interface Opts {
  config: string;
  env?: string;
  lines?: string;
  json?: boolean;
  follow?: boolean;
  since?: string;
}

/** Lines per instance without -n: the last 50, or with --since all of them up to the most the daemon sends. */
const DEFAULT_LINES = 50;
const MAX_LINES = 10_000;

/** How often `logs -f` asks the daemon. */
const FOLLOW_POLL_MS = 1000;
/**
 * The lines per instance `logs -f` compares between two polls: more new lines than this in one
 * poll, and the oldest of them are not printed (a line says so).
 */
const FOLLOW_WINDOW = 1000;

/**
 * The lines of `next` (a log's tail now) that come after `prev` (its tail one poll ago): where
 * the longest end of `prev` starts `next`. The last line of `prev` may have been half-written:
 * it may have grown since (it is printed again, whole). `gap`: no overlap at all although
 * `prev` had lines (more new lines than the window, or the file was rotated or truncated).
 * A log whose every line of the window is the same line cannot be told apart: this under-prints
 * then, never duplicates.
 */
export function newLines(
  prev: readonly string[],
  next: readonly string[],
): { lines: string[]; gap: boolean } {
  for (let s = 0; s < prev.length; s++) {
    const n = prev.length - s;
    if (n > next.length) continue;
    let i = 0;
    while (i < n - 1 && prev[s + i] === next[i]) i++;
    if (i < n - 1) continue;
    const last = prev[s + i]!;
    const now = next[i]!;
    if (now === last) return { lines: next.slice(n), gap: false };
    if (now.startsWith(last)) return { lines: next.slice(n - 1), gap: false };
  }
  return { lines: [...next], gap: prev.length > 0 };
}

function linesOf(l: InstanceLog): string[] {
  const text = l.text.trimEnd();
  return text === '' ? [] : text.split('\n');
}

function header(l: InstanceLog): string {
  return `==> ${l.id} (${l.host}:${l.port}, ${l.logFile}) <==`;
}

/** With --since, when more lines were written since then than asked for. */
function cutNote(lines: number, since: string): string {
  return `more than ${lines} lines since ${since}: the earlier ones are left out (-n ${MAX_LINES} shows the most)`;
}

/**
 * `logs -f`: the last `lines` lines, then every new line until SIGINT or until stdout closes
 * (exit 0). An instance that appears (a deploy) is printed from its first line; one that goes
 * is dropped. With --json, one JSON object per line: { id, version, host, port, line }.
 */
async function followLogs(
  client: AdminClient,
  select: string | undefined,
  lines: number,
  json: boolean,
  since: string | undefined,
): Promise<void> {
  // Asked with `since` as long as fewer lines than the window were written since then, so that
  // each answer starts where the one before did (see newLines); then as a plain tail.
  let asking = since;
  const seen = new Map<string, { lines: string[]; error?: string }>();
  let lastShown: string | null = null;
  let lastProblem: string | null = null;
  const print = (l: InstanceLog, out: string[], note?: string): void => {
    if (!out.length && note === undefined) return;
    if (json) {
      const base = { id: l.id, version: l.version, host: l.host, port: l.port };
      let text = note !== undefined ? `${JSON.stringify({ ...base, note })}\n` : '';
      for (const line of out) text += `${JSON.stringify({ ...base, line })}\n`;
      process.stdout.write(text);
      return;
    }
    const head = lastShown === l.id ? '' : `${lastShown === null ? '' : '\n'}${header(l)}\n`;
    lastShown = l.id;
    process.stdout.write(
      `${head}${note !== undefined ? `(${note})\n` : ''}${out.map((x) => `${x}\n`).join('')}`,
    );
  };
  await repeatUntilStopped(FOLLOW_POLL_MS, async (first, stopped) => {
    let r: LogsAnswer | null = null;
    try {
      r = await client.call<LogsAnswer>('GET', logsPath(Math.max(FOLLOW_WINDOW, lines), select, asking));
      lastProblem = null;
    } catch (err) {
      // A wrong selection is an error at the start; later, the instances may just be between
      // two releases, or the daemon restarting: say so once, and go on asking.
      if (first || !isBatonError(err)) throw err;
      if (err.message !== lastProblem) process.stderr.write(`baton: ${err.message} (still following)\n`);
      lastProblem = err.message;
    }
    if (stopped()) return;
    // No answer this time: what was seen stays, so nothing is printed twice once it answers.
    const now = new Set<string>(r ? [] : seen.keys());
    for (const l of r?.logs ?? []) {
      now.add(l.id);
      const before = seen.get(l.id);
      if (l.error !== undefined) {
        if (before?.error !== l.error) print(l, [], `cannot read it: ${l.error}`);
        seen.set(l.id, { lines: before?.lines ?? [], error: l.error });
        continue;
      }
      const next = linesOf(l);
      const note = first && l.cut && since !== undefined ? cutNote(lines, since) : undefined;
      if (!before) print(l, first ? next.slice(-lines) : next, first && !next.length ? 'empty' : note);
      else {
        const d = newLines(before.lines, next);
        print(
          l,
          d.lines,
          d.gap
            ? 'lines may be missing here: the log grew by more than the window, or was rotated'
            : undefined,
        );
      }
      seen.set(l.id, { lines: next });
    }
    for (const id of seen.keys()) if (!now.has(id)) seen.delete(id);
    if (r && r.logs.every((l) => l.cut === true)) asking = undefined;
  });
}

export function registerLogs(program: Command): void {
  withConfig(program.command('logs'))
    .description(
      "the last lines of the live instances' logs, or of those [select] names: an instance id, a version or a host's address",
    )
    .argument('[select]', 'an instance id, a version, or a host address')
    .option(
      '-n, --lines <n>',
      `lines per instance (default ${DEFAULT_LINES}; with --since, up to ${MAX_LINES})`,
    )
    .option(
      '--since <when>',
      'only lines written since then: a duration back from now (10m, 1h30m) or a time (2026-12-03T10:00:00Z); up to a second earlier ones may show',
    )
    .option('--json', 'print JSON')
    .option(
      '-f, --follow',
      'then print new lines as they come (asks every second; a new instance from its first line) until Ctrl-C',
    )
    .action(async (select: string | undefined, opts: Opts) => {
      const lines = Number(opts.lines ?? (opts.since !== undefined ? MAX_LINES : DEFAULT_LINES));
      if (!Number.isInteger(lines) || lines < 1 || lines > MAX_LINES) {
        throw new BatonError(
          'BATON_E_USAGE',
          `--lines must be a whole number from 1 to ${MAX_LINES}, not ${opts.lines}`,
        );
      }
      const since = opts.since;
      if (since !== undefined && sinceTime(since, Date.now()) === undefined) {
        throw new BatonError('BATON_E_USAGE', `--since must be ${SINCE_HELP}, not "${since}"`);
      }
      const client = AdminClient.fromConfig(readConfig(opts));
      if (opts.follow) return followLogs(client, select, lines, opts.json ?? false, since);
      const r = await client.call<LogsAnswer>('GET', logsPath(lines, select, since));
      if (opts.json) return printJson(r);
      const out: string[] = [];
      for (const l of r.logs) {
        out.push(header(l));
        if (l.error !== undefined) out.push(`(cannot read it: ${l.error})`);
        else {
          if (l.cut && since !== undefined) out.push(`(${cutNote(lines, since)})`);
          if (l.text.trim() !== '') out.push(l.text.trimEnd());
          else out.push(since !== undefined ? `(nothing since ${since})` : '(empty)');
        }
        out.push('');
      }
      process.stdout.write(out.join('\n'));
      const unread = r.logs.filter((l) => l.error !== undefined);
      if (unread.length === r.logs.length) {
        throw new BatonError('BATON_E_HOSTS', `no log could be read (${unread.map((l) => l.id).join(', ')})`);
      }
    });
}
