// `baton logs --since`, at its seams: the log index (which byte of a log was written when), the
// lines read from an offset (the local driver's reading and the SSH driver's `tail` script, run
// here by a real sh on a real file, give the same lines), and the meaning of `since`. The whole
// path, through a daemon and an app, is in cli-follow.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { sinceTime } from '../src/api/logs.js';
import { LogIndex } from '../src/controller/log-index.js';
import type { Instance } from '../src/drivers/driver.js';
import { readLog } from '../src/drivers/local/local.js';
import { lastLinesOf } from '../src/drivers/log-text.js';
import { tailScript } from '../src/drivers/ssh/scripts.js';
import { createLogger } from '../src/log.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-logs-since-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An instance whose log is a real file, its size read at a time the test sets. */
function instanceOf(id: string, logFile: string, clock: { now: number }): Instance {
  return {
    record: { id, version: '1', host: '127.0.0.1', port: 1, pid: 2, logFile, startedAt: '' },
    exited: new Promise(() => {}),
    alive: () => true,
    logTail: () => '',
    logSize: () => ({ bytes: statSync(logFile).size, at: clock.now }),
  };
}

const quiet = createLogger({ level: 'silent' });

describe('the log index', () => {
  it('never misses a line written at or after the time asked for, and shows at most one sampling interval more', (t) => {
    const dir = tempDir(t);
    const logFile = path.join(dir, 'a.log');
    writeFileSync(logFile, '');
    const clock = { now: 1_000_000 };
    const index = new LogIndex(path.join(dir, 'index'), quiet);
    const inst = instanceOf('a', logFile, clock);
    // Lines at irregular times (ms), sampled once a second as the controller does; each line
    // says when it was written.
    const written: { at: number; line: string }[] = [];
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let tick = 0; tick < 120; tick++) {
      const end = clock.now + 1000;
      const times: number[] = [];
      while (rand() < 0.7) times.push(clock.now + Math.floor(rand() * 1000));
      for (const at of times.sort((a, b) => a - b)) {
        written.push({ at, line: `line written at ${at}` });
        appendFileSync(logFile, `line written at ${at}\n`);
      }
      clock.now = end;
      index.sample([inst]);
      // A pause with no writes, and no sample changes (the size did not).
      if (tick % 17 === 0) clock.now += 5000;
    }
    assert.ok(written.length > 50, `enough lines (${written.length})`);
    for (const since of [999_000, 1_000_000, ...written.map((w) => w.at), clock.now + 1]) {
      const start = index.startOf('a', since);
      const text = readLog(logFile, 100_000, start.offset).text;
      const shown = text === '' ? [] : text.split('\n');
      const expected = written.filter((w) => w.at >= since).map((w) => w.line);
      // Every line of the time asked for, in order, at the end...
      assert.deepEqual(shown.slice(shown.length - expected.length), expected, `since ${since}`);
      // ...and before them only lines of the second before the sample read from.
      for (const extra of shown.slice(0, shown.length - expected.length)) {
        const at = Number(extra.split(' ').at(-1));
        assert.ok(at < since && at >= (start.at ?? 0) - 1000, `since ${since}: "${extra}" from ${start.at}`);
      }
    }
  });

  it('thins samples older than an hour to one a minute, and still never starts after the time asked for', (t) => {
    const dir = tempDir(t);
    const logFile = path.join(dir, 'c.log');
    writeFileSync(logFile, '');
    const clock = { now: 0 };
    const index = new LogIndex(path.join(dir, 'index'), quiet);
    const inst = instanceOf('c', logFile, clock);
    const sizeAt: number[] = [];
    for (let s = 0; s < 3 * 3600; s++) {
      appendFileSync(logFile, 'x\n');
      clock.now = s * 1000;
      sizeAt.push(statSync(logFile).size);
      index.sample([inst]);
    }
    const kept = readFileSync(path.join(dir, 'index', 'c.idx'), 'utf8')
      .trimEnd()
      .split('\n').length;
    assert.ok(kept < 2 * 3600, `thinned: ${kept} samples kept of ${3 * 3600}`);
    for (let s = 0; s < 3 * 3600; s += 97) {
      const start = index.startOf('c', s * 1000);
      // Nothing written at or after s*1000 is skipped: the size then was at least the offset...
      assert.ok(start.offset <= sizeAt[s]!, `at ${s}s: ${start.offset} <= ${sizeAt[s]}`);
      // ...and within the last hour, a second's resolution; before, a minute's.
      const recent = s * 1000 >= clock.now - 3600_000;
      assert.ok(s * 1000 - (start.at ?? 0) <= (recent ? 1000 : 60_000), `at ${s}s from ${start.at}`);
    }
  });

  it('is read back after a restart, starts again when the log is truncated, and forgets instances that are gone', (t) => {
    const dir = tempDir(t);
    const logFile = path.join(dir, 'b.log');
    writeFileSync(logFile, 'one\n');
    const clock = { now: 5000 };
    const first = new LogIndex(path.join(dir, 'index'), quiet);
    const inst = instanceOf('b', logFile, clock);
    first.sample([inst]);
    clock.now = 6000;
    appendFileSync(logFile, 'two\n');
    first.sample([inst]);
    assert.deepEqual(first.startOf('b', 6500), { offset: 8, at: 6000 });
    // A new controller (a restart) reads the file.
    const second = new LogIndex(path.join(dir, 'index'), quiet);
    assert.deepEqual(second.startOf('b', 6500), { offset: 8, at: 6000 });
    assert.deepEqual(second.startOf('b', 5500), { offset: 4, at: 5000 });
    assert.deepEqual(second.startOf('b', 4000), { offset: 0, at: null });
    // copytruncate: what was noted before means nothing now.
    truncateSync(logFile, 0);
    appendFileSync(logFile, 'three\n');
    clock.now = 7000;
    second.sample([inst]);
    assert.deepEqual(second.startOf('b', 6500), { offset: 0, at: null });
    assert.equal(readLog(logFile, 10, second.startOf('b', 6500).offset).text, 'three');
    assert.equal(readFileSync(path.join(dir, 'index', 'b.idx'), 'utf8'), '7000 6\n');
    second.prune(new Set(['other']));
    assert.equal(existsSync(path.join(dir, 'index', 'b.idx')), false);
    assert.deepEqual(second.startOf('b', 6500), { offset: 0, at: null });
  });
});

describe('lines from an offset', () => {
  const LOG = 'first line\nsecond\n\nfourth, after an empty one\nfifth\n';

  it('leaves out the line the offset falls inside, keeps the one it starts, and says when lines were cut', (t) => {
    const file = path.join(tempDir(t), 'x.log');
    writeFileSync(file, LOG);
    assert.deepEqual(readLog(file, 10, 0), { text: LOG.trimEnd(), cut: false });
    assert.deepEqual(readLog(file, 10, 3), {
      text: 'second\n\nfourth, after an empty one\nfifth',
      cut: false,
    });
    assert.deepEqual(readLog(file, 10, 11), {
      text: 'second\n\nfourth, after an empty one\nfifth',
      cut: false,
    });
    assert.deepEqual(readLog(file, 10, 12), { text: '\nfourth, after an empty one\nfifth', cut: false });
    assert.deepEqual(readLog(file, 2, 0), { text: 'fourth, after an empty one\nfifth', cut: true });
    assert.deepEqual(readLog(file, 10, LOG.length), { text: '', cut: false });
    assert.deepEqual(readLog(file, 10, LOG.length + 40), { text: '', cut: false });
    // Read from its last bytes only: the cut part is said.
    assert.deepEqual(readLog(file, 10, 0, 10), { text: 'fifth', cut: true });
    // Without an offset: the tail, as before.
    assert.deepEqual(readLog(file, 2), { text: 'fourth, after an empty one\nfifth' });
  });

  it("the SSH driver's tail script gives the lines the local driver reads, at every offset", (t) => {
    const file = path.join(tempDir(t), 'y.log');
    writeFileSync(file, `${LOG}a last line without its newline`);
    const size = statSync(file).size;
    for (let from = 0; from <= size + 1; from++) {
      for (const lines of [1, 2, 3, 10]) {
        const out = execFileSync('sh', ['-c', tailScript(file, lines, from)], { encoding: 'utf8' });
        const whole = out.trimEnd().split('\n').length <= lines;
        const remote = lastLinesOf(out, whole && from > 0, lines);
        const local = readLog(file, lines, from);
        assert.equal(remote.text, local.text, `from ${from}, ${lines} lines`);
        // The script cannot always tell one line too many from a begun line: it may say cut
        // where there was exactly one line more to leave out, never the other way round.
        if (local.cut) assert.equal(remote.cut, true, `cut from ${from}, ${lines} lines`);
      }
    }
  });
});

describe('what --since takes', () => {
  it('a duration back from now or an ISO 8601 time; anything else is refused', () => {
    const now = Date.parse('2026-12-03T10:00:00Z');
    assert.equal(sinceTime('10m', now), now - 600_000);
    assert.equal(sinceTime('1h30m', now), now - 5_400_000);
    assert.equal(sinceTime('2026-12-03T09:00:00Z', now), now - 3_600_000);
    assert.equal(sinceTime('2026-12-03T11:00:00+02:00', now), now - 3_600_000);
    for (const bad of ['', '0', '10', 'yesterday', '10 minutes', '2026-13-45T99:00:00Z', '-5m']) {
      assert.equal(sinceTime(bad, now), undefined, bad);
    }
  });
});
