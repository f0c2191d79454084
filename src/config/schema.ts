// The baton.yaml schema: strict (unknown keys are errors), with every default a named constant.
// `BatonConfig` is the checked, defaulted and frozen result; `configJsonSchema()` gives editors
// a JSON Schema of the same file.
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { parseHostPort, parseListen, type ListenAddress, type TcpAddress } from './address.js';

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
    connectTimeout: '5s',
    upstreamHeaderTimeout: '60s',
    upstreamBodyTimeout: '60s',
    // Below the 5s keep-alive timeout of Node apps, so the app never closes a socket we reuse.
    upstreamIdleTimeout: '4s',
    retries: 2,
    retryTimeout: '10s',
    drainTimeout: '30s',
    slowStart: '0s',
  },
} as const;

function fail(ctx: z.RefinementCtx<unknown>, message: string): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

const duration = z.union([z.string(), z.number()]).transform((v, ctx): number => {
  if (typeof v === 'number') {
    return v === 0 ? 0 : fail(ctx, `${v} has no unit: write a duration such as "${v}s" or "${v}ms"`);
  }
  const ms = parseDuration(v);
  return ms === undefined ? fail(ctx, `"${v}" is not a duration: write e.g. 500ms, 3s, 1m, 1m30s`) : ms;
});

const size = z.union([z.string(), z.number().int().nonnegative()]).transform((v, ctx): number => {
  if (typeof v === 'number') return v;
  const n = parseSize(v);
  return n === undefined ? fail(ctx, `"${v}" is not a size: write e.g. 16k, 10m, 1g (0 = unlimited)`) : n;
});

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
  interval: duration.prefault(DEFAULTS.health.interval),
  timeout: duration.prefault(DEFAULTS.health.timeout),
  expectStatus,
  healthyThreshold: z.number().int().min(1).prefault(DEFAULTS.health.healthyThreshold),
  unhealthyThreshold: z.number().int().min(1).prefault(DEFAULTS.health.unhealthyThreshold),
});

export const targetSchema = z.strictObject({
  address: targetAddress,
  weight: z.number().int().min(0).max(1_000_000).prefault(DEFAULTS.weight),
  maxFails: z.number().int().min(0).prefault(DEFAULTS.maxFails),
  failTimeout: duration.prefault(DEFAULTS.failTimeout),
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
  maxHeaderSize: size.prefault(P.maxHeaderSize),
  maxBodySize: size.prefault(P.maxBodySize),
  clientHeaderTimeout: duration.prefault(P.clientHeaderTimeout),
  clientRequestTimeout: duration.prefault(P.clientRequestTimeout),
  clientIdleTimeout: duration.prefault(P.clientIdleTimeout),
  connectTimeout: duration.prefault(P.connectTimeout),
  upstreamHeaderTimeout: duration.prefault(P.upstreamHeaderTimeout),
  upstreamBodyTimeout: duration.prefault(P.upstreamBodyTimeout),
  upstreamIdleTimeout: duration.prefault(P.upstreamIdleTimeout),
  retries: z.number().int().min(0).max(10).prefault(P.retries),
  retryTimeout: duration.prefault(P.retryTimeout),
  drainTimeout: duration.prefault(P.drainTimeout),
  slowStart: duration.prefault(P.slowStart),
  trustedProxies: z.array(cidr).prefault([]),
  accessLog: accessLogSchema.prefault('off'),
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
    .min(1, { message: 'the command that starts one instance, e.g. node app.js --port {port}' }),
  instances: z.number().int().min(1).max(256).prefault(DEFAULTS.app.instances),
  ports: portRange.optional(),
  health: healthSchema.prefault({}),
  readyTimeout: duration.prefault(DEFAULTS.app.readyTimeout),
  drainTimeout: duration.prefault(DEFAULTS.app.drainTimeout),
  stopSignal: z.enum(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']).prefault('SIGTERM'),
  stopTimeout: duration.prefault(DEFAULTS.app.stopTimeout),
  env: z.record(z.string(), z.string()).prefault({}),
  /** Working directory, relative to the config file's folder. */
  cwd: z.string().optional(),
});

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
]);

export const configSchema = z
  .strictObject({
    service: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { message: 'lower-case letters, digits, - and _ (e.g. web)' }),
    listen: listenAddress,
    admin: listenAddress.optional(),
    stateDir: z.string().min(1).prefault(DEFAULTS.stateDir),
    targets: z.array(targetSchema).optional(),
    balance: balanceSchema.prefault({ algorithm: 'round-robin' }),
    healthCheck: healthSchema.optional(),
    proxy: proxySchema.prefault({}),
    app: appSchema.optional(),
    strategy: strategySchema.prefault({ type: 'blue-green' }),
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
    if (c.app !== undefined && c.targets !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['targets'],
        message: 'use either app (Baton runs and deploys the instances) or targets (a fixed list), not both',
      });
    }
  });

export type BatonConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type ProxyConfig = z.output<typeof proxySchema>;
export type BalanceConfig = z.output<typeof balanceSchema>;
export type AppConfig = z.output<typeof appSchema>;
export type StrategyConfig = z.output<typeof strategySchema>;
export type StrategyType = StrategyConfig['type'];

/** The checked config plus where it came from; frozen. */
export type BatonConfig = Readonly<ParsedConfig> & {
  /** Absolute path of the config file ('' when built in code). */
  readonly file: string;
  /** Folder of the config file: relative paths in it are relative to this. */
  readonly baseDir: string;
  /** Absolute state directory. */
  readonly stateDirPath: string;
};

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
