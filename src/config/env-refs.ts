// Secrets from the environment in notify URLs and headers: a whole value "$NAME" or "${NAME}",
// or "${NAME}" inside a longer value ("Bearer ${DEPLOY_TOKEN}"). And the one form of a URL that
// may be logged: scheme and host.

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const WHOLE_REF = /^\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})$/;
const INNER_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** "$NAME" or "${NAME}" as the whole value. */
export function isEnvRef(value: string): boolean {
  return WHOLE_REF.test(value);
}

/** The value with its environment references filled in, and the names that are not set. */
export function expandEnv(
  value: string,
  env: NodeJS.ProcessEnv,
): { readonly value: string; readonly missing: string[] } {
  const missing: string[] = [];
  const lookup = (name: string): string => {
    const v = env[name];
    if (v === undefined || v === '') missing.push(name);
    return v ?? '';
  };
  const whole = WHOLE_REF.exec(value);
  if (whole) return { value: lookup((whole[1] ?? whole[2])!), missing };
  return { value: value.replace(INNER_REF, (_, name: string) => lookup(name)), missing };
}

/** The names a value refers to ("$NAME", "${NAME}", "Bearer ${NAME}"). */
export function envRefs(value: string): string[] {
  const whole = WHOLE_REF.exec(value);
  if (whole) return [(whole[1] ?? whole[2])!];
  return [...value.matchAll(INNER_REF)].map((m) => m[1]!);
}

/** The value with each "${NAME}" replaced by a harmless word (to check the URL's shape). */
export function placeholdersFilled(value: string): string {
  return value.replace(INNER_REF, 'x');
}

/** The part of a URL that may be logged: "https://hooks.slack.com/…". */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '(not a URL)';
  }
}
