// `baton demo`: the main job on the embedded default, with no setup.
import path from 'node:path';
import type { Command } from 'commander';

/**
 * Where the report goes unless `--report` says otherwise: under `.baton/` in the current folder,
 * the default stateDir, which a project already ignores (git, formatters, linters). In a checkout
 * of Baton itself, a report in the top folder would fail `npm test`'s format check.
 */
export const DEFAULT_DEMO_REPORT = path.join('.baton', 'demo-report.html');

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('deploy the bundled example app under load with every strategy, and show what clients saw')
    .option('--rate <n>', 'requests per second during the demo', '200')
    .option('--report <file>', 'where to write the HTML report', DEFAULT_DEMO_REPORT)
    .option('--no-report', 'do not write a report')
    .action(async (opts: { rate: string; report: string | false }) => {
      const { demoTable, runDemo } = await import('../../demo/demo.js');
      const out = (line: string): void => void process.stdout.write(`${line}\n`);
      const reportFile = opts.report === false ? null : path.resolve(opts.report);
      const rows = await runDemo({ rate: Number(opts.rate) || 200, reportFile, out });
      out('');
      out(demoTable(rows));
      out('');
      // Zero-downtime steps fail nothing; a bad canary fails only within its own share.
      const clean = rows.every(
        (r) => r.expect === 'some' || r.failed === (r.expect === 'canary-only' ? r.failedNew : 0),
      );
      out(
        clean
          ? 'Every zero-downtime step failed 0 requests; the bad canary failed only its own share before analysis stopped it; recreate, the stop-then-start way, failed many.'
          : 'SOME STEP FAILED REQUESTS IT SHOULD NOT HAVE: see the table above.',
      );
      if (reportFile) out(`report: ${reportFile}`);
      if (!clean) process.exitCode = 1;
    });
}
