// The edge: and edges: sections of baton.yaml: where client traffic comes in. Baton's own proxy
// (the default) or another Baton's, or the user's nginx / HAProxy.
import { z } from 'zod';
import { DEFAULTS, EDGE_DEFAULTS } from '../defaults.js';
import { commandLine, fail, listenAddress, positiveDuration } from './values.js';

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
 * Where clients send requests through the edge (what `baton deploy --verify-load` loads). nginx
 * and HAProxy own their listener, so only the config can say it.
 */
const clientUrl = z.string().superRefine((v, ctx) => {
  let u: URL | undefined;
  try {
    u = new URL(v);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) {
    ctx.addIssue({
      code: 'custom',
      message: `"${v}" is not an http(s) URL: write where clients connect, e.g. http://127.0.0.1:80/`,
    });
  }
});

/**
 * Where client traffic comes in: Baton's own proxy (default) or another Baton's, or the user's
 * nginx / HAProxy.
 */
export const edgeSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z
      .literal('builtin')
      .describe("Baton's own proxy: this daemon's (on listen), or another Baton's (with admin)."),
    admin: listenAddress
      .optional()
      .describe(
        "The admin address of an edge-only Baton on another machine (its file has listen: and admin:, no app: nor targets:); left out: this daemon's own proxy.",
      ),
    timeout: positiveDuration
      .prefault(DEFAULTS.edge.timeout)
      .describe('The deadline of each call to that Baton (a drain gets its own timeout on top).'),
    tokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'an environment variable name, e.g. BATON_EDGE_TOKEN' })
      .prefault(DEFAULTS.edge.tokenEnv)
      .describe("The environment variable holding that Baton's admin token."),
    url: clientUrl
      .optional()
      .describe('Where clients connect (loaded by `baton deploy --verify-load`); default: from listen.'),
  }),
  z
    .strictObject({
      type: z
        .literal('nginx')
        .describe('Your nginx: Baton writes one upstream file, tests the config and reloads nginx.'),
      upstreamFile: z
        .string()
        .min(1, { message: 'the upstream file Baton owns, e.g. /etc/nginx/conf.d/web.upstream.conf' })
        .describe(
          "The one file Baton writes: the service's upstream block, included by your nginx.conf (e.g. /etc/nginx/conf.d/web.upstream.conf).",
        ),
      test: commandLine
        .prefault(EDGE_DEFAULTS.nginx.test)
        .describe(
          'Checks the whole config after the file is written (run without a shell); on failure the file is put back.',
        ),
      reload: commandLine
        .prefault(EDGE_DEFAULTS.nginx.reload)
        .describe('Reloads nginx (run without a shell).'),
      pidFile: z
        .string()
        .min(1)
        .prefault(EDGE_DEFAULTS.nginx.pidFile)
        .describe(
          "nginx's pid file: a reload is confirmed by new workers, and old ones are awaited before a drain ends.",
        ),
      reloadTimeout: positiveDuration
        .prefault(EDGE_DEFAULTS.nginx.reloadTimeout)
        .describe("The deadline of the test and reload commands, and of nginx's new workers showing up."),
      keepalive: z
        .number()
        .int()
        .min(0)
        .max(10_000)
        .prefault(EDGE_DEFAULTS.nginx.keepalive)
        .describe("nginx's keepalive: idle connections to the upstream kept per worker; 0: none."),
      host: sshDestination
        .optional()
        .describe(
          "nginx on another machine, reached over SSH (with ssh: options): [user@]host[:port] or a Host of ~/.ssh/config. Its paths are that machine's, written absolute.",
        ),
      url: clientUrl
        .optional()
        .describe(
          'Where clients connect to nginx, e.g. http://127.0.0.1:80/ (loaded by `baton deploy --verify-load`).',
        ),
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
    type: z
      .literal('haproxy')
      .describe('Your HAProxy: Baton drives the servers of one backend over its runtime API.'),
    runtimeSocket: z
      .string()
      .min(1, { message: 'the admin socket, e.g. /run/haproxy/admin.sock' })
      .describe('The stats socket with `level admin`: a path (or unix:/path), or host:port.'),
    backend: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]+$/, { message: 'a backend name from haproxy.cfg, e.g. web' })
      .describe('The backend of haproxy.cfg whose servers Baton drives (its server-template slots).'),
    serverPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .prefault(EDGE_DEFAULTS.haproxy.serverPrefix)
      .describe('The server-template prefix in that backend (server-template baton 1-10 ...).'),
    stateFile: z
      .string()
      .min(1)
      .optional()
      .describe('Written after every change (show servers state), so a reload of HAProxy keeps the routes.'),
    timeout: positiveDuration
      .prefault(EDGE_DEFAULTS.haproxy.timeout)
      .describe('The deadline of each command on the runtime socket.'),
    url: clientUrl
      .optional()
      .describe(
        'Where clients connect to HAProxy, e.g. http://127.0.0.1:80/ (loaded by `baton deploy --verify-load`).',
      ),
  }),
]);

export type EdgeConfig = z.output<typeof edgeSchema>;
