// The lines `baton logs` shows of a part of a log, the same for every driver: the local one
// reads the part itself, the SSH one has `tail` read it on the host.
import type { LogText } from './driver.js';

/**
 * The last `lines` lines of `part`, a log's text from some byte on. `partialFirst`: its first
 * line is not a whole line of its own (the part starts inside a line, or on the newline ending
 * the line before): left out. `cut` when lines were left out at the front for `lines`.
 */
export function lastLinesOf(part: string, partialFirst: boolean, lines: number): LogText {
  const text = part.trimEnd();
  const all = text === '' ? [] : text.split('\n');
  if (partialFirst) all.shift();
  return { text: all.slice(-lines).join('\n'), cut: all.length > lines };
}
