// `baton down` and `baton upgrade`: the two commands that change Baton's own processes.
// Stopping or restarting `baton up` leaves the instances and the data plane serving; `down` is
// the one command that stops them. `upgrade` hands the data plane over to the Baton installed
// now without closing its listener.
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import { PATHS } from '../../api/paths.js';
import type { BatonConfig } from '../../config/schema.js';
import { DAEMON_LOCK, lockHolder } from '../../state/lock.js';
import { BatonError, isBatonError } from '../../errors.js';
import { sleep } from '../../util/sleep.js';
import { printJson, readConfig, withConfig } from '../options.js';

interface DownAnswer {
  readonly stopping: true;
  readonly controller: number;
  readonly dataPlane: number | null;
  readonly instances: string[];
}

/** The daemon's admin API is not there (no daemon runs, or it has no admin address). */
function unreachable(err: unknown): boolean {
  return isBatonError(err) && err.code === 'BATON_E_DAEMON_UNREACHABLE';
}

/** Waits until no `baton up` holds the stateDir's lock: its stop (drains, instance stops) is done. */
async function controllerGone(config: BatonConfig): Promise<void> {
  const app = config.app;
  const bound = config.proxy.drainTimeout + (app ? app.drainTimeout + app.stopTimeout + 5000 : 0) + 30_000;
  const deadline = Date.now() + bound;
  while (lockHolder(config.stateDirPath, DAEMON_LOCK) !== null) {
    if (Date.now() > deadline) {
      throw new BatonError(
        'BATON_E_CONFLICT',
        `baton up was asked to stop everything ${Math.round(bound / 1000)}s ago and still runs: see its log`,
      );
    }
    await sleep(100);
  }
}

export function registerLifecycle(program: Command): void {
  withConfig(program.command('down'))
    .description(
      "stop the service: the app's instances, the data plane and baton up (nothing else stops them)",
    )
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const config = readConfig(opts);
      let online: DownAnswer | null = null;
      if (config.admin) {
        try {
          online = await AdminClient.fromConfig(config).call<DownAnswer>('POST', PATHS.down, {});
        } catch (err) {
          if (!unreachable(err)) throw err;
        }
      }
      if (online) {
        await controllerGone(config);
        if (opts.json) printJson({ ...online, stopping: undefined, down: true });
        else {
          process.stdout.write(
            `stopped: ${online.instances.length} instance(s)${online.instances.length ? ` (${online.instances.join(', ')})` : ''}, ` +
              `${online.dataPlane !== null ? `the data plane (pid ${online.dataPlane}), ` : ''}baton up (pid ${online.controller})\n`,
          );
        }
        return;
      }
      // No controller answers: the instances and data plane it left running are stopped from here.
      const [{ downOffline }, { createLogger }] = await Promise.all([
        import('../../daemon/down.js'),
        import('../../log.js'),
      ]);
      const log = createLogger({ level: opts.json ? 'silent' : 'warn' });
      const report = await downOffline(config, log);
      if (opts.json) printJson({ ...report, down: true });
      else {
        process.stdout.write(
          `no baton up running; stopped ${report.stopped.length} instance(s)${report.stopped.length ? ` (${report.stopped.join(', ')})` : ''}` +
            `${report.dataPlane !== null ? ` and the data plane (pid ${report.dataPlane})` : ''}` +
            `${report.gone.length ? `; ${report.gone.length} recorded instance(s) were gone already` : ''}\n`,
        );
      }
      if (report.errors.length) {
        throw new BatonError(
          'BATON_E_STATE',
          `baton down could not stop everything: ${report.errors.join('; ')}`,
        );
      }
    });

  withConfig(program.command('upgrade'))
    .description(
      'hand the built-in proxy over to the Baton installed now, without closing its listener (then restart baton up for the controller)',
    )
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const config = readConfig(opts);
      const { DataPlaneClient } = await import('../../dataplane/forward.js');
      const { dataPlanePaths } = await import('../../dataplane/paths.js');
      type Result = Awaited<ReturnType<InstanceType<typeof DataPlaneClient>['upgrade']>>;
      let r: Result | null = null;
      if (config.admin) {
        try {
          r = await AdminClient.fromConfig(config).call<Result>('POST', PATHS.upgrade, {});
        } catch (err) {
          if (!unreachable(err)) throw err;
        }
      }
      if (!r) {
        // No controller: straight to the data plane's socket (no deploy can run meanwhile).
        const client = new DataPlaneClient(dataPlanePaths(config.stateDirPath));
        try {
          r = await client.upgrade();
        } finally {
          await client.close();
        }
      }
      if (opts.json) printJson(r);
      else {
        process.stdout.write(
          `data plane upgraded: pid ${r.from.pid} (${r.from.version}) handed its listener and ${r.routes} route(s) to pid ${r.to.pid} (${r.to.version}); ` +
            'the old one finishes its requests and exits. To run the new controller too: restart baton up (e.g. systemctl restart baton); the service keeps serving.\n',
        );
      }
    });
}
