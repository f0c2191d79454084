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
  path: z
    .string()
    .startsWith('/', { message: 'must start with /' })
    .prefault(DEFAULTS.health.path)
    .describe('The path requested with GET, starting with /.'),
  interval: positiveDuration.prefault(DEFAULTS.health.interval).describe('The time between two checks.'),
  timeout: positiveDuration.prefault(DEFAULTS.health.timeout).describe('The deadline of one check.'),
  expectStatus: expectStatus.describe(
    'The answer that passes: a status (200), a class ("2xx") or a list ([200, 204]).',
  ),
  healthyThreshold: z
    .number()
    .int()
    .min(1)
    .prefault(DEFAULTS.health.healthyThreshold)
    .describe('Passes in a row that make it healthy (ready, for a new instance).'),
  unhealthyThreshold: z
    .number()
    .int()
    .min(1)
    .prefault(DEFAULTS.health.unhealthyThreshold)
    .describe('Failures in a row that make it unhealthy (out of rotation).'),
});

export const targetSchema = z.strictObject({
  address: targetAddress.describe('Where the target listens: host:port, e.g. 127.0.0.1:9001.'),
  weight: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .prefault(DEFAULTS.weight)
    .describe('Its share of the requests, relative to the others; 0: in the table, no new traffic.'),
  maxFails: z
    .number()
    .int()
    .min(0)
    .prefault(DEFAULTS.maxFails)
    .describe(
      "Passive health, as nginx's max_fails: this many failed requests within failTimeout take it out for failTimeout; 0: never.",
    ),
  failTimeout: positiveDuration
    .prefault(DEFAULTS.failTimeout)
    .describe("The window of maxFails, and how long a failed target stays out (nginx's fail_timeout)."),
  slowStart: duration
    .optional()
    .describe('How long its weight ramps up when it enters rotation; default: proxy.slowStart.'),
  version: z
    .string()
    .max(128)
    .optional()
    .describe('A label of the version it runs, shown in status and metrics.'),
  backup: z.boolean().prefault(false).describe('Used only while no other target is up.'),
});

const hashKey = z
  .string()
  .refine((v) => v === 'ip' || /^(header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v), {
    message: 'hashKey must be "ip", "header:NAME" or "cookie:NAME"',
  });

export const balanceSchema = z
  .strictObject({
    algorithm: z
      .enum(['round-robin', 'least-conn', 'hash'])
      .prefault(DEFAULTS.balance.algorithm)
      .describe(
        "round-robin (smooth weighted, nginx's), least-conn (weight-aware least connections) or hash (consistent hashing on hashKey).",
      ),
    hashKey: hashKey.optional().describe('With hash: what is hashed, "ip", "header:NAME" or "cookie:NAME".'),
  })
  .refine((b) => b.algorithm !== 'hash' || b.hashKey !== undefined, {
    message: 'algorithm "hash" needs a hashKey: "ip", "header:NAME" or "cookie:NAME"',
    path: ['hashKey'],
  });

export const accessLogSchema = z.union([z.literal('off'), z.literal('stdout'), z.string().min(1)]);

const P = DEFAULTS.proxy;
export const proxySchema = z.strictObject({
  maxHeaderSize: sizeFrom(1024, '16k')
    .prefault(P.maxHeaderSize)
    .describe('The largest request head (request line and headers), at least 1k; larger: 431.'),
  maxBodySize: sizeFrom(1, '10m or 1g')
    .prefault(P.maxBodySize)
    .describe(
      'The largest request body, at least 1 byte (for no limit, write a large size, e.g. 1g); larger: 413.',
    ),
  clientHeaderTimeout: positiveDuration
    .prefault(P.clientHeaderTimeout)
    .describe(
      'How long a client may take to send the request head (slowloris); then 408. At most clientRequestTimeout.',
    ),
  clientRequestTimeout: positiveDuration
    .prefault(P.clientRequestTimeout)
    .describe('How long a client may take to send a whole request; then 408.'),
  clientIdleTimeout: positiveDuration
    .prefault(P.clientIdleTimeout)
    .describe("How long a client's keep-alive connection may stay idle between requests."),
  clientBodyTimeout: positiveDuration
    .prefault(P.clientBodyTimeout)
    .describe("No byte of the request body for this long: 408 (nginx's client_body_timeout)."),
  clientSendTimeout: positiveDuration
    .prefault(P.clientSendTimeout)
    .describe(
      "No write of the answer to the client completed for this long: the connection is closed (nginx's send_timeout).",
    ),
  connectTimeout: positiveDuration
    .prefault(P.connectTimeout)
    .describe('The deadline of a connection to a target.'),
  upstreamHeaderTimeout: positiveDuration
    .prefault(P.upstreamHeaderTimeout)
    .describe("How long a target may take to send its answer's head; then 504."),
  upstreamBodyTimeout: positiveDuration
    .prefault(P.upstreamBodyTimeout)
    .describe("How long a target's answer body may pause between two bytes."),
  upstreamIdleTimeout: positiveDuration
    .prefault(P.upstreamIdleTimeout)
    .describe(
      "How long an idle keep-alive connection to a target is kept: below the app's keep-alive timeout (Node's is 5s).",
    ),
  retries: z
    .number()
    .int()
    .min(0)
    .max(10)
    .prefault(P.retries)
    .describe(
      'How many times a request that failed before any answer byte reached the client is tried on another target, when safe.',
    ),
  retryTimeout: positiveDuration
    .prefault(P.retryTimeout)
    .describe('No retry once a request has been going on this long.'),
  drainTimeout: duration
    .prefault(P.drainTimeout)
    .describe('How long a target out of rotation is given for its requests in flight to finish.'),
  slowStart: duration
    .prefault(P.slowStart)
    .describe(
      "How long a target's weight ramps up when it enters rotation (a target's own slowStart wins); 0s: at once.",
    ),
  trustedProxies: z
    .array(cidr)
    .prefault([])
    .describe(
      'Peers (IP addresses or CIDR ranges, e.g. 10.0.0.0/8) whose X-Forwarded-* headers are kept: another proxy or an L4 balancer in front.',
    ),
  accessLog: accessLogSchema
    .prefault(P.accessLog)
    .describe('Where each request is logged: off (no work at all), stdout, or a file path.'),
  allowUnderscoresInHeaders: z
    .boolean()
    .prefault(P.allowUnderscoresInHeaders)
    .describe(
      'true: forward header names with _ (dropped by default, as nginx does: CGI and WSGI read X_Real_IP as X-Real-IP).',
    ),
  versionHeader: z
    .boolean()
    .prefault(P.versionHeader)
    .describe(
      "true: each answer names its target's version in an X-Baton-Version header (what `baton load` charts by version); off by default: it tells every client what runs.",
    ),
  engine: z
    .enum(['node', 'raw'])
    .prefault(P.engine)
    .describe(
      'How the proxy serves HTTP/1.1: raw (the default: its own parser on raw sockets; rare requests such as Upgrade or Expect go to node:http), or node (node:http and undici for every request, about half the speed).',
    ),
  workers: z
    .union([z.number().int().min(1).max(64), z.literal('auto')])
    .prefault(P.workers)
    .describe(
      'How many processes serve the listener, as nginx\'s worker_processes: a number, or auto (one per CPU). Each routes the same table; with an app, the data plane starts them (see README "Proxy workers").',
    ),
});

export type TargetConfig = z.output<typeof targetSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type ProxyConfig = z.output<typeof proxySchema>;
export type BalanceConfig = z.output<typeof balanceSchema>;
