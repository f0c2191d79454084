// Who may drive the admin API: not a web page. A page can send "simple" cross-site requests
// (a text/plain POST, no preflight) and, through DNS rebinding (its own name resolving to this
// machine), read the answers. So, before the token is even looked at:
//   - Host must be one the admin API is known by: an IP literal, `localhost`, the configured
//     admin host, or a name in `adminHosts:`. Rebinding needs a name of the attacker's; the port
//     is not compared, so that an ssh tunnel or a port mapping (Host localhost:19901) works.
//   - Origin, when sent (browsers send it; the CLI, curl and Prometheus do not), must be the
//     admin API's own origin; Sec-Fetch-Site must not say the request comes from another site.
//   - A request with a body must say it is JSON (a browser cannot send that cross-site without
//     a CORS preflight, which the admin API never grants).
// A unix socket cannot be reached by a browser: its Host is not checked.
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { normalizeHostName } from '../config/schema/admin.js';
import { BatonError } from '../errors.js';

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost']);

/** The host part of a Host header ("[::1]:9901" → "[::1]", "Name.:80" → "name"); null when malformed. */
function hostPart(host: string): string | null {
  const h = host.trim().toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(h);
  if (!m) return null;
  return normalizeHostName(m[1]!);
}

function isIpLiteral(host: string): boolean {
  return host.startsWith('[') ? isIP(host.slice(1, -1)) === 6 : isIP(host) === 4;
}

export interface GuardOptions {
  /** The admin address's host as configured (127.0.0.1, a name, 0.0.0.0); null for a unix socket. */
  readonly ownHost: string | null;
  /** `adminHosts:` (read at each request: a SIGHUP reload applies). */
  readonly hosts: () => readonly string[];
}

/** Throws BATON_E_FORBIDDEN or BATON_E_UNSUPPORTED_MEDIA_TYPE when `req` may come from a web page. */
export function guardRequest(req: IncomingMessage, o: GuardOptions): void {
  const host = req.headers.host;
  if (o.ownHost !== null && host !== undefined) checkHost(host, o);
  const origin = req.headers.origin;
  if (origin !== undefined && (host === undefined || !sameOrigin(origin, host))) {
    throw new BatonError(
      'BATON_E_FORBIDDEN',
      `refused a request from a web page (Origin ${origin.slice(0, 200)}): the admin API answers only ` +
        'requests without an Origin (the CLI, curl, scripts, Prometheus) or from its own origin. Call it from a script, not from a browser.',
    );
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new BatonError(
      'BATON_E_FORBIDDEN',
      `refused a request a browser sent from another site (Sec-Fetch-Site: ${site.slice(0, 50)}): ` +
        'the admin API is not for web pages. Call it from a script or the CLI.',
    );
  }
  if (hasBody(req) && !isJson(req.headers['content-type'])) {
    const type = req.headers['content-type'];
    throw new BatonError(
      'BATON_E_UNSUPPORTED_MEDIA_TYPE',
      `${req.method} ${(req.url ?? '/').split('?')[0]} sent ${type ? `a ${type.slice(0, 100)} body` : 'a body without Content-Type'}: ` +
        `the admin API takes JSON only. Send "Content-Type: application/json" (curl: -H 'content-type: application/json').`,
    );
  }
}

function checkHost(host: string, o: GuardOptions): void {
  const name = hostPart(host);
  if (name !== null) {
    if (isIpLiteral(name) || LOOPBACK_NAMES.has(name)) return;
    if (o.ownHost !== null && name === normalizeHostName(o.ownHost)) return;
    if (o.hosts().includes(name)) return;
  }
  const shown = host.slice(0, 200);
  throw new BatonError(
    'BATON_E_FORBIDDEN',
    `the admin API does not answer to Host "${shown}": only to IP addresses, localhost, its own address` +
      `${o.ownHost !== null && !isIP(o.ownHost) ? ` (${o.ownHost})` : ''} and the names in adminHosts: ` +
      '(a web page can reach it by a name of its own through DNS rebinding). If you reach it by this name, ' +
      `add the name to adminHosts: in baton.yaml (adminHosts: [${name ?? 'name'}]).`,
  );
}

function sameOrigin(origin: string, host: string): boolean {
  const o = origin.trim().toLowerCase();
  const h = host.trim().toLowerCase();
  return o === `http://${h}` || o === `https://${h}`;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0);
}

function isJson(type: string | undefined): boolean {
  return type !== undefined && type.split(';', 1)[0]!.trim().toLowerCase() === 'application/json';
}
