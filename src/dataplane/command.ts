// How to run `baton <args>` as a new process from this one: the same Node and flags with the
// CLI's entry script as it is on disk now (after an upgrade, the new build's), or the single
// executable itself.
import { isSea } from 'node:sea';
import path from 'node:path';

/** `baton dataplane` for this config (and its environment, when one was selected). */
export function dataPlaneArgs(config: {
  readonly file: string;
  readonly environment: string | null;
}): string[] {
  return ['dataplane', '-c', config.file, ...(config.environment ? ['--env', config.environment] : [])];
}

export function batonCommand(args: readonly string[]): { file: string; args: string[] } {
  if (isSea()) return { file: process.execPath, args: [...args] };
  const entry = process.argv[1];
  if (entry === undefined) throw new Error('cannot tell which script runs baton (process.argv[1] is empty)');
  return { file: process.execPath, args: [...process.execArgv, path.resolve(entry), ...args] };
}
