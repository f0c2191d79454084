// `baton follow`: back to the running deploy's progress (after a Ctrl-C, or from another
// terminal), through GET /v1/deploy/current. Exits as the deploy does: 0 when the version is
// live, 10 when it failed (14: an edge refused a change); 4 (BATON_E_NOT_FOUND) when no deploy
// is running.
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { ProgressEvent } from '../../api/deploy.js';
import { PATHS } from '../../api/paths.js';
import { BatonError } from '../../errors.js';
import { readConfig, withConfig } from '../options.js';
import { exitCodeOf, progressMode, renderEvent, renderProof } from '../progress.js';

export function registerFollow(program: Command): void {
  withConfig(program.command('follow'))
    .description(
      "follow the running deploy's progress to its end (from its start); exit 0 when it succeeded, 10 when it failed (14: an edge refused), 4 when no deploy runs",
    )
    .option('--json', 'print progress as JSON lines')
    .action(async (opts: { config: string; env?: string; json?: boolean }) => {
      const client = AdminClient.fromConfig(readConfig(opts));
      const mode = progressMode(opts.json);
      const onInt = (): void => {
        process.stderr.write('\nbaton: stopped following; the deploy goes on in the daemon.\n');
        process.exit(130);
      };
      process.once('SIGINT', onInt);
      let last: ProgressEvent | undefined;
      try {
        await client.stream<ProgressEvent>('GET', PATHS.deployCurrent, undefined, (e) => {
          last = e;
          if (e.kind === 'done') process.stdout.write(renderProof(e, mode));
          process.stdout.write(renderEvent(e, mode));
        });
      } catch (err) {
        if (err instanceof BatonError && err.code === 'BATON_E_NOT_FOUND') {
          throw new BatonError(
            'BATON_E_NOT_FOUND',
            `${err.message}: nothing to follow. \`baton status\` shows what is live, \`baton history\` how the last deploy ended.`,
            { cause: err },
          );
        }
        throw err;
      } finally {
        process.off('SIGINT', onInt);
      }
      if (!last || last.kind !== 'done') {
        throw new BatonError(
          'BATON_E_DAEMON_UNREACHABLE',
          'the daemon closed the progress stream before the end; see `baton status`',
        );
      }
      // The message was printed with the progress; the exit code says it to CI.
      if (last.result !== 'succeeded') process.exitCode = exitCodeOf(last);
    });
}
