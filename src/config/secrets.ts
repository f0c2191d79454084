// Baton's secrets in its own environment: the admin token and every variable the config names
// as holding one (a remote edge's tokenEnv, notify's webhookEnv / urlEnv and the $NAME
// references in notify URLs and headers). The app's instances never get them (locally, nor
// through ssh's SendEnv); a hook only those it lists in passEnv.
import type { BatonConfig } from './schema.js';
import { envRefs } from './env-refs.js';

export const ADMIN_TOKEN_ENV = 'BATON_ADMIN_TOKEN';

/** The names of the variables holding Baton's secrets under `config` (BATON_ADMIN_TOKEN first). */
export function secretEnvNames(config: Pick<BatonConfig, 'edge' | 'edges' | 'notify'>): string[] {
  const names = new Set<string>([ADMIN_TOKEN_ENV]);
  for (const e of config.edges ?? [config.edge]) {
    if (e.type === 'builtin' && e.admin !== undefined) names.add(e.tokenEnv);
  }
  const { slack, webhook } = config.notify;
  if (slack?.webhookEnv) names.add(slack.webhookEnv);
  if (slack?.webhook) for (const n of envRefs(slack.webhook)) names.add(n);
  if (webhook?.urlEnv) names.add(webhook.urlEnv);
  if (webhook?.url) for (const n of envRefs(webhook.url)) names.add(n);
  for (const v of Object.values(webhook?.headers ?? {})) for (const n of envRefs(v)) names.add(n);
  return [...names];
}

/** A copy of `env` without the variables `names`. */
export function withoutSecrets(env: NodeJS.ProcessEnv, names: Iterable<string>): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const n of names) delete copy[n];
  return copy;
}

/** The environment the app's instances start from: the daemon's, without Baton's secrets. */
export function instanceBaseEnv(
  config: Pick<BatonConfig, 'edge' | 'edges' | 'notify'>,
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  return withoutSecrets(env, secretEnvNames(config));
}
