// The built-in proxy's sections of baton.yaml: its limits and timeouts (proxy:), how it picks a
// target (balance:), a fixed list of targets (targets:) and the health check of each target or
// instance (healthCheck:, app.health).
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { cidr, duration, positiveDuration, sizeFrom, targetAddress } from './values.js';

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
    algorithm: z.enum(['round-robin', 'least-conn', 'hash']).prefault(DEFAULTS.balance.algorithm),
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
  accessLog: accessLogSchema.prefault(P.accessLog),
  allowUnderscoresInHeaders: z.boolean().prefault(P.allowUnderscoresInHeaders),
});

export type TargetConfig = z.output<typeof targetSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type ProxyConfig = z.output<typeof proxySchema>;
export type BalanceConfig = z.output<typeof balanceSchema>;
