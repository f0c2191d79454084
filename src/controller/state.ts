// What the controller persists in stateDir, written atomically before every step: the live
// release, the blue-green standby set, the deployment in progress (with its step), and the
// history of every deploy as JSON lines.
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { InstanceRecord } from '../drivers/driver.js';
import type { StrategyType } from '../config/schema.js';
import { BatonError } from '../errors.js';
import { readJson, writeFileAtomic } from '../state/atomic.js';

export interface ReleaseState {
  readonly version: string;
  readonly instances: readonly InstanceRecord[];
}

/** Steps a deployment passes through; persisted before each one starts. */
export type DeployStep =
  | 'starting'
  | 'verifying'
  | 'switching'
  | 'batch'
  | 'draining'
  | 'stopping'
  | 'rolling-back'
  | 'weight'
  | 'paused'
  | 'promoting'
  | 'finishing';

export interface DeploymentState {
  readonly id: string;
  readonly version: string;
  readonly previousVersion: string | null;
  readonly strategy: StrategyType;
  readonly actor: string;
  readonly startedAt: string;
  readonly rollback: boolean;
  readonly forced?: boolean;
  step: DeployStep;
  detail: string;
  /** The live instances when it started: the release to go back to after a crash. */
  readonly replacing?: readonly InstanceRecord[];
  /** Every instance this deployment started (to stop or adopt after a crash). */
  started: InstanceRecord[];
}

export interface ServiceState {
  readonly format: 1;
  live: ReleaseState | null;
  /** The previous blue-green set, kept running until `stopAt` for an instant rollback. */
  standby: (ReleaseState & { readonly stopAt: string }) | null;
  deployment: DeploymentState | null;
  /** What the last daemon start found and did, when it had to recover. */
  lastRecovery: string | null;
  /**
   * Instances Baton had to stop but could not (their host unreachable): tried again until
   * they are gone. Absent in files written before it existed.
   */
  orphans?: InstanceRecord[];
}

export type DeployResult = 'succeeded' | 'failed' | 'rolled-back';

export interface HistoryEntry {
  readonly id: string;
  readonly version: string;
  readonly previousVersion: string | null;
  readonly strategy: StrategyType;
  readonly actor: string;
  readonly rollback: boolean;
  readonly forced?: boolean;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly result: DeployResult;
  readonly reason: string | null;
}

export class StateStore {
  readonly stateFile: string;
  readonly historyFile: string;

  constructor(stateDir: string) {
    this.stateFile = path.join(stateDir, 'service.json');
    this.historyFile = path.join(stateDir, 'history.jsonl');
  }

  load(): ServiceState {
    let raw: unknown;
    try {
      raw = readJson(this.stateFile);
    } catch (err) {
      throw new BatonError(
        'BATON_E_STATE',
        `${this.stateFile} is not valid JSON; move it aside to start fresh`,
        {
          cause: err,
        },
      );
    }
    if (raw === undefined)
      return { format: 1, live: null, standby: null, deployment: null, lastRecovery: null };
    if ((raw as { format?: unknown }).format !== 1) {
      throw new BatonError(
        'BATON_E_STATE',
        `${this.stateFile} has an unknown format; move it aside to start fresh`,
      );
    }
    return raw as ServiceState;
  }

  save(state: ServiceState): void {
    writeFileAtomic(this.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  }

  append(entry: HistoryEntry): void {
    appendFileSync(this.historyFile, `${JSON.stringify(entry)}\n`);
  }

  history(limit = 50): HistoryEntry[] {
    let text: string;
    try {
      text = readFileSync(this.historyFile, 'utf8');
    } catch {
      return [];
    }
    const entries: HistoryEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        entries.push(JSON.parse(line) as HistoryEntry);
      } catch {
        // A torn last line after a crash: skip it.
      }
    }
    return entries.slice(-limit).reverse();
  }
}
