// The proxy's HTTP/1.1 request and response head parsers (src/edge/builtin/http1/): each refusal
// with its status, valid heads (pipelined, in every letter case, split at every byte), and every
// request test/proxy-malformed.test.ts and test/proxy-requests.test.ts expect refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FieldKind, REFUSAL_STATUS, type Refusal } from '../src/edge/builtin/http1/fields.js';
import {
  DEFAULT_LIMITS,
  Framing,
  HEAD_INCOMPLETE,
  HEAD_REFUSED,
  RequestHead,
  TargetForm,
  parseRequestHead,
} from '../src/edge/builtin/http1/request-head.js';
import { ResponseHead, parseResponseHead } from '../src/edge/builtin/http1/response-head.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

function refusalOf(text: string, limits = DEFAULT_LIMITS): Refusal | null {
  const { result, head } = parseRequestHead(latin1(text), 0, text.length, limits);
  if (result === HEAD_INCOMPLETE) return null;
  return result === HEAD_REFUSED ? head.refusal : null;
}

const GET = (fields: string, line = 'GET /x HTTP/1.1'): string => `${line}\r\n${fields}\r\n`;
const HOST = 'Host: app\r\n';

describe('request heads: refusals', () => {
  const cases: [name: string, bytes: string, refusal: Refusal, status: number][] = [
    [
      'duplicate Content-Length',
      GET(`${HOST}Content-Length: 3\r\nContent-Length: 4\r\n`),
      'duplicate-content-length',
      400,
    ],
    [
      'duplicate equal Content-Length',
      GET(`${HOST}Content-Length: 3\r\nContent-Length: 3\r\n`),
      'duplicate-content-length',
      400,
    ],
    ['a Content-Length list', GET(`${HOST}Content-Length: 3, 3\r\n`), 'bad-content-length', 400],
    ['a signed Content-Length', GET(`${HOST}Content-Length: +3\r\n`), 'bad-content-length', 400],
    ['an empty Content-Length', GET(`${HOST}Content-Length:\r\n`), 'bad-content-length', 400],
    [
      'a Content-Length past 2^53',
      GET(`${HOST}Content-Length: 9007199254740993\r\n`),
      'bad-content-length',
      400,
    ],
    ['a Content-Length then HTAB', GET(`${HOST}Content-Length: 3\t\r\n`), 'bad-content-length', 400],
    [
      'Content-Length and chunked',
      GET(`${HOST}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n`),
      'content-length-and-chunked',
      400,
    ],
    [
      'chunked then Content-Length',
      GET(`${HOST}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n`),
      'content-length-and-chunked',
      400,
    ],
    ['a coding other than chunked', GET(`${HOST}Transfer-Encoding: gzip\r\n`), 'unknown-coding', 501],
    ['gzip, chunked', GET(`${HOST}Transfer-Encoding: gzip, chunked\r\n`), 'unknown-coding', 501],
    ['identity, chunked', GET(`${HOST}Transfer-Encoding: identity, chunked\r\n`), 'unknown-coding', 501],
    [
      'gzip and chunked on two lines',
      GET(`${HOST}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n`),
      'unknown-coding',
      501,
    ],
    ['chunked not last', GET(`${HOST}Transfer-Encoding: chunked, gzip\r\n`), 'chunked-not-last', 400],
    [
      'chunked twice',
      GET(`${HOST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n`),
      'bad-transfer-encoding',
      400,
    ],
    ['an empty Transfer-Encoding', GET(`${HOST}Transfer-Encoding: \r\n`), 'bad-transfer-encoding', 400],
    [
      'an empty coding in the list',
      GET(`${HOST}Transfer-Encoding: ,chunked\r\n`),
      'bad-transfer-encoding',
      400,
    ],
    ['chunked then HTAB', GET(`${HOST}Transfer-Encoding: chunked\t\r\n`), 'bad-transfer-encoding', 400],
    [
      'Transfer-Encoding on HTTP/1.0',
      GET(`${HOST}Transfer-Encoding: chunked\r\n`, 'POST /x HTTP/1.0'),
      'te-http10',
      400,
    ],
    ['an obs-folded line', GET(`${HOST}X-A: a\r\n  b\r\n`), 'obs-fold', 400],
    ['whitespace before the first field', GET(` ${HOST}`), 'obs-fold', 400],
    ['a bare CR ending a field', GET(`${HOST}X-A: a\rX-B: b\r\n`), 'bare-cr', 400],
    ['a bare LF ending a field', GET(`${HOST}X-A: a\nX-B: b\r\n`), 'bare-lf', 400],
    ['a bare LF ending the request line', 'GET /x HTTP/1.1\nHost: app\r\n\r\n', 'bare-lf', 400],
    ['a bare LF ending the head', `GET /x HTTP/1.1\r\n${HOST}\n`, 'bare-lf', 400],
    ['a bare CR in a value', GET(`${HOST}X-A: a\rb\r\n`), 'bare-cr', 400],
    ['a NUL in a value', GET(`${HOST}X-A: a\x00b\r\n`), 'bad-field-value', 400],
    ['a control character in a value', GET(`${HOST}X-A: a\x01b\r\n`), 'bad-field-value', 400],
    ['DEL in a value', GET(`${HOST}X-A: a\x7fb\r\n`), 'bad-field-value', 400],
    ['a NUL in a name', GET(`${HOST}X\x00A: a\r\n`), 'bad-field-name', 400],
    ['a space in a name', GET(`${HOST}Bad Name: v\r\n`), 'bad-field-name', 400],
    ['a non-token byte in a name', GET(`${HOST}X(A): v\r\n`), 'bad-field-name', 400],
    ['an empty name', GET(`${HOST}: v\r\n`), 'bad-field-name', 400],
    ['a line without a colon', GET(`${HOST}NoColon\r\n`), 'bad-field-name', 400],
    ['whitespace before the colon', GET(`${HOST}Content-Length : 5\r\n`), 'space-before-colon', 400],
    ['a tab before the colon', GET(`${HOST}X-A\t: 5\r\n`), 'space-before-colon', 400],
    ['no Host on HTTP/1.1', GET('X-A: 1\r\n'), 'missing-host', 400],
    ['two Hosts', GET(`${HOST}Host: other\r\n`), 'duplicate-host', 400],
    ['two Hosts in other letter cases', GET(`${HOST}hOST: app\r\n`), 'duplicate-host', 400],
    ['an empty Host', GET('Host:\r\n'), 'bad-host', 400],
    ['a Host with a path', GET('Host: a/b\r\n'), 'bad-host', 400],
    ['a Host with userinfo', GET('Host: user@app\r\n'), 'bad-host', 400],
    ['a Host whose port is not a number', GET('Host: app:x\r\n'), 'bad-host', 400],
    ['a Host with a bad IPv6 literal', GET('Host: [zz]\r\n'), 'bad-host', 400],
    ['a method with a non-token byte', GET(HOST, 'G(T /x HTTP/1.1'), 'bad-request-line', 400],
    ['an unknown method', GET(HOST, 'FOO /x HTTP/1.1'), 'unknown-method', 501],
    ['a lower-case method', GET(HOST, 'get /x HTTP/1.1'), 'unknown-method', 501],
    ['no space before the target', GET(HOST, 'GET/x HTTP/1.1'), 'bad-request-line', 400],
    ['two spaces before the target', GET(HOST, 'GET  /x HTTP/1.1'), 'bad-request-line', 400],
    ['a trailing token', GET(HOST, 'GET /x HTTP/1.1 extra'), 'bad-request-line', 400],
    ['no version', GET(HOST, 'GET /x'), 'bad-request-line', 400],
    ['an unknown HTTP version', GET(HOST, 'GET /x HTTP/9.9'), 'unsupported-version', 505],
    ['HTTP/2.0', GET(HOST, 'GET /x HTTP/2.0'), 'unsupported-version', 505],
    ['HTTP/1.2', GET(HOST, 'GET /x HTTP/1.2'), 'unsupported-version', 505],
    ['a lower-case protocol', GET(HOST, 'GET /x http/1.1'), 'bad-version', 400],
    ['a fragment in the target', GET(HOST, 'GET /x#y HTTP/1.1'), 'bad-target', 400],
    ['a control byte in the target', GET(HOST, 'GET /x\x01y HTTP/1.1'), 'bad-request-line', 400],
    ['a non-ASCII byte in the target', GET(HOST, 'GET /caf\xe9 HTTP/1.1'), 'bad-target', 400],
    ['an asterisk target on GET', GET(HOST, 'GET * HTTP/1.1'), 'bad-target', 400],
    ['a target that is no path', GET(HOST, 'GET x HTTP/1.1'), 'bad-target', 400],
    ['another scheme', GET(HOST, 'GET ftp://other.example/x HTTP/1.1'), 'bad-target', 400],
    [
      'userinfo in an absolute target',
      GET(HOST, 'GET http://user@other.example/x HTTP/1.1'),
      'bad-target',
      400,
    ],
    ['an absolute target with no host', GET(HOST, 'GET http:///x HTTP/1.1'), 'bad-target', 400],
    ['CONNECT', GET('Host: other.example:443\r\n', 'CONNECT other.example:443 HTTP/1.1'), 'connect', 405],
    ['two leading empty lines', `\r\n\r\n${GET(HOST)}`, 'leading-empty-line', 400],
    ['a leading bare LF', `\n${GET(HOST)}`, 'bare-lf', 400],
    ['an Expect other than 100-continue', GET(`${HOST}Expect: something\r\n`), 'bad-expect', 417],
  ];

  for (const [name, bytes, refusal, status] of cases) {
    it(`${name}: ${refusal} (${status})`, () => {
      assert.equal(refusalOf(bytes), refusal);
      assert.equal(REFUSAL_STATUS[refusal], status);
    });
  }

  it('431 for a head over maxHeadSize, complete or not, and too many fields', () => {
    const limits = { ...DEFAULT_LIMITS, maxHeadSize: 4096, maxFields: 10 };
    assert.equal(refusalOf(GET(`${HOST}X-Big: ${'a'.repeat(3000)}\r\n`), limits), null);
    assert.equal(refusalOf(GET(`${HOST}X-Big: ${'a'.repeat(5000)}\r\n`), limits), 'head-too-large');
    assert.equal(refusalOf(`GET /x HTTP/1.1\r\n${HOST}X-Big: ${'a'.repeat(5000)}`, limits), 'head-too-large');
    assert.equal(refusalOf(`GET /${'a'.repeat(5000)}`, limits), 'head-too-large');
    const many = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    assert.equal(refusalOf(GET(`${HOST}${many(9)}`), limits), null);
    assert.equal(refusalOf(GET(`${HOST}${many(10)}`), limits), 'too-many-fields');
    assert.equal(REFUSAL_STATUS['head-too-large'], 431);
    assert.equal(REFUSAL_STATUS['too-many-fields'], 431);
  });

  it('413 for a Content-Length over maxBodySize, before any body', () => {
    const limits = { ...DEFAULT_LIMITS, maxBodySize: 1024 };
    assert.equal(refusalOf(GET(`${HOST}Content-Length: 1024\r\n`, 'POST /x HTTP/1.1'), limits), null);
    assert.equal(
      refusalOf(GET(`${HOST}Content-Length: 1025\r\n`, 'POST /x HTTP/1.1'), limits),
      'body-too-large',
    );
    assert.equal(REFUSAL_STATUS['body-too-large'], 413);
  });
});

describe('request heads: valid ones', () => {
  it('reads method, target, version, fields as spans and the framing', () => {
    const text = `POST /a?b=1 HTTP/1.1\r\nHost: app:8080\r\nX-A:\t v \t\r\nContent-Length: 5\r\nX-Empty:\r\n\r\nhello`;
    const buf = latin1(text);
    const { result, head } = parseRequestHead(buf);
    assert.equal(result, text.length - 5);
    assert.equal(head.method, 'POST');
    assert.equal(head.target(buf), '/a?b=1');
    assert.equal(head.targetForm, TargetForm.origin);
    assert.equal(head.versionMinor, 1);
    assert.equal(head.count, 4);
    assert.deepEqual(
      Array.from({ length: head.count }, (_, i) => [head.name(buf, i), head.value(buf, i)]),
      [
        ['Host', 'app:8080'],
        ['X-A', 'v'],
        ['Content-Length', '5'],
        ['X-Empty', ''],
      ],
    );
    assert.ok(head.nameIs(buf, 1, 'x-a'));
    assert.equal(head.value(buf, head.hostField), 'app:8080');
    assert.equal(head.framing, Framing.length);
    assert.equal(head.bodyLength, 5);
    assert.equal(head.keepAlive, true);
    assert.equal(head.upgrade, false);
  });

  it('names each field a proxy treats apart (FieldKind), in any letter case', () => {
    const fields: [line: string, kind: FieldKind][] = [
      ['Host: app', FieldKind.host],
      ['content-length: 0', FieldKind.contentLength],
      ['CONNECTION: keep-alive', FieldKind.connection],
      ['Upgrade: h2c', FieldKind.upgrade],
      ['Expect: 100-continue', FieldKind.expect],
      ['Keep-Alive: timeout=5', FieldKind.keepAlive],
      ['Proxy-Connection: close', FieldKind.proxyConnection],
      ['TE: trailers', FieldKind.te],
      ['Trailer: X-T', FieldKind.trailer],
      ['Proxy-Authenticate: Basic', FieldKind.proxyAuthenticate],
      ['Proxy-Authorization: Basic x', FieldKind.proxyAuthorization],
      ['X-Forwarded-For: 1.2.3.4', FieldKind.xForwardedFor],
      ['x-forwarded-proto: https', FieldKind.xForwardedProto],
      ['X-FORWARDED-HOST: h', FieldKind.xForwardedHost],
      ['X-Real-IP: 1.2.3.4', FieldKind.xRealIp],
      ['Forwarded: for=1.2.3.4', FieldKind.forwarded],
      ['X-Request-Id: abc', FieldKind.xRequestId],
      ['X-Other: 1', FieldKind.other],
      ['Hosts: x', FieldKind.other],
    ];
    const buf = latin1(GET(fields.map(([line]) => `${line}\r\n`).join(''), 'POST /x HTTP/1.1'));
    const { result, head } = parseRequestHead(buf);
    assert.ok(result > 0, String(head.refusal));
    assert.deepEqual(
      Array.from({ length: head.count }, (_, i) => head.kind(i)),
      fields.map(([, kind]) => kind),
    );
  });

  it('decides framing, keep-alive, upgrade and Expect from the fields, in any letter case', () => {
    const cases: [fields: string, line: string, expected: Partial<RequestHead>][] = [
      ['', 'GET / HTTP/1.1', { framing: Framing.none, keepAlive: true }],
      ['Content-Length: 0\r\n', 'POST / HTTP/1.1', { framing: Framing.none, bodyLength: 0 }],
      ['Transfer-Encoding: Chunked\r\n', 'POST / HTTP/1.1', { framing: Framing.chunked }],
      ['transfer-encoding:  CHUNKED \r\n', 'POST / HTTP/1.1', { framing: Framing.chunked }],
      ['CONNECTION: Close\r\n', 'GET / HTTP/1.1', { keepAlive: false }],
      ['Connection: foo, close\r\n', 'GET / HTTP/1.1', { keepAlive: false, connectionOther: true }],
      ['', 'GET / HTTP/1.0', { keepAlive: false, versionMinor: 0 }],
      ['Connection: keep-alive\r\n', 'GET / HTTP/1.0', { keepAlive: true }],
      ['Connection: Upgrade\r\nUpgrade: websocket\r\n', 'GET / HTTP/1.1', { upgrade: true }],
      ['Upgrade: websocket\r\n', 'GET / HTTP/1.1', { upgrade: false }],
      ['Expect: 100-Continue\r\nContent-Length: 5\r\n', 'POST / HTTP/1.1', { expectContinue: true }],
      ['Expect: 100-continue\r\nContent-Length: 5\r\n', 'POST / HTTP/1.0', { expectContinue: false }],
      ['Expect: other\r\n', 'GET / HTTP/1.0', { expectContinue: false }],
    ];
    for (const [fields, line, expected] of cases) {
      const { result, head } = parseRequestHead(latin1(GET(`${HOST}${fields}`, line)));
      assert.ok(result > 0, `${line} ${fields}: ${head.refusal}`);
      for (const [k, v] of Object.entries(expected)) {
        assert.equal(
          (head as unknown as Record<string, unknown>)[k],
          v,
          `${line} ${JSON.stringify(fields)}: ${k}`,
        );
      }
    }
  });

  it('takes OPTIONS *, absolute-form targets (authority and path as spans), one leading CRLF, HTTP/1.0 without Host', () => {
    const star = parseRequestHead(latin1(GET(HOST, 'OPTIONS * HTTP/1.1')));
    assert.ok(star.result > 0);
    assert.equal(star.head.targetForm, TargetForm.asterisk);
    const text = GET(HOST, 'GET HTTPS://Other.example:8443/p?q HTTP/1.1');
    const buf = latin1(text);
    const abs = parseRequestHead(buf);
    assert.ok(abs.result > 0);
    assert.equal(abs.head.targetForm, TargetForm.absolute);
    assert.equal(
      buf.toString('latin1', abs.head.authorityStart, abs.head.authorityEnd),
      'Other.example:8443',
    );
    assert.equal(buf.toString('latin1', abs.head.pathStart, abs.head.targetEnd), '/p?q');
    const crlf = `\r\n${GET(HOST)}`;
    assert.equal(parseRequestHead(latin1(crlf)).result, crlf.length);
    assert.ok(parseRequestHead(latin1('GET http://other.example/ten HTTP/1.0\r\n\r\n')).result > 0);
    for (const host of ['app', 'app.example:8080', '10.0.0.1:80', '[::1]', '[2001:db8::1]:443', 'a%41b']) {
      assert.equal(refusalOf(GET(`Host: ${host}\r\n`)), null, host);
    }
  });

  it('parses pipelined requests one after the other in one buffer, reusing one head', () => {
    const one = 'GET /1 HTTP/1.1\r\nHost: app\r\n\r\n';
    const two = 'POST /2 HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\n\r\nabc';
    const three = 'GET /3 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n';
    const buf = latin1(one + two + three);
    const head = new RequestHead();
    const seen: string[] = [];
    let p = 0;
    while (p < buf.length) {
      head.reset(p);
      const r = head.parse(buf, buf.length);
      assert.ok(r > 0, String(head.refusal));
      seen.push(`${head.method} ${head.target(buf)} ${head.keepAlive}`);
      p += r + (head.framing === Framing.length ? head.bodyLength : 0);
    }
    assert.equal(p, buf.length);
    assert.deepEqual(seen, ['GET /1 true', 'POST /2 true', 'GET /3 false']);
  });

  it('resumes after the partial head is moved to the front of a new buffer (rebase)', () => {
    const text = 'GET http://h:1/x HTTP/1.1\r\nHost: app\r\nX-A: v\r\n\r\n';
    const whole = parseRequestHead(latin1(text));
    for (let k = 0; k < text.length; k++) {
      // The head starts at 7 in the first read (after a previous message), at 0 in the joined one.
      const first = latin1(`prev...${text.slice(0, k)}`);
      const head = new RequestHead();
      head.reset(7);
      assert.equal(head.parse(first, first.length), HEAD_INCOMPLETE, `at ${k}`);
      const joined = latin1(text);
      head.rebase(0);
      assert.equal(head.parse(joined, joined.length), text.length, `at ${k}: ${head.refusal}`);
      assert.equal(head.target(joined), 'http://h:1/x');
      assert.equal(joined.toString('latin1', head.authorityStart, head.authorityEnd), 'h:1');
      assert.deepEqual(
        Array.from({ length: head.count }, (_, i) => [head.name(joined, i), head.value(joined, i)]),
        [
          ['Host', 'app'],
          ['X-A', 'v'],
        ],
      );
      assert.equal(head.count, whole.head.count);
    }
  });

  it('gives the same answer split at every byte offset, and fed byte by byte', () => {
    const texts = [
      'POST /a HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nX-A: v\r\n\r\n',
      '\r\nGET http://h:1/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
      'GET /x HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n',
      'GET /x HTTP/1.1\r\nHost: app\r\nX-A: a\r\n b\r\n\r\n',
    ];
    for (const text of texts) {
      const buf = latin1(text);
      const whole = parseRequestHead(buf);
      const expect = JSON.stringify([whole.result, whole.head.refusal, whole.head.framing, whole.head.count]);
      for (let k = 0; k <= buf.length; k++) {
        const head = new RequestHead();
        head.reset(0);
        const first = head.parse(buf, k);
        if (first !== HEAD_INCOMPLETE) {
          // Only a refusal may come early (from the bytes so far), and it is the same one.
          assert.equal(first, whole.result, `${JSON.stringify(text)} at ${k}`);
          assert.equal(head.refusal, whole.head.refusal);
          continue;
        }
        const r = head.parse(buf, buf.length);
        assert.equal(JSON.stringify([r, head.refusal, head.framing, head.count]), expect, `${text} at ${k}`);
      }
      const head = new RequestHead();
      head.reset(0);
      let r = HEAD_INCOMPLETE;
      for (let k = 1; k <= buf.length && r === HEAD_INCOMPLETE; k++) r = head.parse(buf, k);
      assert.equal(
        JSON.stringify([r, head.refusal, head.framing, head.count]),
        expect,
        `${text} byte by byte`,
      );
    }
  });
});

describe('response heads', () => {
  const parsed = (text: string, headRequest = false): ResponseHead => {
    const { result, head } = parseResponseHead(latin1(text), headRequest);
    assert.ok(result !== HEAD_INCOMPLETE, `incomplete: ${JSON.stringify(text)}`);
    return head;
  };

  it('reads the status line (with or without a reason) and decides framing by status, request and fields', () => {
    const cases: [text: string, head: boolean, expected: Partial<ResponseHead>][] = [
      [
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
        false,
        { status: 200, framing: Framing.length, bodyLength: 5 },
      ],
      ['HTTP/1.1 200\r\nContent-Length: 5\r\n\r\n', false, { status: 200, framing: Framing.length }],
      [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
        false,
        { framing: Framing.chunked, keepAlive: true },
      ],
      ['HTTP/1.1 200 OK\r\n\r\n', false, { framing: Framing.untilClose, keepAlive: false }],
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', true, { framing: Framing.none, keepAlive: true }],
      ['HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', false, { framing: Framing.none }],
      ['HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n', false, { framing: Framing.none }],
      ['HTTP/1.1 100 Continue\r\n\r\n', false, { framing: Framing.none, interim: true }],
      [
        'HTTP/1.1 101 Switching\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
        false,
        { upgrade: true },
      ],
      ['HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n', false, { keepAlive: false, versionMinor: 0 }],
      ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n', false, { keepAlive: true }],
      ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n', false, { keepAlive: false }],
    ];
    for (const [text, headRequest, expected] of cases) {
      const head = parsed(text, headRequest);
      assert.equal(head.refusal, null, text);
      for (const [k, v] of Object.entries(expected)) {
        assert.equal((head as unknown as Record<string, unknown>)[k], v, `${JSON.stringify(text)}: ${k}`);
      }
    }
    const buf = latin1('HTTP/1.1 404 Not Found\r\n\r\n');
    const { head } = parseResponseHead(buf, false);
    assert.equal(head.reason(buf), 'Not Found');
  });

  it('refuses ambiguous framing and malformed status lines', () => {
    const cases: [text: string, refusal: Refusal][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'duplicate-content-length'],
      [
        'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
        'content-length-and-chunked',
      ],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'unknown-coding'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'chunked-not-last'],
      ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'te-http10'],
      ['HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n', 'obs-fold'],
      ['HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n', 'bare-lf'],
      ['HTTP/1.1 200 OK\r\nX-A: a\x00\r\n\r\n', 'bad-field-value'],
      ['HTTP/2.0 200 OK\r\n\r\n', 'bad-status-line'],
      ['HTTP/1.1 20 OK\r\n\r\n', 'bad-status-line'],
      ['HTTP/1.1 700 Odd\r\n\r\n', 'bad-status-line'],
      ['HTTP/1.1 200 O\x01K\r\n\r\n', 'bad-status-line'],
      ['HTTP/1.1 101 Switching\r\n\r\n', 'bad-upgrade'],
    ];
    for (const [text, refusal] of cases) {
      const { result, head } = parseResponseHead(latin1(text), false);
      assert.equal(result, HEAD_REFUSED, text);
      assert.equal(head.refusal, refusal, text);
      assert.equal(REFUSAL_STATUS[refusal] >= 400, true);
    }
  });

  it('gives the same answer split at every byte offset', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n';
    const buf = latin1(text);
    for (let k = 0; k <= buf.length; k++) {
      const head = new ResponseHead();
      head.reset(0);
      assert.equal(head.parse(buf, k, false), k < buf.length ? HEAD_INCOMPLETE : buf.length, `at ${k}`);
      assert.equal(head.parse(buf, buf.length, false), buf.length);
      assert.equal(head.bodyLength, 12);
      // The same, the partial head first at 3 in another buffer, then moved to the front.
      const moved = new ResponseHead();
      moved.reset(3);
      const first = Buffer.concat([latin1('xyz'), buf.subarray(0, k)]);
      if (k < buf.length) assert.equal(moved.parse(first, first.length, false), HEAD_INCOMPLETE);
      moved.rebase(0);
      assert.equal(moved.parse(buf, buf.length, false), buf.length);
      assert.equal(moved.reason(buf), 'OK');
      assert.equal(moved.value(buf, 1), 'b');
    }
  });
});
