// Options and helpers shared by the CLI commands.
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import type { BatonConfig } from '../config/schema.js';

export const DEFAULT_CONFIG = 'baton.yaml';

export function withConfig(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'config file', DEFAULT_CONFIG);
}

export function readConfig(opts: { config?: string }): BatonConfig {
  return loadConfigFile(opts.config ?? DEFAULT_CONFIG);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
