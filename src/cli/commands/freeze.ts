// `baton freeze` and `baton unfreeze`: stop deploys (with a reason) until lifted. The daemon
// keeps the freeze across restarts; `baton deploy --force` goes through it, and rollbacks always
// run.
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { Freeze, FreezeAnswer, FreezeBody, UnfreezeAnswer, UnfreezeBody } from '../../api/freeze.js';
import { PATHS } from '../../api/paths.js';
import { actorFromEnv } from '../actor.js';
import { printJson, readConfig, withConfig } from '../options.js';

function describe(f: Freeze): string {
  return `by ${f.actor} since ${f.since}: "${f.reason}"`;
}

export function registerFreeze(program: Command): void {
  withConfig(program.command('freeze'))
    .description(
      'stop deploys until `baton unfreeze`, with a reason (kept across restarts; --force overrides; rollbacks still run)',
    )
    .requiredOption('--reason <text>', 'why: shown to everyone whose deploy is refused')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; reason: string; json?: boolean }) => {
      const config = readConfig(opts);
      const body: FreezeBody = { reason: opts.reason, actor: actorFromEnv() };
      const r = await AdminClient.fromConfig(config).call<FreezeAnswer>('POST', PATHS.freeze, body);
      if (opts.json) return printJson(r);
      let out = `deploys of ${config.service} are frozen ${describe(r.freeze)}\n`;
      if (r.replaced) out += `(this replaces the freeze ${describe(r.replaced)})\n`;
      out +=
        'lift it with `baton unfreeze`; `baton deploy --force` goes through it, and rollbacks still run\n';
      process.stdout.write(out);
    });

  withConfig(program.command('unfreeze'))
    .description('lift the freeze set by `baton freeze`')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const config = readConfig(opts);
      const body: UnfreezeBody = { actor: actorFromEnv() };
      const r = await AdminClient.fromConfig(config).call<UnfreezeAnswer>('DELETE', PATHS.freeze, body);
      if (opts.json) return printJson(r);
      let out = r.unfrozen
        ? `deploys of ${config.service} are no longer frozen (the freeze was ${describe(r.unfrozen)})\n`
        : `deploys of ${config.service} were not frozen\n`;
      if (r.window && !r.window.open) {
        out += `note: the deploy windows are closed now (${r.window.reason}); the next allowed time is ${r.window.nextOpenLocal}\n`;
      }
      process.stdout.write(out);
    });
}
