// What the controller persists in stateDir, written atomically before every step: the live
// release, the blue-green standby set, the deployment in progress (with its step), and the
// history of every deploy as JSON lines.
import type { HistoryEntry } from '../api/deploy.js';
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { InstanceRecord } from '../drivers/driver.js';
import type { StrategyType } from '../config/schema.js';
import { BatonError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../state/atomic.js';
import { readStateFile } from '../state/read.js';
import type { DeployStep } from '../strategies/strategy.js';
import { historyEntrySchema, serviceStateSchema } from './state-schema.js';

export interface ReleaseState {
  readonly version: string;
  readonly instances: readonly InstanceRecord[];
}

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

// How a deploy ended and its history line: the wire types, defined once in src/api/.
export type { DeployResult, HistoryEntry } from '../api/deploy.js';

/** What failed, where, and what to do about it. */
function writeError(file: string, err: unknown): BatonError {
  const code = (err as NodeJS.ErrnoException).code;
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? `: the disk of ${path.dirname(file)} is full; free space there`
      : code === 'EROFS'
        ? ': the file system is read-only'
        : code === 'EACCES' || code === 'EPERM'
          ? `: no permission; check who owns ${path.dirname(file)}`
          : '';
  return new BatonError('BATON_E_STATE', `cannot write ${file} (${messageOf(err)})${hint}`, { cause: err });
}

export class StateStore {
  readonly stateFile: string;
  readonly historyFile: string;

  constructor(stateDir: string) {
    this.stateFile = path.join(stateDir, 'service.json');
    this.historyFile = path.join(stateDir, 'history.jsonl');
  }

  load(): ServiceState {
    // Checked before anything acts on it: a wrong shape would leave the live instances unmanaged.
    const state = readStateFile(
      this.stateFile,
      serviceStateSchema,
      'fix it, or move it aside to start with no live release (the instances it lists then keep running, unmanaged: stop them yourself)',
    );
    return state ?? { format: 1, live: null, standby: null, deployment: null, lastRecovery: null };
  }

  /** Throws BATON_E_STATE naming the file when it cannot be written; the old one stays whole. */
  save(state: ServiceState): void {
    try {
      writeFileAtomic(this.stateFile, `${JSON.stringify(state, null, 2)}\n`);
    } catch (err) {
      throw writeError(this.stateFile, err);
    }
  }

  /** Throws BATON_E_STATE when the line cannot be written, leaving no part of it in the file. */
  append(entry: HistoryEntry): void {
    let fd: number;
    try {
      fd = openSync(this.historyFile, 'a');
    } catch (err) {
      throw writeError(this.historyFile, err);
    }
    try {
      const size = fstatSync(fd).size;
      try {
        writeFileSync(fd, `${JSON.stringify(entry)}\n`);
      } catch (err) {
        // A full disk may have taken part of it: cut that off, or the next line would join it.
        try {
          ftruncateSync(fd, size);
        } catch {
          // the reader skips a torn line
        }
        throw writeError(this.historyFile, err);
      }
    } finally {
      closeSync(fd);
    }
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
        // A line of another shape (edited by hand) is skipped like a torn one, not shown broken.
        const entry = historyEntrySchema.safeParse(JSON.parse(line));
        if (entry.success) entries.push(entry.data);
      } catch {
        // A torn last line after a crash: skip it.
      }
    }
    return entries.slice(-limit).reverse();
  }
}

/**
 * Every instance the state records as Baton's (by id: pids of different hosts collide): the
 * live and standby sets, a deployment's old and new ones, and with `orphans` those whose stop
 * failed.
 */
export function recordedInstances(st: ServiceState, { orphans = false } = {}): Map<string, InstanceRecord> {
  const records = new Map<string, InstanceRecord>();
  for (const r of [
    ...(st.live?.instances ?? []),
    ...(st.standby?.instances ?? []),
    // The set it was replacing: once traffic moved, `live` no longer lists it.
    ...(st.deployment?.replacing ?? []),
    ...(st.deployment?.started ?? []),
    ...(orphans ? (st.orphans ?? []) : []),
  ])
    records.set(r.id, r);
  return records;
}
