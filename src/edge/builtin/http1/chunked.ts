// An incremental framer for the chunked transfer coding (RFC 9112 §7.1) that copies nothing: fed
// the bytes as they arrive, it says where chunk data lies and where the message ends (after the
// trailer section), so a proxy can pass the bytes on as they are. It keeps its state byte by byte,
// so a chunk-size line or a trailer split across reads is never scanned twice.
import * as fields from './fields.js';
import type { Refusal } from './fields.js';

// Local copies: an imported binding is read through the module record on every use.
const { CR, HTAB, LF, MAX_LENGTH, SP } = fields;
const TOKEN = fields.TOKEN;
const VALUE = fields.VALUE;

/** `next` results: all input used, a data span (dataStart/dataEnd), the end, or refused. */
export const CHUNK_NEED_MORE = 0;
export const CHUNK_DATA = 1;
export const CHUNK_DONE = 2;
export const CHUNK_REFUSED = -1;

export interface ChunkedLimits {
  /** A chunk-size above this is refused (413). */
  readonly maxChunkSize: number;
  /** Chunk data bytes the whole body may hold: a chunk-size passing it is refused (413). */
  readonly maxBodySize: number;
  /** Bytes the trailer section may take (431 beyond). */
  readonly maxTrailerSize: number;
}

export const DEFAULT_CHUNKED_LIMITS: ChunkedLimits = {
  maxChunkSize: MAX_LENGTH,
  maxBodySize: MAX_LENGTH,
  maxTrailerSize: 16_384,
};

const S_SIZE_START = 0;
const S_SIZE = 1;
const S_EXT_NAME_START = 2;
const S_EXT_NAME = 3;
const S_EXT_VALUE_START = 4;
const S_EXT_TOKEN = 5;
const S_EXT_QUOTED = 6;
const S_EXT_QUOTED_PAIR = 7;
const S_EXT_AFTER_QUOTED = 8;
const S_SIZE_LF = 9;
const S_DATA = 10;
const S_DATA_CR = 11;
const S_DATA_LF = 12;
const S_TRAILER_START = 13;
const S_TRAILER_NAME = 14;
const S_TRAILER_VALUE = 15;
const S_TRAILER_LF = 16;
const S_END_LF = 17;
const S_DONE = 18;

const CL_NAME = Buffer.from('content-length', 'latin1');
const TE_NAME = Buffer.from('transfer-encoding', 'latin1');
const CONN_NAME = Buffer.from('connection', 'latin1');
const MAY_CL = 1;
const MAY_TE = 2;
const MAY_CONN = 4;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** qdtext (RFC 9110 §5.6.4): HTAB, SP, 0x21, 0x23-0x5B, 0x5D-0x7E, obs-text. */
function qdtext(c: number): boolean {
  return c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c !== 0x7f);
}

/** One chunked body being framed; `reset` before each message. */
export class ChunkedBody {
  private state = S_SIZE_START;
  private size = 0;
  /** Data bytes of the current chunk not yet seen. */
  private remaining = 0;
  private trailerBytes = 0;
  /** Where the next call continues (after a span, the end, or all input). */
  offset = 0;
  dataStart = 0;
  dataEnd = 0;
  /** Chunk data bytes seen so far (the decoded body's length). */
  bodyBytes = 0;
  /** Where the trailer section starts (after the last chunk's CRLF), once reached; -1 before. */
  trailerStart = -1;
  refusal: Refusal | null = null;
  private limits: ChunkedLimits = DEFAULT_CHUNKED_LIMITS;
  /** The trailer name so far: its length, and which framing field names it may still be. */
  private nameLength = 0;
  private nameMay = 0;

  reset(limits: ChunkedLimits = DEFAULT_CHUNKED_LIMITS): void {
    this.state = S_SIZE_START;
    this.size = 0;
    this.remaining = 0;
    this.trailerBytes = 0;
    this.offset = 0;
    this.bodyBytes = 0;
    this.trailerStart = -1;
    this.refusal = null;
    this.limits = limits;
  }

  /** One more byte of a trailer name: which framing field (CL, TE, Connection) it may still be. */
  private trailerName(c: number): void {
    const i = this.nameLength++;
    const lower = c | 0x20;
    if ((this.nameMay & MAY_CL) !== 0 && CL_NAME[i] !== lower) this.nameMay &= ~MAY_CL;
    if ((this.nameMay & MAY_TE) !== 0 && TE_NAME[i] !== lower) this.nameMay &= ~MAY_TE;
    if ((this.nameMay & MAY_CONN) !== 0 && CONN_NAME[i] !== lower) this.nameMay &= ~MAY_CONN;
  }

  get done(): boolean {
    return this.state === S_DONE;
  }

  private refuse(why: Refusal, at: number): number {
    this.refusal = why;
    this.offset = at;
    return CHUNK_REFUSED;
  }

  /**
   * Frames buf[start, end). Returns CHUNK_DATA with buf[dataStart, dataEnd) the next piece of
   * chunk data (call again from `offset`), CHUNK_DONE with `offset` just after the body (what
   * follows is the next message), CHUNK_NEED_MORE when all of it was used, or CHUNK_REFUSED.
   */
  next(buf: Buffer, start: number, end: number): number {
    let p = start;
    let state = this.state;
    while (p < end) {
      if (state === S_DATA) {
        const n = Math.min(this.remaining, end - p);
        this.remaining -= n;
        this.bodyBytes += n;
        this.dataStart = p;
        this.dataEnd = p + n;
        this.offset = p + n;
        this.state = this.remaining === 0 ? S_DATA_CR : S_DATA;
        return CHUNK_DATA;
      }
      const c = buf[p]!;
      switch (state) {
        case S_SIZE_START:
        case S_SIZE: {
          const d = hexValue(c);
          if (d >= 0) {
            this.size = this.size * 16 + d;
            if (this.size > this.limits.maxChunkSize) {
              return this.refuse(this.size > MAX_LENGTH ? 'bad-chunk-size' : 'chunk-too-large', p);
            }
            state = S_SIZE;
          } else if (state === S_SIZE_START) return this.refuse('bad-chunk-size', p);
          else if (c === 59) state = S_EXT_NAME_START;
          else if (c === CR) state = S_SIZE_LF;
          else return this.refuse(c === LF ? 'bare-lf' : 'bad-chunk-size', p);
          break;
        }
        case S_EXT_NAME_START:
          if (TOKEN[c] !== 1) return this.refuse('bad-chunk-ext', p);
          state = S_EXT_NAME;
          break;
        case S_EXT_NAME:
          if (TOKEN[c] === 1) break;
          if (c === 59) state = S_EXT_NAME_START;
          else if (c === 61) state = S_EXT_VALUE_START;
          else if (c === CR) state = S_SIZE_LF;
          else return this.refuse(c === LF ? 'bare-lf' : 'bad-chunk-ext', p);
          break;
        case S_EXT_VALUE_START:
          if (c === 34) state = S_EXT_QUOTED;
          else if (TOKEN[c] === 1) state = S_EXT_TOKEN;
          else return this.refuse('bad-chunk-ext', p);
          break;
        case S_EXT_TOKEN:
          if (TOKEN[c] === 1) break;
          if (c === 59) state = S_EXT_NAME_START;
          else if (c === CR) state = S_SIZE_LF;
          else return this.refuse(c === LF ? 'bare-lf' : 'bad-chunk-ext', p);
          break;
        case S_EXT_QUOTED:
          if (c === 34) state = S_EXT_AFTER_QUOTED;
          else if (c === 92) state = S_EXT_QUOTED_PAIR;
          else if (!qdtext(c)) return this.refuse('bad-chunk-ext', p);
          break;
        case S_EXT_QUOTED_PAIR:
          if (VALUE[c] !== 1) return this.refuse('bad-chunk-ext', p);
          state = S_EXT_QUOTED;
          break;
        case S_EXT_AFTER_QUOTED:
          if (c === 59) state = S_EXT_NAME_START;
          else if (c === CR) state = S_SIZE_LF;
          else return this.refuse(c === LF ? 'bare-lf' : 'bad-chunk-ext', p);
          break;
        case S_SIZE_LF:
          if (c !== LF) return this.refuse('bare-cr', p);
          if (this.size === 0) {
            state = S_TRAILER_START;
            this.trailerStart = p + 1;
          } else if (this.bodyBytes + this.size > this.limits.maxBodySize) {
            // Refused at the size line, before any of this chunk is passed on.
            return this.refuse('body-too-large', p);
          } else {
            this.remaining = this.size;
            this.size = 0;
            state = S_DATA;
          }
          break;
        case S_DATA_CR:
          if (c !== CR) return this.refuse('bad-chunk-end', p);
          state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (c !== LF) return this.refuse('bad-chunk-end', p);
          state = S_SIZE_START;
          break;
        case S_TRAILER_START:
          if (c === CR) state = S_END_LF;
          else if (c === LF) return this.refuse('bare-lf', p);
          else if (c === SP || c === HTAB) return this.refuse('obs-fold', p);
          else if (TOKEN[c] === 1) {
            state = S_TRAILER_NAME;
            this.nameLength = 0;
            this.nameMay = MAY_CL | MAY_TE | MAY_CONN;
            this.trailerName(c);
          } else return this.refuse('bad-field-name', p);
          break;
        case S_TRAILER_NAME:
          if (TOKEN[c] === 1) {
            this.trailerName(c);
            break;
          }
          if (c === 58) {
            // RFC 9110 §6.5.1: fields that frame the message or manage the connection mean nothing
            // in trailers, and llhttp acts on some (CL, TE refused; Connection: close obeyed).
            const n = this.nameLength;
            const may = this.nameMay;
            if (
              ((may & MAY_CL) !== 0 && n === CL_NAME.length) ||
              ((may & MAY_TE) !== 0 && n === TE_NAME.length) ||
              ((may & MAY_CONN) !== 0 && n === CONN_NAME.length)
            ) {
              return this.refuse('framing-trailer', p);
            }
            state = S_TRAILER_VALUE;
          } else return this.refuse(c === SP || c === HTAB ? 'space-before-colon' : 'bad-field-name', p);
          break;
        case S_TRAILER_VALUE:
          if (VALUE[c] === 1) break;
          if (c === CR) state = S_TRAILER_LF;
          else return this.refuse(c === LF ? 'bare-lf' : 'bad-field-value', p);
          break;
        case S_TRAILER_LF:
          if (c !== LF) return this.refuse('bare-cr', p);
          state = S_TRAILER_START;
          break;
        case S_END_LF:
          if (c !== LF) return this.refuse('bare-cr', p);
          this.state = S_DONE;
          this.offset = p + 1;
          return CHUNK_DONE;
        default:
          // S_DONE: nothing more belongs to this body.
          this.offset = p;
          return CHUNK_DONE;
      }
      if (state >= S_TRAILER_START && ++this.trailerBytes > this.limits.maxTrailerSize) {
        return this.refuse('head-too-large', p);
      }
      p++;
    }
    this.state = state;
    this.offset = p;
    return state === S_DONE ? CHUNK_DONE : CHUNK_NEED_MORE;
  }
}
