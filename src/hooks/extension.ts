// Hooks as a controller extension: preDeploy before anything starts (failing refuses the
// deploy), postSwitch once all traffic is on the new version (failing rolls it back), then
// postDeploy after a success or onFailure after a failure or rollback (their failure is logged
// and changes nothing). Each runs the user's shell line with the deploy in its environment (and
// without Baton's secrets, but those it lists in passEnv); progress shows each hook and its
// result, the daemon log gets its output (bounded).
import { formatDuration } from '../config/units.js';
import type { BatonConfig } from '../config/schema.js';
import { secretEnvNames, withoutSecrets } from '../config/secrets.js';
import type { DeployExtension } from '../controller/events.js';
import type { DeploymentState, HistoryEntry } from '../controller/state.js';
import { BatonError } from '../errors.js';
import type { Logger } from '../log.js';
import { runShell, type ShellResult, type ShellRun } from './run.js';
import type { HookConfig, HookName, HooksConfig } from '../config/schema.js';
import { thenSentence } from '../util/text.js';

/** Output lines of one hook run written to the daemon log; the rest is counted, not logged. */
const MAX_LOGGED_LINES = 200;

type Info = (message: string) => void;

export class Hooks implements DeployExtension {
  private readonly running = new Set<ShellRun>();
  private closed = false;

  /** `config` is read at every hook, so a SIGHUP reload applies from the next one. */
  constructor(
    private readonly config: () => BatonConfig,
    private readonly log: Logger,
  ) {}

  async beforeStart(d: DeploymentState, info: Info): Promise<void> {
    await this.runOrThrow('preDeploy', d, info);
  }

  async afterSwitch(d: DeploymentState, info: Info): Promise<void> {
    await this.runOrThrow('postSwitch', d, info);
  }

  async afterEnd(d: DeploymentState, entry: HistoryEntry, info: Info): Promise<void> {
    const name: HookName = entry.result === 'succeeded' ? 'postDeploy' : 'onFailure';
    if (this.closed && this.config().hooks[name]) {
      this.log.warn({ deployment: d.id, hook: name }, 'hook not run: the daemon is stopping');
      return;
    }
    const failure = await this.run(name, d, info, {
      BATON_RESULT: entry.result,
      BATON_REASON: entry.reason ?? '',
    });
    if (failure) info(`${name} hook failed; the deploy's result stands`);
  }

  /** Daemon shutdown: running hooks are killed (a deploy does not wait for their timeout). */
  close(): void {
    this.closed = true;
    for (const r of this.running) r.kill();
  }

  private async runOrThrow(name: HookName, d: DeploymentState, info: Info): Promise<void> {
    const failure = await this.run(name, d, info, {});
    if (failure) throw new BatonError('BATON_E_DEPLOY_FAILED', failure);
  }

  /** Runs the hook if configured; the failure message, or null when it passed (or is not set). */
  private async run(
    name: HookName,
    d: DeploymentState,
    info: Info,
    extra: Record<string, string>,
  ): Promise<string | null> {
    const config = this.config();
    const hooks: HooksConfig = config.hooks;
    const hook: HookConfig | undefined = hooks[name];
    if (!hook) return null;
    const log = this.log.child({ deployment: d.id, hook: name });
    if (this.closed) {
      log.warn('hook not run: the daemon is stopping');
      return `${name} hook not run: the daemon is stopping`;
    }
    info(`${name} hook: running ${shorten(hook.command)}`);
    log.info({ command: hook.command, timeoutMs: hook.timeout }, 'hook started');
    let logged = 0;
    const run = runShell(hook.command, {
      cwd: config.baseDir,
      env: {
        ...withoutSecrets(
          process.env,
          secretEnvNames(config).filter((n) => !hook.passEnv?.includes(n)),
        ),
        BATON_HOOK: name,
        BATON_SERVICE: config.service,
        BATON_VERSION: d.version,
        BATON_PREVIOUS_VERSION: d.previousVersion ?? '',
        BATON_STRATEGY: d.strategy,
        BATON_ACTOR: d.actor,
        BATON_DEPLOY_ID: d.id,
        BATON_ROLLBACK: d.rollback ? '1' : '0',
        ...extra,
      },
      timeoutMs: hook.timeout,
      onLine: (line) => {
        if (++logged <= MAX_LOGGED_LINES) log.info({ output: line }, 'hook output');
      },
    });
    this.running.add(run);
    const r = await run.done.finally(() => this.running.delete(run));
    const took = formatDuration(r.durationMs);
    const omitted = Math.max(0, logged - MAX_LOGGED_LINES);
    const failure = failureOf(name, hook, r, this.closed);
    if (!failure) {
      log.info({ durationMs: r.durationMs, ...(omitted ? { omittedLines: omitted } : {}) }, 'hook passed');
      info(`${name} hook: passed in ${took}`);
      return null;
    }
    log.error(
      {
        code: r.code,
        signal: r.signal,
        timedOut: r.timedOut,
        durationMs: r.durationMs,
        ...(omitted ? { omittedLines: omitted } : {}),
      },
      failure,
    );
    info(`${name} hook: failed (${r.timedOut ? `timed out after ${took}` : how(r)})`);
    return failure;
  }
}

/** What went wrong, with the exit code and the last output lines; null when it passed. */
function failureOf(name: HookName, hook: HookConfig, r: ShellResult, stopping: boolean): string | null {
  if (!r.error && !r.timedOut && r.code === 0) return null;
  const what = `${name} hook \`${shorten(hook.command)}\``;
  const why = r.error
    ? `could not be started: ${r.error.message}`
    : r.timedOut
      ? `did not finish within its timeout (${formatDuration(hook.timeout)}); its process group was killed`
      : stopping && r.signal
        ? `was stopped: the daemon is stopping`
        : `${how(r)} after ${formatDuration(r.durationMs)}`;
  const output = r.tail.length ? r.tail.map((l) => `    ${l}`).join('\n') : '    (no output)';
  return `${thenSentence(`${what} ${why}`, 'Last output lines:')}\n${output}`;
}

function how(r: ShellResult): string {
  return r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
}

function shorten(command: string): string {
  const one = command.replace(/\s+/g, ' ').trim();
  return one.length > 80 ? `${one.slice(0, 79)}…` : one;
}
