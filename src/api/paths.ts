// Every path of the admin API, for the server that registers them and the clients that call
// them (the CLI, the remote edge, the demo, the tests). A path with `:id` is a route pattern for
// the server; clients build the concrete path with the function beside it.

export const PATHS = {
  health: '/v1/health',
  deploy: '/v1/deploy',
  rollback: '/v1/rollback',
  /** The running deploy's progress. */
  deployCurrent: '/v1/deploy/current',
  abort: '/v1/abort',
  promote: '/v1/promote',
  pause: '/v1/pause',
  resume: '/v1/resume',
  /** GET the freeze and the deploy windows, POST to freeze, DELETE to unfreeze. */
  freeze: '/v1/freeze',
  status: '/v1/status',
  history: '/v1/history',
  logs: '/v1/logs',
  targets: '/v1/targets',
  target: '/v1/targets/:id',
  targetDrain: '/v1/targets/:id/drain',
  targetUndrain: '/v1/targets/:id/undrain',
  edgeRoutes: '/v1/edge/routes',
  edgeDrain: '/v1/edge/drain',
  edgeStats: '/v1/edge/stats',
  edgeTraffic: '/v1/edge/traffic',
  edgeView: '/v1/edge/view',
  metrics: '/metrics',
  /** The controller: stop the instances and the data plane, then exit (`baton down`). */
  down: '/v1/down',
  /** The controller: hand the data plane over to a new one (`baton upgrade`). */
  upgrade: '/v1/upgrade',
  /** The dashboard (src/dashboard/): its page, its script and style, its live feed (SSE). */
  dashboard: '/',
  dashboardScript: '/dashboard/app.js',
  dashboardLoginScript: '/dashboard/login.js',
  dashboardStyle: '/dashboard/style.css',
  events: '/v1/events',
  /** A past deploy's proof as an HTML page (what `baton report <id>` writes), for the dashboard. */
  historyReport: '/v1/history/:id/report',
  /** POST the token for a dashboard session cookie; DELETE to log out. */
  session: '/v1/session',
} as const;

/** The data plane's own endpoints, on its unix socket in stateDir (src/dataplane/process.ts). */
export const DATAPLANE_PATHS = {
  health: '/v1/health',
  upgrade: '/v1/dataplane/upgrade',
  stop: '/v1/dataplane/stop',
  /** Re-read tls:'s certificate files (the controller's SIGHUP). */
  certificates: '/v1/dataplane/certificates/reload',
} as const;

/** What every path of the edge API (an edge-only Baton) starts with. */
export const EDGE_API_PREFIX = '/v1/edge/';

/** `/v1/targets/<id>`, `/v1/targets/<id>/drain` or `/undrain`, with `?timeout=` when given. */
export function targetPath(id: string, action?: 'drain' | 'undrain', timeout?: string): string {
  const q = timeout ? `?timeout=${encodeURIComponent(timeout)}` : '';
  return `${PATHS.targets}/${encodeURIComponent(id)}${action ? `/${action}` : ''}${q}`;
}

/** `/v1/history?limit=<limit>`. */
export function historyPath(limit: string | number): string {
  return `${PATHS.history}?limit=${encodeURIComponent(limit)}`;
}

/** `/v1/logs?lines=<lines>[&select=<select>][&since=<since>]`. */
export function logsPath(lines: number, select?: string, since?: string): string {
  const query = new URLSearchParams({
    lines: String(lines),
    ...(select !== undefined ? { select } : {}),
    ...(since !== undefined ? { since } : {}),
  });
  return `${PATHS.logs}?${query.toString()}`;
}
