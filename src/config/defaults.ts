// Every default of baton.yaml, by name: the schema (src/config/schema.ts and schema/) fills in a
// key left out with these, in the same text a user would write. Code that needs a default outside
// a parsed config reads it here (parseDuration turns a duration into milliseconds).
import { ADMIN_TOKEN_ENV } from './secrets.js';

export const DEFAULTS = {
  stateDir: '.baton',
  /** Only IP literals, loopback names and the admin address's own host. */
  adminHosts: [],
  weight: 1,
  // Of each target (targets:) and each app instance (app.maxFails, app.failTimeout).
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
  balance: { algorithm: 'round-robin' },
  app: {
    instances: 1,
    readyTimeout: '60s',
    drainTimeout: '30s',
    stopSignal: 'SIGTERM',
    stopTimeout: '30s',
    slowStart: '0s',
  },
  /**
   * Not a config key: an instance whose health check answers 404, 405 or 410 this many times in
   * a row fails readiness at once. The app does not serve `health.path` (with GET): waiting out
   * readyTimeout would not change that answer.
   */
  healthPathMissingChecks: 5,
  warmup: { paths: ['/'], count: 10, concurrency: 2, timeout: '5s' },
  strategy: {
    type: 'blue-green',
    keepOld: '30s',
    verify: '5s',
    maxSurge: '25%',
    maxUnavailable: '25%',
    minReady: '0s',
    canaryInstances: 1,
    sticky: 'baton',
  },
  analysis: { interval: '5s', failureLimit: 2, minRequests: 50, successRate: 99 },
  /** The edge; `timeout` and `tokenEnv` are a remote built-in edge's (edge.admin). */
  edge: { type: 'builtin', timeout: '10s', tokenEnv: ADMIN_TOKEN_ENV },
  ssh: { connectTimeout: '5s' },
  hooks: { timeout: '60s' },
  notify: {
    events: ['started', 'paused', 'succeeded', 'failed', 'rolled-back'],
    /** Per attempt; three attempts in all. */
    timeout: '5s',
  },
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
    accessLog: 'off',
    // nginx's underscores_in_headers off: X_Forwarded_For reads as X-Forwarded-For to CGI/WSGI apps.
    allowUnderscoresInHeaders: false,
    // Off: a release label is the app's to show the world (`baton load` reads X-Baton-Version).
    versionHeader: false,
    workers: 1 as number | 'auto',
    engine: 'raw' as 'node' | 'raw',
  },
} as const;

/** The defaults of the nginx and HAProxy edges. */
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
