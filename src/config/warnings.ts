// Things in a valid config that are probably mistakes but do not stop `baton up`: printed by
// `baton validate` (which still exits 0, and lists them as `warnings` with --json) and logged
// by `baton up` at start and on SIGHUP. One list, so the two always agree.
import type { BatonConfig } from './schema.js';

export function configWarnings(config: Pick<BatonConfig, 'app' | 'admin'>): string[] {
  const warnings: string[] = [];
  const { app } = config;
  if (app && config.admin === undefined) {
    // The daemon runs, but nothing can reach it to deploy: the CLI speaks through admin.
    warnings.push(
      'app: without admin: `baton deploy`, `status` and `rollback` talk to the daemon through the admin API, so nothing can be deployed: add e.g. admin: 127.0.0.1:9090',
    );
  }
  if (app && !app.command.includes('{port}') && !app.command.includes('PORT')) {
    warnings.push(
      `app.command "${app.command}" has no {port}: each instance must listen on the port Baton gives it, as {port} in the command or the PORT variable (ignore this if the app reads PORT)`,
    );
  }
  return warnings;
}
