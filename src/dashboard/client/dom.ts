// The page script's first part: DOM helpers (elements built with textContent, never HTML
// strings: nothing the daemon says can become markup) and formatting of numbers, times and
// states, in words so that nothing depends on colour alone. Plain browser JavaScript, served
// as /dashboard/app.js with render.ts and actions.ts (no template literals inside: this is one).
export const DOM_JS = String.raw`'use strict';
var B = (window.B = {});
B.$ = function (id) {
  return document.getElementById(id);
};
B.el = function (tag, props, children) {
  var e = document.createElement(tag);
  props = props || {};
  Object.keys(props).forEach(function (k) {
    var v = props[k];
    if (v === undefined || v === null || v === false) return;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'cls') e.className = v;
    else if (k === 'width') e.style.width = v;
    else if (k.indexOf('on') === 0) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  });
  (children || []).forEach(function (c) {
    if (c === null || c === undefined || c === false) return;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  });
  return e;
};
B.fill = function (node, children) {
  while (node.firstChild) node.removeChild(node.firstChild);
  children.forEach(function (c) {
    if (c) node.appendChild(c);
  });
};
B.num = function (n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return 'unknown';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits === undefined ? 0 : digits });
};
B.pct = function (n) {
  return n === null || n === undefined ? 'unknown' : B.num(n, 1) + '%';
};
B.ms = function (ms) {
  if (ms === null || ms === undefined) return 'unknown';
  if (ms < 1000) return Math.round(ms) + ' ms';
  var s = ms / 1000;
  if (s < 120) return B.num(s, 1) + ' s';
  var m = Math.floor(s / 60);
  return m < 120 ? m + ' min ' + Math.round(s % 60) + ' s' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
};
B.time = function (iso) {
  if (!iso) return '';
  var d = new Date(iso);
  return d.toLocaleString('en-GB', { hour12: false });
};
B.clock = function (iso) {
  return iso ? new Date(iso).toLocaleTimeString('en-GB', { hour12: false }) : '';
};
/** A state as a word with a class for its colour: the word says it without the colour. */
B.badge = function (word, kind) {
  return B.el('span', { cls: 'badge ' + (kind || 'neutral'), text: word });
};
B.resultKind = function (r) {
  return r === 'succeeded' || r === 'pass' || r === 'healthy' ? 'good' : r === 'inconclusive' || r === 'unknown' ? 'warn' : 'bad';
};
B.table = function (caption, heads, rows, cls) {
  return B.el('div', { cls: 'scroll' }, [
    B.el('table', { cls: cls || '' }, [
      caption ? B.el('caption', { text: caption }) : null,
      B.el('thead', {}, [B.el('tr', {}, heads.map(function (h) { return B.el('th', { scope: 'col', text: h }); }))]),
      B.el('tbody', {}, rows.map(function (r) {
        return B.el('tr', {}, r.map(function (c, i) {
          var cell = typeof c === 'object' && c !== null && !(c instanceof Node) ? c : { v: c };
          return B.el('td', { 'data-label': heads[i], cls: cell.cls || '' }, [cell.v instanceof Node ? cell.v : String(cell.v === null || cell.v === undefined ? '' : cell.v)]);
        }));
      })),
    ]),
  ]);
};
`;
