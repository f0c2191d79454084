// `baton hosts check`: whether each host in `hosts:` can run the service's instances, before a
// deploy finds out (src/drivers/ssh/check.ts says what is checked). Needs no daemon.
import type { Command } from 'commander';
import { checkHosts, formatReports } from '../../drivers/ssh/check.js';
import { BatonError } from '../../errors.js';
import { printJson, readConfig, withConfig } from '../options.js';

interface Opts {
  config: string;
  env?: string;
  version?: string;
  host?: string[];
  json?: boolean;
}

export function registerHosts(program: Command): void {
  const hosts = program.command('hosts').description('the servers in hosts: (instances over SSH)');
  withConfig(hosts.command('check'))
    .description(
      'check each host: SSH login, clock, the tools Baton runs there, the app command, the remote folder and its free space, free ports',
    )
    .option('--version <version>', 'fill {version} in app.command to check its program')
    .option('--host <name...>', 'only these hosts (by name)')
    .option('--json', 'print the reports as JSON')
    .action(async (opts: Opts) => {
      const config = readConfig(opts);
      if (!config.hosts || !config.app) {
        throw new BatonError(
          'BATON_E_USAGE',
          `${config.file} has no hosts: section (and app:), so there is nothing to check: instances run on this machine`,
        );
      }
      const names = new Set(config.hosts.map((h) => h.name));
      const unknown = (opts.host ?? []).filter((n) => !names.has(n));
      if (unknown.length) {
        throw new BatonError(
          'BATON_E_USAGE',
          `no host named ${unknown.join(', ')} in ${config.file} (hosts: ${[...names].join(', ')})`,
        );
      }
      const chosen = opts.host ? config.hosts.filter((h) => opts.host!.includes(h.name)) : config.hosts;
      const reports = await checkHosts(chosen, {
        app: config.app,
        perHost: config.app.instancesPerHost ?? Math.ceil(config.app.instances / config.hosts.length),
        service: config.service,
        sshOptions: config.ssh.options,
        connectTimeoutMs: config.ssh.connectTimeout,
        ...(config.ssh.remoteDir ? { remoteDir: config.ssh.remoteDir } : {}),
        ...(opts.version !== undefined ? { version: opts.version } : {}),
      });
      if (opts.json) printJson({ ok: reports.every((r) => r.ok), hosts: reports });
      else process.stdout.write(formatReports(reports));
      const failed = reports.filter((r) => !r.ok);
      if (failed.length) {
        throw new BatonError(
          'BATON_E_HOSTS',
          `${failed.length} of ${reports.length} host${reports.length > 1 ? 's' : ''} not ready: ${failed.map((r) => r.host).join(', ')} (see above)`,
        );
      }
    });
}
