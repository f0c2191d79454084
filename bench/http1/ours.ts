// The new parser's side of the differential fuzz: the same bytes through RequestHead /
// ResponseHead and ChunkedBody, as a connection would drive them (pipelined messages, bytes
// arriving in two reads), described as an `Outcome` like llhttp's. `compare` judges the pair.
import { CHUNK_DATA, CHUNK_DONE, CHUNK_REFUSED, ChunkedBody } from '../../src/edge/builtin/http1/chunked.js';
import type { HeadFields } from '../../src/edge/builtin/http1/fields.js';
import {
  DEFAULT_LIMITS,
  Framing,
  HEAD_INCOMPLETE,
  HEAD_REFUSED,
  RequestHead,
} from '../../src/edge/builtin/http1/request-head.js';
import { ResponseHead } from '../../src/edge/builtin/http1/response-head.js';
import type { FuzzCase } from './generate.js';
import type { Message, Outcome } from './oracle.js';

/** The parsers to drive; a test swaps in a deliberately lax one to see the check catch it. */
export interface Parsers {
  readonly request: RequestHead;
  readonly response: ResponseHead;
  readonly chunked: ChunkedBody;
}

export function newParsers(): Parsers {
  return { request: new RequestHead(), response: new ResponseHead(), chunked: new ChunkedBody() };
}

function fieldList(f: HeadFields, buf: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i < f.count; i++) out.push(f.name(buf, i), f.value(buf, i));
  return out;
}

/** Trailer fields from the raw trailer section (already checked by ChunkedBody). */
function trailerList(buf: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  const text = buf.toString('latin1', start, end);
  for (const line of text.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    out.push(line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, ''));
  }
  return out;
}

/**
 * Our outcome for `c`: bytes are available up to `c.splitAt` first, then all of them (a parser
 * that returns "need more" must give the same answer once the rest arrives).
 */
export function oursOutcome(c: FuzzCase, parsers: Parsers = newParsers(), split = true): Outcome {
  const buf = c.bytes;
  const total = buf.length;
  let avail = split ? c.splitAt : total;
  const outcome: Outcome = { messages: [], error: null };
  const response = c.type === 'response';
  let p = 0;
  messages: while (p < total) {
    const head = response ? parsers.response : parsers.request;
    head.reset(p);
    let r: number;
    for (;;) {
      r = response
        ? parsers.response.parse(buf, avail, c.headRequest, DEFAULT_LIMITS)
        : parsers.request.parse(buf, avail, DEFAULT_LIMITS);
      if (r !== HEAD_INCOMPLETE || avail === total) break;
      avail = total;
    }
    if (r === HEAD_REFUSED) {
      outcome.error = head.refusal ?? 'refused';
      break;
    }
    if (r === HEAD_INCOMPLETE) {
      // A response cut short by the end of the stream is refused (llhttp: invalid EOF state).
      if (response) outcome.error = 'eof-in-head';
      break;
    }
    const h = response ? parsers.response : parsers.request;
    const m: Message = {
      method: response ? '' : parsers.request.method,
      url: response ? '' : parsers.request.target(buf),
      status: response ? parsers.response.status : 0,
      reason: response ? parsers.response.reason(buf) : '',
      versionMinor: h.versionMinor,
      headers: fieldList(h, buf),
      keepAlive: h.keepAlive,
      upgrade: h.upgrade,
      body: '',
      trailers: [],
      complete: false,
    };
    outcome.messages.push(m);
    p += r;
    switch (h.framing) {
      case Framing.none:
        m.complete = true;
        break;
      case Framing.length: {
        const n = Math.min(h.bodyLength, total - p);
        m.body = buf.toString('latin1', p, p + n);
        p += n;
        m.complete = n === h.bodyLength;
        if (!m.complete && response) outcome.error = 'eof-in-body';
        break;
      }
      case Framing.untilClose:
        m.body = buf.toString('latin1', p, total);
        p = total;
        m.complete = true;
        break;
      default: {
        const d = parsers.chunked;
        d.reset();
        for (;;) {
          const ev = d.next(buf, p, avail);
          if (ev === CHUNK_DATA) {
            m.body += buf.toString('latin1', d.dataStart, d.dataEnd);
            p = d.offset;
            continue;
          }
          if (ev === CHUNK_REFUSED) {
            outcome.error = d.refusal ?? 'refused';
            break messages;
          }
          if (ev === CHUNK_DONE) {
            m.trailers = trailerList(buf, d.trailerStart, d.offset);
            p = d.offset;
            m.complete = true;
            break;
          }
          p = d.offset;
          if (avail === total) break;
          avail = total;
        }
        if (!m.complete) {
          if (response) outcome.error = 'eof-in-body';
          break messages;
        }
      }
    }
    if (!m.complete) break;
    // After an upgrade the bytes are the new protocol's; after a close nothing more is read.
    if (h.upgrade || !h.keepAlive) break;
    if (p > avail) avail = p;
  }
  const last = outcome.messages.at(-1);
  // Only 1xx heads, then the end: the response itself never came.
  if (response && outcome.error === null && last && parsers.response.interim && p >= total) {
    outcome.error = 'eof-after-interim';
  }
  if (outcome.error !== null && last && !last.complete) outcome.messages.pop();
  return outcome;
}

export type Verdict = 'agree' | 'stricter' | 'waits' | 'disagree';

export interface Judgement {
  readonly verdict: Verdict;
  /** For stricter: our refusal; for disagree: what differs. */
  readonly kind: string;
}

function sameHead(a: Message, b: Message): string | null {
  if (a.method !== b.method) return 'method';
  if (a.url !== b.url) return 'url';
  if (a.status !== b.status) return 'status';
  if (a.reason !== b.reason) return 'reason';
  if (a.versionMinor !== b.versionMinor) return 'version';
  if (a.headers.join('\n') !== b.headers.join('\n')) return 'headers';
  if (a.keepAlive !== b.keepAlive) return 'keep-alive';
  if (a.upgrade !== b.upgrade) return 'upgrade';
  return null;
}

/**
 * llhttp (`theirs`) against ours. Ours may refuse more (stricter) or wait where llhttp already
 * refused (waits: nothing was accepted); anything else that differs is a disagreement.
 */
export function compare(theirs: Outcome, ours: Outcome): Judgement {
  const n = Math.min(theirs.messages.length, ours.messages.length);
  for (let i = 0; i < n; i++) {
    const a = theirs.messages[i]!;
    const b = ours.messages[i]!;
    const head = sameHead(a, b);
    if (head === 'keep-alive' && !b.keepAlive && sameHead(a, { ...b, keepAlive: true }) === null) {
      // Ours closes where llhttp would keep the connection (contradictory Connection tokens):
      // safe, and nothing after this message is read.
      const sameBody = a.complete && b.complete ? a.body === b.body : !a.complete && !b.complete;
      if (sameBody) return { verdict: 'stricter', kind: 'closes-connection' };
    }
    if (head !== null) return { verdict: 'disagree', kind: `head-${head}` };
    if (a.complete && b.complete) {
      if (a.body !== b.body) return { verdict: 'disagree', kind: 'body' };
      if (a.trailers.join('\n') !== b.trailers.join('\n')) return { verdict: 'disagree', kind: 'trailers' };
    } else if (a.complete !== b.complete) {
      if (!a.complete) return { verdict: 'disagree', kind: 'ours-completes-a-body-llhttp-does-not' };
      return { verdict: 'disagree', kind: 'ours-waits-on-a-body-llhttp-completed' };
    }
  }
  if (ours.messages.length > theirs.messages.length) {
    const extra = ours.messages[n]!;
    if (theirs.error !== null && !extra.complete && ours.error === null)
      return { verdict: 'waits', kind: theirs.error };
    return { verdict: 'disagree', kind: 'ours-accepts-a-message-llhttp-refuses' };
  }
  if (theirs.messages.length > ours.messages.length) {
    if (ours.error !== null) return { verdict: 'stricter', kind: ours.error };
    // Ours reads nothing after a message that leaves the connection unusable; llhttp may go on.
    if (n > 0 && !ours.messages[n - 1]!.keepAlive) return { verdict: 'stricter', kind: 'closes-connection' };
    return { verdict: 'disagree', kind: 'ours-misses-a-message-llhttp-parsed' };
  }
  if (ours.error !== null && theirs.error === null) return { verdict: 'stricter', kind: ours.error };
  if (ours.error === null && theirs.error !== null) return { verdict: 'waits', kind: theirs.error };
  return { verdict: 'agree', kind: '' };
}
