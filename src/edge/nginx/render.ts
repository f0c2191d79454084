// The upstream file Baton owns for the nginx edge, rendered from the routes as plain text (no
// I/O here). It holds:
// - `upstream <service>`: every route, canary weights folded in, so the user's own
//   `proxy_pass http://<service>;` follows the canary share, health checks and slow start;
// - `upstream <service>_canary` while a split has canary routes, for A/B rules;
// - `map`/`geo` blocks ending in `$baton_<service>`, which names one of the two upstreams per
//   request: `proxy_pass http://$baton_<service>;` is what makes A/B rules work.
import { DEFAULTS } from '../../config/defaults.js';
import type { BalanceConfig } from '../../config/schema.js';
import { parseDuration } from '../../config/units.js';
import { EdgeError, targetId, type MatchSpec, type RouteSpec, type SplitSpec } from '../edge.js';
import { splitWeights } from '../split-weights.js';

/** Slow start moves a new target through 1/4, 2/4, 3/4 of its weight, then full weight. */
export const RAMP_STEPS = 4;

/** A route without its own (none from app: or targets:, which fill them in) gets the config's defaults. */
const DEFAULT_MAX_FAILS: number = DEFAULTS.maxFails;
const DEFAULT_FAIL_TIMEOUT_MS = parseDuration(DEFAULTS.failTimeout) ?? 10_000;
const INDENT = '    ';

export interface UpstreamState {
  readonly service: string;
  readonly routes: readonly RouteSpec[];
  readonly split: SplitSpec | null;
  readonly balance: BalanceConfig;
  /** Idle upstream connections per worker (`keepalive`), 0 for none. */
  readonly keepalive: number;
  /** Targets Baton's health checks took out: rendered `down`. */
  readonly down: ReadonlySet<string>;
  /** Targets in slow start: id → quarters of their weight (1..RAMP_STEPS-1). */
  readonly ramp: ReadonlyMap<string, number>;
}

interface Server {
  readonly route: RouteSpec;
  readonly weight: number;
  readonly backup: boolean;
}

/** `$baton_web` for service `web` (nginx variable names take no `-`). */
export function selectorVariable(service: string): string {
  return `baton_${service.replace(/-/g, '_')}`;
}

export function canaryUpstream(service: string): string {
  return `${service}_canary`;
}

/** The comment that opens the file: who owns it, and which version of it this is. */
export function fileHeader(service: string, generation: number, time: Date): string {
  const v = selectorVariable(service);
  return [
    `# Managed by Baton for service ${service}: Baton rewrites this whole file on every change,`,
    '# so edits made here are lost. Include it inside http {} in nginx.conf.',
    `# generation ${generation}, written ${time.toISOString()}`,
    '#',
    `# proxy_pass http://${service}; follows the weights, the canary share and health checks.`,
    `# A/B rules need proxy_pass http://$${v}; ($${v} is ${service}, or ${canaryUpstream(service)}`,
    '# for a request that matches a rule).',
    '',
  ].join('\n');
}

/** The generation number in a file written by fileHeader, 0 when there is none. */
export function parseGeneration(text: string): number {
  const m = /^# generation (\d+),/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Everything after the header: the upstream blocks and the selector variable. */
export function renderUpstream(s: UpstreamState): string {
  const v = selectorVariable(s.service);
  const split = s.split && s.routes.some((r) => r.canary && !r.backup) ? s.split : null;
  const main = mainServers(s.routes, split);
  // A named sticky key keeps a client on its side while both sides take requests; Baton's own
  // cookie ('baton') cannot be set by nginx, so that share is per request.
  const bothSides = [true, false].every((c) =>
    main.some((sv) => !sv.backup && Boolean(sv.route.canary) === c),
  );
  const sticky = split && bothSides && split.sticky !== 'baton' ? split.sticky : null;
  const balance = balanceKey(s.balance, `${v}_hash`);
  const mainKey = sticky ? hashKeyOf(sticky, `${v}_sticky`) : balance;

  const blocks: string[][] = [...mainKey.blocks];
  blocks.push(upstreamBlock(s, s.service, main, mainKey.directive));
  if (split) {
    if (sticky) blocks.push(...balance.blocks);
    blocks.push(upstreamBlock(s, canaryUpstream(s.service), canaryServers(s.routes), balance.directive));
  }
  blocks.push(...selector(s.service, split));
  return blocks.map((b) => b.join('\n')).join('\n\n') + '\n';
}

/**
 * `upstream <service>`: without a split every route at its weight; with one, each side's weights
 * scaled so the canary side gets `canaryPercent` of the requests (a side at 0% is left out).
 */
function mainServers(routes: readonly RouteSpec[], split: SplitSpec | null): Server[] {
  const primary = routes.filter((r) => !r.backup);
  const sum = (canary: boolean): number =>
    primary.filter((r) => Boolean(r.canary) === canary).reduce((n, r) => n + r.weight, 0);
  const factor = split
    ? sideFactors(sum(false), sum(true), split.canaryPercent)
    : { stable: 1, canary: null };
  const servers: Server[] = [];
  for (const r of primary) {
    const f = split && r.canary ? factor.canary : factor.stable;
    if (f !== null) servers.push({ route: r, weight: r.weight * f, backup: false });
  }
  for (const r of routes) if (r.backup) servers.push({ route: r, weight: r.weight, backup: true });
  return servers;
}

/** splitWeights on summed route weights; a side with no weight at all never takes the other out. */
function sideFactors(
  stable: number,
  canary: number,
  percent: number,
): { stable: number | null; canary: number | null } {
  if (stable === 0) return { stable: null, canary: 1 };
  if (canary === 0) return { stable: 1, canary: null };
  return splitWeights(stable, canary, percent);
}

/**
 * `upstream <service>_canary`: the canary routes; everything else as `backup`, so an A/B request
 * still gets an answer while no canary is up (as the built-in proxy falls back to stable).
 */
function canaryServers(routes: readonly RouteSpec[]): Server[] {
  return [
    ...routes
      .filter((r) => r.canary && !r.backup)
      .map((r) => ({ route: r, weight: r.weight, backup: false })),
    ...routes.filter((r) => !r.canary || r.backup).map((r) => ({ route: r, weight: r.weight, backup: true })),
  ];
}

function upstreamBlock(
  s: UpstreamState,
  name: string,
  servers: Server[],
  balancing: string | null,
): string[] {
  const lines = [`upstream ${name} {`];
  // nginx wants the balancing method before `keepalive`.
  if (balancing) lines.push(INDENT + balancing);
  const hashed = balancing?.startsWith('hash ') ?? false;
  const kept = hashed ? servers.filter((sv) => !sv.backup) : servers;
  if (kept.length < servers.length) {
    lines.push(`${INDENT}# backup servers left out: nginx's hash balancing has no backup servers`);
  }
  // A ramping target is at 1..3 quarters while everyone else is at 4 quarters of their weight.
  const scale = s.ramp.size > 0 ? RAMP_STEPS : 1;
  for (const sv of kept) lines.push(INDENT + serverLine(sv, s, scale));
  if (!kept.some((sv) => !sv.backup)) {
    lines.push(`${INDENT}# no targets: a placeholder that is down, so nginx answers 502 and still loads`);
    lines.push(`${INDENT}server 127.0.0.1:1 down;`);
  }
  if (s.keepalive > 0) lines.push(`${INDENT}keepalive ${s.keepalive};`);
  lines.push('}');
  return lines;
}

function serverLine(sv: Server, s: UpstreamState, scale: number): string {
  const r = sv.route;
  const id = targetId(r);
  const quarters = sv.backup ? undefined : s.ramp.get(id);
  const notes: string[] = [];
  if (quarters !== undefined) notes.push(`slow start ${quarters}/${RAMP_STEPS}`);
  const unhealthy = s.down.has(id);
  if (unhealthy) notes.push('failing health checks');
  // nginx has no weight 0: such a target takes no requests, as `down`.
  if (sv.weight === 0) notes.push('weight 0');
  const down = unhealthy || sv.weight === 0;
  const weight = Math.max(1, sv.weight * (quarters ?? scale));
  // fail_timeout takes whole seconds only.
  const failTimeoutS = Math.ceil((r.failTimeoutMs ?? DEFAULT_FAIL_TIMEOUT_MS) / 1000);
  const line =
    `server ${id} weight=${weight} max_fails=${r.maxFails ?? DEFAULT_MAX_FAILS} fail_timeout=${failTimeoutS}s` +
    (sv.backup ? ' backup' : '') +
    (down ? ' down' : '') +
    ';';
  return notes.length > 0 ? `${line}  # ${notes.join(', ')}` : line;
}

interface Key {
  /** The balancing directive (`least_conn;`, `hash ... consistent;`), null for round-robin. */
  readonly directive: string | null;
  /** map blocks the directive's key needs. */
  readonly blocks: string[][];
}

function balanceKey(balance: BalanceConfig, variable: string): Key {
  if (balance.algorithm === 'least-conn') return { directive: 'least_conn;', blocks: [] };
  if (balance.algorithm !== 'hash') return { directive: null, blocks: [] };
  const key = balance.hashKey ?? 'ip';
  if (key === 'ip') return { directive: 'hash $remote_addr consistent;', blocks: [] };
  const [kind, name = ''] = key.split(':', 2);
  return hashKeyOf(kind === 'cookie' ? { cookie: name } : { header: name }, variable);
}

/**
 * `hash <key> consistent;` on a header or cookie (nginx's ketama respects weights). A request
 * without the key gets a random one ($request_id) instead of all sharing the hash of "".
 */
function hashKeyOf(source: { header: string } | { cookie: string }, variable: string): Key {
  const { expr, blocks } =
    'header' in source ? headerSource(source.header) : cookieSource(source.cookie, variable);
  const map = mapBlock(expr, variable, [
    ['""', '$request_id'],
    ['default', expr],
  ]);
  return { directive: `hash $${variable} consistent;`, blocks: [...blocks, map] };
}

/** `$baton_<service>`: the canary upstream when any A/B rule matches, else the main one. */
function selector(service: string, split: SplitSpec | null): string[][] {
  const v = selectorVariable(service);
  const rules = split?.rules ?? [];
  if (rules.length === 0) return [mapBlock('""', v, [['default', service]])];
  const blocks = rules.flatMap((rule, i) => ruleBlocks(rule, `${v}_r${i}`));
  const joined = quote(rules.map((_, i) => `$${v}_r${i}`).join(''));
  blocks.push(
    mapBlock(joined, v, [
      ['default', service],
      [quote('~1'), canaryUpstream(service)],
    ]),
  );
  return blocks;
}

/** A rule as a variable that is 1 when the request matches it, else 0. */
function ruleBlocks(rule: MatchSpec, variable: string): string[][] {
  if ('ip' in rule) {
    // The schema allows only hex digits, `.`, `:` and `/` here: safe unquoted.
    return [[`geo $${variable} {`, `${INDENT}default 0;`, `${INDENT}${rule.ip} 1;`, '}']];
  }
  const { expr, blocks } = 'header' in rule ? headerSource(rule.header) : cookieSource(rule.cookie, variable);
  // Regexes throughout: nginx compares plain map strings case-insensitively and treats some
  // (default, hostnames, include...) as keywords.
  const entries: [string, string][] =
    rule.equals !== undefined
      ? [
          ['default', '0'],
          [quote(`~^${regexEscape(rule.equals)}$`), '1'],
        ]
      : rule.prefix !== undefined
        ? [
            ['default', '0'],
            [quote(`~^${regexEscape(rule.prefix)}`), '1'],
          ]
        : rule.regex !== undefined
          ? [
              ['default', '0'],
              [quote(`~${rule.regex}`), '1'],
            ]
          : [
              ['default', '1'],
              ['""', '0'],
            ]; // present: any value (nginx cannot tell empty from absent)
  return [...blocks, mapBlock(expr, variable, entries)];
}

/** `$http_x_user` for header X-User; nginx has no variable for names with other characters. */
function headerSource(name: string): { expr: string; blocks: string[][] } {
  const v = name.toLowerCase().replace(/-/g, '_');
  if (!/^[a-z0-9_]+$/.test(v)) {
    throw new EdgeError(
      `header "${name}" cannot be read by nginx (its $http_ variables cover names of letters, digits, - and _ only): use such a header name in the A/B rule, sticky or hashKey setting`,
    );
  }
  return { expr: `$http_${v}`, blocks: [] };
}

/**
 * `$cookie_NAME` when nginx's variable can name the cookie; otherwise the value is taken out of
 * the Cookie header by a map (a `-` would end the variable name).
 */
function cookieSource(name: string, variable: string): { expr: string; blocks: string[][] } {
  if (/^[A-Za-z0-9_]+$/.test(name)) return { expr: `$cookie_${name}`, blocks: [] };
  const v = `${variable}_cookie`;
  const capture = `${v}_value`;
  const re = `~(?:^|;\\s*)${regexEscape(name)}=(?<${capture}>[^;]*)`;
  return {
    expr: `$${v}`,
    blocks: [
      mapBlock('$http_cookie', v, [
        ['default', '""'],
        [quote(re), `$${capture}`],
      ]),
    ],
  };
}

function mapBlock(
  source: string,
  variable: string,
  entries: readonly (readonly [string, string])[],
): string[] {
  return [`map ${source} $${variable} {`, ...entries.map(([k, val]) => `${INDENT}${k} ${val};`), '}'];
}

/** A PCRE pattern matching `s` literally. */
function regexEscape(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/** An nginx double-quoted string: its parser turns \\ \" \n \t \r back into the characters. */
function quote(s: string): string {
  const escaped = s
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
  return `"${escaped}"`;
}
