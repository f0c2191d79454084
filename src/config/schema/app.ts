// The app: section of baton.yaml: how Baton starts, checks, warms up and stops each instance of
// the app it deploys.
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { healthSchema } from './proxy.js';
import { duration, fail, positiveDuration, splitsWithoutShell } from './values.js';

const portRange = z.string().transform((v, ctx): { from: number; to: number } => {
  const m = /^(\d{1,5})\s*-\s*(\d{1,5})$/.exec(v.trim());
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from < 1 || to > 65535 || from > to) {
    return fail(ctx, `"${v}" is not a port range: write e.g. 8081-8099`);
  }
  return { from, to };
});

const W = DEFAULTS.warmup;

export const appSchema = z.strictObject({
  /** Run without a shell; {port} and {version} are filled in after splitting into words. */
  command: z
    .string()
    .min(1, { message: 'the command that starts one instance, e.g. node app.js --port {port}' })
    .superRefine(splitsWithoutShell),
  instances: z.number().int().min(1).max(256).prefault(DEFAULTS.app.instances),
  /** With hosts: instances on each host (instances = this × hosts). */
  instancesPerHost: z.number().int().min(1).max(64).optional(),
  ports: portRange.optional(),
  health: healthSchema.prefault({}),
  readyTimeout: positiveDuration.prefault(DEFAULTS.app.readyTimeout),
  drainTimeout: duration.prefault(DEFAULTS.app.drainTimeout),
  stopSignal: z
    .enum(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'])
    .prefault(DEFAULTS.app.stopSignal),
  stopTimeout: duration.prefault(DEFAULTS.app.stopTimeout),
  env: z.record(z.string(), z.string()).prefault({}),
  /** Working directory, relative to the config file's folder. */
  cwd: z.string().optional(),
  /** Requests sent straight to each new instance once ready, before it takes real traffic. */
  warmup: z
    .strictObject({
      paths: z
        .array(z.string().startsWith('/', { message: 'must start with /' }))
        .min(1)
        .prefault([...W.paths]),
      count: z.number().int().min(1).max(100_000).prefault(W.count),
      concurrency: z.number().int().min(1).max(256).prefault(W.concurrency),
      timeout: positiveDuration.prefault(W.timeout),
    })
    .optional(),
  /** Weight ramp of a new instance as it enters rotation (next to instances already serving). */
  slowStart: duration.prefault(DEFAULTS.app.slowStart),
  /**
   * Passive health of each instance, as a target's (targets:) and nginx's max_fails /
   * fail_timeout: this many failed requests within failTimeout take it out for failTimeout.
   */
  maxFails: z.number().int().min(0).prefault(DEFAULTS.maxFails),
  failTimeout: positiveDuration.prefault(DEFAULTS.failTimeout),
});

export type AppConfig = z.output<typeof appSchema>;
