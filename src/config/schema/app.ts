// The app: section of baton.yaml: how Baton starts, checks, warms up and stops each instance of
// the app it deploys.
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { healthSchema } from './proxy.js';
import { duration, editorSchemas, fail, positiveDuration, splitsWithoutShell } from './values.js';

const portRange = z.string().transform((v, ctx): { from: number; to: number } => {
  const m = /^(\d{1,5})\s*-\s*(\d{1,5})$/.exec(v.trim());
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from < 1 || to > 65535 || from > to) {
    return fail(ctx, `"${v}" is not a port range: write e.g. 8081-8099`);
  }
  return { from, to };
});
editorSchemas.add(portRange, {
  jsonSchema: { type: 'string', pattern: String.raw`^\s*\d{1,5}\s*-\s*\d{1,5}\s*$` },
});

const W = DEFAULTS.warmup;

export const appSchema = z.strictObject({
  command: z
    .string()
    .min(1, { message: 'the command that starts one instance, e.g. node app.js --port {port}' })
    .superRefine(splitsWithoutShell)
    .describe(
      "The command that starts one instance, run without a shell: {port}, {version}, {service} and {instance} are filled in after it is split into words (env PORT and BATON_VERSION are set too). For &&, | or redirections, use a script or sh -c '...'.",
    ),
  instances: z
    .number()
    .int()
    .min(1)
    .max(256)
    .prefault(DEFAULTS.app.instances)
    .describe('How many instances of each version serve traffic (with hosts: in all, spread over them).'),
  instancesPerHost: z
    .number()
    .int()
    .min(1)
    .max(64)
    .optional()
    .describe('With hosts: the instances on each host (instances = this × hosts).'),
  ports: portRange
    .optional()
    .describe(
      'The ports instances may use, e.g. 8081-8099: enough for a deploy at its peak (2 × instances for blue-green, canary and ab). Left out, free ports are picked.',
    ),
  health: healthSchema.prefault({}).describe('The readiness and health check of each instance.'),
  readyTimeout: positiveDuration
    .prefault(DEFAULTS.app.readyTimeout)
    .describe('How long a new instance may take to pass its health check before the deploy fails.'),
  drainTimeout: duration
    .prefault(DEFAULTS.app.drainTimeout)
    .describe(
      'How long requests in flight to an old instance may take to finish once it is out of rotation.',
    ),
  stopSignal: z
    .enum(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'])
    .prefault(DEFAULTS.app.stopSignal)
    .describe('The signal that asks an instance to stop (to its whole process group).'),
  stopTimeout: duration
    .prefault(DEFAULTS.app.stopTimeout)
    .describe('How long an instance may take to exit after stopSignal; then SIGKILL.'),
  env: z
    .record(z.string(), z.string())
    .prefault({})
    .describe("Variables added to each instance's environment (the daemon's, without Baton's secrets)."),
  cwd: z.string().optional().describe("The instances' working directory, relative to this file."),
  warmup: z
    .strictObject({
      paths: z
        .array(z.string().startsWith('/', { message: 'must start with /' }))
        .min(1)
        .prefault([...W.paths])
        .describe('The paths requested, each starting with /.'),
      count: z.number().int().min(1).max(100_000).prefault(W.count).describe('How many requests in all.'),
      concurrency: z
        .number()
        .int()
        .min(1)
        .max(256)
        .prefault(W.concurrency)
        .describe('How many requests at once.'),
      timeout: positiveDuration.prefault(W.timeout).describe('The deadline of each request.'),
    })
    .optional()
    .describe(
      "Requests sent straight to each new instance once it is ready, before it takes real traffic (a JVM's JIT, caches, connection pools).",
    ),
  slowStart: duration
    .prefault(DEFAULTS.app.slowStart)
    .describe(
      "How long a new instance's weight ramps from 1% to full once it is in rotation next to instances already serving (rolling, canary); 0s: at once.",
    ),
  maxFails: z
    .number()
    .int()
    .min(0)
    .prefault(DEFAULTS.maxFails)
    .describe(
      "Passive health, as nginx's max_fails: this many failed requests within failTimeout take an instance out for failTimeout; 0: never.",
    ),
  failTimeout: positiveDuration
    .prefault(DEFAULTS.failTimeout)
    .describe(
      "The window of maxFails, and how long a failed instance stays out (nginx's fail_timeout, whole seconds there).",
    ),
});

export type AppConfig = z.output<typeof appSchema>;
