// `baton dataplane`: the built-in proxy's own process (src/dataplane/process.ts). `baton up`
// starts it, detached, when the config has an app behind the built-in proxy; it is not meant to
// be run by hand, but can be (e.g. as its own systemd unit). SIGTERM stops it gracefully;
// SIGUSR2 upgrades it in place (a new one from the Baton installed now takes the listener).
import type { Command } from 'commander';
import { closeSync } from 'node:fs';
import { parseListen } from '../../config/address.js';
import { LISTEN_ADDRESS_ENV, LISTEN_FD_ENV, REDIRECT_FD_ENV } from '../../dataplane/paths.js';
import { BatonError, messageOf } from '../../errors.js';
import { readConfig, withConfig } from '../options.js';

export function registerDataPlane(program: Command): void {
  withConfig(program.command('dataplane'))
    .description("run the built-in proxy's data plane (started by `baton up`; outlives it)")
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .action(async (opts: { config: string; logLevel: string }) => {
      const read = readConfig(opts);
      // Started again by the controller after a crash: where the one before listened.
      const override = process.env[LISTEN_ADDRESS_ENV];
      delete process.env[LISTEN_ADDRESS_ENV];
      const at = override ? parseListen(override) : undefined;
      const config = at ? Object.freeze({ ...read, listen: at }) : read;
      if (!config.listen) {
        throw new BatonError('BATON_E_CONFIG', `${config.file} has no listen: address for the data plane`);
      }
      const [{ DataPlane }, upgrade, { createLogger }, worker] = await Promise.all([
        import('../../dataplane/process.js'),
        import('../../dataplane/upgrade.js'),
        import('../../log.js'),
        import('../../dataplane/worker.js'),
      ]);
      const workerNo = process.env[worker.WORKER_ENV];
      if (workerNo !== undefined) {
        // One of the data plane's proxy.workers (src/dataplane/workers.ts starts them).
        delete process.env[worker.WORKER_ENV];
        const fd = Number(process.env[LISTEN_FD_ENV]);
        delete process.env[LISTEN_FD_ENV];
        const log = createLogger({ level: opts.logLevel, name: `baton-dataplane-worker-${workerNo}` });
        await worker.runWorker(config, fd, log);
        log.info('data plane worker exited');
        process.exit(0);
      }
      const log = createLogger({ level: opts.logLevel, name: 'baton-dataplane' });
      const dp = new DataPlane(config, log);
      const handedOver = process.env[upgrade.HANDOVER_ENV] === '1' && process.send !== undefined;
      const fd = Number(process.env[LISTEN_FD_ENV]);
      const redirectFd = Number(process.env[REDIRECT_FD_ENV]);
      delete process.env[LISTEN_FD_ENV];
      delete process.env[REDIRECT_FD_ENV];
      if (handedOver) {
        const { server, table } = await upgrade.receiveHandover();
        // The socket comes as an inherited fd when the old one could give it so: a handle sent
        // over IPC is wrapped by Node in a server that accepts at once, before this process can
        // serve what it accepts (a connection could hang there).
        const listener = server ?? (Number.isInteger(fd) && fd >= 3 ? { fd } : null);
        if (!listener)
          throw new BatonError('BATON_E_LISTEN', 'the handover came without the listening socket');
        const inherited = Number.isInteger(redirectFd) && redirectFd >= 3;
        // The old one had redirectHttp and this config has not: its socket is closed, not kept
        // bound (port 80 would stay taken, answering nobody).
        if (inherited && !config.redirectHttp) closeSync(redirectFd);
        const redirect = inherited && config.redirectHttp ? { fd: redirectFd } : undefined;
        await dp.start({ kind: 'handover', listener, redirect, table });
        await upgrade.completeHandover(dp, log);
      } else await dp.start(Number.isInteger(fd) && fd >= 3 ? { kind: 'fd', fd } : { kind: 'bind' });
      process.on('SIGTERM', () => void dp.stop('SIGTERM'));
      process.on('SIGINT', () => void dp.stop('SIGINT'));
      process.on('SIGUSR2', () => {
        dp.upgrade().catch((err: unknown) => log.error({ error: messageOf(err) }, 'upgrade failed'));
      });
      // Config changes reach the data plane with `baton upgrade` (a new one reads the file);
      // the certificate files of tls: are read again.
      process.on('SIGHUP', () => {
        dp.reloadCertificates('SIGHUP');
        log.warn(
          'SIGHUP: the data plane reads its config when it starts; run `baton upgrade` to apply proxy changes (the certificates of tls: were read again)',
        );
      });
      await dp.done;
      log.info('data plane exited');
      // Connections left over after the drain deadline do not keep it up.
      process.exit(0);
    });
}
