// The chunked-body framer (src/edge/builtin/http1/chunked.ts): data spans and the body's end
// without copying, the same answer however the bytes are split, and each refusal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CHUNK_DATA,
  CHUNK_DONE,
  CHUNK_NEED_MORE,
  CHUNK_REFUSED,
  ChunkedBody,
  DEFAULT_CHUNKED_LIMITS,
  type ChunkedLimits,
} from '../src/edge/builtin/http1/chunked.js';
import { REFUSAL_STATUS, type Refusal } from '../src/edge/builtin/http1/fields.js';

interface Framed {
  /** The decoded data. */
  data: string;
  /** 'done@<offset after the body>', 'more' or the refusal. */
  end: string;
}

/** Feeds `text` in pieces ending at each of `cuts` (then the rest), as reads would arrive. */
function frame(text: string, cuts: number[] = [], limits: ChunkedLimits = DEFAULT_CHUNKED_LIMITS): Framed {
  const buf = Buffer.from(text, 'latin1');
  const body = new ChunkedBody();
  body.reset(limits);
  let data = '';
  let p = 0;
  for (const avail of [...cuts, buf.length]) {
    for (;;) {
      const ev = body.next(buf, p, avail);
      if (ev === CHUNK_DATA) {
        assert.ok(body.dataStart >= p && body.dataEnd <= avail, 'a span inside the bytes given');
        data += buf.toString('latin1', body.dataStart, body.dataEnd);
        p = body.offset;
        continue;
      }
      if (ev === CHUNK_DONE) return { data, end: `done@${body.offset}` };
      if (ev === CHUNK_REFUSED) return { data, end: body.refusal ?? 'refused' };
      assert.equal(ev, CHUNK_NEED_MORE);
      assert.equal(body.offset, avail, 'all input used');
      p = avail;
      break;
    }
  }
  return { data, end: 'more' };
}

describe('chunked bodies: valid ones', () => {
  const cases: [text: string, data: string][] = [
    ['0\r\n\r\n', ''],
    ['5\r\nhello\r\n0\r\n\r\n', 'hello'],
    ['3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n', 'abc0123456789'],
    ['00a\r\n0123456789\r\n000\r\n\r\n', '0123456789'],
    ['3;a\r\nabc\r\n0\r\n\r\n', 'abc'],
    ['3;a=b;c=d\r\nabc\r\n0;last\r\n\r\n', 'abc'],
    ['3;name="q \\" v; x"\r\nabc\r\n0\r\n\r\n', 'abc'],
    ['3;a=""\r\nabc\r\n0\r\n\r\n', 'abc'],
    ['3\r\nabc\r\n0\r\nX-Trailer: t\r\nChecksum:\tabc \r\n\r\n', 'abc'],
    ['0\r\nContent-Lengthy: 1\r\nConnectio: 2\r\nTransfer-Encodings: 3\r\n\r\n', ''],
    ['3\r\n\r\n\r\r\n0\r\n\r\n', '\r\n\r'],
  ];

  for (const [text, data] of cases) {
    it(`${JSON.stringify(text)}: the data, then the end, split anywhere`, () => {
      assert.deepEqual(frame(text), { data, end: `done@${text.length}` });
      for (let k = 0; k <= text.length; k++) {
        assert.deepEqual(frame(text, [k]), { data, end: `done@${text.length}` }, `split at ${k}`);
      }
      const bytes = Array.from({ length: text.length }, (_, i) => i);
      assert.deepEqual(frame(text, bytes), { data, end: `done@${text.length}` }, 'byte by byte');
    });
  }

  it('stops at the end of the body: what follows is the next message', () => {
    const text = '3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n';
    assert.deepEqual(frame(text), { data: 'abc', end: 'done@13' });
  });

  it('waits for more in the middle of a size, data, or the trailers', () => {
    for (const text of ['1', '5\r\nhel', '5\r\nhello\r', '0\r\nX-T: 1\r\n', '0\r\n\r']) {
      assert.equal(frame(text).end, 'more', text);
    }
  });

  it('reports where the trailer section starts, and the decoded length', () => {
    const text = '3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n';
    const buf = Buffer.from(text, 'latin1');
    const body = new ChunkedBody();
    body.reset();
    let p = 0;
    let ev: number;
    while ((ev = body.next(buf, p, buf.length)) === CHUNK_DATA) p = body.offset;
    assert.equal(ev, CHUNK_DONE);
    assert.equal(body.bodyBytes, 3);
    assert.equal(buf.toString('latin1', body.trailerStart, body.offset), 'X-T: 1\r\n\r\n');
    assert.ok(body.done);
  });
});

describe('chunked bodies: refusals', () => {
  const cases: [name: string, text: string, refusal: Refusal][] = [
    ['a size that is not hex', 'zz\r\nhello\r\n0\r\n\r\n', 'bad-chunk-size'],
    ['an empty size', '\r\nhello\r\n0\r\n\r\n', 'bad-chunk-size'],
    ['a 0x prefix', '0x5\r\nhello\r\n0\r\n\r\n', 'bad-chunk-size'],
    ['a space after the size', '5 \r\nhello\r\n0\r\n\r\n', 'bad-chunk-size'],
    ['a size past 2^53', '20000000000000\r\n', 'bad-chunk-size'],
    ['a huge size', 'ffffffffffffffffffff\r\n', 'bad-chunk-size'],
    ['an extension without a name', '5;\r\nhello\r\n0\r\n\r\n', 'bad-chunk-ext'],
    ['an extension with an empty value', '5;a=\r\nhello\r\n0\r\n\r\n', 'bad-chunk-ext'],
    ['whitespace before an extension', '5 ;a\r\nhello\r\n0\r\n\r\n', 'bad-chunk-size'],
    ['whitespace inside an extension', '5;a =b\r\nhello\r\n0\r\n\r\n', 'bad-chunk-ext'],
    ['a non-token extension value', '5;a=b@c\r\nhello\r\n0\r\n\r\n', 'bad-chunk-ext'],
    ['an unterminated quoted value', '5;a="b\r\nhello\r\n0\r\n\r\n', 'bad-chunk-ext'],
    ['a byte after a quoted value', '5;a="b"c\r\nhello\r\n0\r\n\r\n', 'bad-chunk-ext'],
    ['a NUL in an extension', '5;a\x00\r\nhello\r\n0\r\n\r\n', 'bad-chunk-ext'],
    ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n', 'bare-lf'],
    ['a bare CR after the size', '5\rhello\r\n0\r\n\r\n', 'bare-cr'],
    ['data longer than its size', '3\r\nabcdef\r\n0\r\n\r\n', 'bad-chunk-end'],
    ['a bare LF after the data', '3\r\nabc\n0\r\n\r\n', 'bad-chunk-end'],
    ['no CRLF after the data', '3\r\nabc0\r\n\r\n', 'bad-chunk-end'],
    ['an obs-folded trailer', '0\r\nX-T: a\r\n b\r\n\r\n', 'obs-fold'],
    ['a trailer without a name', '0\r\n: a\r\n\r\n', 'bad-field-name'],
    ['a space before a trailer colon', '0\r\nX-T : a\r\n\r\n', 'space-before-colon'],
    ['a NUL in a trailer value', '0\r\nX-T: a\x00\r\n\r\n', 'bad-field-value'],
    ['a bare LF ending a trailer', '0\r\nX-T: a\n\r\n', 'bare-lf'],
    ['Content-Length in the trailers', '0\r\ncontent-LENGTH: 5\r\n\r\n', 'framing-trailer'],
    ['Transfer-Encoding in the trailers', '0\r\nTransfer-Encoding: chunked\r\n\r\n', 'framing-trailer'],
    ['Connection in the trailers', '0\r\nX-T: 1\r\nConnection: close\r\n\r\n', 'framing-trailer'],
    ['a bare LF ending the body', '0\r\n\n', 'bare-lf'],
    ['a bare CR ending the body', '0\r\n\rX', 'bare-cr'],
  ];

  for (const [name, text, refusal] of cases) {
    it(`${name}: ${refusal} (${REFUSAL_STATUS[refusal]}), split anywhere`, () => {
      assert.equal(frame(text).end, refusal);
      for (let k = 0; k <= text.length; k++) assert.equal(frame(text, [k]).end, refusal, `split at ${k}`);
    });
  }

  it('413 for a chunk over maxChunkSize or a body over maxBodySize, before its data', () => {
    const limits = { ...DEFAULT_CHUNKED_LIMITS, maxChunkSize: 1000, maxBodySize: 1024 };
    assert.equal(frame(`3e8\r\n${'a'.repeat(1000)}\r\n0\r\n\r\n`, [], limits).end, 'done@1012');
    assert.equal(frame('3e9\r\n', [], limits).end, 'chunk-too-large');
    const over = frame(`258\r\n${'a'.repeat(600)}\r\n258\r\n${'a'.repeat(600)}\r\n0\r\n\r\n`, [], limits);
    assert.equal(over.end, 'body-too-large');
    assert.equal(over.data.length, 600, 'the first chunk was passed on, none of the second');
    assert.equal(REFUSAL_STATUS['chunk-too-large'], 413);
    assert.equal(REFUSAL_STATUS['body-too-large'], 413);
  });

  it('431 for trailers over maxTrailerSize', () => {
    const limits = { ...DEFAULT_CHUNKED_LIMITS, maxTrailerSize: 100 };
    assert.equal(frame(`0\r\nX-T: ${'a'.repeat(50)}\r\n\r\n`, [], limits).end, 'done@62');
    assert.equal(frame(`0\r\nX-T: ${'a'.repeat(200)}\r\n\r\n`, [], limits).end, 'head-too-large');
  });
});
