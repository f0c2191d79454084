// app.command is split into words like a shell would split it, but no shell ever runs it:
// no expansion, no globbing, no operators. {port}, {version}, {service} and {instance} are
// filled in per word after splitting, so a value can never become a second word or a command.
// The config check, both drivers (local, SSH), the controller and the nginx edge (edge.test,
// edge.reload) use this one module, so a command or a version that passes one passes all.
import { BatonError } from '../errors.js';

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export function checkVersion(version: string): void {
  if (!VERSION.test(version)) {
    throw new BatonError(
      'BATON_E_BAD_REQUEST',
      `version "${version}" is not allowed: use letters, digits and . _ + - (at most 128, starting with a letter or digit), e.g. 1.4.2 or 2024-06-01.3`,
    );
  }
}

const OPERATOR = /[|&;<>]+/y;

/** The shell syntax at `i`: `...` and $(...) (also within "..."), operators and redirections outside quotes. */
function shellSyntaxAt(s: string, i: number, unquoted: boolean): string | undefined {
  if (s[i] === '`') return '`';
  if (s.startsWith('$(', i)) return '$(';
  if (!unquoted) return undefined;
  OPERATOR.lastIndex = i;
  return OPERATOR.exec(s)?.[0];
}

/**
 * Splits a command line into words: spaces separate, '...' and "..." quote, \ escapes. Returns
 * the words, or why the line cannot run without a shell. The config check (`baton validate`,
 * `baton up`) and the drivers both call this, so a command that passes one passes the other.
 */
export function commandWords(command: string): string[] | { problem: string } {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    const op = quote === "'" ? undefined : shellSyntaxAt(command, i, quote === null);
    if (op !== undefined) {
      return {
        problem:
          `contains "${op}", which only a shell understands, but it runs without a shell (the program ` +
          `would get "${op}" as an argument): put the shell line in a script and run that, or hand it ` +
          `to a shell: sh -c '${command.replaceAll("'", `'\\''`)}'`,
      };
    }
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < command.length) word += command[++i];
      else word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return { problem: `has an unclosed ${quote} quote: close it, or escape it as \\${quote}` };
  if (inWord) words.push(word);
  if (words.length === 0) return { problem: 'is empty: give the program to run and its arguments' };
  return words;
}

/** The words of `command` (see commandWords); a BATON_E_CONFIG naming `key` when it has none. */
export function splitCommand(command: string, key = 'app.command'): string[] {
  const words = commandWords(command);
  if (!Array.isArray(words)) throw new BatonError('BATON_E_CONFIG', `${key} ${words.problem}: ${command}`);
  return words;
}

export function fillCommand(words: readonly string[], values: Readonly<Record<string, string>>): string[] {
  return words.map((w) =>
    w.replace(/\{(port|version|service|instance)\}/g, (_, k: string) => values[k] ?? ''),
  );
}
