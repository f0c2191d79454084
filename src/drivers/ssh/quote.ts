// POSIX sh quoting for the words Baton puts in remote command lines. Every word goes in single
// quotes (nothing is special inside them) and a ' inside the word becomes '\'' (close the quote,
// an escaped quote, reopen). Words made only of safe characters stay as they are, for readable
// scripts and logs. The result is one sh word whatever the input: spaces, quotes, $, `, \, ;,
// newlines and globs all stay literal.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One sh word that expands to exactly `word`. */
export function shQuote(word: string): string {
  if (word.length > 0 && SAFE.test(word)) return word;
  if (word.includes('\0')) throw new Error('a shell word cannot contain a NUL byte');
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Words quoted and joined by spaces: a sh command line running exactly `words`. */
export function shJoin(words: readonly string[]): string {
  return words.map(shQuote).join(' ');
}

/**
 * A remote path as a sh word: a leading `~/` becomes "$HOME"/ (expanded by the remote shell,
 * for the remote user); everything else is quoted literally.
 */
export function shPath(p: string): string {
  if (p === '~') return '"$HOME"';
  if (p.startsWith('~/')) return `"$HOME"/${shQuote(p.slice(2))}`;
  return shQuote(p);
}
