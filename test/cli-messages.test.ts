// What the CLI prints when something fails, read as a person reads it: one line and one hint
// for a usage or daemon error (not commander's whole help); no doubled punctuation; log lines
// quoted on lines of their own, with what Baton adds after them on the next line; `baton history`
// one line per deploy (the log lines with --logs); `baton load` one `e.g.` line per kind of
// failure, with its count. Also the helpers that put messages together, and the source rule
// behind them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { HistoryAnswer } from '../src/api/deploy.js';
import { andThen, indent, oneLine, thenSentence } from '../src/util/text.js';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, freePort, runBaton, tempDir, writeFile, type RunResult } from './helpers/cli.js';
import { ROOT } from './helpers/index.js';
import { assertNoDoubledPunctuation, assertQuotedAlone, doubledPunctuation } from './helpers/messages.js';

const output = (r: RunResult): string => `${r.stdout}${r.stderr}`;

/** A usage or daemon error: the error line, at most one hint line, nothing of the help text. */
function shortError(r: RunResult, code: number, what: string): string[] {
  assert.equal(r.code, code, `${what}: exit\n${output(r)}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(lines.length >= 1 && lines.length <= 2, `${what}: one line and a hint at most:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /Usage:|Options:/, what);
  assertNoDoubledPunctuation(r.stderr, what);
  return lines;
}

describe('message helpers', () => {
  it('andThen / thenSentence: one mark between, and never on a quoted line', () => {
    assert.equal(andThen('not ready.', 'rolled back'), 'not ready; rolled back');
    assert.equal(andThen('a; ', 'b'), 'a; b');
    assert.equal(thenSentence('refused.', 'It still routes.'), 'refused. It still routes.');
    assert.equal(thenSentence('refused', 'It still routes.'), 'refused. It still routes.');
    const withLogs = `exited. Last log lines:\n${indent('one\ntwo\n')}`;
    assert.equal(andThen(withLogs, 'x serves'), 'exited. Last log lines:\n    one\n    two\nx serves');
    // After a clause on its own line, the next one joins it.
    assert.equal(andThen(andThen(withLogs, 'back to 1'), '1 serves'), `${withLogs}\nback to 1; 1 serves`);
    assert.equal(indent(''), '    (no output)');
  });

  it('oneLine: the sentences without the quoted lines, shortened', () => {
    const r = andThen(
      `hook \`x\` exited with code 3 after 10ms. Last output lines:\n${indent('boom')}`,
      'back',
    );
    assert.equal(oneLine(r), 'hook `x` exited with code 3 after 10ms; back');
    assert.equal(oneLine('instance a. Last log lines (/tmp/a.b/c.log):\n    hi'), 'instance a.');
    const long = oneLine('x'.repeat(200), 50);
    assert.equal(long.length, 50);
    assert.ok(long.endsWith('…'));
  });

  it('the checker finds doubled punctuation, not versions, paths or an ellipsis', () => {
    for (const bad of ['ready.; traffic', 'failed..', 'a;. b', 'x;; y', 'lines:.', 'a. . b', 'a;, b']) {
      assert.deepEqual(doubledPunctuation(bad), [bad], bad);
    }
    for (const ok of [
      '1.0.0 is serving',
      'run ./smoke.sh',
      'see ../x',
      'waiting...',
      'e.g. (x12) refused: a',
      '127.0.0.1:80.',
    ]) {
      assert.deepEqual(doubledPunctuation(ok), [], ok);
    }
  });
});

/** Source files under src/, recursively. */
function sources(dir = path.join(ROOT, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(path.join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [path.join(dir, e.name)]
        : [],
  );
}

/**
 * Another module's error message is text whose end is not known here (it may end with a period
 * or a block of log lines): joined with andThen / thenSentence (src/util/text.ts), never by a
 * `.` or `;` written after it. Places another session still has to change, each still there.
 */
const NOT_YET: readonly string[] = [];

describe('message templates', () => {
  it("no `${messageOf(err)}.` or `${err.message};`: another message's end is joined by andThen / thenSentence", () => {
    const found: string[] = [];
    for (const file of sources()) {
      const rel = path.relative(ROOT, file);
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (/\$\{(messageOf\([^)]*\)|[\w.?]*\.message)\}[.;]/.test(line))
          found.push(`${rel}: ${line.trim()}`);
      }
    }
    const known = (f: string): boolean => NOT_YET.some((k) => f.startsWith(k));
    assert.deepEqual(
      found.filter((f) => !known(f)),
      [],
      'join these with andThen / thenSentence',
    );
    for (const k of NOT_YET)
      assert.ok(
        found.some((f) => f.startsWith(k)),
        `fixed: remove "${k}" from NOT_YET`,
      );
  });
});

describe('failures as the CLI prints them', () => {
  before(() => ensureBuilt());

  it('usage errors and a daemon that does not answer: one line and a hint, not the help text', async (t) => {
    const port = await freePort(); // nothing listens there
    const file = writeFile(
      tempDir(t),
      'baton.yaml',
      `service: web\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:${port}\n`,
    );
    const missing = shortError(await runBaton(t, ['deploy', '-c', file]), 2, 'deploy without --version');
    assert.deepEqual(missing, [
      "error: required option '--version <version>' not specified",
      '(run baton deploy --help for usage)',
    ]);
    const unknown = shortError(
      await runBaton(t, ['deploy', '-c', file, '--version', '1.0.0', '--bogus']),
      2,
      'deploy --bogus',
    );
    assert.equal(unknown[0], "error: unknown option '--bogus'");
    const nested = shortError(await runBaton(t, ['targets', 'add', '-c', file]), 2, 'targets add');
    assert.equal(nested[1], '(run baton targets add --help for usage)');
    const down = shortError(
      await runBaton(t, ['deploy', '-c', file, '--version', '1.0.0']),
      9,
      'deploy, no daemon',
    );
    assert.match(down[0]!, /^baton: no Baton daemon answers on 127\.0\.0\.1:\d+/);
    assert.equal(down.length, 1);
  });

  it('failed deploys and history: no doubled punctuation, log lines alone, one line per entry', async (t) => {
    const svc = await Service.create(t, {
      instances: 1,
      readyTimeout: '1500ms',
      extra: [`hooks:`, `  postSwitch: { command: sh hook.sh }`],
    });
    // The smoke test fails for 1.0.2 only.
    writeFile(
      svc.dir,
      'hook.sh',
      'if [ "$BATON_VERSION" = 1.0.2 ]; then echo "smoke test: GET /api answered 500." >&2; exit 3; fi\n',
    );
    svc.setFlags({ '1.0.1': ['--exit-after', '0'], '1.0.3': ['--start-delay', '10000'] });
    await svc.start();
    await svc.deployApi('1.0.0');

    const badVersion = shortError(
      await runBaton(t, ['deploy', '-c', svc.file, '--version', '../1']),
      2,
      'a bad version',
    );
    assert.equal(badVersion.length, 1);

    // Exits before it is ready: its log lines quoted, what serves on the line after them.
    const crash = await runBaton(t, ['deploy', '-c', svc.file, '--version', '1.0.1']);
    assert.equal(crash.code, 10, output(crash));
    assertNoDoubledPunctuation(output(crash), 'an instance that exits');
    assertQuotedAlone(crash.stdout, 'app 1.0.1: exiting on purpose (--exit-after)', 'an instance that exits');
    assert.match(
      crash.stdout,
      /\n {4}app 1\.0\.1: exiting on purpose \(--exit-after\)\n1\.0\.0 is serving\n/,
    );

    // The postSwitch hook fails after the switch: rolled back, the hook's line alone.
    const hook = await runBaton(t, ['deploy', '-c', svc.file, '--version', '1.0.2']);
    assert.equal(hook.code, 10, output(hook));
    assertNoDoubledPunctuation(output(hook), 'a failing postSwitch hook');
    assertQuotedAlone(hook.stdout, 'smoke test: GET /api answered 500.', 'a failing postSwitch hook');
    assert.match(
      hook.stdout,
      /FAILED +deploy rolled-back: postSwitch hook `sh hook\.sh` exited with code 3 after \d+ms\. Last output lines:\n {4}smoke test: GET \/api answered 500\.\ntraffic switched back to 1\.0\.0; 1\.0\.0 is serving\n/,
    );

    // Never ready: the readiness message ends with a hint sentence, then the (empty) log.
    const slow = await runBaton(t, ['deploy', '-c', svc.file, '--version', '1.0.3']);
    assert.equal(slow.code, 10, output(slow));
    assertNoDoubledPunctuation(output(slow), 'an instance never ready');
    assert.match(slow.stdout, /\n {4}\(no output\)\n1\.0\.0 is serving\n/);

    // history: one line per deploy, the reason shortened, no log lines; --logs adds them.
    const history = await runBaton(t, ['history', '-c', svc.file]);
    assert.equal(history.code, 0, output(history));
    assertNoDoubledPunctuation(history.stdout, 'history');
    const [table, ...after] = history.stdout.split('\n\n');
    const rows = table!.split('\n').filter((l) => l !== '');
    assert.equal(rows.length, 1 + 4, `a header and one line per deploy:\n${history.stdout}`);
    assert.match(rows[0]!, /RESULT +WHO +STARTED +TOOK +FAILED +REASON$/);
    assert.match(rows[1]!, /^\w{8} +1\.0\.3 .*failed .*instance web-1\.0\.3-\d+ \(port \d+\) was not ready/);
    assert.match(
      rows[2]!,
      /rolled-back .*postSwitch hook `sh hook\.sh` exited with code 3 after \d+ms; traffic switched back to 1\.0\.0$/,
    );
    assert.match(rows[4]!, /^\w{8} +1\.0\.0 .*succeeded .* -$/);
    // The reason column is shortened (to 100 characters); the other columns' widths vary
    // (WHO is "unknown (CI)" under CI).
    const reasonAt = rows[0]!.indexOf('REASON');
    assert.ok(
      rows.every((r) => r.slice(reasonAt).length <= 100),
      `shortened reasons:\n${rows.join('\n')}`,
    );
    assert.doesNotMatch(history.stdout, /^ {4}/m, 'no log lines without --logs');
    assert.match(after.join('\n\n'), /baton history --logs/);

    const logs = await runBaton(t, ['history', '-c', svc.file, '--logs']);
    assert.equal(logs.code, 0, output(logs));
    assertQuotedAlone(logs.stdout, 'smoke test: GET /api answered 500.', 'history --logs');
    assertQuotedAlone(logs.stdout, 'app 1.0.1: exiting on purpose (--exit-after)', 'history --logs');

    // --json: the whole reasons, as before.
    const json = await runBaton(t, ['history', '-c', svc.file, '--json']);
    const answer = JSON.parse(json.stdout) as HistoryAnswer;
    assert.deepEqual(answer, { history: await svc.history() });
    assert.match(answer.history[2]!.reason ?? '', /\n {4}app 1\.0\.1: exiting on purpose/);
  });

  it('baton load: identical failures are one e.g. line with their count', async (t) => {
    const closed = await freePort(); // nothing listens there
    const load = await runBaton(t, [
      'load',
      `http://127.0.0.1:${closed}/`,
      '--rate',
      '20',
      '--duration',
      '1s',
    ]);
    assert.equal(load.code, 12, output(load));
    const examples = load.stdout.split('\n').filter((l) => l.includes('e.g.'));
    const failed = Number(/failed (\d+) \(/.exec(load.stdout)?.[1]);
    assert.ok(failed >= 10, load.stdout);
    assert.deepEqual(examples, [
      `  e.g.       (x${failed}) refused: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:${closed}`,
    ]);
  });
});
