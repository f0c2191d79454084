// `baton deploy` and `baton rollback`: ask the daemon, then follow the progress to the end.
// Exit 0 when the version is live; 10 when the deploy failed, 14 when an edge refused a change
// (the previous version serves in both).
// Ctrl-C stops following, not the deploy: that runs in the daemon (`baton abort` stops it).
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { AbortAnswer, AbortBody, DeployBody, ProgressEvent, RollbackBody } from '../../api/deploy.js';
import type { HealthAnswer } from '../../api/health.js';
import { PATHS } from '../../api/paths.js';
import { STRATEGY_TYPES, type BatonConfig, type StrategyType } from '../../config/schema.js';
import { BatonError } from '../../errors.js';
import { runLoad, type LoadResult } from '../../load/runner.js';
import { summarize } from '../../load/summary.js';
import { actorFromEnv } from '../actor.js';
import { readConfig, withConfig } from '../options.js';
import { trustOptions, type TrustFlags } from '../trust.js';
import { exitCodeOf, progressMode, renderEvent, renderProof } from '../progress.js';

/** What --strategy accepts (the daemon checks it too). */
const STRATEGIES: readonly string[] = STRATEGY_TYPES;

interface FollowOptions extends TrustFlags {
  config: string;
  allowManualPause?: boolean;
  json?: boolean;
  verifyLoad?: string;
}

/**
 * A canary step that waits for `baton promote` would hang a CI job that nobody watches:
 * refused without a terminal unless asked for.
 */
function checkManualPause(config: BatonConfig, strategy: string | undefined, allowed: boolean): void {
  const s = config.strategy;
  if (
    allowed ||
    process.stdin.isTTY ||
    (strategy !== undefined && strategy !== s.type) ||
    s.type !== 'canary'
  )
    return;
  const i = s.steps.findIndex(
    (step) => 'pause' in step && typeof step.pause !== 'number' && step.pause.duration === undefined,
  );
  if (i < 0) return;
  throw new BatonError(
    'BATON_E_USAGE',
    `strategy.steps[${i}] pauses until \`baton promote\`, and this run has no terminal (CI?): nothing would promote it. ` +
      'Give the pause a duration (pause: 10m), or pass --allow-manual-pause if someone promotes from elsewhere. Nothing was deployed.',
  );
}

type Follow =
  | { readonly path: typeof PATHS.deploy; readonly body: DeployBody }
  | { readonly path: typeof PATHS.rollback; readonly body: RollbackBody };

async function followDeploy(opts: FollowOptions, follow: Follow): Promise<void> {
  if (!opts.verifyLoad && (opts.ca !== undefined || opts.insecure)) {
    throw new BatonError(
      'BATON_E_USAGE',
      `${opts.ca !== undefined ? '--ca' : '--insecure'} is for --verify-load's requests: add --verify-load <rate>, or drop it. Nothing was deployed.`,
    );
  }
  const config = readConfig(opts);
  if (follow.path === PATHS.deploy) {
    checkManualPause(config, follow.body.strategy, opts.allowManualPause ?? false);
  }
  const client = AdminClient.fromConfig(config);
  const mode = progressMode(opts.json);
  const load = opts.verifyLoad ? await startVerifyLoad(client, opts.verifyLoad, opts) : null;
  const onInt = (): void => {
    process.stderr.write(
      '\nbaton: stopped following; the deploy goes on in the daemon. Follow it with `baton status`, stop it with `baton abort`.\n',
    );
    process.exit(130);
  };
  process.once('SIGINT', onInt);
  let last: ProgressEvent | undefined;
  try {
    await client.stream<ProgressEvent>('POST', follow.path, follow.body, (e) => {
      last = e;
      if (e.kind === 'done') process.stdout.write(renderProof(e, mode));
      process.stdout.write(renderEvent(e, mode));
    });
  } finally {
    process.off('SIGINT', onInt);
    if (load) {
      const result = await load.stop();
      process.stdout.write(opts.json ? `${JSON.stringify({ kind: 'load', result })}\n` : summarize(result));
      if (result.failed > 0) {
        process.stderr.write(
          `baton: ${result.failed} request(s) failed during the deploy: the deploy is not proven\n`,
        );
        process.exitCode = 10;
      }
    }
  }
  if (!last || last.kind !== 'done') {
    throw new BatonError(
      'BATON_E_DAEMON_UNREACHABLE',
      'the daemon closed the progress stream before the end; see `baton status`',
    );
  }
  // The message was printed with the progress; the exit code says it to CI (a failed
  // --verify-load above has set 10 already).
  if (last.result !== 'succeeded') process.exitCode = exitCodeOf(last);
}

/** `--verify-load RATE`: constant-rate GETs through the edge for the whole deploy. */
async function startVerifyLoad(
  client: AdminClient,
  rateText: string,
  trust: TrustFlags,
): Promise<{ stop: () => Promise<LoadResult> }> {
  const rate = Number(rateText);
  if (!Number.isFinite(rate) || rate <= 0) {
    throw new BatonError(
      'BATON_E_USAGE',
      `--verify-load takes requests per second, e.g. 100, not "${rateText}"`,
    );
  }
  // Before the daemon is asked anything: a CA that cannot be read stops here.
  const verify = trustOptions(trust);
  // Where clients connect, from the daemon: edge.url, or its proxy's bound address (port 0).
  const { url, edge, listen } = await client.call<HealthAnswer>('GET', PATHS.health);
  // Falsy too from a daemon older than `url`.
  if (!url) {
    const why = listen
      ? `the proxy listens on ${listen}, not a TCP port`
      : edge === 'multi'
        ? 'the edges own the client port'
        : `the ${edge} edge owns the client port`;
    throw new BatonError(
      'BATON_E_USAGE',
      `--verify-load sends its requests where clients connect, and Baton does not know where that is: ${why}. ` +
        'Set edge.url in baton.yaml (e.g. url: http://127.0.0.1:80/; with edges:, on one of them), then reload `baton up` (SIGHUP). Nothing was deployed.',
    );
  }
  const ac = new AbortController();
  const run = runLoad({
    url,
    rate,
    durationMs: 24 * 3_600_000,
    signal: ac.signal,
    timeoutMs: 10_000,
    ...verify,
  });
  return {
    stop: async () => {
      ac.abort();
      return run;
    },
  };
}

export function registerDeploy(program: Command): void {
  withConfig(program.command('deploy'))
    .description(
      'deploy a version; exit 0 when it serves all traffic, 10 when it failed, 14 when an edge refused a change (the previous version serves)',
    )
    .requiredOption('--version <version>', 'the version to deploy (fills {version} in app.command)')
    .option(
      '--strategy <strategy>',
      'blue-green, rolling, recreate, canary or ab (default: strategy.type in the config)',
    )
    .option('--json', 'print progress as JSON lines')
    .option(
      '--verify-load <rate>',
      'send this many GET/s where clients connect (edge.url with nginx / HAProxy) during the deploy; any failure fails the verdict',
    )
    .option('--ca <file>', "with --verify-load on https://: trust this CA's certificate (PEM) too")
    .option('--insecure', "with --verify-load on https://: do not verify the server's certificate")
    .option('--force', 'deploy outside the deploy windows or through a freeze (recorded in history)')
    .option(
      '--allow-manual-pause',
      'allow a canary step `pause: {}` (waits for `baton promote`) without a terminal',
    )
    .action(async (opts: FollowOptions & { version: string; strategy?: string; force?: boolean }) => {
      if (opts.strategy !== undefined && !STRATEGIES.includes(opts.strategy)) {
        throw new BatonError(
          'BATON_E_USAGE',
          `unknown strategy "${opts.strategy}" (--strategy): use ${STRATEGIES.join(', ')}; nothing was deployed`,
        );
      }
      await followDeploy(opts, {
        path: PATHS.deploy,
        body: {
          version: opts.version,
          ...(opts.strategy ? { strategy: opts.strategy as StrategyType } : {}),
          ...(opts.force ? { force: true } : {}),
          actor: actorFromEnv(),
        },
      });
    });

  withConfig(program.command('rollback'))
    .description('go back to the previous release (an instant switch while the old blue-green set is kept)')
    .option('--to <version>', 'a specific earlier version')
    .option('--json', 'print progress as JSON lines')
    .action(async (opts: FollowOptions & { to?: string }) => {
      await followDeploy(opts, {
        path: PATHS.rollback,
        body: { ...(opts.to ? { to: opts.to } : {}), actor: actorFromEnv() },
      });
    });

  withConfig(program.command('abort'))
    .description('stop the running deploy: it rolls back to the previous version')
    .option('--json', 'print JSON')
    .action(async (opts: FollowOptions) => {
      const client = AdminClient.fromConfig(readConfig(opts));
      const body: AbortBody = { actor: actorFromEnv() };
      const r = await client.call<AbortAnswer>('POST', PATHS.abort, body);
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`aborting the deploy of ${r.version} (${r.aborting}); it rolls back\n`);
    });
}
