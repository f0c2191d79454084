// `baton promote [--step]`, `baton pause`, `baton resume`: steer a running canary.
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { PauseAnswer, PromoteAnswer, PromoteBody, ResumeAnswer } from '../../api/deploy.js';
import { PATHS } from '../../api/paths.js';
import { actorFromEnv } from '../actor.js';
import { printJson, readConfig, withConfig } from '../options.js';

export function registerPromote(program: Command): void {
  withConfig(program.command('promote'))
    .description('send the running canary to 100% now (--step: only past the current pause)')
    .option('--step', 'go on to the next step only')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; step?: boolean; json?: boolean }) => {
      const body: PromoteBody = { step: opts.step ?? false, actor: actorFromEnv() };
      const r = await AdminClient.fromConfig(readConfig(opts)).call<PromoteAnswer>(
        'POST',
        PATHS.promote,
        body,
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
        const r = await AdminClient.fromConfig(readConfig(opts)).call<PauseAnswer | ResumeAnswer>(
          'POST',
          PATHS[name],
          {},
        );
        if (opts.json) printJson(r);
        else process.stdout.write(`${r.version}: ${name === 'pause' ? 'paused' : 'resumed'}\n`);
      });
  }
}
