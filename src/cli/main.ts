// The `baton` command line. Each command lives in commands/ and is a thin layer: it parses
// flags and calls a library function or the daemon's admin API.
import { Command, CommanderError } from 'commander';
import type { ApiError, ApiErrorBody } from '../api/error.js';
import { isBatonError, messageOf } from '../errors.js';
import { VERSION } from '../version.js';
import { registerDataPlane } from './commands/dataplane.js';
import { registerDemo } from './commands/demo.js';
import { registerDeploy } from './commands/deploy.js';
import { registerFollow } from './commands/follow.js';
import { registerFreeze } from './commands/freeze.js';
import { registerHosts } from './commands/hosts.js';
import { registerLifecycle } from './commands/lifecycle.js';
import { registerLoad } from './commands/load.js';
import { registerLogs } from './commands/logs.js';
import { registerPromote } from './commands/promote.js';
import { registerReport } from './commands/report.js';
import { registerStatus } from './commands/status.js';
import { registerTargets } from './commands/targets.js';
import { registerUp } from './commands/up.js';
import { registerValidate } from './commands/validate.js';
import { jsonRequested } from './options.js';

export function buildProgram(): Command {
  const program = new Command('baton')
    .description('Zero-downtime deploys for services on plain Linux servers.')
    .version(VERSION, '-V, --version', 'print the version')
    .showHelpAfterError('(run baton --help for usage)')
    // Root options only before the command: `baton deploy --version 1.2` is the deploy's.
    .enablePositionalOptions()
    .exitOverride();
  registerUp(program);
  registerDeploy(program);
  registerFollow(program);
  registerFreeze(program);
  registerStatus(program);
  registerPromote(program);
  registerLoad(program);
  registerReport(program);
  registerDemo(program);
  registerValidate(program);
  registerTargets(program);
  registerHosts(program);
  registerLogs(program);
  registerLifecycle(program);
  registerDataPlane(program);
  shortHints(program);
  return program;
}

/**
 * A usage error prints commander's line and one hint, not the whole help: a CI log then shows
 * what went wrong, and `--help` the rest.
 */
function shortHints(parent: Command, words = 'baton'): void {
  for (const c of parent.commands) {
    const name = `${words} ${c.name()}`;
    c.exitOverride().showHelpAfterError(`(run ${name} --help for usage)`);
    shortHints(c, name);
  }
}

export async function main(argv: string[]): Promise<number> {
  // With --json a failure is also one JSON line on stdout, where the script reads the answer;
  // the text line stays on stderr for the person reading the CI log.
  const json = jsonRequested(argv);
  try {
    await buildProgram().parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0. Commander printed the message.
      if (err.exitCode === 0) return 0;
      if (json) printErrorJson({ code: 'BATON_E_USAGE', message: err.message.replace(/^error: /, '') });
      return 2;
    }
    if (isBatonError(err)) {
      if (json) printErrorJson(err.toJSON());
      process.stderr.write(`baton: ${err.message}\n`);
      return err.exitCode;
    }
    if (json) printErrorJson({ code: 'BATON_E_INTERNAL', message: `unexpected error: ${messageOf(err)}` });
    process.stderr.write(
      `baton: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}

function printErrorJson(error: ApiError): void {
  const body: ApiErrorBody = { error };
  process.stdout.write(`${JSON.stringify(body)}\n`);
}

const code = await main(process.argv);
process.exitCode = code;
