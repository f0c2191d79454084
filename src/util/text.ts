// How messages are put together from parts: a quoted block of output (log lines, a hook's or
// ssh's stderr) is indented, and a clause added after a message never doubles its punctuation
// (`ready.; traffic ...`) nor lands on the last quoted line, where it would read as output.

const QUOTE = '    ';

/** Lines of someone else's output, indented so they read as quoted; `(no output)` for none. */
export function indent(text: string): string {
  const trimmed = text.replace(/\s+$/, '');
  return trimmed ? trimmed.replace(/^/gm, QUOTE) : `${QUOTE}(no output)`;
}

/**
 * `text; clause`. A final `.`, `;`, `,` or `:` of `text` gives way to the `;`; when `text` ends
 * with a quoted block (an indented line), the clause starts a line of its own instead.
 */
export function andThen(text: string, clause: string): string {
  return join(text, '; ', clause);
}

/** `text. sentence`, the same way: one period between, whatever `text` ends with. */
export function thenSentence(text: string, sentence: string): string {
  return join(text, '. ', sentence);
}

function join(text: string, between: string, next: string): string {
  const trimmed = text.replace(/\s+$/, '');
  const last = trimmed.slice(trimmed.lastIndexOf('\n') + 1);
  if (trimmed.includes('\n') && /^\s/.test(last)) return `${trimmed}\n${next}`;
  return `${trimmed.replace(/[.;,:]+$/, '')}${between}${next}`;
}

/**
 * A message as one line of at most `max` characters: its own lines joined, the quoted output
 * (indented lines) and the line that introduces it (`... Last log lines (file):`) left out.
 */
export function oneLine(text: string, max = 100): string {
  const said = text
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s/.test(l))
    .map((l) => {
      if (!l.endsWith(':')) return l;
      const end = l.lastIndexOf('. ');
      return end < 0 ? l.slice(0, -1) : l.slice(0, end + 1);
    });
  const line = said.length ? said.reduce((all, l) => andThen(all, l)) : text.trim();
  return line.length <= max ? line : `${line.slice(0, max - 1).trimEnd()}…`;
}
