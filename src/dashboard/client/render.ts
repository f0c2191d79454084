// The page script's second part: a snapshot (src/api/dashboard.ts) drawn into the page: the
// service, its instances, the running deploy (steps, shares set and actual, traffic and errors
// per version, verdicts against their thresholds, what comes next, progress) and history.
export const RENDER_JS = String.raw`
B.renderService = function (s) {
  var st = s.status;
  var f = s.freeze;
  var freezeText = !f ? 'no deploy gate' : f.freeze ? 'FROZEN by ' + f.freeze.actor + ' since ' + B.time(f.freeze.since) + ': ' + f.freeze.reason : 'not frozen';
  var w = f && f.window;
  var windowText = !w ? 'no deploy windows: deploys any time' : w.open ? 'open (' + w.timezone + ')' : 'CLOSED: ' + (w.reason || '') + (w.nextOpenLocal ? '; opens ' + w.nextOpenLocal : '');
  var rows = [
    ['Service', s.service + (s.environment.name ? ' (' + s.environment.name + ')' : '')],
    ['Live version', st.live ? st.live.version : 'none'],
    ['Edge', s.edge.describe],
    ['Freeze', B.badge(f && f.freeze ? 'frozen' : 'not frozen', f && f.freeze ? 'bad' : 'good'), freezeText],
    ['Deploy window', B.badge(!w || w.open ? 'open' : 'closed', !w || w.open ? 'good' : 'warn'), windowText],
  ];
  if (st.standby) rows.push(['Standby', st.standby.version + ' kept until ' + B.time(st.standby.stopAt)]);
  if (st.lastRecovery) rows.push(['Last recovery', st.lastRecovery]);
  if (st.orphans.length) rows.push(['Orphans', st.orphans.map(function (o) { return o.id; }).join(', ')]);
  B.fill(B.$('service'), [
    B.el('dl', { cls: 'facts' }, rows.reduce(function (acc, r) {
      acc.push(B.el('dt', { text: r[0] }));
      acc.push(B.el('dd', {}, r.slice(1).map(function (x) { return typeof x === 'string' ? B.el('span', { text: x }) : x; })));
      return acc;
    }, [])),
    B.el('div', { cls: 'buttons' }, [
      f && f.freeze ? B.button('unfreeze', 'Unfreeze') : f ? B.button('freeze', 'Freeze deploys') : null,
      st.live ? B.button('rollback', 'Roll back', 'danger') : null,
    ]),
  ]);
  var inst = st.live ? st.live.instances : [];
  B.fill(B.$('instances'), [
    inst.length
      ? B.table(null, ['Instance', 'Version', 'Address', 'Health', 'In flight', 'Requests', 'Process'], inst.map(function (i) {
          return [i.id, i.version, i.host + ':' + i.port, B.badge(i.health, B.resultKind(i.health)), B.num(i.inflight), B.num(i.requests),
            i.crashLoop ? B.badge('crash loop', 'bad') : i.alive ? 'running (pid ' + i.pid + ')' : B.badge('not running', 'bad')];
        }))
      : B.el('p', { text: 'No instance is live.' }),
  ]);
};

B.renderDeploy = function (s) {
  var d = s.status.deployment;
  var box = B.$('deploy');
  box.classList.toggle('idle', !d);
  if (!d) {
    B.fill(box, [B.el('h2', { text: 'Deploy' }), B.el('p', { cls: 'muted', text: 'No deploy is running.' })]);
    return;
  }
  var c = d.canary;
  var traffic = s.traffic;
  var total = traffic.reduce(function (a, t) { return a + (t.rate || 0); }, 0);
  var head = (d.rollback ? 'Rolling back to ' : 'Deploying ') + d.version + (d.previousVersion ? ' (from ' + d.previousVersion + ')' : '');
  var parts = [
    B.el('h2', { text: 'Deploy' }),
    B.el('p', { cls: 'headline' }, [B.el('strong', { text: head }), ' ', B.badge(d.paused ? 'paused' : d.step, d.paused ? 'warn' : 'neutral')]),
    B.el('p', { text: d.strategy + ' by ' + d.actor + ', started ' + B.clock(d.startedAt) + ', ' + B.ms(d.elapsedMs) + ' ago. ' + d.detail }),
  ];
  if (s.steps.length) {
    parts.push(B.el('h3', { text: 'Steps' }));
    parts.push(B.el('ol', { cls: 'steps' }, s.steps.map(function (st) {
      return B.el('li', { cls: 'step ' + st.state }, [B.el('span', { text: st.text }), ' ', B.badge(st.state === 'current' ? 'now' : st.state, st.state === 'done' ? 'good' : st.state === 'current' ? 'warn' : 'neutral')]);
    })));
  }
  var byVersion = {};
  traffic.forEach(function (t) { byVersion[t.version] = t; });
  var sides = c ? [{ role: 'stable', side: c.stable }, { role: 'canary', side: c.canary }] : traffic.map(function (t) { return { role: t.version === d.version ? 'new' : 'old', side: { version: t.version, percent: null } }; });
  parts.push(B.el('h3', { text: 'Traffic per version' }));
  parts.push(B.table(null, ['Version', 'Role', 'Share set', 'Share actual', 'Requests/s', 'Errors/s', 'Errors', 'In flight'], sides.map(function (x) {
    var t = byVersion[x.side.version] || {};
    var actual = total > 0 && t.rate !== null && t.rate !== undefined ? (100 * t.rate) / total : null;
    return [
      x.side.version,
      x.role,
      x.side.percent === null ? 'n/a' : B.pct(x.side.percent),
      { v: B.el('span', { cls: 'share' }, [B.el('span', { cls: 'bar', width: Math.round(actual || 0) + '%' }), B.el('span', { text: B.pct(actual) })]) },
      B.num(t.rate, 1),
      B.num(t.errorRate, 1),
      B.num(t.errors),
      B.num(t.inflight),
    ];
  }), 'traffic'));
  if (c) {
    var a = s.analysis;
    parts.push(B.el('h3', { text: 'Analysis' }));
    if (a) {
      parts.push(B.el('p', { cls: 'muted', text: 'Pass needs success rate >= ' + a.successRate + '%' + (a.latencyP99Ms !== null ? ' and p99 <= ' + B.ms(a.latencyP99Ms) : '') + ', at least ' + a.minRequests + ' requests per ' + B.ms(a.intervalMs) + '; ' + a.failureLimit + ' failure(s) abort.' }));
    }
    var vs = c.verdicts.slice(-8).reverse();
    parts.push(vs.length
      ? B.table(null, ['Time', 'Verdict', 'Requests', 'Success rate', 'p99', 'Why'], vs.map(function (v) {
          return [B.clock(v.at), B.badge(v.result, B.resultKind(v.result)), B.num(v.requests),
            B.pct(v.successRate) + (a ? ' (threshold >= ' + a.successRate + '%)' : ''),
            (v.p99Ms === null ? 'unknown' : B.ms(v.p99Ms)) + (a && a.latencyP99Ms !== null ? ' (threshold <= ' + B.ms(a.latencyP99Ms) + ')' : ''),
            v.reason];
        }), 'verdicts')
      : B.el('p', { cls: 'muted', text: 'No verdict yet.' }));
    parts.push(B.el('p', { cls: 'next' }, [B.el('strong', { text: 'Next: ' }), c.next]));
  }
  parts.push(B.el('div', { cls: 'buttons' }, [
    c ? B.button('promote-step', 'Promote: next step') : null,
    c ? B.button('promote-full', 'Promote: full') : null,
    c && !d.paused ? B.button('pause', 'Pause') : null,
    c && d.paused ? B.button('resume', 'Resume') : null,
    B.button('abort', 'Abort', 'danger'),
  ]));
  parts.push(B.el('h3', { text: 'Progress' }));
  parts.push(B.el('ol', { cls: 'progress', id: 'progress' }, s.progress.map(B.progressLine)));
  B.fill(box, parts);
};

B.progressLine = function (e) {
  return B.el('li', {}, [B.el('time', { text: B.clock(e.time) }), ' ', e.step ? B.el('b', { text: e.step }) : null, ' ', e.message]);
};

B.proofText = function (p) {
  if (!p) return 'none recorded';
  var failed = p.failed === null ? 'unknown' : B.num(p.failed);
  var kinds = ['5xx ' + B.num(p.status5xx), 'proxy errors ' + B.num(p.proxyErrors), 'client aborts ' + B.num(p.clientAborts)];
  return failed + ' of ' + B.num(p.requests) + ' requests failed (' + kinds.join(', ') + ')' + (p.p99Ms !== null && p.p99Ms !== undefined ? '; p99 ' + B.ms(p.p99Ms) : '');
};

B.renderHistory = function (s) {
  var h = s.history;
  B.fill(B.$('history'), [
    h.length
      ? B.table(null, ['Started', 'Version', 'From', 'Result', 'Reason', 'Duration', 'Actor', 'Proof', 'Report'], h.map(function (e) {
          var report = s.report.url ? B.el('a', { href: s.report.url.replace('{id}', encodeURIComponent(e.id)), text: 'report', title: s.report.command.replace('{id}', e.id) }) : B.el('code', { text: s.report.command.replace('{id}', e.id) });
          return [B.time(e.startedAt), e.version + (e.rollback ? ' (rollback)' : ''), e.previousVersion || '-', B.badge(e.result, B.resultKind(e.result)), e.reason || '-', B.ms(e.durationMs), e.actor, B.proofText(e.proof), report];
        }), 'history')
      : B.el('p', { cls: 'muted', text: 'No deploy yet.' }),
  ]);
};

B.renderEnvironments = function (s) {
  var envs = s.environment.all;
  var nav = B.$('environments');
  if (envs.length < 2) {
    nav.hidden = true;
    return;
  }
  nav.hidden = false;
  B.fill(nav, [B.el('span', { text: 'Environment: ' })].concat(envs.map(function (e) {
    if (e.name === s.environment.name) return B.el('strong', { 'aria-current': 'page', text: e.name + ' (this one)' });
    return e.url ? B.el('a', { href: e.url, text: e.name }) : B.el('span', { text: e.name + ' (no TCP admin)' });
  })));
};

B.render = function (s) {
  B.snapshot = s;
  B.$('title').textContent = 'Baton: ' + s.service + (s.environment.name ? ' (' + s.environment.name + ')' : '');
  document.title = B.$('title').textContent;
  B.renderEnvironments(s);
  B.renderService(s);
  B.renderDeploy(s);
  B.renderHistory(s);
  B.$('updated').textContent = 'updated ' + B.clock(s.at);
};
`;
