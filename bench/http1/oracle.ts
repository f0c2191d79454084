// The oracle of the differential fuzz: llhttp itself, as node:http drives it (the HTTPParser of
// node's internal `_http_common`, strict: no lenient flags), plus the one check node:http's server
// adds on top (an HTTP/1.1 request without Host is a 400). Both parsers' outcomes are described
// the same way (`Outcome`) so they can be compared field by field.
import { METHODS } from 'node:http';
import { createRequire } from 'node:module';

/** One message as a parser saw it; fields are flat [name, value, ...] as sent (values trimmed). */
export interface Message {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly reason: string;
  readonly versionMinor: number;
  readonly headers: string[];
  readonly keepAlive: boolean;
  readonly upgrade: boolean;
  /** Body bytes (latin1), decoded from chunked. */
  body: string;
  trailers: string[];
  complete: boolean;
}

export interface Outcome {
  readonly messages: Message[];
  /** Why parsing stopped with a refusal; null when it did not (done, waiting, or closed). */
  error: string | null;
  /** llhttp: bytes came after a message that closes the connection (node:http drops them, 400). */
  closed?: boolean;
}

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string });
  finish(): undefined | (Error & { code?: string });
  close(): void;
  [key: number]: unknown;
}

interface HttpCommon {
  HTTPParser: {
    new (): LlhttpParser;
    REQUEST: number;
    RESPONSE: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
  };
}

// node's own HTTP parser binding (what node:http uses); not public API, hence the cast.
const common = createRequire(import.meta.url)('_http_common') as HttpCommon;
const { HTTPParser } = common;

/**
 * llhttp reports a method as its own enum value; the names are found by asking it once about
 * each method node:http knows (`_http_common.methods` is sorted, not indexed by that value).
 */
const methods: string[] = [];
for (const name of METHODS) {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, 1024, 0);
  parser[HTTPParser.kOnHeadersComplete] = (_a: number, _b: number, _h: unknown, m: number) => {
    methods[m] = name;
    return 0;
  };
  parser.execute(Buffer.from(`${name} / HTTP/1.1\r\nHost: a\r\n\r\n`));
  parser.close();
}

/** node:http's own answer to a request llhttp took (see llhttpOutcome), or null. */
function nodeAnswers(m: Message): string | null {
  if (m.versionMinor !== 1) return null;
  const values = (name: string): string[] =>
    m.headers.filter((_, j) => j % 2 === 1 && m.headers[j - 1]!.toLowerCase() === name);
  if (values('host').length === 0) return 'node-missing-host';
  const expect = values('expect');
  // node:http's continueExpression, on the joined values.
  if (expect.length > 0 && !/(?:^|\W)100-continue(?:$|\W)/i.test(expect.join(', '))) {
    return 'node-expectation';
  }
  return null;
}

/** Bigger than ours (16 KiB): a head only llhttp refuses for size cannot come from this. */
export const ORACLE_MAX_HEAD = 64 * 1024;

/**
 * Runs llhttp over `bytes` (responses: then the end of the stream, as a closed connection).
 * `headRequest`: the responses answer HEAD, whose body node:http skips.
 */
export function llhttpOutcome(type: 'request' | 'response', bytes: Buffer, headRequest = false): Outcome {
  const parser = new HTTPParser();
  const outcome: Outcome = { messages: [], error: null };
  let pending: string[] = [];
  let pendingUrl = '';
  let current: Message | null = null;
  parser.initialize(type === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, ORACLE_MAX_HEAD, 0);
  parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    // Many fields (or trailers) arrive in batches before/after the head.
    pending.push(...headers);
    pendingUrl += url;
  };
  parser[HTTPParser.kOnHeadersComplete] = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number | undefined,
    url: string | undefined,
    status: number | undefined,
    reason: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    const all = headers ?? pending;
    current = {
      method: method === undefined ? '' : (methods[method] ?? `#${method}`),
      url: url ?? pendingUrl,
      status: status ?? 0,
      reason: reason ?? '',
      versionMinor: major === 1 ? minor : -1,
      headers: all.slice(),
      keepAlive,
      upgrade,
      body: '',
      trailers: [],
      complete: false,
    };
    pending = [];
    pendingUrl = '';
    outcome.messages.push(current);
    const s = status ?? 0;
    return type === 'response' && (headRequest || (s >= 100 && s < 200 && s !== 101)) ? 1 : 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
    if (current) current.body += chunk.toString('latin1');
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    if (!current) return;
    current.trailers = pending;
    pending = [];
    pendingUrl = '';
    current.complete = true;
  };
  const check = (e: unknown): boolean => {
    if (!(e instanceof Error)) return false;
    const code = (e as { code?: string }).code ?? 'error';
    // Bytes after a message that closes the connection are never read: not a refusal.
    if (code !== 'HPE_CLOSED_CONNECTION') outcome.error = code;
    else outcome.closed = true;
    return true;
  };
  try {
    const r = parser.execute(bytes);
    if (!check(r) && type === 'response') check(parser.finish());
  } finally {
    parser.close();
  }
  if (type === 'request') {
    // node:http's server answers these itself, before any handler: 400 for an HTTP/1.1 request
    // without Host (requireHostHeader), 417 for an Expect it does not know. The oracle stops
    // there (node:http goes on with what is pipelined after; stopping is the stricter reading).
    const i = outcome.messages.findIndex((m) => nodeAnswers(m) !== null);
    if (i >= 0) {
      outcome.error = nodeAnswers(outcome.messages[i]!);
      outcome.messages.length = i;
    }
  }
  // A message node:http would refuse is not one it accepted.
  const last = outcome.messages.at(-1);
  if (outcome.error !== null && last && !last.complete) outcome.messages.pop();
  return outcome;
}
