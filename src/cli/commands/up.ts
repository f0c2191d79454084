// `baton up`: run the daemon in the foreground (systemd-friendly: logs to stdout, SIGTERM
// stops gracefully, SIGHUP re-reads the config). Stopping it leaves the app's instances and
// the data plane serving (the next `baton up` adopts them) unless --stop-on-exit; `baton down`
// stops everything.
import type { Command } from 'commander';
import { configWarnings } from '../../config/warnings.js';
import { checkCertificates } from '../../edge/builtin/certificates.js';
import { clearListenFdsEnv, listenFdsFromEnv, type ListenFd } from '../../daemon/listen-fds.js';
import { BatonError, messageOf } from '../../errors.js';
import { readConfig, withConfig } from '../options.js';

export function registerUp(program: Command): void {
  withConfig(program.command('up'))
    .description('run the Baton daemon (proxy, admin API) in the foreground')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option(
      '--stop-on-exit',
      'stop the instances and the data plane when this process stops (default: they keep serving; baton down stops them)',
    )
    .action(async (opts: { config: string; logLevel: string; stopOnExit?: boolean }) => {
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
      // tls:'s files, as `baton validate` checks them (an expired certificate: served, said).
      const tls = checkCertificates(config);
      const log = createLogger({ level: opts.logLevel });
      // The warnings `baton validate` prints; the daemon runs anyway.
      for (const w of [...configWarnings(config), ...tls.warnings]) log.warn(w);
      // systemd socket activation: the listener it holds (kept open across our restarts).
      const inherited = pickListenFd(listenFdsFromEnv());
      clearListenFdsEnv();
      // A signal while starting (recovery may wait for instances) stops it once started: the
      // default action would kill it half-way.
      let early: { why: string; everything: boolean } | null = null;
      let stop: (why: string, everything?: boolean) => void = (why, everything = false) => {
        early = { why, everything: (early?.everything ?? false) || everything };
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      const daemon = await Daemon.start(config, log, {
        stopOnExit: opts.stopOnExit ?? false,
        ...(inherited ? { listenFd: inherited.fd } : {}),
        onDown: () => stop('baton down', true),
      });
      try {
        await new Promise<void>((resolve, reject) => {
          let stopping = false;
          stop = (why: string, everything?: boolean): void => {
            if (stopping) return;
            stopping = true;
            log.info(
              { why },
              everything || opts.stopOnExit
                ? 'stopping: the instances and the data plane too'
                : 'stopping the controller: the instances and the edge keep serving',
            );
            // A stop that failed still stopped what it could and closed the listeners: the
            // process ends, with the error's exit code and message (a state file not saved).
            daemon.stop(everything ? { everything } : {}).then(resolve, reject);
          };
          const pending = early;
          if (pending !== null) stop(pending.why, pending.everything);
          process.on('SIGHUP', () => {
            // The certificate files first, whatever the config file holds now.
            daemon
              .reloadCertificates()
              .catch((err: unknown) => log.error({ error: messageOf(err) }, 'certificate reload failed'));
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

/** The fd for the proxy: the only one systemd passed, or the one named `listen`. */
function pickListenFd(fds: readonly ListenFd[]): ListenFd | undefined {
  if (fds.length <= 1) return fds[0];
  const named = fds.find((f) => f.name === 'listen');
  if (named) return named;
  throw new BatonError(
    'BATON_E_LISTEN',
    `systemd passed ${fds.length} sockets (LISTEN_FDS; names: ${fds.map((f) => f.name).join(', ')}) and none is named "listen": give the one for clients FileDescriptorName=listen in the .socket unit`,
  );
}
