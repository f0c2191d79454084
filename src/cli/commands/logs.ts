// `baton logs`: the last lines of instances' logs, read where each instance runs (this machine,
// or its host over SSH), through the daemon, which knows where every instance is.
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { LogsAnswer } from '../../api/logs.js';
import { logsPath } from '../../api/paths.js';
import { BatonError } from '../../errors.js';
import { printJson, readConfig, withConfig } from '../options.js';

interface Opts {
  config: string;
  env?: string;
  lines: string;
  json?: boolean;
}

export function registerLogs(program: Command): void {
  withConfig(program.command('logs'))
    .description(
      "the last lines of the live instances' logs, or of those [select] names: an instance id, a version or a host's address",
    )
    .argument('[select]', 'an instance id, a version, or a host address')
    .option('-n, --lines <n>', 'lines per instance', '50')
    .option('--json', 'print JSON')
    .action(async (select: string | undefined, opts: Opts) => {
      const lines = Number(opts.lines);
      if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
        throw new BatonError(
          'BATON_E_USAGE',
          `--lines must be a whole number from 1 to 10000, not ${opts.lines}`,
        );
      }
      const r = await AdminClient.fromConfig(readConfig(opts)).call<LogsAnswer>(
        'GET',
        logsPath(lines, select),
      );
      if (opts.json) return printJson(r);
      const out: string[] = [];
      for (const l of r.logs) {
        out.push(`==> ${l.id} (${l.host}:${l.port}, ${l.logFile}) <==`);
        if (l.error !== undefined) out.push(`(cannot read it: ${l.error})`);
        else if (l.text.trim() !== '') out.push(l.text.trimEnd());
        else out.push('(empty)');
        out.push('');
      }
      process.stdout.write(out.join('\n'));
      const unread = r.logs.filter((l) => l.error !== undefined);
      if (unread.length === r.logs.length) {
        throw new BatonError('BATON_E_HOSTS', `no log could be read (${unread.map((l) => l.id).join(', ')})`);
      }
    });
}
