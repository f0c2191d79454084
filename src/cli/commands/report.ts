// `baton report <deploy id>`: the deploy's proof (what the edge saw from its start to its end,
// with its steps and verdicts on the time axis) as one self-contained HTML file, from the
// daemon's history (GET /v1/history).
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AdminClient } from '../../admin/client.js';
import type { HistoryAnswer } from '../../api/deploy.js';
import { historyPath } from '../../api/paths.js';
import { BatonError, messageOf } from '../../errors.js';
import { renderProofReport } from '../../load/proof-report.js';
import { readConfig, withConfig } from '../options.js';

/** How far back `baton report` looks for the id. */
export const REPORT_HISTORY_LIMIT = 200;

export function registerReport(program: Command): void {
  withConfig(program.command('report'))
    .description(
      "write a deploy's proof as a self-contained HTML report: requests and failures by version, latency, the share per version over time with its steps and analysis verdicts",
    )
    .argument('<deploy-id>', 'the deploy, as `baton history` shows it (a unique prefix will do)')
    .option('-o, --output <file>', 'where to write it (default: baton-report-<id>.html)')
    .action(async (id: string, opts: { config: string; env?: string; output?: string }) => {
      const config = readConfig(opts);
      const r = await AdminClient.fromConfig(config).call<HistoryAnswer>(
        'GET',
        historyPath(REPORT_HISTORY_LIMIT),
      );
      const found = r.history.filter((h) => h.id === id || h.id.startsWith(id));
      const exact = found.find((h) => h.id === id);
      if (!exact && found.length !== 1) {
        throw new BatonError(
          found.length ? 'BATON_E_USAGE' : 'BATON_E_NOT_FOUND',
          found.length
            ? `${found.length} deploys start with "${id}" (${found.map((h) => h.id).join(', ')}): give more of the id`
            : `no deploy "${id}" in the last ${REPORT_HISTORY_LIMIT} of history; \`baton history\` lists them`,
        );
      }
      const entry = exact ?? found[0]!;
      const file = opts.output ?? `baton-report-${entry.id}.html`;
      try {
        writeFileSync(file, renderProofReport(entry, config.service));
      } catch (err) {
        throw new BatonError('BATON_E_USAGE', `cannot write ${file}: ${messageOf(err)}`, { cause: err });
      }
      process.stdout.write(`${file}\n`);
    });
}
