// `baton targets`: look at and change the proxy's targets through the admin API.
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import { PATHS, targetPath } from '../../api/paths.js';
import type { AddTargetBody, DrainResult, TargetsAnswer, TargetView, WeightBody } from '../../api/targets.js';
import { BatonError } from '../../errors.js';
import { printJson, readConfig, withConfig } from '../options.js';

interface Opts {
  config: string;
  json?: boolean;
}

function client(opts: Opts): AdminClient {
  return AdminClient.fromConfig(readConfig(opts));
}

function printTable(targets: readonly TargetView[]): void {
  const rows = [['TARGET', 'VERSION', 'STATE', 'HEALTH', 'WEIGHT', 'IN-FLIGHT', 'REQUESTS']];
  for (const t of targets) {
    const health = t.passiveDownUntil ? `${t.health} (failed, out until ${t.passiveDownUntil})` : t.health;
    rows.push([
      t.id,
      t.version || '-',
      t.state,
      health,
      String(t.weight),
      String(t.inflight),
      String(t.requests),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

export function registerTargets(program: Command): void {
  const targets = program.command('targets').description('list and change the proxy targets');

  withConfig(targets.command('list', { isDefault: true }))
    .description('list targets with state, health, weight and in-flight requests')
    .option('--json', 'print JSON')
    .action(async (opts: Opts) => {
      const r = await client(opts).call<TargetsAnswer>('GET', PATHS.targets);
      if (opts.json) printJson(r);
      else printTable(r.targets);
    });

  withConfig(targets.command('add <address>'))
    .description('add a target (host:port) to rotation')
    .option('--weight <n>', 'weight', '1')
    .option('--json', 'print JSON')
    .action(async (address: string, opts: Opts & { weight: string }) => {
      const body: AddTargetBody = { address, weight: intArg('--weight', opts.weight) };
      const r = await client(opts).call<TargetView>('POST', PATHS.targets, body);
      if (opts.json) printJson(r);
      else process.stdout.write(`added ${address}\n`);
    });

  withConfig(targets.command('weight <target> <weight>'))
    .description('set a target weight (0 keeps it in the table with no new traffic)')
    .action(async (target: string, weight: string, opts: Opts) => {
      const body: WeightBody = { weight: intArg('weight', weight) };
      await client(opts).call<TargetView>('PATCH', targetPath(target), body);
      process.stdout.write(`${target}: weight ${weight}\n`);
    });

  for (const [name, verb, method, what] of [
    ['drain', 'drain', 'POST', 'take a target out of rotation and wait until its requests finish'],
    ['undrain', 'undrain', 'POST', 'put a drained target back into rotation'],
    ['remove', '', 'DELETE', 'drain a target, then forget it'],
  ] as const) {
    withConfig(targets.command(`${name} <target>`))
      .description(what)
      .option('--timeout <duration>', 'how long to wait for in-flight requests (drain, remove)')
      .option('--json', 'print JSON')
      .action(async (target: string, opts: Opts & { timeout?: string }) => {
        const path = targetPath(target, verb || undefined, opts.timeout);
        const r = await client(opts).call<DrainResult | TargetView>(method, path);
        if (opts.json) printJson(r);
        else process.stdout.write(`${target}: ${name === 'undrain' ? 'back in rotation' : `${name}ed`}\n`);
      });
  }
}

function intArg(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new BatonError('BATON_E_USAGE', `${name} must be a whole number >= 0, not "${v}"`);
  return n;
}
