// The dashboard's documents: the page (an empty frame the script fills from the live feed),
// the login page, their script and style, and the security headers they are served with. All
// are strings in this bundle: they come with the built dist/ and the single executable, no
// file is read at run time, and nothing is fetched from anywhere else (works offline).
import { ACTIONS_JS } from './client/actions.js';
import { DOM_JS } from './client/dom.js';
import { RENDER_JS } from './client/render.js';
import { STYLE_CSS } from './style.js';
import { PATHS } from '../api/paths.js';

export const APP_JS = `${DOM_JS}${RENDER_JS}${ACTIONS_JS}`;
export { STYLE_CSS };

/** Served with every dashboard document: its own script and style only, never in a frame. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const head = (title: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${PATHS.dashboardStyle}">`;

/**
 * The dashboard. `session`: a token is set, the page needs a session; its script reads the
 * CSRF token from localStorage (the login put it there) and, without one, goes to the login.
 */
export function dashboardPage(session: boolean): string {
  return `${head('Baton')}
${session ? '<meta name="baton-session" content="1">\n' : ''}<script src="${PATHS.dashboardScript}" defer></script>
</head>
<body>
<header>
  <h1 id="title">Baton</h1>
  <span id="connection" class="badge warn">connecting</span>
  <span id="updated" class="muted"></span>
  ${session ? '<button type="button" id="logout" class="quiet">Log out</button>' : ''}
</header>
<nav id="environments" hidden></nav>
<main>
  <p id="result" class="result" role="status" aria-live="polite"></p>
  <section aria-labelledby="service-h"><h2 id="service-h">Service</h2><div id="service"><p class="muted">Waiting for the daemon...</p></div></section>
  <section aria-labelledby="instances-h"><h2 id="instances-h">Instances</h2><div id="instances"></div></section>
  <section id="deploy" class="idle"><h2>Deploy</h2></section>
  <section aria-labelledby="history-h"><h2 id="history-h">History</h2><div id="history"></div></section>
</main>
<dialog id="confirm" aria-labelledby="confirm-text">
  <form id="confirm-form" method="dialog">
    <p id="confirm-text"></p>
    <p id="confirm-reason-row" hidden><label>Reason <input id="confirm-reason" name="reason" maxlength="500" autocomplete="off"></label></p>
    <div class="buttons"><button type="submit" id="confirm-ok">Confirm</button> <button type="button" id="confirm-cancel" class="quiet">Cancel</button></div>
  </form>
</dialog>
</body>
</html>
`;
}

/** GET /?login: asked for by the page when a token is set and it has no session's CSRF token. */
export function loginPage(): string {
  return `${head('Baton: log in')}
<script src="${PATHS.dashboardLoginScript}" defer></script>
</head>
<body>
<main class="login">
  <h1>Baton</h1>
  <form id="login">
    <p><label for="token">Admin token (BATON_ADMIN_TOKEN)</label></p>
    <p><input id="token" name="token" type="password" autocomplete="current-password" required></p>
    <p><button type="submit">Log in</button></p>
    <p id="login-error" class="result bad" role="alert"></p>
  </form>
</main>
</body>
</html>
`;
}

export const LOGIN_JS = String.raw`'use strict';
// Logged in already (this origin, another tab): the dashboard.
if (localStorage.getItem('baton-csrf')) location.replace('/');
document.getElementById('login').addEventListener('submit', function (ev) {
  ev.preventDefault();
  var out = document.getElementById('login-error');
  out.textContent = 'checking...';
  fetch('${PATHS.session}', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: document.getElementById('token').value }),
    credentials: 'same-origin',
  }).then(function (res) {
    return res.json().then(function (b) {
      if (res.ok) {
        // Per origin, so per port: the app behind the proxy, on another port, cannot read it.
        localStorage.setItem('baton-csrf', b.csrf);
        return location.replace('/');
      }
      out.textContent = 'Refused: ' + (b.error ? b.error.message : res.status);
    });
  }, function (err) {
    out.textContent = String(err);
  });
});
`;
