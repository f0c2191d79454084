// The `hooks:` section of baton.yaml: the user's own shell lines run around a deploy. Each hook
// is a command (a string, with the defaults) or { command, timeout, passEnv }; src/hooks/ runs them.
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { durationRangeProblem, parseDuration } from '../units.js';

export const HOOK_NAMES = ['preDeploy', 'postSwitch', 'postDeploy', 'onFailure'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

const DEFAULT_TIMEOUT_MS = parseDuration(DEFAULTS.hooks.timeout)!;

/** A duration above zero, as the rest of baton.yaml writes them ("500ms", "30s", "1m30s"). */
const timeout = z.union([z.string(), z.number()]).transform((v, ctx): number => {
  const ms = typeof v === 'string' ? parseDuration(v) : v === 0 ? 0 : undefined;
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({
      code: 'custom',
      message:
        typeof v === 'number' && v !== 0
          ? `${v} has no unit: write a duration such as "${v}s"`
          : `"${v}" is not a timeout: write a duration above 0, e.g. 500ms, 30s, 2m`,
    });
    return z.NEVER;
  }
  const range = durationRangeProblem(String(v), ms);
  if (range !== undefined) {
    ctx.addIssue({ code: 'custom', message: range });
    return z.NEVER;
  }
  return ms;
});

const command = z.string().trim().min(1, { message: 'the shell command to run, e.g. ./scripts/check.sh' });

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'an environment variable name, e.g. BATON_ADMIN_TOKEN' });

export const hookSchema = z
  .union(
    [
      command,
      z.strictObject({
        /** Run by /bin/sh -c in the config file's folder; the version only ever comes in env. */
        command,
        timeout: timeout.prefault(DEFAULTS.hooks.timeout),
        /**
         * Baton's secrets this hook keeps (e.g. [BATON_ADMIN_TOKEN] to call the admin API); the
         * others, and all of them when left out, are taken out of its environment
         * (src/config/secrets.ts).
         */
        passEnv: z.array(envName).optional(),
      }),
    ],
    {
      error:
        'a command (./scripts/check.sh), or { command: ..., timeout: 30s, passEnv: [BATON_ADMIN_TOKEN] }',
    },
  )
  .transform((h) => (typeof h === 'string' ? { command: h, timeout: DEFAULT_TIMEOUT_MS } : h));

export const hooksSchema = z.strictObject({
  /** Before anything starts; failing refuses the deploy. */
  preDeploy: hookSchema.optional(),
  /** Right after all traffic moved to the new version; failing rolls it back. */
  postSwitch: hookSchema.optional(),
  /** After a successful deploy; a failure is logged and changes nothing. */
  postDeploy: hookSchema.optional(),
  /** After a failed or rolled-back deploy; a failure is logged and changes nothing. */
  onFailure: hookSchema.optional(),
});

export type HookConfig = z.output<typeof hookSchema>;
export type HooksConfig = z.output<typeof hooksSchema>;
