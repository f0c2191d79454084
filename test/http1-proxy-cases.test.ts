// Every request the proxy's raw-socket tests expect refused (test/proxy-malformed.test.ts,
// test/proxy-requests.test.ts), through the new parsers alone: each is refused with the status
// the proxy answers today, so wiring them in cannot let any of these through.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CHUNK_DATA,
  CHUNK_DONE,
  CHUNK_REFUSED,
  ChunkedBody,
  DEFAULT_CHUNKED_LIMITS,
} from '../src/edge/builtin/http1/chunked.js';
import { REFUSAL_STATUS, type Refusal } from '../src/edge/builtin/http1/fields.js';
import {
  DEFAULT_LIMITS,
  Framing,
  HEAD_REFUSED,
  RequestHead,
  type HeadLimits,
} from '../src/edge/builtin/http1/request-head.js';

interface Limits {
  readonly maxHeadSize?: number;
  readonly maxBodySize?: number;
}

/** The first request in `text`, head then body: its refusal, or null when it is accepted whole. */
function refusal(text: string, limits: Limits = {}): Refusal | 'incomplete' | null {
  const buf = Buffer.from(text, 'latin1');
  const headLimits: HeadLimits = { ...DEFAULT_LIMITS, ...limits };
  const head = new RequestHead();
  head.reset(0);
  const r = head.parse(buf, buf.length, headLimits);
  if (r === HEAD_REFUSED) return head.refusal;
  if (r === 0) return 'incomplete';
  if (head.framing !== Framing.chunked) return null;
  const body = new ChunkedBody();
  body.reset({ ...DEFAULT_CHUNKED_LIMITS, maxBodySize: headLimits.maxBodySize });
  let p = r;
  for (;;) {
    const ev = body.next(buf, p, buf.length);
    if (ev === CHUNK_REFUSED) return body.refusal;
    if (ev === CHUNK_DONE) return null;
    if (ev !== CHUNK_DATA) return 'incomplete';
    p = body.offset;
  }
}

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n';

describe('requests test/proxy-malformed.test.ts expects refused', () => {
  const cases: [name: string, bytes: string, status: number][] = [
    [
      'Content-Length and Transfer-Encoding both present',
      'POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    [
      'a chunk size that is not hex',
      'POST /x HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      400,
    ],
    [
      'chunk data longer than its size',
      'POST /x HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n',
      400,
    ],
    ['a space in a header name', 'GET /x HTTP/1.1\r\nHost: app\r\nBad Name: v\r\n\r\n', 400],
    ['a control character in a header value', 'GET /x HTTP/1.1\r\nHost: app\r\nX-A: a\x01b\r\n\r\n', 400],
    ['a NUL in a header value', 'GET /x HTTP/1.1\r\nHost: app\r\nX-A: a\x00b\r\n\r\n', 400],
    ['no Host on HTTP/1.1', 'GET /x HTTP/1.1\r\nX-A: 1\r\n\r\n', 400],
    [
      'two different Content-Length values',
      'POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      400,
    ],
    ['an obs-folded header line', 'GET /x HTTP/1.1\r\nHost: app\r\nX-A: a\r\n  b\r\n\r\n', 400],
    ['a request line without a space before the target', 'GET/x HTTP/1.1\r\nHost: app\r\n\r\n', 400],
    // node:http answers 400 today; RFC 9110 §15.6.6 names 505 for a major version not supported.
    ['a request line with an unknown HTTP version', 'GET /x HTTP/9.9\r\nHost: app\r\n\r\n', 505],
    ['a request line with a trailing token', 'GET /x HTTP/1.1 extra\r\nHost: app\r\n\r\n', 400],
  ];

  for (const [name, bytes, status] of cases) {
    it(`${name}: ${status}`, () => {
      const why = refusal(bytes + SMUGGLED);
      assert.ok(why !== null && why !== 'incomplete', `accepted: ${JSON.stringify(bytes)}`);
      assert.equal(REFUSAL_STATUS[why], status, why);
    });
  }

  it('a head over maxHeaderSize: 431; a Content-Length or chunked body over maxBodySize: 413', () => {
    const limits = { maxHeadSize: 4096, maxBodySize: 1024 };
    const big = (n: number): string => `GET /x HTTP/1.1\r\nHost: app\r\nX-Big: ${'a'.repeat(n)}\r\n\r\n`;
    assert.equal(refusal(big(3000), limits), null);
    assert.equal(refusal(big(5000), limits), 'head-too-large');
    const cl = (n: number): string => `POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: ${n}\r\n\r\n`;
    assert.equal(refusal(cl(1024), limits), null);
    assert.equal(refusal(cl(1025), limits), 'body-too-large');
    assert.equal(refusal(`${cl(2000).slice(0, -2)}Expect: 100-continue\r\n\r\n`, limits), 'body-too-large');
    const chunk = (n: number): string => `${n.toString(16)}\r\n${'a'.repeat(n)}\r\n`;
    const chunked = 'POST /x HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n';
    assert.equal(refusal(`${chunked}${chunk(2000)}0\r\n\r\n`, limits), 'body-too-large');
    assert.equal(refusal(`${chunked}${chunk(600)}${chunk(600)}0\r\n\r\n`, limits), 'body-too-large');
    assert.equal(refusal(`${chunked}${chunk(600)}${chunk(424)}0\r\n\r\n`, limits), null);
  });
});

describe('requests test/proxy-requests.test.ts expects refused', () => {
  const cases: [name: string, bytes: string, status: number][] = [
    ['two Host headers', 'GET /x HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n', 400],
    ['two Host headers on OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n', 400],
    ['an asterisk target on GET', 'GET * HTTP/1.1\r\nHost: app\r\n\r\n', 400],
    [
      'an absolute-form target with another scheme',
      'GET ftp://other.example/x HTTP/1.1\r\nHost: app\r\n\r\n',
      400,
    ],
    [
      'an absolute-form target with userinfo',
      'GET http://user@other.example/x HTTP/1.1\r\nHost: app\r\n\r\n',
      400,
    ],
    ['an absolute-form target with no host', 'GET http:///x HTTP/1.1\r\nHost: app\r\n\r\n', 400],
    ['a Host with a path in it', 'GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
    ['a Host with userinfo', 'GET /x HTTP/1.1\r\nHost: user@app\r\n\r\n', 400],
    ['a Host with a port that is not a number', 'GET /x HTTP/1.1\r\nHost: app:x\r\n\r\n', 400],
    ['an empty Host on HTTP/1.1', 'GET /x HTTP/1.1\r\nHost:\r\n\r\n', 400],
    [
      'two Host headers with Expect: 100-continue',
      'POST /x HTTP/1.1\r\nHost: app\r\nHost: other\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
      400,
    ],
    [
      'CONNECT (authority-form)',
      'CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n',
      405,
    ],
  ];
  const body = '5\r\nhello\r\n0\r\n\r\n';
  const codings: [name: string, head: string, status: number][] = [
    ['gzip, chunked', 'Transfer-Encoding: gzip, chunked', 501],
    ['identity, chunked', 'Transfer-Encoding: identity, chunked', 501],
    ['gzip and chunked on two lines', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked', 501],
    ['chunked, gzip', 'Transfer-Encoding: chunked, gzip', 400],
    ['chunked twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked', 400],
    ['an empty Transfer-Encoding', 'Transfer-Encoding: ', 400],
  ];
  for (const [name, head, status] of codings) {
    cases.push([
      `Transfer-Encoding ${name}`,
      `POST /x HTTP/1.1\r\nHost: app\r\n${head}\r\n\r\n${body}`,
      status,
    ]);
  }
  cases.push([
    'Transfer-Encoding on HTTP/1.0',
    `POST /x HTTP/1.0\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    400,
  ]);

  for (const [name, bytes, status] of cases) {
    it(`${name}: ${status}`, () => {
      const why = refusal(bytes + SMUGGLED);
      assert.ok(why !== null && why !== 'incomplete', `accepted: ${JSON.stringify(bytes)}`);
      assert.equal(REFUSAL_STATUS[why], status, why);
    });
  }

  it('still takes what those tests expect served: OPTIONS *, chunked in any case, absolute-form, valid Hosts', () => {
    const ok = [
      'OPTIONS * HTTP/1.1\r\nHost: app\r\n\r\n',
      `POST /c HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n${body}`,
      'GET http://other.example/x?q=1 HTTP/1.1\r\nHost: mysite\r\nConnection: close\r\n\r\n',
      'GET HTTPS://Other.example:8443 HTTP/1.1\r\nHost: mysite\r\n\r\n',
      'GET http://[::1]:8080/v6 HTTP/1.1\r\nHost: mysite\r\n\r\n',
      'GET http://other.example/ten HTTP/1.0\r\n\r\n',
      'GET /u HTTP/1.1\r\nHost: app\r\nX_Forwarded_For: 6.6.6.6\r\nX-Custom_Name: v\r\n\r\n',
      ...[
        'app.example:8080',
        '10.0.0.1:80',
        '[::1]',
        '[2001:db8::1]:443',
        'xn--bcher-kva.example',
        'a%41b',
      ].map((h) => `GET /h HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`),
    ];
    for (const text of ok) assert.equal(refusal(text), null, text);
  });
});
