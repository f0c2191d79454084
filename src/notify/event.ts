// What a notification says: one deploy event (started, a step, paused, the result) with the
// deployment it belongs to. Built from the controller's progress events; both the Slack message
// and the generic webhook's JSON are made from it.
import type { DeployProof } from '../api/proof.js';
import type { ProgressEvent } from '../controller/events.js';
import type { DeploymentState } from '../controller/state.js';
import type { NotifyEventType } from '../config/schema.js';

export interface Notification {
  readonly event: NotifyEventType;
  readonly service: string;
  readonly time: string;
  /** The progress line, as `baton deploy` prints it. */
  readonly message: string;
  readonly deployment: {
    readonly id: string;
    readonly version: string;
    readonly previousVersion: string | null;
    readonly strategy: string;
    readonly actor: string;
    readonly startedAt: string;
    readonly rollback: boolean;
    readonly forced: boolean;
  };
  /** On 'step'. */
  readonly step?: string;
  readonly elapsedMs: number;
  /** On the result events. */
  readonly durationMs?: number;
  readonly reason?: string | null;
  /**
   * On the result events: what the edge saw during the deploy (src/api/proof.ts), without its
   * time series and marks (GET /v1/history and `baton report` have them); null: not counted.
   */
  readonly proof?: Omit<DeployProof, 'series' | 'marks'> | null;
}

/** The notification for a progress event, or null for events that are never sent ('info'). */
export function notificationOf(e: ProgressEvent, d: DeploymentState, service: string): Notification | null {
  const kind = e.kind as string;
  let event: NotifyEventType;
  if (kind === 'start') event = 'started';
  // A canary step that waits (for its time or for `baton promote`) is a 'paused' event.
  else if (kind === 'paused' || (kind === 'step' && e.step === 'paused')) event = 'paused';
  else if (kind === 'step') event = 'step';
  else if (kind === 'done' && e.result) event = e.result;
  else return null;
  return {
    event,
    service,
    time: e.time,
    message: e.message,
    deployment: {
      id: d.id,
      version: d.version,
      previousVersion: d.previousVersion,
      strategy: d.strategy,
      actor: d.actor,
      startedAt: d.startedAt,
      rollback: d.rollback,
      forced: d.forced ?? false,
    },
    ...(e.step !== undefined ? { step: e.step } : {}),
    elapsedMs: e.elapsedMs,
    ...(e.entry
      ? { durationMs: e.entry.durationMs, reason: e.entry.reason, proof: summaryOf(e.entry.proof) }
      : {}),
  };
}

function summaryOf(p: DeployProof | null | undefined): Omit<DeployProof, 'series' | 'marks'> | null {
  if (!p) return null;
  const { series: _series, marks: _marks, ...summary } = p;
  return summary;
}
