// The `hooks:` section of baton.yaml: the user's own shell lines run around a deploy. Each hook
// is a command (a string, with the defaults) or { command, timeout, passEnv }; src/hooks/ runs them.
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { durationRangeProblem, parseDuration } from '../units.js';
import { durationJson, editorSchemas } from './values.js';

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
editorSchemas.add(timeout, { jsonSchema: durationJson(1) });

const command = z.string().trim().min(1, { message: 'the shell command to run, e.g. ./scripts/check.sh' });

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'an environment variable name, e.g. BATON_ADMIN_TOKEN' });

export const hookSchema = z
  .union(
    [
      command,
      z.strictObject({
        command: command.describe(
          'Run by /bin/sh -c in this file\'s folder; the version comes only in its environment ("$BATON_VERSION").',
        ),
        timeout: timeout
          .prefault(DEFAULTS.hooks.timeout)
          .describe(
            'Still running then, it is stopped with its whole process group (SIGTERM, then SIGKILL).',
          ),
        // src/config/secrets.ts takes the secrets out.
        passEnv: z
          .array(envName)
          .optional()
          .describe(
            "Baton's secrets this hook keeps, e.g. [BATON_ADMIN_TOKEN] to call the admin API; the others, and all of them when left out, are taken out of its environment.",
          ),
      }),
    ],
    {
      error:
        'a command (./scripts/check.sh), or { command: ..., timeout: 30s, passEnv: [BATON_ADMIN_TOKEN] }',
    },
  )
  .transform((h) => (typeof h === 'string' ? { command: h, timeout: DEFAULT_TIMEOUT_MS } : h));

/** How each hook is written, said on each (an editor shows the key's description). */
const HOW = 'A command (./scripts/check.sh), or { command, timeout, passEnv }.';

export const hooksSchema = z.strictObject({
  preDeploy: hookSchema
    .optional()
    .describe(`Runs before anything starts; failing refuses the deploy. ${HOW}`),
  postSwitch: hookSchema
    .optional()
    .describe(`Runs right after all traffic moved to the new version; failing rolls it back. ${HOW}`),
  postDeploy: hookSchema
    .optional()
    .describe(`Runs after a successful deploy; a failure is logged and changes nothing. ${HOW}`),
  onFailure: hookSchema
    .optional()
    .describe(`Runs after a failed or rolled-back deploy; a failure is logged and changes nothing. ${HOW}`),
});

export type HookConfig = z.output<typeof hookSchema>;
export type HooksConfig = z.output<typeof hooksSchema>;
