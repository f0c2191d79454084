// The deployment in progress, as the controller holds it while it runs: its abort signal, its
// progress so far, `baton promote` / `pause` / `resume`, and the instances it started. And the
// wait of a pause step, which those control.
import type { StrategyConfig } from '../config/schema.js';
import type { MatchSpec } from '../edge/edge.js';
import type { Verdict } from '../strategies/analysis.js';
import type { Managed } from '../strategies/strategy.js';
import type { Emit, ProgressEvent } from './events.js';
import type { DeploymentState, HistoryEntry } from './state.js';

/** How a deployment moves traffic: a configured strategy, or the instant switch back. */
export type Plan =
  | { readonly kind: 'strategy'; readonly config: StrategyConfig }
  | { readonly kind: 'switch-back'; readonly to: Managed[] };

export interface Running {
  readonly deployment: DeploymentState;
  readonly abort: AbortController;
  readonly events: ProgressEvent[];
  readonly listeners: Set<(e: ProgressEvent) => void>;
  readonly done: Promise<HistoryEntry>;
  /** `baton promote` / `pause` / `resume` for steps that wait. */
  readonly control: { promote: 'none' | 'step' | 'full'; paused: boolean; wake: (() => void) | null };
  /** The canary's split and analysis so far, for status. */
  canary: { percent: number; rules: MatchSpec[]; verdicts: Verdict[] } | null;
  /** Every instance this deployment started, to stop the ones a failure left behind. */
  readonly started: Managed[];
  /**
   * Set once it goes back (a rollback step) or its state could not be written: from then on a
   * state write that fails is retried later instead of stopping the way back halfway.
   */
  unwinding: boolean;
  /** Why a rollback started without its state on disk (it runs anyway), or null. */
  unsavedAtStart: string | null;
}

/** A pause step: `ms` of unpaused time, or until promoted; throws when aborted. */
export async function waitStep(
  running: Running,
  ms: number | null,
  emit: Emit,
): Promise<'elapsed' | 'step' | 'full'> {
  const c = running.control;
  let left = ms ?? Infinity;
  let last = Date.now();
  let reported = false;
  for (;;) {
    if (running.abort.signal.aborted) throw running.abort.signal.reason as Error;
    if (c.promote !== 'none') {
      const how = c.promote;
      if (how === 'step') c.promote = 'none';
      emit({
        kind: 'info',
        message: how === 'full' ? 'promoted: skipping to 100%' : 'promoted: next step',
      });
      return how;
    }
    const now = Date.now();
    if (!c.paused) left -= now - last;
    last = now;
    if (left <= 0) return 'elapsed';
    if (c.paused && !reported) {
      emit({ kind: 'info', message: 'paused by `baton pause`; `baton resume` to go on' });
      reported = true;
    } else if (!c.paused) reported = false;
    // One abort listener per wait, removed after it: a long pause must not pile them up.
    const onAbort = (): void => c.wake?.();
    running.abort.signal.addEventListener('abort', onAbort, { once: true });
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(left, 250));
      c.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    running.abort.signal.removeEventListener('abort', onAbort);
    c.wake = null;
  }
}
