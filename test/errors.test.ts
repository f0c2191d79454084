// The one error registry (src/errors.ts) against the source and the README: a code written in
// src/ must be registered, every registered code documented, and where the README gives a code
// an exit code or an HTTP status, the registry's. Reads files only: milliseconds.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, type ErrorCode } from '../src/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
/** The README with line breaks as spaces, so a phrase cut across lines still matches. */
const README_FLAT = README.replace(/\s+/g, ' ');
const CODE = /BATON_E_[A-Z0-9_]*[A-Z0-9]/g;

function registered(code: string): code is ErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}

/** Every code written in a source file under src/, with where (file:line). */
function codesInSource(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const src = path.join(ROOT, 'src');
  for (const rel of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts')) continue;
    const lines = readFileSync(path.join(src, rel), 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const [code] of line.matchAll(CODE)) {
        const where = found.get(code) ?? [];
        where.push(`src/${rel}:${i + 1}`);
        found.set(code, where);
      }
    });
  }
  return found;
}

/** The README's exit-code list: the text after each exit code, up to the next one. */
function exitCodeList(): Map<number, string> {
  const para = /^Exit codes\b[\s\S]*?(?=\n\n)/m.exec(README)?.[0];
  assert.ok(para, 'the README has a paragraph starting "Exit codes"');
  const text = para.replace(/\s+/g, ' ');
  const marks = [...text.matchAll(/[:;] (\d{1,3}) (?=[a-z])/g)];
  const list = new Map<number, string>();
  marks.forEach((m, i) => {
    const end = marks[i + 1]?.index ?? text.length;
    list.set(Number(m[1]), text.slice(m.index + m[0].length, end));
  });
  return list;
}

it('every BATON_E_ code written in src/ is in the registry', () => {
  const found = codesInSource();
  // The scan itself works: it sees the registry and a code thrown elsewhere.
  assert.ok(found.get('BATON_E_INTERNAL')?.some((w) => w.startsWith('src/errors.ts:')));
  assert.ok(found.get('BATON_E_CONFIG')?.some((w) => w.startsWith('src/config/')));
  const unregistered = [...found].filter(([code]) => !registered(code));
  assert.deepEqual(
    unregistered.map(([code, where]) => `${code} (${where.join(', ')})`),
    [],
    'add these to ErrorCodes in src/errors.ts, with an HTTP status and an exit code',
  );
});

it('every registered code is in the README, and the README names no other', () => {
  const missing = Object.keys(ErrorCodes).filter((code) => !README.includes(`\`${code}\``));
  assert.deepEqual(missing, [], 'document these in the README (exit codes, or the Admin API errors)');
  const unknown = [...new Set(README.match(CODE) ?? [])].filter((code) => !registered(code));
  assert.deepEqual(unknown, [], 'the README names codes that src/errors.ts does not have');
});

it("the README's exit-code list puts each code it names under the registry's exit code", () => {
  const list = exitCodeList();
  // Parsed as a list of 0 to 15, each once (12 is `baton load`'s, no error code).
  assert.deepEqual(
    [...list.keys()].sort((a, b) => a - b),
    Array.from({ length: 16 }, (_, i) => i),
  );
  const named = new Set<string>();
  for (const [exit, text] of list) {
    for (const [code] of text.matchAll(CODE)) {
      named.add(code);
      assert.ok(registered(code), `${code} (exit ${exit}) is not in src/errors.ts`);
      assert.equal(ErrorCodes[code].exitCode, exit, `${code} is listed under exit ${exit}`);
    }
  }
  // Only the proxy's own codes, which no CLI command exits with, are documented elsewhere.
  const unlisted = Object.keys(ErrorCodes).filter((code) => !named.has(code));
  assert.deepEqual(unlisted.sort(), ['BATON_E_BODY_TOO_LARGE', 'BATON_E_TARGET_DOWN']);
});

it('the README gives each code the HTTP status of the registry', () => {
  const pairs = [
    ...[...README_FLAT.matchAll(/\b(\d{3}) `(BATON_E_[A-Z0-9_]+)`/g)].map((m) => [m[1], m[2]]),
    ...[...README_FLAT.matchAll(/`(BATON_E_[A-Z0-9_]+)`, HTTP (\d{3})\b/g)].map((m) => [m[2], m[1]]),
  ] as [string, string][];
  // The Admin API's error line names at least these five with their statuses.
  assert.ok(pairs.length >= 5, `found ${pairs.length} status and code pairs in the README`);
  for (const [status, code] of pairs) {
    assert.ok(registered(code), `${code} is not in src/errors.ts`);
    assert.equal(ErrorCodes[code].status, Number(status), `the README gives ${code} HTTP ${status}`);
  }
});
