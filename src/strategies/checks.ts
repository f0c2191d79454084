// Extra analysis checks beyond the proxy's own counters: a JSON value from a URL (`web`) or a
// Prometheus instant query, compared with a condition such as "< 0.05" or ">= 99". Each
// returns null when it passes, else why not (a failure counts toward failureLimit).
import { request } from 'undici';
import type { AnalysisConfig } from '../config/schema.js';

export type ExtraCheck = NonNullable<AnalysisConfig['checks']>[number];

const CONDITION = /^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

export function parseCondition(text: string): ((v: number) => boolean) | undefined {
  const m = CONDITION.exec(text);
  if (!m) return undefined;
  const n = Number(m[2]);
  switch (m[1]) {
    case '<':
      return (v) => v < n;
    case '<=':
      return (v) => v <= n;
    case '>':
      return (v) => v > n;
    case '>=':
      return (v) => v >= n;
    case '==':
      return (v) => v === n;
    default:
      return (v) => v !== n;
  }
}

/** `a.b[0].c` into an object. */
export function atPath(value: unknown, path: string): unknown {
  let v = value;
  for (const part of path.match(/[^.[\]]+/g) ?? []) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await request(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { accept: 'application/json' },
  });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`${url} answered ${res.statusCode}`);
  return JSON.parse(text) as unknown;
}

export async function runCheck(
  check: ExtraCheck,
  vars: Record<string, string>,
  timeoutMs: number,
): Promise<string | null> {
  const fill = (s: string): string =>
    s.replace(/\{(version|previousVersion|service)\}/g, (_, k: string) => vars[k] ?? '');
  const name = check.name ?? ('web' in check ? 'web check' : 'prometheus query');
  let value: unknown;
  try {
    if ('web' in check) {
      value = atPath(await getJson(fill(check.web.url), timeoutMs), check.web.jsonPath);
    } else {
      const q = fill(check.prometheus.query);
      const url = `${check.prometheus.url.replace(/\/$/, '')}/api/v1/query?query=${encodeURIComponent(q)}`;
      value = atPath(await getJson(url, timeoutMs), 'data.result[0].value[1]');
    }
  } catch (err) {
    return `${name}: ${(err as Error).message}`;
  }
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isFinite(n))
    return `${name}: no number at the path (got ${JSON.stringify(value) ?? 'nothing'})`;
  const condition = 'web' in check ? check.web.condition : check.prometheus.condition;
  return parseCondition(condition)!(n) ? null : `${name}: ${n} is not ${condition.trim()}`;
}
