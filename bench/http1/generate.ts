// Cases for the HTTP/1.1 differential fuzz: valid requests and responses from a small grammar
// (pipelined, with Content-Length or chunked bodies, trailers, 1xx, HEAD, upgrades), then 0-3
// mutations each: byte flips, inserted CR/LF/NUL/SP/HTAB, duplicated lines, CL/TE combinations,
// case changes, obs-fold, huge sizes. Deterministic from the seed, so a corpus needs no file.

export interface FuzzCase {
  readonly type: 'request' | 'response';
  readonly bytes: Buffer;
  /** Responses: the request was HEAD (no body whatever the framing fields say). */
  readonly headRequest: boolean;
  /** Where the bytes arrive in two reads (ours is fed them so; llhttp gets them whole). */
  readonly splitAt: number;
  /** What was generated and how it was mutated, for the report. */
  readonly label: string;
}

/** mulberry32: small, fast, and the same sequence on every platform. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;

function pick<T>(r: Rand, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

function int(r: Rand, max: number): number {
  return Math.floor(r() * max);
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS'];
const ODD_METHODS = ['get', 'FOO', 'M-SEARCH', 'PROPFIND', 'QUERY', 'CONNECT', 'G ET', 'GET\t', 'PRI'];
const TARGETS = [
  '/',
  '/index.html',
  '/api/v1/items?id=42&sort=desc',
  '/a%20b/c',
  "/p;x=1/q!$&'()*+,=:@-._~",
  '/?',
  '//double',
  'http://other.example/x?q=1',
  'HTTP://Other.example:8080',
  'https://[::1]:8443/v6',
  '*',
];
const ODD_TARGETS = ['/a#frag', 'http://user@h/x', 'ftp://h/x', 'http:///x', '/a b', 'x', '/\x7f', '/é'];
const HOSTS = ['app', 'app.example:8080', '10.0.0.1', '[::1]:80', 'xn--bcher-kva.example', 'a%41b'];
const ODD_HOSTS = ['', 'a/b', 'user@app', 'app:x', '[zz]', 'a b'];
const VALUES = ['text/html', 'gzip, deflate', '*/*', 'a "quoted" value', 'x\ty', 'caf\xe9', '=?utf-8?', ''];
const NAMES = [
  'Accept',
  'User-Agent',
  'X-Request-Id',
  'Cookie',
  'X_Under',
  'x-lower',
  'ETag',
  "A!#$%&'*+.^`|~",
];

function chunkedBody(r: Rand): string {
  let body = '';
  const n = int(r, 4);
  for (let i = 0; i < n; i++) {
    const size = pick(r, [1, 3, 5, 16, 255]);
    const hex = pick(r, [size.toString(16), size.toString(16).toUpperCase(), `00${size.toString(16)}`]);
    const ext = pick(r, ['', '', ';a', ';a=b', ';name="q \\" v"', ';a;b=c', ';a=""']);
    body += `${hex}${ext}\r\n${'d'.repeat(size)}\r\n`;
  }
  body += pick(r, ['0', '0', '000', '0;last']) + '\r\n';
  if (r() < 0.3) body += pick(r, ['X-Trailer: t\r\n', 'Checksum: abc\r\nX-B: 2\r\n']);
  return body + '\r\n';
}

interface Framed {
  readonly fields: string[];
  readonly body: string;
}

/** Framing fields and the body they frame. */
function framing(r: Rand, mayBody: boolean, untilClose: boolean): Framed {
  const roll = r();
  if (!mayBody || roll < 0.35) return { fields: [], body: '' };
  if (roll < 0.7) {
    const body = 'b'.repeat(pick(r, [0, 1, 5, 64]));
    return { fields: [`Content-Length: ${body.length}`], body };
  }
  if (roll < 0.92 || !untilClose) {
    const coding = pick(r, ['chunked', 'chunked', 'Chunked', 'CHUNKED']);
    return { fields: [`Transfer-Encoding: ${coding}`], body: chunkedBody(r) };
  }
  return { fields: [], body: 'close-delimited body' };
}

function commonFields(r: Rand): string[] {
  const out: string[] = [];
  const n = int(r, 5);
  for (let i = 0; i < n; i++)
    out.push(`${pick(r, NAMES)}:${pick(r, [' ', '', '  ', '\t'])}${pick(r, VALUES)}`);
  if (r() < 0.25)
    out.push(`Connection: ${pick(r, ['close', 'keep-alive', 'Keep-Alive, x-hop', 'foo, close'])}`);
  if (r() < 0.02) out.push(`X-Big: ${'v'.repeat(int(r, 20_000))}`);
  if (r() < 0.02) for (let i = 0; i < 40; i++) out.push(`X-Many-${i}: ${i}`);
  return out;
}

function request(r: Rand): string {
  const method = r() < 0.05 ? pick(r, ODD_METHODS) : pick(r, METHODS);
  let target = r() < 0.05 ? pick(r, ODD_TARGETS) : pick(r, TARGETS);
  if (target === '*' && r() < 0.7) target = '/';
  const version =
    r() < 0.12 ? 'HTTP/1.0' : r() < 0.02 ? pick(r, ['HTTP/2.0', 'HTTP/1.2', 'http/1.1']) : 'HTTP/1.1';
  const fields: string[] = [];
  if (r() < 0.95) fields.push(`Host: ${r() < 0.04 ? pick(r, ODD_HOSTS) : pick(r, HOSTS)}`);
  fields.push(...commonFields(r));
  if (r() < 0.05) fields.push('Connection: Upgrade', 'Upgrade: websocket');
  if (r() < 0.05) fields.push(`Expect: ${pick(r, ['100-continue', '100-Continue', 'other'])}`);
  const f = framing(r, method !== 'GET' || r() < 0.1, false);
  fields.splice(int(r, fields.length + 1), 0, ...f.fields);
  const empty = r() < 0.03 ? '\r\n' : '';
  return `${empty}${method} ${target} ${version}\r\n${fields.map((l) => `${l}\r\n`).join('')}\r\n${f.body}`;
}

function response(r: Rand, headRequest: boolean): string {
  let out = '';
  if (r() < 0.1) out += `HTTP/1.1 ${pick(r, ['100 Continue', '103 Early Hints\r\nLink: </s.css>'])}\r\n\r\n`;
  const status = pick(r, [200, 200, 200, 201, 204, 301, 304, 404, 500, 101]);
  const version = r() < 0.1 ? 'HTTP/1.0' : r() < 0.02 ? 'HTTP/2.0' : 'HTTP/1.1';
  const reason = pick(r, [' OK', ' Fine Thing', '', ' ', ' caf\xe9', ' a\tb']);
  const fields = commonFields(r);
  if (status === 101) fields.push('Connection: upgrade', 'Upgrade: websocket');
  const mayBody = status !== 204 && status !== 304 && status !== 101;
  const f = framing(r, mayBody || r() < 0.2, true);
  fields.splice(int(r, fields.length + 1), 0, ...f.fields);
  const body = headRequest && f.body !== '' && r() < 0.8 ? '' : f.body;
  out += `${version} ${status}${reason}\r\n${fields.map((l) => `${l}\r\n`).join('')}\r\n${body}`;
  return out;
}

// --- mutations ---------------------------------------------------------------------------------

const INSERTS = ['\r', '\n', '\0', ' ', '\t', ':', ',', '"', ';', '\x7f', '\x80', '\r\n', '\n\n', '\x01'];
const FRAMING_LINES = [
  'Content-Length: 5',
  'Content-Length: 0',
  'Content-Length: 5, 5',
  'Content-Length: +5',
  'Content-Length: 0x5',
  'Content-Length: 99999999999999999999',
  'Content-Length: 5 5',
  'Content-Length:',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: chunked, gzip',
  'Transfer-Encoding: identity',
  'Transfer-Encoding: chunked, chunked',
  'Transfer-Encoding: ,chunked',
  'Transfer-Encoding:  chunked ',
  'Transfer-Encoding: xchunked',
  'Transfer-Encoding : chunked',
  'Content-Length : 5',
  'Host: other',
  'Connection: close',
  'Connection: upgrade',
  'Upgrade: h2c',
  'Expect: 100-continue',
];

const REQUEST_LINES = [
  'GET  / HTTP/1.1',
  'GET / HTTP/1.1 ',
  'GET /\t HTTP/1.1',
  'GET / HTTP/1.10',
  ' GET / HTTP/1.1',
  'GET / HTTP/01.1',
  'GET / HTTP/1.1\r',
  'GET\t/ HTTP/1.1',
  'GET /%zz HTTP/1.1',
  'GET ?q HTTP/1.1',
  'OPTIONS * HTTP/1.1',
  'OPTIONS *x HTTP/1.1',
  'POST http://h:80 HTTP/1.1',
  'POST http://h:8x/ HTTP/1.1',
  'GET http://[::1 HTTP/1.1',
];
const STATUS_LINES = [
  'HTTP/1.1 200  OK',
  'HTTP/1.1  200 OK',
  'HTTP/1.1 200OK',
  'HTTP/1.1 099 Low',
  'HTTP/1.1 1000 High',
  'HTTP/1.1 200 OK\x7f',
  'HTTP/1.1 200 \t',
  'HTTP/1.1 200',
  'HTTP/1.1 2x0 OK',
  'HTTP/1.1 600 Odd',
  'HTTP/1.1 999 Odd',
  'HTTP/1.0 204',
  'HTTP/1.1 101',
  'HTTP/1.1 100 Continue',
];
const CHUNK_LINES = [
  '5 ',
  '5\t',
  '5;',
  '5;a=',
  '5;a b',
  '-5',
  ' 5',
  '5;a="x',
  '5;a="\\\x01"',
  '5;a="\x80"',
  '5;\x80',
  '5;a="b"c',
  '5;a=b=c',
  '5;a=b;',
  '5 ;a',
  '5; a',
  '5;a\t=b',
  '0005',
  '5\n',
  '',
];
const TRAILERS = [
  'X-T: a\r\n b\r\n',
  'X-T : a\r\n',
  'X-T:\x00\r\n',
  'Content-Length: 5\r\n',
  'Transfer-Encoding: chunked\r\n',
  ': a\r\n',
  'X-T: a\n',
  'X-T: a\r\r\n',
  'X T: a\r\n',
  'X-T:\ta\t\r\n',
  'Connection: close\r\n',
  'content-LENGTH: 1\r\n',
  'Content-Lengthx: 1\r\n',
  'Transfer-Encodin: 1\r\n',
  'Host: other\r\n',
];

/** One mutation of `s` (latin1: a byte per char); returns the new string and its name. */
function mutate(r: Rand, s: string): [string, string] {
  const headEnd = Math.max(s.indexOf('\r\n\r\n'), 0);
  // Mostly in the head; sometimes anywhere (the body, the chunked framing).
  const at = (): number => (r() < 0.7 && headEnd > 0 ? int(r, headEnd + 2) : int(r, s.length + 1));
  const lines = (): number[] => {
    const starts: number[] = [];
    for (let i = s.indexOf('\r\n'); i >= 0 && i < headEnd; i = s.indexOf('\r\n', i + 2)) starts.push(i + 2);
    return starts;
  };
  switch (int(r, 13)) {
    case 0: {
      const i = at();
      return [s.slice(0, i) + String.fromCharCode(int(r, 256)) + s.slice(i + 1), 'byte-flip'];
    }
    case 1:
    case 2: {
      const i = at();
      const ins = pick(r, INSERTS);
      return [s.slice(0, i) + ins + s.slice(i), `insert-${JSON.stringify(ins)}`];
    }
    case 3: {
      const i = at();
      return [s.slice(0, i) + s.slice(i + 1), 'delete-byte'];
    }
    case 4: {
      const starts = lines();
      if (starts.length === 0) return [s, 'none'];
      const from = pick(r, starts);
      const line = s.slice(from, s.indexOf('\r\n', from) + 2);
      return [s.slice(0, from) + line + s.slice(from), 'duplicate-line'];
    }
    case 5:
    case 6: {
      const starts = lines();
      const where = starts.length ? pick(r, starts) : s.indexOf('\r\n') + 2;
      return [s.slice(0, where) + pick(r, FRAMING_LINES) + '\r\n' + s.slice(where), 'framing-line'];
    }
    case 7: {
      const i = at();
      const c = s.charAt(i);
      const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
      return [s.slice(0, i) + flipped + s.slice(i + 1), 'case-change'];
    }
    case 8: {
      const starts = lines();
      if (starts.length === 0) return [s, 'none'];
      const i = pick(r, starts);
      return [s.slice(0, i) + pick(r, [' ', '\t', '  ']) + s.slice(i), 'obs-fold'];
    }
    case 9: {
      const ending = pick(r, ['\n', '\r', '\r\r\n', '\n\r']);
      const i = s.indexOf('\r\n', at());
      if (i < 0) return [s, 'none'];
      return [s.slice(0, i) + ending + s.slice(i + 2), `line-end-${JSON.stringify(ending)}`];
    }
    case 11: {
      // The first line, rewritten at its edges (spaces, versions, status codes).
      const first = s.indexOf('\r\n');
      const line = pick(r, s.startsWith('HTTP/') ? STATUS_LINES : REQUEST_LINES);
      return [line + s.slice(first < 0 ? s.length : first), 'first-line'];
    }
    case 12: {
      // A chunk-size line or a trailer, rewritten at its edges.
      const m = /\r\n\r\n[0-9a-fA-F]+[^\r]*\r\n/.exec(s);
      if (m && r() < 0.6) return [s.replace(m[0], `\r\n\r\n${pick(r, CHUNK_LINES)}\r\n`), 'chunk-line'];
      // The first trailer line of the first last-chunk (a pipelined message may follow).
      const last = /\r\n0+(?:;[^\r\n]*)?\r\n/.exec(s);
      if (!last) return [s, 'none'];
      const at = last.index + last[0].length;
      return [s.slice(0, at) + pick(r, TRAILERS) + s.slice(at), 'trailer'];
    }
    default: {
      const huge = pick(r, ['ffffffffffffffffff', '20000000000000', '1fffffffffffff', '99999999999999999']);
      const m = /\r\n\r\n([0-9a-fA-F]+)/.exec(s);
      if (m && r() < 0.5) return [s.replace(m[0], `\r\n\r\n${huge}`), 'huge-chunk-size'];
      return [
        s.replace(/Content-Length: \d+/i, `Content-Length: ${huge.replace(/\D/g, '9')}`),
        'huge-length',
      ];
    }
  }
}

/** The `i`th case for `seed`: the same pair always gives the same case. */
export function generate(seed: number, i: number): FuzzCase {
  const r = rng((seed * 2654435761) ^ (i * 40503) ^ 0x9e3779b9);
  const type = r() < 0.6 ? 'request' : 'response';
  const headRequest = type === 'response' && r() < 0.15;
  let s = '';
  const messages = type === 'request' ? 1 + int(r, r() < 0.3 ? 3 : 1) : 1;
  for (let m = 0; m < messages; m++) s += type === 'request' ? request(r) : response(r, headRequest);
  const names: string[] = [`${type}x${messages}${headRequest ? '-head' : ''}`];
  const mutations = r() < 0.2 ? 0 : 1 + int(r, 3);
  for (let m = 0; m < mutations; m++) {
    const [next, name] = mutate(r, s);
    s = next;
    names.push(name);
  }
  const bytes = Buffer.from(s, 'latin1');
  return { type, bytes, headRequest, splitAt: int(r, bytes.length + 1), label: names.join(' ') };
}
