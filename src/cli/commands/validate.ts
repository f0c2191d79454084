// `baton validate`: check a config file without running anything (CI, pre-commit).
import type { Command } from 'commander';
import { configJsonSchema } from '../../config/schema.js';
import { printJson, readConfig, withConfig } from '../options.js';

export function registerValidate(program: Command): void {
  withConfig(program.command('validate'))
    .description('check baton.yaml and report every problem with its line')
    .option('--schema', 'print the JSON Schema of baton.yaml (for editor autocompletion) and exit')
    .action((opts: { config: string; schema?: boolean }) => {
      if (opts.schema) return printJson(configJsonSchema());
      const config = readConfig(opts);
      process.stdout.write(`${config.file}: ok (service ${config.service})\n`);
    });
}
