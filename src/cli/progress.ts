// How deploy progress looks: on a terminal, step lines with the elapsed time; in CI (no TTY),
// plain timestamped lines; with --json, one JSON object per event.
import type { ProgressEvent } from '../api/deploy.js';
import { proofLines } from '../api/proof.js';
import { ErrorCodes } from '../errors.js';

export type ProgressMode = 'tty' | 'plain' | 'json';

export function progressMode(
  json: boolean | undefined,
  stream: NodeJS.WriteStream = process.stdout,
): ProgressMode {
  if (json) return 'json';
  return stream.isTTY && !process.env.CI ? 'tty' : 'plain';
}

export function renderEvent(e: ProgressEvent, mode: ProgressMode): string {
  if (mode === 'json') return `${JSON.stringify(e)}\n`;
  const mark = e.kind === 'done' ? (e.result === 'succeeded' ? 'done' : 'FAILED') : (e.step ?? e.kind);
  if (mode === 'plain') return `${e.time} ${mark.padEnd(12)} ${e.message}\n`;
  const secs = `${(e.elapsedMs / 1000).toFixed(1)}s`.padStart(7);
  const color = e.kind === 'done' ? (e.result === 'succeeded' ? '\x1b[32m' : '\x1b[31m') : '\x1b[36m';
  return `${secs}  ${color}${mark.padEnd(12)}\x1b[0m ${e.message}\n`;
}

/**
 * What `baton deploy` / `rollback` / `follow` exit with once the deploy ended: 0 live, 14 when
 * an edge refused a change (BATON_E_EDGE), else 10; the previous version serves in both.
 */
export function exitCodeOf(done: ProgressEvent): number {
  if (done.result === 'succeeded') return 0;
  return ErrorCodes[done.code ?? 'BATON_E_DEPLOY_FAILED'].exitCode;
}

/**
 * The deploy's proof, printed just before its 'done' line (which stays the last) and like the
 * other lines: `proof        0 of 12,431 requests failed during this deploy (...)`. Nothing
 * with --json (the 'done' event's entry carries it) or from a daemon that keeps none.
 */
export function renderProof(done: ProgressEvent, mode: ProgressMode): string {
  const entry = done.entry;
  if (mode === 'json' || !entry?.proof) return '';
  const mark = 'proof'.padEnd(12);
  const secs = `${(done.elapsedMs / 1000).toFixed(1)}s`.padStart(7);
  return proofLines(entry.proof, entry.rollback ? 'rollback' : 'deploy')
    .map((l) => (mode === 'plain' ? `${done.time} ${mark} ${l}\n` : `${secs}  \x1b[36m${mark}\x1b[0m ${l}\n`))
    .join('');
}
