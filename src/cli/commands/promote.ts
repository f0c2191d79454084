// `baton promote [--full]`, `baton pause`, `baton resume`: steer a running canary. As in Argo
// Rollouts, `promote` goes on to the next step and `promote --full` to 100% now.
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { PauseAnswer, PromoteAnswer, PromoteBody, ResumeAnswer } from '../../api/deploy.js';
import { PATHS } from '../../api/paths.js';
import { BatonError } from '../../errors.js';
import { actorFromEnv } from '../actor.js';
import { printJson, readConfig, withConfig } from '../options.js';

export function registerPromote(program: Command): void {
  withConfig(program.command('promote'))
    .description('send the running canary on to its next step (--full: to 100% now)')
    .option('--full', 'skip the remaining steps: the new version takes all traffic now')
    .option('--step', 'deprecated: the default (on to the next step)')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; full?: boolean; step?: boolean; json?: boolean }) => {
      if (opts.full && opts.step) {
        throw new BatonError(
          'BATON_E_USAGE',
          '--full and --step contradict each other: `baton promote` goes on to the next step, `baton promote --full` to 100%',
        );
      }
      if (opts.step) process.stderr.write('baton promote: --step is deprecated, it is the default now\n');
      const body: PromoteBody = { full: opts.full ?? false, actor: actorFromEnv() };
      const r = await AdminClient.fromConfig(readConfig(opts)).call<PromoteAnswer>(
        'POST',
        PATHS.promote,
        body,
      );
      if (opts.json) printJson(r);
      else process.stdout.write(`${r.version}: ${r.full ? 'promoting to 100%' : 'on to the next step'}\n`);
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
