// The baton.yaml schema: strict (unknown keys are errors), with every default a named constant.
// `BatonConfig` is the checked, defaulted and frozen result; `configJsonSchema()` gives editors
// a JSON Schema of the same file.
import { z } from 'zod';
import { durationRangeProblem, formatDuration, parseDuration, parseSize } from './units.js';
import { parseHostPort, parseListen, type ListenAddress, type TcpAddress } from './address.js';
import { windowsSchema } from './windows.js';
import { hooksSchema } from '../hooks/schema.js';
import { adminHostsSchema } from '../admin/guard.js';
import { notifySchema } from '../notify/schema.js';
import { commandWords } from '../drivers/local/command.js';

export const DEFAULTS = {
  stateDir: '.baton',
  weight: 1,
  maxFails: 1, // as nginx's max_fails
  failTimeout: '10s', // as nginx's fail_timeout
  health: {
    path: '/health',
    interval: '2s',
    timeout: '1s',
    expectStatus: '2xx',
    healthyThreshold: 2,
    unhealthyThreshold: 3,
  },
  app: { instances: 1, readyTimeout: '60s', drainTimeout: '30s', stopTimeout: '30s' },
  strategy: { keepOld: '30s', verify: '5s', maxSurge: '25%', maxUnavailable: '25%', minReady: '0s' },
  proxy: {
    maxHeaderSize: '16k',
    maxBodySize: '10m',
    clientHeaderTimeout: '10s',
    clientRequestTimeout: '60s',
    clientIdleTimeout: '60s',
    // nginx's client_body_timeout and send_timeout: a stalled client is let go after this.
    clientBodyTimeout: '60s',
    clientSendTimeout: '60s',
    connectTimeout: '5s',
    upstreamHeaderTimeout: '60s',
    upstreamBodyTimeout: '60s',
    // Below the 5s keep-alive timeout of Node apps, so the app never closes a socket we reuse.
    upstreamIdleTimeout: '4s',
    retries: 2,
    retryTimeout: '10s',
    drainTimeout: '30s',
    slowStart: '0s',
    // nginx's underscores_in_headers off: X_Forwarded_For reads as X-Forwarded-For to CGI/WSGI apps.
    allowUnderscoresInHeaders: false,
  },
} as const;

function fail(ctx: z.RefinementCtx<unknown>, message: string): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

/** Milliseconds, up to what a timer can wait; `min` 1 where 0 would turn a limit off or spin a timer. */
function durationFrom(min: 0 | 1) {
  return z.union([z.string(), z.number()]).transform((v, ctx): number => {
    if (typeof v === 'number' && v !== 0) {
      return fail(ctx, `${v} has no unit: write a duration such as "${v}s" or "${v}ms"`);
    }
    const ms = typeof v === 'number' ? 0 : parseDuration(v);
    if (ms === undefined) return fail(ctx, `"${v}" is not a duration: write e.g. 500ms, 3s, 1m, 1m30s`);
    const problem = durationRangeProblem(String(v), ms, min);
    return problem === undefined ? ms : fail(ctx, problem);
  });
}
const duration = durationFrom(0);
/** A timeout or an interval: above 0, which would turn the limit off, or spin its timer. */
const positiveDuration = durationFrom(1);

/** Bytes, at least `min`: to the proxy a size limit of 0 would mean none. */
function sizeFrom(min: number, example: string) {
  return z.union([z.string(), z.number()]).transform((v, ctx): number => {
    const n = typeof v === 'number' ? (Number.isInteger(v) ? v : undefined) : parseSize(v);
    if (n === undefined) return fail(ctx, `"${v}" is not a size: write e.g. 16k, 10m, 1g`);
    if (n >= min) return n;
    const least = min === 1 ? '1 byte' : `${min / 1024}k`;
    return fail(
      ctx,
      `"${v}" is out of range: write a size of ${least} or more, e.g. ${example} (0 would turn this limit off)`,
    );
  });
}

/** Refuses a command line the driver could not run without a shell (the driver's own split). */
function splitsWithoutShell(v: string, ctx: z.RefinementCtx<string>): void {
  const words = commandWords(v);
  if (!Array.isArray(words)) ctx.addIssue({ code: 'custom', message: words.problem });
}

const listenAddress = z.string().transform((v, ctx): ListenAddress => {
  const a = parseListen(v);
  return a ?? fail(ctx, `"${v}" is not an address: write host:port (e.g. 127.0.0.1:8080) or unix:/path.sock`);
});

const targetAddress = z.string().transform((v, ctx): TcpAddress => {
  const a = parseHostPort(v);
  return a ?? fail(ctx, `"${v}" is not a target address: write host:port, e.g. 127.0.0.1:9001`);
});

const cidr = z.string().refine((v) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(v), {
  message: 'not an IP address or CIDR range (e.g. 10.0.0.0/8, 127.0.0.1)',
});

const expectStatus = z
  .union([z.number().int().min(100).max(599), z.string().regex(/^[1-5]xx$/), z.array(z.number().int())])
  .prefault(DEFAULTS.health.expectStatus);

export const healthSchema = z.strictObject({
  path: z.string().startsWith('/', { message: 'must start with /' }).prefault(DEFAULTS.health.path),
  interval: positiveDuration.prefault(DEFAULTS.health.interval),
  timeout: positiveDuration.prefault(DEFAULTS.health.timeout),
  expectStatus,
  healthyThreshold: z.number().int().min(1).prefault(DEFAULTS.health.healthyThreshold),
  unhealthyThreshold: z.number().int().min(1).prefault(DEFAULTS.health.unhealthyThreshold),
});

export const targetSchema = z.strictObject({
  address: targetAddress,
  weight: z.number().int().min(0).max(1_000_000).prefault(DEFAULTS.weight),
  maxFails: z.number().int().min(0).prefault(DEFAULTS.maxFails),
  failTimeout: positiveDuration.prefault(DEFAULTS.failTimeout),
  slowStart: duration.optional(),
  version: z.string().max(128).optional(),
  backup: z.boolean().prefault(false),
});

const hashKey = z
  .string()
  .refine((v) => v === 'ip' || /^(header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v), {
    message: 'hashKey must be "ip", "header:NAME" or "cookie:NAME"',
  });

export const balanceSchema = z
  .strictObject({
    algorithm: z.enum(['round-robin', 'least-conn', 'hash']).prefault('round-robin'),
    hashKey: hashKey.optional(),
  })
  .refine((b) => b.algorithm !== 'hash' || b.hashKey !== undefined, {
    message: 'algorithm "hash" needs a hashKey: "ip", "header:NAME" or "cookie:NAME"',
    path: ['hashKey'],
  });

export const accessLogSchema = z.union([z.literal('off'), z.literal('stdout'), z.string().min(1)]);

const P = DEFAULTS.proxy;
export const proxySchema = z.strictObject({
  maxHeaderSize: sizeFrom(1024, '16k').prefault(P.maxHeaderSize),
  maxBodySize: sizeFrom(1, '10m or 1g').prefault(P.maxBodySize),
  clientHeaderTimeout: positiveDuration.prefault(P.clientHeaderTimeout),
  clientRequestTimeout: positiveDuration.prefault(P.clientRequestTimeout),
  clientIdleTimeout: positiveDuration.prefault(P.clientIdleTimeout),
  clientBodyTimeout: positiveDuration.prefault(P.clientBodyTimeout),
  clientSendTimeout: positiveDuration.prefault(P.clientSendTimeout),
  connectTimeout: positiveDuration.prefault(P.connectTimeout),
  upstreamHeaderTimeout: positiveDuration.prefault(P.upstreamHeaderTimeout),
  upstreamBodyTimeout: positiveDuration.prefault(P.upstreamBodyTimeout),
  upstreamIdleTimeout: positiveDuration.prefault(P.upstreamIdleTimeout),
  retries: z.number().int().min(0).max(10).prefault(P.retries),
  retryTimeout: positiveDuration.prefault(P.retryTimeout),
  drainTimeout: duration.prefault(P.drainTimeout),
  slowStart: duration.prefault(P.slowStart),
  trustedProxies: z.array(cidr).prefault([]),
  accessLog: accessLogSchema.prefault('off'),
  allowUnderscoresInHeaders: z.boolean().prefault(P.allowUnderscoresInHeaders),
});

const count = z.union([
  z.number().int().min(0),
  z.string().regex(/^\d{1,3}%$/, { message: 'a count (1) or a percentage ("25%")' }),
]);

const portRange = z.string().transform((v, ctx): { from: number; to: number } => {
  const m = /^(\d{1,5})\s*-\s*(\d{1,5})$/.exec(v.trim());
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from < 1 || to > 65535 || from > to) {
    return fail(ctx, `"${v}" is not a port range: write e.g. 8081-8099`);
  }
  return { from, to };
});

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
  stopSignal: z.enum(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']).prefault('SIGTERM'),
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
        .prefault(['/']),
      count: z.number().int().min(1).max(100_000).prefault(10),
      concurrency: z.number().int().min(1).max(256).prefault(2),
      timeout: positiveDuration.prefault('5s'),
    })
    .optional(),
  /** Weight ramp of a new instance as it enters rotation (next to instances already serving). */
  slowStart: duration.prefault('0s'),
});

const matchValue = {
  equals: z.string().optional(),
  prefix: z.string().optional(),
  regex: z
    .string()
    .refine(
      (r) => {
        try {
          new RegExp(r);
          return true;
        } catch {
          return false;
        }
      },
      { message: 'not a valid regular expression' },
    )
    .optional(),
};
const oneOperator = (m: {
  equals?: string | undefined;
  prefix?: string | undefined;
  regex?: string | undefined;
}): boolean => [m.equals, m.prefix, m.regex].filter((v) => v !== undefined).length <= 1;

/** A/B rule: a request matching it goes to the new version. */
export const matchSchema = z.union([
  z.strictObject({ header: z.string().min(1), ...matchValue }).refine(oneOperator, {
    message: 'use one of equals, prefix or regex',
  }),
  z.strictObject({ cookie: z.string().min(1), ...matchValue }).refine(oneOperator, {
    message: 'use one of equals, prefix or regex',
  }),
  z.strictObject({ ip: cidr }),
]);

const canaryStep = z.union([
  z.strictObject({
    setWeight: z.number().min(0).max(100, { message: 'a weight is a percentage: 0 to 100' }),
  }),
  z.strictObject({
    /** A duration, or {} to wait for `baton promote`. */
    pause: z.union([duration, z.strictObject({ duration: duration.optional() })]),
  }),
  z.strictObject({ setHeaderRoute: z.array(matchSchema).min(1) }),
]);

const condition = z.string().regex(/^\s*(<=|>=|==|!=|<|>)\s*-?\d+(\.\d+)?\s*$/, {
  message: 'a comparison with a number, e.g. "< 0.05" or ">= 99"',
});

export const analysisSchema = z.strictObject({
  interval: positiveDuration.prefault('5s'),
  /** Failed checks (cumulative) before the canary is aborted. */
  failureLimit: z.number().int().min(1).prefault(2),
  /** Fewer canary requests than this in an interval: inconclusive, not a failure. */
  minRequests: z.number().int().min(0).prefault(50),
  /** % of canary answers that are neither 5xx nor proxy errors. */
  successRate: z.number().min(0).max(100, { message: 'a percentage: 0 to 100' }).prefault(99),
  latencyP99: duration.optional(),
  /** Also fail when the canary is clearly worse than stable over the same interval. */
  baseline: z.boolean().prefault(false),
  /** Extra checks each interval: a JSON value from a URL, or a Prometheus instant query. */
  checks: z
    .array(
      z.union([
        z.strictObject({
          name: z.string().optional(),
          web: z.strictObject({ url: z.url(), jsonPath: z.string().min(1), condition }),
        }),
        z.strictObject({
          name: z.string().optional(),
          prometheus: z.strictObject({ url: z.url(), query: z.string().min(1), condition }),
        }),
      ]),
    )
    .optional(),
});

export const stickySchema = z.union([
  z.literal('baton'),
  z.strictObject({ header: z.string().min(1) }),
  z.strictObject({ cookie: z.string().min(1) }),
]);

export const strategySchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('blue-green'),
    /** How long the old set keeps running after the switch (instant rollback meanwhile). */
    keepOld: duration.prefault(DEFAULTS.strategy.keepOld),
    /** How long the new set must stay healthy after the switch before the old set is let go. */
    verify: duration.prefault(DEFAULTS.strategy.verify),
  }),
  z.strictObject({
    type: z.literal('rolling'),
    maxSurge: count.prefault(DEFAULTS.strategy.maxSurge),
    maxUnavailable: count.prefault(DEFAULTS.strategy.maxUnavailable),
    /** How long a new batch must stay healthy before the next batch starts. */
    minReady: duration.prefault(DEFAULTS.strategy.minReady),
  }),
  z.strictObject({ type: z.literal('recreate') }),
  z
    .strictObject({
      type: z.literal('canary'),
      /** Instances of the new version during the canary steps (the rest start at promotion). */
      canaryInstances: z.number().int().min(1).prefault(1),
      /** With hosts: the hosts (by name) the canary instances run on; none: spread like any version. */
      hosts: z.array(z.string().min(1)).min(1).optional(),
      steps: z
        .array(canaryStep)
        .min(1, { message: 'a canary needs steps, e.g. [{ setWeight: 10 }, { pause: 30s }]' }),
      analysis: analysisSchema.optional(),
      sticky: stickySchema.prefault('baton'),
    })
    .superRefine((c, ctx) => {
      let last = -1;
      c.steps.forEach((step, i) => {
        if ('setWeight' in step) {
          if (step.setWeight < last) {
            ctx.addIssue({
              code: 'custom',
              path: ['steps', i, 'setWeight'],
              message: `weights only go up (${step.setWeight} after ${last}): a sticky client must never flip back`,
            });
          }
          last = step.setWeight;
        }
      });
    }),
  z.strictObject({
    type: z.literal('ab'),
    /** Requests matching any rule go to the new version; everyone else stays on stable. */
    match: z.array(matchSchema).min(1),
    /** How long the test runs before the new version is promoted (if analysis passes). */
    duration: duration,
    analysis: analysisSchema.optional(),
  }),
]);

/** A command line run without a shell (words split like the app's command). */
const commandLine = z
  .string()
  .trim()
  .min(1, { message: 'a command, e.g. nginx -s reload' })
  .superRefine(splitsWithoutShell);

export const EDGE_DEFAULTS = {
  nginx: {
    test: 'nginx -t',
    reload: 'nginx -s reload',
    pidFile: '/run/nginx.pid',
    reloadTimeout: '10s',
    keepalive: 16,
  },
  haproxy: { serverPrefix: 'baton', timeout: '15s' },
} as const;

/**
 * An ssh destination: [user@]host[:port] (IPv6 in brackets), or a Host alias of ~/.ssh/config.
 * The name shown in messages is the text as written.
 */
const sshDestination = z
  .string()
  .transform((v, ctx): { name: string; address: string; user?: string; port?: number } => {
    const m = /^(?:([^@\s]+)@)?(\[[0-9a-fA-F:.]+\]|[^@:\s[\]]+)(?::(\d{1,5}))?$/.exec(v);
    const port = m?.[3] === undefined ? undefined : Number(m[3]);
    if (
      !m ||
      v.startsWith('-') ||
      (m[1] ?? '').startsWith('-') ||
      (port !== undefined && (port < 1 || port > 65535))
    ) {
      return fail(
        ctx,
        `"${v}" is not an ssh destination: write [user@]host[:port], e.g. deploy@10.0.0.2 or lb-1`,
      );
    }
    const address = m[2]!.replace(/^\[(.*)\]$/, '$1');
    return { name: v, address, ...(m[1] ? { user: m[1] } : {}), ...(port !== undefined ? { port } : {}) };
  });

/**
 * Where client traffic comes in: Baton's own proxy (default) or another Baton's, or the user's
 * nginx / HAProxy.
 */
export const edgeSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('builtin'),
    /**
     * The admin address of an edge-only Baton on another machine (listen: and admin:, no app:
     * nor targets:); none: this daemon's own proxy.
     */
    admin: listenAddress.optional(),
    /** Deadline of each call to that Baton (a drain gets its own timeout on top). */
    timeout: positiveDuration.prefault('10s'),
    /** The environment variable holding that Baton's admin token. */
    tokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'an environment variable name, e.g. BATON_EDGE_TOKEN' })
      .prefault('BATON_ADMIN_TOKEN'),
  }),
  z
    .strictObject({
      type: z.literal('nginx'),
      /** The one file Baton writes: the service's upstream block, included by the user's nginx.conf. */
      upstreamFile: z
        .string()
        .min(1, { message: 'the upstream file Baton owns, e.g. /etc/nginx/conf.d/web.upstream.conf' }),
      /** Checks the whole config after the file is written; on failure the file is put back. */
      test: commandLine.prefault(EDGE_DEFAULTS.nginx.test),
      reload: commandLine.prefault(EDGE_DEFAULTS.nginx.reload),
      /** nginx's pid file: a reload is confirmed by new workers, old ones are awaited before a drain ends. */
      pidFile: z.string().min(1).prefault(EDGE_DEFAULTS.nginx.pidFile),
      reloadTimeout: positiveDuration.prefault(EDGE_DEFAULTS.nginx.reloadTimeout),
      /** `keepalive` idle connections per worker to the upstream (0: none). */
      keepalive: z.number().int().min(0).max(10_000).prefault(EDGE_DEFAULTS.nginx.keepalive),
      /**
       * nginx on another machine, reached over SSH (with ssh: options): [user@]host[:port], or a
       * Host of ~/.ssh/config. Its paths are that machine's, written absolute.
       */
      host: sshDestination.optional(),
    })
    .superRefine((e, ctx) => {
      if (e.host === undefined) return;
      for (const key of ['upstreamFile', 'pidFile'] as const) {
        if (!e[key].startsWith('/')) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `with host: ${e.host.name}, an absolute path on that machine (e.g. /etc/nginx/conf.d/web.upstream.conf)`,
          });
        }
      }
    }),
  z.strictObject({
    type: z.literal('haproxy'),
    /** The stats socket with `level admin`: unix:/path or host:port. */
    runtimeSocket: z.string().min(1, { message: 'the admin socket, e.g. /run/haproxy/admin.sock' }),
    /** The backend whose servers Baton drives (its server-template slots). */
    backend: z.string().regex(/^[A-Za-z0-9_.:-]+$/, { message: 'a backend name from haproxy.cfg, e.g. web' }),
    /** The server-template prefix in that backend (`server-template baton 1-10 ...`). */
    serverPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .prefault(EDGE_DEFAULTS.haproxy.serverPrefix),
    /** Written after every change (`show servers state`) so a reload keeps the routes. */
    stateFile: z.string().min(1).optional(),
    timeout: positiveDuration.prefault(EDGE_DEFAULTS.haproxy.timeout),
  }),
]);

export type EdgeConfig = z.output<typeof edgeSchema>;

/** A server the app runs on, reached with the system's OpenSSH (keys and ~/.ssh/config as they are). */
export const hostSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { message: 'a short name, e.g. worker-1' }),
  /** What ssh connects to and what the edges send requests to. */
  address: z
    .string()
    .min(1, { message: 'an IP address or host name, e.g. 10.0.0.11' })
    .refine((v) => !v.startsWith('-'), { message: 'cannot start with "-" (ssh would read it as an option)' }),
  user: z
    .string()
    .min(1)
    .refine((v) => !v.startsWith('-'), { message: 'cannot start with "-" (ssh would read it as an option)' })
    .optional(),
  port: z.number().int().min(1).max(65535).optional(),
});

export const sshSchema = z.strictObject({
  /** Extra ssh options, e.g. ["-i", "/home/ci/.ssh/deploy_key"]. */
  options: z.array(z.string()).prefault([]),
  connectTimeout: positiveDuration.prefault('5s'),
  /** Baton's folder on each host (logs, pid files); ~/ is the ssh user's home. */
  remoteDir: z.string().min(1).optional(),
});

export type HostConfig = z.output<typeof hostSchema>;

export const configSchema = z
  .strictObject({
    service: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { message: 'lower-case letters, digits, - and _ (e.g. web)' }),
    /** The built-in edge's client address; nginx and HAProxy own theirs. */
    listen: listenAddress.optional(),
    edge: edgeSchema.prefault({ type: 'builtin' }),
    /** Several edges kept in step: every route change is applied and confirmed on all. */
    edges: z.array(edgeSchema).min(2, { message: 'for one edge, write edge: instead' }).optional(),
    /** Remote servers the app's instances run on, over SSH (none: on this machine). */
    hosts: z.array(hostSchema).min(1).optional(),
    ssh: sshSchema.prefault({}),
    admin: listenAddress.optional(),
    /** Names the admin API answers to besides IP addresses and localhost (src/admin/guard.ts). */
    adminHosts: adminHostsSchema,
    stateDir: z.string().min(1).prefault(DEFAULTS.stateDir),
    targets: z.array(targetSchema).optional(),
    balance: balanceSchema.prefault({ algorithm: 'round-robin' }),
    healthCheck: healthSchema.optional(),
    proxy: proxySchema.prefault({}),
    app: appSchema.optional(),
    /** Per-environment overrides, deep-merged over the rest with --env NAME. */
    environments: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), z.record(z.string(), z.unknown()))
      .optional(),
    strategy: strategySchema.prefault({ type: 'blue-green' }),
    /** When deploys may run (src/config/windows.ts); any time when left out. */
    windows: windowsSchema.optional(),
    /** Shell commands around a deploy (src/hooks/schema.ts). */
    hooks: hooksSchema.prefault({}),
    /** Slack and webhook notifications of deploys (src/notify/schema.ts). */
    notify: notifySchema.prefault({}),
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
export type TargetConfig = z.output<typeof targetSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type ProxyConfig = z.output<typeof proxySchema>;
export type BalanceConfig = z.output<typeof balanceSchema>;
export type AppConfig = z.output<typeof appSchema>;
export type StrategyConfig = z.output<typeof strategySchema>;
export type StrategyType = StrategyConfig['type'];
export type CanaryConfig = Extract<StrategyConfig, { type: 'canary' }>;
export type AnalysisConfig = z.output<typeof analysisSchema>;
export type MatchConfig = z.output<typeof matchSchema>;

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

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
