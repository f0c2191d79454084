// Options and helpers shared by the CLI commands.
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import type { BatonConfig } from '../config/schema.js';

export const DEFAULT_CONFIG = 'baton.yaml';

export function withConfig(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'config file', DEFAULT_CONFIG)
    .option('-e, --env <name>', "environment from the config's environments section (default: $BATON_ENV)");
}

export function readConfig(opts: { config?: string; env?: string }): BatonConfig {
  return loadConfigFile(opts.config ?? DEFAULT_CONFIG, opts.env ?? (process.env.BATON_ENV || undefined));
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Whether the command line asks for JSON output: `--json` before any `--`. Read from argv, not
 * the parsed options, so that a flag commander refuses is answered in JSON too.
 */
export function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return argv.slice(2, end < 0 ? undefined : end).includes('--json');
}
