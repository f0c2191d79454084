// app.command is split into words like a shell would split it, but no shell ever runs it:
// no expansion, no globbing, no operators. {port}, {version}, {service} and {instance} are
// filled in per word after splitting, so a value can never become a second word or a command.
import { BatonError } from '../../errors.js';

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export function checkVersion(version: string): void {
  if (!VERSION.test(version)) {
    throw new BatonError(
      'BATON_E_BAD_REQUEST',
      `version "${version}" is not allowed: use letters, digits and . _ + - (at most 128, starting with a letter or digit), e.g. 1.4.2 or 2024-06-01.3`,
    );
  }
}

/** Splits a command line into words: spaces separate, '...' and "..." quote, \ escapes. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
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
  if (quote) throw new BatonError('BATON_E_CONFIG', `app.command has an unclosed ${quote} quote: ${command}`);
  if (inWord) words.push(word);
  if (words.length === 0) throw new BatonError('BATON_E_CONFIG', 'app.command is empty');
  const op = words.find((w) => ['|', '||', '&&', ';', '>', '>>', '<', '&'].includes(w));
  if (op) {
    throw new BatonError(
      'BATON_E_CONFIG',
      `app.command contains "${op}", but it runs without a shell. Put the pipeline in a script and run that, e.g. command: ./start.sh {port}`,
    );
  }
  return words;
}

export function fillCommand(words: readonly string[], values: Readonly<Record<string, string>>): string[] {
  return words.map((w) =>
    w.replace(/\{(port|version|service|instance)\}/g, (_, k: string) => values[k] ?? ''),
  );
}
