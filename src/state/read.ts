// Reading a state file of stateDir: JSON, then its shape checked before anything acts on it. A
// file of the wrong shape is refused (BATON_E_STATE, exit 8) with the field, the file and what
// to do; nothing is started, stopped or written meanwhile.
import type { z } from 'zod';
import { BatonError } from '../errors.js';
import { readJson } from './atomic.js';

/** How many of a file's problems the message lists (all are in `details`). */
const LISTED = 3;

/**
 * The file's content, checked by `schema`; undefined when it does not exist. `whatToDo` ends
 * every message: e.g. "fix it, or move it aside to start with no live release".
 */
export function readStateFile<S extends z.ZodType>(
  file: string,
  schema: S,
  whatToDo: string,
): z.output<S> | undefined {
  let raw: unknown;
  try {
    raw = readJson(file);
  } catch (err) {
    const why =
      err instanceof SyntaxError
        ? `is not valid JSON (${err.message})`
        : `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    throw new BatonError('BATON_E_STATE', `state file ${file} ${why}; ${whatToDo}`, { cause: err });
  }
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => ({
    path: formatPath(i.path),
    message: i.message,
  }));
  const listed = problems
    .slice(0, LISTED)
    .map((p) => `${p.path || '(top level)'}: ${p.message}`)
    .join('; ');
  const more = problems.length > LISTED ? ` (and ${problems.length - LISTED} more)` : '';
  throw new BatonError(
    'BATON_E_STATE',
    `state file ${file} is not in the shape Baton writes: ${listed}${more}. Nothing was changed; ${whatToDo}`,
    { details: problems },
  );
}

function formatPath(p: readonly PropertyKey[]): string {
  return p
    .filter((k): k is string | number => typeof k !== 'symbol')
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`))
    .join('');
}
