// `baton validate`: check a config file without running anything (CI, pre-commit). Without
// --env, every environment in the file is checked too.
import type { Command } from 'commander';
import { configJsonSchema } from '../../config/schema.js';
import { printJson, readConfig, withConfig } from '../options.js';

export function registerValidate(program: Command): void {
  withConfig(program.command('validate'))
    .description('check baton.yaml (and each of its environments) and report every problem with its line')
    .option('--schema', 'print the JSON Schema of baton.yaml (for editor autocompletion) and exit')
    .action((opts: { config: string; env?: string; schema?: boolean }) => {
      if (opts.schema) return printJson(configJsonSchema());
      const config = readConfig(opts);
      const envs =
        opts.env === undefined && !process.env.BATON_ENV ? Object.keys(config.environments ?? {}) : [];
      for (const env of envs) readConfig({ ...opts, env });
      const which = config.environment
        ? `, environment ${config.environment}`
        : envs.length
          ? `, environments ${envs.join(', ')}`
          : '';
      process.stdout.write(`${config.file}: ok (service ${config.service}${which})\n`);
    });
}
