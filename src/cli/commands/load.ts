// `baton load URL --rate R --duration D`: constant-arrival-rate traffic, a summary of every
// failure, and an exit code CI can gate on (--max-failures). With -c baton.yaml or --admin, the
// daemon's deploys during the run are followed and marked in the report.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import { formatAddress, parseListen } from '../../config/address.js';
import { parseDuration } from '../../config/units.js';
import { BatonError } from '../../errors.js';
import { DeployWatch } from '../../load/deploy-watch.js';
import type { DeployRecord } from '../../load/deploys.js';
import { runLoad, type LoadOptions } from '../../load/runner.js';
import { summarize } from '../../load/summary.js';
import { printJson, readConfig } from '../options.js';
import { trustOptions, type TrustFlags } from '../trust.js';

interface LoadFlags extends TrustFlags {
  rate: string;
  duration: string;
  ramp?: string;
  method: string;
  header: string[];
  body?: string;
  newConnection?: boolean;
  connections: string;
  timeout: string;
  versionHeader?: string;
  maxFailures: string;
  config?: string;
  env?: string;
  admin?: string;
  json?: boolean;
  report?: string;
}

function num(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min)
    throw new BatonError('BATON_E_USAGE', `${name} must be a number >= ${min}, not "${v}"`);
  return n;
}

function dur(name: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined)
    throw new BatonError('BATON_E_USAGE', `${name} "${v}" is not a duration (e.g. 30s, 2m)`);
  return ms;
}

export function registerLoad(program: Command): void {
  program
    .command('load <url>')
    .description('send requests at a constant arrival rate and report every failure')
    .requiredOption('--rate <n>', 'requests per second')
    .requiredOption('--duration <d>', 'how long, e.g. 30s')
    .option('--ramp <d>', 'ramp the rate up from 0 over this long first')
    .option('--method <m>', 'HTTP method', 'GET')
    .option(
      '-H, --header <h>',
      'a request header "Name: value" (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option('--body <text>', 'request body')
    .option('--new-connection', 'a new connection per request instead of keep-alive')
    .option('--connections <n>', 'connection cap (requests beyond it queue, and the latency shows it)', '256')
    .option('--timeout <d>', 'per-request timeout', '10s')
    .option('--ca <file>', "https:// URLs: trust this CA's certificate (PEM) too, e.g. a private CA")
    .option('--insecure', "https:// URLs: do not verify the server's certificate (a warning says so)")
    .option(
      '--version-header <name>',
      'response header that names the version (default: X-Baton-Version from the built-in proxy, else x-version)',
    )
    .option('--max-failures <n>', 'exit 12 when more requests than this failed', '0')
    .option('--json', 'print the result as JSON')
    .option('--report <file>', 'write a self-contained HTML report with charts')
    .option('-c, --config <file>', "mark the deploys of this config's daemon (its admin:) in the report")
    .option('-e, --env <name>', "with -c: environment from the config's environments section")
    .option(
      '--admin <address>',
      'mark the deploys of the daemon on this admin address (host:port or unix:/path)',
    )
    .action(async (url: string, f: LoadFlags) => {
      try {
        new URL(url);
      } catch {
        throw new BatonError('BATON_E_USAGE', `"${url}" is not a URL (e.g. http://127.0.0.1:8080/)`);
      }
      const headers: Record<string, string> = {};
      for (const h of f.header) {
        const i = h.indexOf(':');
        if (i <= 0) throw new BatonError('BATON_E_USAGE', `header "${h}" must look like "Name: value"`);
        headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
      }
      const options: LoadOptions = {
        url,
        rate: num('--rate', f.rate, 0.1),
        durationMs: dur('--duration', f.duration),
        ...(f.ramp ? { rampMs: dur('--ramp', f.ramp) } : {}),
        method: f.method.toUpperCase(),
        headers,
        ...(f.body !== undefined ? { body: f.body } : {}),
        newConnection: f.newConnection ?? false,
        connections: num('--connections', f.connections, 1),
        timeoutMs: dur('--timeout', f.timeout),
        ...(f.versionHeader !== undefined ? { versionHeader: f.versionHeader } : {}),
        ...trustOptions(f),
      };
      const maxFailures = num('--max-failures', f.maxFailures, 0);
      // Last, once every flag is known good: it polls the daemon until finish().
      const watch = deployWatch(f);
      const ac = new AbortController();
      const onInt = (): void => ac.abort();
      process.once('SIGINT', onInt);
      const result = await runLoad({ ...options, signal: ac.signal })
        .catch(async (err: unknown) => {
          await watch?.finish();
          throw err;
        })
        .finally(() => process.off('SIGINT', onInt));
      const deploys: DeployRecord | null = watch ? await watch.finish() : null;
      if (f.report) {
        mkdirSync(path.dirname(path.resolve(f.report)), { recursive: true });
        writeFileSync(f.report, (await import('../../load/report.js')).renderReport(result, { deploys }));
      }
      if (f.json) printJson(deploys ? { ...result, deploys } : result);
      else process.stdout.write(summarize(result, deploys));
      if (result.failed > maxFailures) process.exitCode = 12;
    });
}

/** Follows the daemon named by -c or --admin during the run; null with neither. */
function deployWatch(f: LoadFlags): DeployWatch | null {
  if (f.config !== undefined && f.admin !== undefined)
    throw new BatonError('BATON_E_USAGE', 'give -c <file> or --admin <address>, not both');
  if (f.admin !== undefined) {
    const address = parseListen(f.admin);
    if (!address || (address.kind === 'tcp' && address.port === 0))
      throw new BatonError(
        'BATON_E_USAGE',
        `--admin "${f.admin}" is not an admin address (e.g. 127.0.0.1:9901 or unix:/run/baton.sock)`,
      );
    return new DeployWatch(new AdminClient(address), `the daemon on ${formatAddress(address)}`);
  }
  if (f.config === undefined) return null;
  const config = readConfig({ config: f.config, ...(f.env !== undefined ? { env: f.env } : {}) });
  const client = AdminClient.fromConfig(config);
  return new DeployWatch(client, `the daemon of ${f.config} on ${formatAddress(config.admin!)}`);
}
