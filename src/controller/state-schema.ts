// The shape of service.json and of each history.jsonl line, checked when read: a file that is
// valid JSON but not what Baton wrote is refused before any instance is adopted, started or
// stopped. Objects are loose: a field a later Baton adds is kept, not dropped.
import { z } from 'zod';
import type { StrategyType } from '../config/schema.js';
import type { DeployStep } from '../strategies/strategy.js';
import type { DeployResult } from './state.js';

// Records, so that the compiler says when a step or a strategy is added and missing here.
const STEPS: Record<DeployStep, true> = {
  starting: true,
  verifying: true,
  switching: true,
  batch: true,
  draining: true,
  stopping: true,
  'rolling-back': true,
  weight: true,
  paused: true,
  promoting: true,
  finishing: true,
};
const STRATEGIES: Record<StrategyType, true> = {
  'blue-green': true,
  rolling: true,
  recreate: true,
  canary: true,
  ab: true,
};
const RESULTS: Record<DeployResult, true> = { succeeded: true, failed: true, 'rolled-back': true };

const keys = <K extends string>(r: Record<K, true>): [K, ...K[]] => Object.keys(r) as [K, ...K[]];
const strategy = z.enum(keys(STRATEGIES));

export const instanceRecordSchema = z.looseObject({
  id: z.string().min(1),
  version: z.string().min(1),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  // Signalled as a process group (kill -pid): 0 or 1 would reach the daemon's own group, or
  // every process there is.
  pid: z.number().int().min(2),
  logFile: z.string(),
  startedAt: z.string(),
  // The process's identity (drivers/driver.ts); absent in files of an older Baton.
  startTime: z.number().int().min(0).optional(),
  bootId: z.string().optional(),
  instanceId: z.string().optional(),
});

const releaseSchema = z.looseObject({
  version: z.string().min(1),
  instances: z.array(instanceRecordSchema),
});

const deploymentSchema = z.looseObject({
  id: z.string(),
  version: z.string(),
  previousVersion: z.string().nullable(),
  strategy,
  actor: z.string(),
  startedAt: z.string(),
  rollback: z.boolean(),
  forced: z.boolean().optional(),
  step: z.enum(keys(STEPS)),
  detail: z.string(),
  replacing: z.array(instanceRecordSchema).optional(),
  started: z.array(instanceRecordSchema),
});

export const serviceStateSchema = z.looseObject({
  format: z.literal(1, { error: 'must be 1 (a file of another format was written by another Baton)' }),
  live: releaseSchema.nullable(),
  standby: releaseSchema.extend({ stopAt: z.string() }).nullable(),
  deployment: deploymentSchema.nullable(),
  lastRecovery: z.string().nullable(),
  orphans: z.array(instanceRecordSchema).optional(),
});

export const historyEntrySchema = z.looseObject({
  id: z.string(),
  version: z.string(),
  previousVersion: z.string().nullable(),
  strategy,
  actor: z.string(),
  rollback: z.boolean(),
  forced: z.boolean().optional(),
  startedAt: z.string(),
  endedAt: z.string(),
  durationMs: z.number(),
  result: z.enum(keys(RESULTS)),
  reason: z.string().nullable(),
});
