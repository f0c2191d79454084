// The dashboard on the admin API's listener: GET / (the page, or with ?login its login page;
// neither holds a secret), its script and style, GET /v1/events (the live feed), and POST /
// DELETE /v1/session (log in with the token, log out). The CSRF token is only in the login's
// answer: the page keeps it in localStorage (its origin's, so its port's) and sends it with
// every request, the feed's too; the cookie alone (sent to every port of the host) gives nothing. The guard against
// other origins (src/admin/guard.ts) runs before all of them, as for every admin request.
import { z } from 'zod';
import type { SessionAnswer, SessionBody } from '../api/dashboard.js';
import { PATHS } from '../api/paths.js';
import type { AdminReply, AdminServer } from '../admin/server.js';
import type { Controller } from '../controller/controller.js';
import { BatonError } from '../errors.js';
import { sleep } from '../util/sleep.js';
import { DashboardFeed, type FeedHost } from './feed.js';
import { APP_JS, dashboardPage, LOGIN_JS, loginPage, SECURITY_HEADERS, STYLE_CSS } from './page.js';
import { registerReportRoute } from './report-route.js';
import { FAILURE_DELAY_MS, Sessions } from './sessions.js';

const sessionBody = z.strictObject({ token: z.string().max(4096) }) satisfies z.ZodType<SessionBody>;

const asset = (text: string, contentType: string): AdminReply => ({
  text,
  contentType,
  headers: SECURITY_HEADERS,
});

/** Registers the dashboard; its feed learns of every deploy event from `controller`. */
export function registerDashboard(
  admin: AdminServer,
  controller: Controller,
  daemon: Pick<FeedHost, 'config' | 'edge' | 'freeze'>,
): DashboardFeed {
  const feed = new DashboardFeed({
    ...daemon,
    status: () => controller.status(),
    history: (limit) => controller.history(limit),
    progress: () => controller.current()?.events ?? null,
  });
  controller.use(feed.extension());
  registerReportRoute(admin, controller, () => daemon.config().service);
  const sessions = new Sessions();
  admin.useSessions(sessions);
  admin.onChange(() => feed.changed());
  const html = 'text/html; charset=utf-8';

  admin.route(
    'GET',
    PATHS.dashboard,
    (r) => {
      if (admin.tokenRequired && r.url.searchParams.has('login')) return asset(loginPage(), html);
      // With a token, the page is a shell: its script goes to the login without a CSRF token.
      return asset(dashboardPage(admin.tokenRequired && !r.authenticated), html);
    },
    { open: true },
  );
  admin.route('GET', PATHS.dashboardScript, () => asset(APP_JS, 'text/javascript; charset=utf-8'), {
    open: true,
  });
  admin.route('GET', PATHS.dashboardLoginScript, () => asset(LOGIN_JS, 'text/javascript; charset=utf-8'), {
    open: true,
  });
  admin.route('GET', PATHS.dashboardStyle, () => asset(STYLE_CSS, 'text/css; charset=utf-8'), {
    open: true,
  });

  admin.route<SessionAnswer>(
    'POST',
    PATHS.session,
    async (r) => {
      if (!admin.tokenRequired) {
        throw new BatonError(
          'BATON_E_CONFLICT',
          'no BATON_ADMIN_TOKEN is set: the dashboard needs no login (the admin API answers loopback only)',
        );
      }
      const address = r.req.socket.remoteAddress ?? 'unknown';
      const wait = sessions.blockedFor(address);
      if (wait > 0) {
        throw new BatonError(
          'BATON_E_UNAUTHORIZED',
          `too many wrong tokens (from ${address}, or from all addresses): try again in ${Math.ceil(wait / 1000)}s`,
        );
      }
      // Counted before the body is read (a right token undoes it): slow bodies on many
      // connections get no more guesses than quick ones.
      sessions.failed(address);
      const { token } = await r.body(sessionBody);
      if (!admin.isToken(token)) {
        // Slow on purpose: guessing costs time.
        await sleep(FAILURE_DELAY_MS);
        throw new BatonError(
          'BATON_E_UNAUTHORIZED',
          'wrong admin token: give the value of BATON_ADMIN_TOKEN',
        );
      }
      sessions.succeeded(address);
      const s = sessions.create(r.req);
      return { json: { csrf: s.csrf, expiresAt: s.expiresAt }, headers: { 'set-cookie': s.cookie } };
    },
    { open: true },
  );

  admin.route('DELETE', PATHS.session, (r) => ({
    json: { loggedOut: true },
    headers: { 'set-cookie': sessions.end(r.req) },
  }));

  admin.stream('GET', PATHS.events, async (r, res) => {
    // A session's feed ends with the session (logout, expiry); a bearer's lives on.
    const bearer = admin.isToken(/^Bearer (.+)$/i.exec(r.req.headers.authorization ?? '')?.[1] ?? '');
    const watch = bearer ? null : sessions.watch(r.req, () => res.end());
    try {
      await feed.attach(res, watch?.alive);
    } finally {
      watch?.stop();
    }
  });
  admin.onClose(() => feed.close());
  return feed;
}
