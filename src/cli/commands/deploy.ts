// `baton deploy` and `baton rollback`: ask the daemon, then follow the progress to the end.
// Exit 0 when the version is live; 10 when the deploy failed (the previous version serves).
// Ctrl-C stops following, not the deploy: that runs in the daemon (`baton abort` stops it).
import type { Command } from 'commander';
import type { ProgressEvent } from '../../controller/controller.js';
import { BatonError } from '../../errors.js';
import { actorFromEnv, AdminClient } from '../client.js';
import { readConfig, withConfig } from '../options.js';
import { progressMode, renderEvent } from '../progress.js';

/** What --strategy accepts (the daemon checks it too). */
const STRATEGIES: readonly string[] = ['blue-green', 'rolling', 'recreate'];

interface FollowOptions {
  config: string;
  json?: boolean;
}

async function followDeploy(opts: FollowOptions, path: string, body: Record<string, unknown>): Promise<void> {
  const client = AdminClient.fromConfig(readConfig(opts));
  const mode = progressMode(opts.json);
  const onInt = (): void => {
    process.stderr.write(
      '\nbaton: stopped following; the deploy goes on in the daemon. Follow it with `baton status`, stop it with `baton abort`.\n',
    );
    process.exit(130);
  };
  process.once('SIGINT', onInt);
  let last: ProgressEvent | undefined;
  try {
    await client.stream<ProgressEvent>('POST', path, body, (e) => {
      last = e;
      process.stdout.write(renderEvent(e, mode));
    });
  } finally {
    process.off('SIGINT', onInt);
  }
  if (!last || last.kind !== 'done') {
    throw new BatonError(
      'BATON_E_DAEMON_UNREACHABLE',
      'the daemon closed the progress stream before the end; see `baton status`',
    );
  }
  if (last.result !== 'succeeded') {
    // The message was printed with the progress; the exit code says it to CI.
    process.exitCode = 10;
  }
}

export function registerDeploy(program: Command): void {
  withConfig(program.command('deploy'))
    .description(
      'deploy a version; exit 0 when it serves all traffic, 10 when it failed (the previous version serves)',
    )
    .requiredOption('--version <version>', 'the version to deploy (fills {version} in app.command)')
    .option('--strategy <strategy>', 'blue-green, rolling or recreate (default: strategy.type in the config)')
    .option('--json', 'print progress as JSON lines')
    .action(async (opts: FollowOptions & { version: string; strategy?: string }) => {
      if (opts.strategy !== undefined && !STRATEGIES.includes(opts.strategy)) {
        throw new BatonError(
          'BATON_E_USAGE',
          `unknown strategy "${opts.strategy}" (--strategy): use ${STRATEGIES.join(', ')}; nothing was deployed`,
        );
      }
      await followDeploy(opts, '/v1/deploy', {
        version: opts.version,
        ...(opts.strategy ? { strategy: opts.strategy } : {}),
        actor: actorFromEnv(),
      });
    });

  withConfig(program.command('rollback'))
    .description('go back to the previous release (an instant switch while the old blue-green set is kept)')
    .option('--to <version>', 'a specific earlier version')
    .option('--json', 'print progress as JSON lines')
    .action(async (opts: FollowOptions & { to?: string }) => {
      await followDeploy(opts, '/v1/rollback', {
        ...(opts.to ? { to: opts.to } : {}),
        actor: actorFromEnv(),
      });
    });

  withConfig(program.command('abort'))
    .description('stop the running deploy: it rolls back to the previous version')
    .option('--json', 'print JSON')
    .action(async (opts: FollowOptions) => {
      const client = AdminClient.fromConfig(readConfig(opts));
      const r = await client.call<{ aborting: string; version: string }>('POST', '/v1/abort', {
        actor: actorFromEnv(),
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`aborting the deploy of ${r.version} (${r.aborting}); it rolls back\n`);
    });
}
