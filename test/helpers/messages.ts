// Checks on the text Baton prints for a person: no doubled punctuation (`ready.; traffic`,
// `failed..`), and quoted output (log lines, a hook's stderr) on lines of its own, nothing of
// Baton's glued to them.
import assert from 'node:assert/strict';

/**
 * Two marks in a row where one belongs: `..`, `.;`, `;.`, `;;`, `:.`, `,;`, `; ,` (an ellipsis
 * `...` and a path's `./` or `../` are fine).
 */
const DOUBLED = /(?<!\.)[.;:,][ \t]?[.;](?![.\w/])|;[ \t]?[,:]/;

/** The lines of `text` with doubled punctuation. */
export function doubledPunctuation(text: string): string[] {
  return text.split('\n').filter((l) => DOUBLED.test(l));
}

export function assertNoDoubledPunctuation(text: string, what: string): void {
  assert.deepEqual(doubledPunctuation(text), [], `${what}: doubled punctuation in\n${text}`);
}

/** `line` of someone else's output is quoted in `text` as a line of its own (indented). */
export function assertQuotedAlone(text: string, line: string, what: string): void {
  assert.ok(
    text.split('\n').some((l) => l.startsWith(' ') && l.trim() === line),
    `${what}: "${line}" is not a line of its own in\n${text}`,
  );
}
