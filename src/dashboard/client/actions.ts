// The page script's last part: the buttons (each asks in a dialog first, then says what the
// admin API answered), the live feed (fetch() of /v1/events, its stream read here: the server
// pushes, the page never polls; not EventSource, which cannot send a header), and logout. With
// a token set, every request carries the session's CSRF token, kept in localStorage by the
// login (per origin, so per port): without it, or once the session is refused, the login.
export const ACTIONS_JS = String.raw`
B.session = Boolean(document.querySelector('meta[name="baton-session"]'));
B.csrf = (B.session && localStorage.getItem('baton-csrf')) || '';
B.login = function () {
  localStorage.removeItem('baton-csrf');
  location.replace('/?login');
};
B.ACTIONS = {
  'promote-step': { ask: function (s) { return 'Promote ' + s.status.deployment.version + ' to the next step?'; }, method: 'POST', path: '/v1/promote', body: {} },
  'promote-full': { ask: function (s) { return 'Promote ' + s.status.deployment.version + ' to 100% of the traffic now?'; }, method: 'POST', path: '/v1/promote', body: { full: true } },
  pause: { ask: function () { return 'Hold the canary where it is (its pause steps stop counting)?'; }, method: 'POST', path: '/v1/pause' },
  resume: { ask: function () { return 'Resume the canary?'; }, method: 'POST', path: '/v1/resume' },
  abort: { ask: function (s) { return 'Abort the deploy of ' + s.status.deployment.version + ' and go back?'; }, method: 'POST', path: '/v1/abort', body: {} },
  rollback: { ask: function (s) { return 'Roll back from ' + (s.status.live ? s.status.live.version : 'the live version') + ' to the previous release?'; }, method: 'POST', path: '/v1/rollback', body: {}, stream: true },
  freeze: { ask: function () { return 'Freeze deploys? Nothing deploys until someone unfreezes.'; }, method: 'POST', path: '/v1/freeze', body: {}, reason: true },
  unfreeze: { ask: function () { return 'Unfreeze deploys?'; }, method: 'DELETE', path: '/v1/freeze', body: {} },
};

B.button = function (action, label, kind) {
  return B.el('button', { type: 'button', cls: kind || '', 'data-action': action, text: label });
};

B.say = function (text, ok) {
  var r = B.$('result');
  r.textContent = (ok ? 'Done: ' : 'Refused: ') + text;
  r.className = 'result ' + (ok ? 'good' : 'bad');
};

B.call = function (a, reason) {
  var body = a.body ? Object.assign({ actor: 'dashboard' }, a.body) : undefined;
  if (a.reason) body.reason = reason;
  var headers = { 'x-baton-csrf': B.csrf };
  if (body) headers['content-type'] = 'application/json';
  return fetch(a.path, { method: a.method, headers: headers, body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin' }).then(function (res) {
    var text = res.ok && a.stream ? B.firstLine(res) : res.text();
    return text.then(function (text) {
      var answer = null;
      try {
        answer = JSON.parse(text);
      } catch (e) {
        answer = null;
      }
      if (!res.ok || (answer && answer.error)) return { ok: false, text: answer && answer.error ? answer.error.message : res.status + ' ' + res.statusText };
      // A rollback is a deploy: its first progress line says it started; the feed shows the rest.
      if (a.stream) return { ok: true, text: 'started ' + (answer ? answer.deployId + ': ' + answer.message : '') };
      return { ok: true, text: JSON.stringify(answer) };
    });
  }, function (err) {
    return { ok: false, text: String(err) };
  });
};

/** The first NDJSON line of a progress stream; the rest is not waited for (the deploy goes on). */
B.firstLine = function (res) {
  var reader = res.body.getReader();
  var decoder = new TextDecoder();
  var got = '';
  function more() {
    return reader.read().then(function (r) {
      got += r.value ? decoder.decode(r.value, { stream: true }) : '';
      var nl = got.indexOf('\n');
      if (nl >= 0 || r.done) {
        reader.cancel();
        return nl >= 0 ? got.slice(0, nl) : got;
      }
      return more();
    });
  }
  return more();
};

B.ask = function (action) {
  var a = B.ACTIONS[action];
  var dlg = B.$('confirm');
  B.$('confirm-text').textContent = a.ask(B.snapshot);
  var reasonRow = B.$('confirm-reason-row');
  reasonRow.hidden = !a.reason;
  B.$('confirm-reason').value = '';
  B.$('confirm-reason').required = Boolean(a.reason);
  dlg.dataset.action = action;
  dlg.showModal();
};

B.confirmed = function (ev) {
  ev.preventDefault();
  var dlg = B.$('confirm');
  var action = dlg.dataset.action;
  var a = B.ACTIONS[action];
  var reason = B.$('confirm-reason').value.trim();
  if (a.reason && !reason) {
    B.$('confirm-reason').focus();
    return;
  }
  dlg.close();
  B.say('sent ' + a.method + ' ' + a.path + '...', true);
  B.call(a, reason).then(function (r) {
    B.say(action + ': ' + r.text, r.ok);
  });
};

B.connect = function () {
  var conn = B.$('connection');
  function again(text) {
    conn.textContent = text;
    conn.className = 'badge bad';
    setTimeout(B.connect, 2000);
  }
  fetch('/v1/events', { headers: { 'x-baton-csrf': B.csrf }, credentials: 'same-origin', cache: 'no-store' }).then(function (res) {
    // The session ended (logout, expiry, a daemon restart): log in again.
    if (B.session && (res.status === 401 || res.status === 403)) return B.login();
    if (!res.ok || !res.body) return again('disconnected');
    conn.textContent = 'live';
    conn.className = 'badge good';
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var got = '';
    function more() {
      return reader.read().then(function (r) {
        if (r.done) return again('reconnecting');
        got += decoder.decode(r.value, { stream: true });
        for (var end = got.indexOf('\n\n'); end >= 0; end = got.indexOf('\n\n')) {
          B.feedEvent(got.slice(0, end));
          got = got.slice(end + 2);
        }
        return more();
      });
    }
    return more();
  }).catch(function () {
    again('reconnecting');
  });
};

/** One event of the feed (text/event-stream: "event:" and "data:" lines). */
B.feedEvent = function (block) {
  var name = 'message';
  var data = [];
  block.split('\n').forEach(function (line) {
    if (line.indexOf('event: ') === 0) name = line.slice(7);
    else if (line.indexOf('data: ') === 0) data.push(line.slice(6));
  });
  if (!data.length) return;
  var d = JSON.parse(data.join('\n'));
  if (name === 'snapshot') B.render(d);
  else if (name === 'progress' && B.$('progress')) B.$('progress').appendChild(B.progressLine(d));
  else if (name === 'problem') B.$('updated').textContent = 'could not read the status: ' + d.message;
};

/** With a session, a report link is fetched with the CSRF token and saved as a file. */
B.download = function (path) {
  fetch(path, { headers: { 'x-baton-csrf': B.csrf }, credentials: 'same-origin' }).then(function (res) {
    if (!res.ok) return B.say(path + ': ' + res.status + ' ' + res.statusText, false);
    return res.blob().then(function (blob) {
      var a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'baton-' + path.split('/').slice(-2).join('-') + '.html';
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 60000);
    });
  });
};

document.addEventListener('click', function (ev) {
  var link = B.session && ev.target.closest ? ev.target.closest('a[href^="/v1/"]') : null;
  if (link) {
    ev.preventDefault();
    return B.download(link.getAttribute('href'));
  }
  var t = ev.target.closest ? ev.target.closest('button[data-action]') : null;
  if (t && B.snapshot) B.ask(t.getAttribute('data-action'));
});
B.$('confirm-form').addEventListener('submit', B.confirmed);
B.$('confirm-cancel').addEventListener('click', function () {
  B.$('confirm').close();
});
var logout = B.$('logout');
if (logout) {
  logout.addEventListener('click', function () {
    fetch('/v1/session', { method: 'DELETE', headers: { 'x-baton-csrf': B.csrf } }).then(B.login, B.login);
  });
}
if (B.session && !B.csrf) B.login();
else B.connect();
`;
