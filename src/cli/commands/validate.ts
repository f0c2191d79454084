// `baton validate`: check a config file without running anything (CI, pre-commit). Without
// --env, every environment in the file is checked too. With --json: {"ok":true,...}, or
// {"ok":false,"problems":[...]} and exit 2. Warnings (config/warnings.ts, the ones `baton up`
// logs) are printed to stderr, or listed as `warnings`, and the exit stays 0.
import path from 'node:path';
import type { Command } from 'commander';
import type { ConfigProblem } from '../../config/load.js';
import { configJsonSchema } from '../../config/schema.js';
import { configWarnings } from '../../config/warnings.js';
import { checkCertificates } from '../../edge/builtin/certificates.js';
import { isBatonError } from '../../errors.js';
import { DEFAULT_CONFIG, printJson, readConfig, withConfig } from '../options.js';

interface ValidateOptions {
  config: string;
  env?: string;
  schema?: boolean;
  json?: boolean;
}

export function registerValidate(program: Command): void {
  withConfig(program.command('validate'))
    .description('check baton.yaml (and each of its environments) and report every problem with its line')
    .option('--schema', 'print the JSON Schema of baton.yaml (for editor autocompletion) and exit')
    .option('--json', 'print {"ok":true,...}, or {"ok":false,"problems":[...]} (exit 2)')
    .action((opts: ValidateOptions) => {
      if (opts.schema) return printJson(configJsonSchema());
      // The environment being checked, for the JSON answer when it is the one at fault.
      let checking: string | null = opts.env ?? (process.env.BATON_ENV || null);
      try {
        const config = readConfig(opts);
        const envs = checking === null ? Object.keys(config.environments ?? {}) : [];
        // tls:'s files are read and checked as `baton up` does.
        const warnings = [...configWarnings(config), ...checkCertificates(config).warnings];
        for (const env of envs) {
          checking = env;
          const envConfig = readConfig({ ...opts, env });
          // An environment's own warnings only (the file's apply to it too, said once).
          for (const w of [...configWarnings(envConfig), ...checkCertificates(envConfig).warnings])
            if (!warnings.includes(w) && !warnings.includes(`environment ${env}: ${w}`))
              warnings.push(`environment ${env}: ${w}`);
        }
        if (opts.json) {
          return printJson({
            ok: true,
            file: config.file,
            service: config.service,
            environment: config.environment,
            environments: envs,
            warnings,
          });
        }
        for (const w of warnings) process.stderr.write(`baton: warning: ${w}\n`);
        const which = config.environment
          ? `, environment ${config.environment}`
          : envs.length
            ? `, environments ${envs.join(', ')}`
            : '';
        process.stdout.write(`${config.file}: ok (service ${config.service}${which})\n`);
      } catch (err) {
        if (!opts.json || !isBatonError(err) || err.code !== 'BATON_E_CONFIG') throw err;
        // A file that cannot be read has no problem list: its message is the one problem.
        const problems: readonly ConfigProblem[] = Array.isArray(err.details)
          ? (err.details as ConfigProblem[])
          : [{ path: '', message: err.message }];
        printJson({
          ok: false,
          file: path.resolve(opts.config ?? DEFAULT_CONFIG),
          environment: checking,
          problems,
          error: { code: err.code, message: err.message },
        });
        process.stderr.write(`baton: ${err.message}\n`);
        process.exitCode = err.exitCode;
      }
    });
}
