// A fixed corpus of the differential fuzz (bench/fuzz-http.ts): thousands of generated and mutated
// requests and responses through llhttp and the new parsers, with zero disagreements; and the
// control: a parser made lax on purpose (it takes a duplicate Content-Length) is caught.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Refusal } from '../src/edge/builtin/http1/fields.js';
import { RequestHead } from '../src/edge/builtin/http1/request-head.js';
import { runFuzz } from '../bench/fuzz-http.js';
import { generate } from '../bench/http1/generate.js';
import { llhttpOutcome } from '../bench/http1/oracle.js';
import { newParsers } from '../bench/http1/ours.js';

const SEED = 20_261_203;
const CASES = 5000;

/** Takes a second Content-Length (keeping the first) where the real parser refuses it. */
class LaxRequestHead extends RequestHead {
  protected override refuse(why: Refusal): number {
    return why === 'duplicate-content-length' ? 0 : super.refuse(why);
  }
}

describe('differential fuzz against llhttp (fixed corpus)', () => {
  it('the corpus is the same on every run, and covers both kinds and the mutations', () => {
    assert.deepEqual(generate(SEED, 7).bytes, generate(SEED, 7).bytes);
    const labels = Array.from({ length: 500 }, (_, i) => generate(SEED, i).label).join(' ');
    for (const word of [
      'request',
      'response',
      'byte-flip',
      'insert-',
      'duplicate-line',
      'framing-line',
      'obs-fold',
    ]) {
      assert.ok(labels.includes(word), word);
    }
  });

  it('the oracle is llhttp: it refuses what node:http refuses', () => {
    const dup = Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab');
    assert.equal(llhttpOutcome('request', dup).error, 'HPE_UNEXPECTED_CONTENT_LENGTH');
    const ok = Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\na');
    const outcome = llhttpOutcome('request', ok);
    assert.equal(outcome.error, null);
    assert.equal(outcome.messages[0]?.body, 'a');
    assert.equal(llhttpOutcome('request', Buffer.from('GET / HTTP/1.1\r\n\r\n')).error, 'node-missing-host');
  });

  it(`${CASES} cases: no disagreement (ours refuses more, never less, and frames alike)`, () => {
    const report = runFuzz(SEED, CASES);
    assert.deepEqual(report.disagreements, [], JSON.stringify(report.disagreements.slice(0, 2)));
    assert.equal(report.disagreementCount, 0);
    // The corpus exercises both outcomes: most cases agree, and some are refused by ours only.
    assert.ok(report.agreements > CASES / 2, `${report.agreements} agreements`);
    assert.ok(report.stricter.size > 5, [...report.stricter.keys()].join(', '));
  });

  it('control: a parser that takes a duplicate Content-Length is caught', () => {
    const lax = { ...newParsers(), request: new LaxRequestHead() };
    const report = runFuzz(SEED, CASES, lax, 1000);
    assert.ok(report.disagreementCount > 0, 'the lax parser went unnoticed');
    for (const d of report.disagreements) {
      const fields = d.bytes
        .split('\r\n\r\n')
        .map((h) => (h.match(/\r\ncontent-length[ \t]*:/gi) ?? []).length);
      assert.ok(
        fields.some((n) => n > 1),
        `every disagreement is a duplicate Content-Length: ${JSON.stringify(d.bytes.slice(0, 200))}`,
      );
    }
  });
});
