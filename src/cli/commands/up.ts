// `baton up`: run the daemon in the foreground (systemd-friendly: logs to stdout, SIGTERM
// stops gracefully, SIGHUP re-reads the config).
import type { Command } from 'commander';
import { configWarnings } from '../../config/warnings.js';
import { messageOf } from '../../errors.js';
import { readConfig, withConfig } from '../options.js';

export function registerUp(program: Command): void {
  withConfig(program.command('up'))
    .description('run the Baton daemon (proxy, admin API) in the foreground')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .action(async (opts: { config: string; logLevel: string }) => {
      const config = readConfig(opts);
      // Loaded here, not at the top: other commands start faster without the daemon's modules.
      const [{ Daemon }, { checkState }, { createLogger }] = await Promise.all([
        import('../../daemon/daemon.js'),
        import('../../daemon/preflight.js'),
        import('../../log.js'),
      ]);
      // The config passed the same checks as `baton validate`; now the state directory and
      // its files, before any port is opened or instance touched.
      checkState(config);
      const log = createLogger({ level: opts.logLevel });
      // The warnings `baton validate` prints; the daemon runs anyway.
      for (const w of configWarnings(config)) log.warn(w);
      const daemon = await Daemon.start(config, log);
      try {
        await new Promise<void>((resolve, reject) => {
          let stopping = false;
          const stop = (signal: string): void => {
            if (stopping) return;
            stopping = true;
            log.info({ signal }, 'stopping: finishing in-flight requests');
            // A stop that failed still stopped what it could and closed the listeners: the
            // process ends, with the error's exit code and message (a state file not saved).
            daemon.stop().then(resolve, reject);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
          process.on('SIGHUP', () => {
            try {
              const next = readConfig(opts);
              for (const w of configWarnings(next)) log.warn(w);
              void daemon.reload(next).catch((err: unknown) => log.error({ err }, 'reload failed'));
            } catch (err) {
              // A broken file on reload keeps the running config: nothing changes.
              log.error({ error: messageOf(err) }, 'config reload refused; keeping the running config');
            }
          });
        });
        log.info('stopped');
      } finally {
        // Nothing should keep the process up now; should something (a stuck socket), it ends.
        setTimeout(() => {
          log.warn('still running 3s after the stop; exiting');
          process.exit();
        }, 3000).unref();
      }
    });
}
