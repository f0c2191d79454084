// The baton.yaml schema: strict (unknown keys are errors), every default a named constant
// (src/config/defaults.ts). Its sections live in schema/ (proxy, app, strategy, edges, hosts,
// hooks, notify, admin) and windows.ts; this file puts them together with the checks across
// sections. `BatonConfig` is the checked, defaulted and frozen result; `configJsonSchema()` gives
// editors a JSON Schema of the same file. Everything is exported from here. Config imports no
// other folder but process/ (the command-line split), so every folder may import it.
import { z } from 'zod';
import { DEFAULTS } from './defaults.js';
import { peakInstances } from './ports.js';
import { adminHostsSchema } from './schema/admin.js';
import { appSchema } from './schema/app.js';
import { edgeSchema } from './schema/edges.js';
import { hooksSchema } from './schema/hooks.js';
import { hostSchema, sshSchema } from './schema/hosts.js';
import { notifySchema } from './schema/notify.js';
import { balanceSchema, healthSchema, proxySchema, targetSchema, type TargetConfig } from './schema/proxy.js';
import { strategySchema } from './schema/strategy.js';
import { hstsSchema, tlsSchema } from './schema/tls.js';
import { listenAddress } from './schema/values.js';
import { formatAddress } from './address.js';
import { editorJsonSchema } from './json-schema.js';
import { formatDuration } from './units.js';
import { windowsSchema } from './windows.js';

export { DEFAULTS, EDGE_DEFAULTS } from './defaults.js';
export { adminHostsSchema, normalizeHostName } from './schema/admin.js';
export { appSchema, type AppConfig } from './schema/app.js';
export { edgeSchema, type EdgeConfig } from './schema/edges.js';
export {
  HOOK_NAMES,
  hookSchema,
  hooksSchema,
  type HookConfig,
  type HookName,
  type HooksConfig,
} from './schema/hooks.js';
export { hostSchema, sshSchema, type HostConfig } from './schema/hosts.js';
export {
  NOTIFY_EVENTS,
  notifySchema,
  slackSchema,
  webhookSchema,
  type NotifyConfig,
  type NotifyEventType,
  type SlackConfig,
  type WebhookConfig,
} from './schema/notify.js';
export {
  accessLogSchema,
  balanceSchema,
  healthSchema,
  proxySchema,
  targetSchema,
  type BalanceConfig,
  type HealthConfig,
  type ProxyConfig,
  type TargetConfig,
} from './schema/proxy.js';
export {
  STRATEGY_TYPES,
  analysisSchema,
  defaultStrategyConfig,
  matchSchema,
  stickySchema,
  strategySchema,
  type AnalysisConfig,
  type CanaryConfig,
  type MatchConfig,
  type StrategyConfig,
  type StrategyType,
} from './schema/strategy.js';
export {
  acmeSchema,
  certificateSchema,
  hstsHeader,
  hstsSchema,
  tlsSchema,
  type AcmeConfig,
  type HstsConfig,
  type TlsConfig,
} from './schema/tls.js';

export const configSchema = z
  .strictObject({
    service: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { message: 'lower-case letters, digits, - and _ (e.g. web)' })
      .describe(
        'The name of the service: lower-case letters, digits, - and _ (e.g. web). It names the upstream Baton writes for nginx (upstream web { ... }).',
      ),
    listen: listenAddress
      .optional()
      .describe(
        'Where clients connect to the built-in edge: host:port ([::1]:port) or unix:/path.sock. Leave it out with nginx or HAProxy: the client port is theirs.',
      ),
    tls: tlsSchema
      .optional()
      .describe(
        'HTTPS at the built-in proxy: listen: then takes TLS connections, with these certificates (README, "HTTPS").',
      ),
    redirectHttp: listenAddress
      .optional()
      .describe(
        'A plain-HTTP listener (e.g. 0.0.0.0:80) that answers every request with a 308 to the same URL on https://; needs tls.',
      ),
    hsts: hstsSchema
      .optional()
      .describe(
        'The Strict-Transport-Security header on HTTPS answers: true (max-age one year), or { maxAge, includeSubDomains, preload }.',
      ),
    edge: edgeSchema
      .prefault({ type: DEFAULTS.edge.type })
      .describe(
        "Where client traffic comes in: Baton's own proxy (builtin, the default) or another Baton's, or your nginx or HAProxy, driven by Baton.",
      ),
    edges: z
      .array(edgeSchema)
      .min(2, { message: 'for one edge, write edge: instead' })
      .optional()
      .describe(
        'Several edges kept in step (instead of edge): every route change is applied and confirmed on all before anything is drained.',
      ),
    hosts: z
      .array(hostSchema)
      .min(1)
      .optional()
      .describe("The servers the app's instances run on, over SSH; left out, they run on this machine."),
    ssh: sshSchema
      .prefault({})
      .describe("How Baton runs ssh to the hosts (the system's OpenSSH, with your keys and ~/.ssh/config)."),
    admin: listenAddress
      .optional()
      .describe(
        'The admin API and dashboard: host:port or unix:/path.sock. `baton deploy`, `status` and the rest talk to `baton up` here.',
      ),
    adminHosts: adminHostsSchema.describe(
      'Host names the admin API answers to, besides IP addresses, localhost and the host of admin: (any other Host header is refused), e.g. [baton.internal].',
    ),
    stateDir: z
      .string()
      .min(1)
      .prefault(DEFAULTS.stateDir)
      .describe(
        'The folder of state, history and instance logs, relative to this file (per environment with --env).',
      ),
    targets: z
      .array(targetSchema)
      .optional()
      .describe(
        'A fixed list of backends (instead of app): Baton is then a plain load balancer in front of them.',
      ),
    balance: balanceSchema
      .prefault({ algorithm: DEFAULTS.balance.algorithm })
      .describe('How the built-in proxy picks a target for each request.'),
    healthCheck: healthSchema
      .optional()
      .describe('Active health checks of the targets (an app uses app.health).'),
    proxy: proxySchema.prefault({}).describe("The built-in proxy's limits and timeouts."),
    app: appSchema
      .optional()
      .describe('The app Baton runs and deploys: how it starts, checks, warms up and stops each instance.'),
    environments: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), z.record(z.string(), z.unknown()))
      .optional()
      .describe(
        'Per-environment overrides (e.g. staging, production), deep-merged over the rest of the file with --env NAME or BATON_ENV.',
      ),
    strategy: strategySchema
      .prefault({ type: DEFAULTS.strategy.type })
      .describe('How a new version replaces the old one: blue-green, rolling, recreate, canary or ab.'),
    windows: windowsSchema
      .optional()
      .describe('When deploys may run: allow and deny windows in one time zone. Left out: any time.'),
    hooks: hooksSchema.prefault({}).describe('Shell commands run around a deploy.'),
    notify: notifySchema.prefault({}).describe('Slack and webhook notifications of deploys.'),
  })
  .superRefine(
    (c, ctx) => {
      const seen = new Set<string>();
      c.targets?.forEach((t, i) => {
        // Runs even when other keys failed (so every problem is reported at once): skip
        // entries whose address did not parse.
        const a = (t as Partial<TargetConfig> | null)?.address;
        if (a?.kind !== 'tcp') return;
        const key = `${a.host}:${a.port}`;
        if (seen.has(key)) {
          ctx.addIssue({
            code: 'custom',
            path: ['targets', i, 'address'],
            message: `${key} is listed twice`,
          });
        }
        seen.add(key);
      });
    },
    { when: (p) => Array.isArray((p.value as { targets?: unknown } | null)?.targets) },
  )
  .superRefine((c, ctx) => {
    // Node refuses to start a server whose header timeout outlasts its request timeout.
    if (c.proxy.clientHeaderTimeout > c.proxy.clientRequestTimeout) {
      ctx.addIssue({
        code: 'custom',
        path: ['proxy', 'clientHeaderTimeout'],
        message: `must not be longer than proxy.clientRequestTimeout (${formatDuration(c.proxy.clientRequestTimeout)}), which bounds the whole request`,
      });
    }
    if (c.proxy.workers !== 1 && c.app === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['proxy', 'workers'],
        message:
          "worker processes are the data plane's, which runs with an app: with targets: (or an edge-only Baton) one process serves; remove proxy.workers",
      });
    }
    if (c.hosts && c.app) {
      // The SSH driver exports them in a remote shell.
      for (const k of Object.keys(c.app.env)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
          ctx.addIssue({
            code: 'custom',
            path: ['app', 'env', k],
            message:
              'with hosts:, a variable name a shell accepts: letters, digits and _, not starting with a digit',
          });
        }
      }
    }
    if (c.app !== undefined && c.targets !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['targets'],
        message: 'use either app (Baton runs and deploys the instances) or targets (a fixed list), not both',
      });
    }
    if (c.hosts) {
      const names = new Set<string>();
      c.hosts.forEach((h, i) => {
        if (names.has(h.name))
          ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `${h.name} is listed twice` });
        names.add(h.name);
      });
      if (!c.app)
        ctx.addIssue({
          code: 'custom',
          path: ['hosts'],
          message: 'hosts run the instances of an app: add an app section',
        });
      else if (!c.app.ports) {
        ctx.addIssue({
          code: 'custom',
          path: ['app', 'ports'],
          message:
            'instances on hosts need a port range, e.g. ports: 8081-8082 (a pair per instance on each host for blue-green)',
        });
      }
      if (c.strategy.type === 'canary' && c.strategy.hosts) {
        c.strategy.hosts.forEach((name, i) => {
          if (!names.has(name))
            ctx.addIssue({
              code: 'custom',
              path: ['strategy', 'hosts', i],
              message: `no host named ${name} in hosts (${[...names].join(', ')})`,
            });
        });
      }
    } else if (c.app?.instancesPerHost !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['app', 'instancesPerHost'],
        message: 'instancesPerHost needs hosts: (else use instances)',
      });
    }
    if (c.app?.ports) {
      // Per host with hosts: (instances are spread over them).
      const perHost = c.hosts
        ? (c.app.instancesPerHost ?? Math.ceil(c.app.instances / c.hosts.length))
        : c.app.instances;
      const { need, why } = peakInstances(c.strategy, perHost);
      const { from, to } = c.app.ports;
      const have = to - from + 1;
      if (have < need) {
        ctx.addIssue({
          code: 'custom',
          path: ['app', 'ports'],
          message: `${from}-${to} has ${have} port(s) but a deploy needs ${need}${c.hosts ? ' on each host' : ''} (${why}): widen it, e.g. ports: ${from}-${from + need - 1}`,
        });
      }
    }
    if (!c.hosts && c.strategy.type === 'canary' && c.strategy.hosts) {
      ctx.addIssue({
        code: 'custom',
        path: ['strategy', 'hosts'],
        message: 'canary hosts name servers of hosts: (instances here all run on this machine): remove it',
      });
    }
    const all = c.edges ?? [c.edge];
    // A built-in edge with an admin address is another Baton's proxy: driven like nginx or
    // HAProxy, from here.
    const kinds = all.map((e) => (e.type === 'builtin' && e.admin ? 'builtin (remote)' : e.type));
    const builtin = kinds.includes('builtin');
    const where = c.edges ? 'edges' : 'edge';
    if (c.edges && (c.edge.type !== 'builtin' || c.edge.admin)) {
      ctx.addIssue({
        code: 'custom',
        path: ['edges'],
        message: 'use edge (one) or edges (several), not both',
      });
    }
    if (kinds.filter((k) => k === 'builtin').length > 1) {
      ctx.addIssue({ code: 'custom', path: ['edges'], message: 'the built-in edge can be listed once' });
    }
    if (builtin && c.listen === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message:
          'the built-in edge needs a client address, e.g. listen: 127.0.0.1:8080 (or set edge.type: nginx | haproxy)',
      });
    }
    if (!builtin && c.listen !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: `with ${where} of type ${kinds.join(', ')} the client port is theirs: remove listen`,
      });
    }
    for (const key of ['tls', 'redirectHttp', 'hsts'] as const) {
      if (c[key] !== undefined && !builtin) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} is for the built-in edge's listener (with nginx or HAProxy, HTTPS is theirs): remove it`,
        });
      } else if (c[key] !== undefined && key !== 'tls' && c.tls === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} goes with HTTPS: add tls: { cert, key } (or remove ${key})`,
        });
      }
    }
    const acme = c.tls?.acme;
    if (acme?.challenge === 'http-01' && c.redirectHttp === undefined && builtin) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', 'acme', 'challenge'],
        message:
          'the http-01 challenge is answered on redirectHttp: add redirectHttp: 0.0.0.0:80, or set tls.acme.challenge: tls-alpn-01 (answered on listen:, port 443)',
      });
    }
    if (acme?.challenge === 'tls-alpn-01' && c.proxy.workers !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', 'acme', 'challenge'],
        message:
          'the tls-alpn-01 challenge is answered by the data plane alone: with proxy.workers above 1 use http-01 (with redirectHttp:)',
      });
    }
    if (c.redirectHttp && c.listen && formatAddress(c.redirectHttp) === formatAddress(c.listen)) {
      ctx.addIssue({
        code: 'custom',
        path: ['redirectHttp'],
        message: 'must differ from listen (HTTPS is served there), e.g. redirectHttp: 0.0.0.0:80',
      });
    }
    if (kinds.some((k) => k !== 'builtin') && c.app === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [where],
        message: `${where} of type ${kinds.filter((k) => k !== 'builtin').join(', ')} drive the instances of an app: add an app section (a fixed targets list is for the built-in edge)`,
      });
    }
  });

export type BatonConfigInput = z.input<typeof configSchema>;

/** instances = instancesPerHost × hosts, when given. */
export function withHostCounts<
  C extends {
    hosts?: readonly unknown[] | undefined;
    app?: { instances: number; instancesPerHost?: number | undefined } | undefined;
  },
>(c: C): C {
  if (!c.hosts || !c.app || c.app.instancesPerHost === undefined) return c;
  return { ...c, app: { ...c.app, instances: c.app.instancesPerHost * c.hosts.length } };
}
export type ParsedConfig = z.output<typeof configSchema>;

/** The checked config plus where it came from; frozen. */
export type BatonConfig = Readonly<ParsedConfig> & {
  /** Absolute path of the config file ('' when built in code). */
  readonly file: string;
  /** Folder of the config file: relative paths in it are relative to this. */
  readonly baseDir: string;
  /** Absolute state directory (per environment when one is selected). */
  readonly stateDirPath: string;
  /** The environment selected with --env, or null. */
  readonly environment: string | null;
};

/** The JSON Schema of baton.yaml (`baton validate --schema`): src/config/json-schema.ts. */
export function configJsonSchema(): Record<string, unknown> {
  return editorJsonSchema(configSchema, {
    title: 'baton.yaml',
    description:
      'Baton\'s config: the service, where clients connect, the app it deploys and how (README.md, "Config reference"). `baton validate` checks what a schema cannot: ranges and the keys that go together.',
  });
}
