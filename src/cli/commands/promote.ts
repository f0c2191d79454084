// `baton promote [--step]`, `baton pause`, `baton resume`: steer a running canary.
import type { Command } from 'commander';
import { actorFromEnv, AdminClient } from '../client.js';
import { printJson, readConfig, withConfig } from '../options.js';

export function registerPromote(program: Command): void {
  withConfig(program.command('promote'))
    .description('send the running canary to 100% now (--step: only past the current pause)')
    .option('--step', 'go on to the next step only')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; step?: boolean; json?: boolean }) => {
      const r = await AdminClient.fromConfig(readConfig(opts)).call<{ version: string }>(
        'POST',
        '/v1/promote',
        {
          step: opts.step ?? false,
          actor: actorFromEnv(),
        },
      );
      if (opts.json) printJson(r);
      else process.stdout.write(`${r.version}: ${opts.step ? 'on to the next step' : 'promoting to 100%'}\n`);
    });

  for (const [name, what] of [
    ['pause', 'hold the running canary at its current step (analysis goes on)'],
    ['resume', 'let a paused canary go on'],
  ] as const) {
    withConfig(program.command(name))
      .description(what)
      .option('--json', 'print JSON')
      .action(async (opts: { config: string; json?: boolean }) => {
        const r = await AdminClient.fromConfig(readConfig(opts)).call<{ version: string }>(
          'POST',
          `/v1/${name}`,
          {},
        );
        if (opts.json) printJson(r);
        else process.stdout.write(`${r.version}: ${name === 'pause' ? 'paused' : 'resumed'}\n`);
      });
  }
}
