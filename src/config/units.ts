// Durations ("500ms", "3s", "1m30s") and sizes ("16k", "10m", "1MiB") as users write them in
// baton.yaml. A bare number is refused on purpose: "30" could mean seconds or milliseconds.

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * What parseDuration accepts, as a JSON Schema pattern (for editors): "0", or parts such as
 * 1m30s, with blanks around. The range (at most MAX_DURATION_MS) is not a pattern's to check.
 */
export const DURATION_PATTERN = `^\\s*(?:0|(?:${DURATION_PART.source})+)\\s*$`;
/** DURATION_PATTERN without the durations that are 0 ("0", "0s", "0m0s"): a digit 1-9 is needed. */
export const POSITIVE_DURATION_PATTERN = `^\\s*(?=\\S*[1-9])(?:${DURATION_PART.source})+\\s*$`;

/**
 * The longest duration Baton accepts: what a Node.js timer can wait (2^31-1 ms, about 24.8 days).
 * Longer, setTimeout warns and fires after 1ms, so a 30-day interval would become a busy loop.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * Why `ms` (parsed from `text`) is out of range for a duration key, or undefined. `min` 1: a
 * timeout or an interval, where 0 would turn the limit off or spin its timer.
 */
export function durationRangeProblem(text: string, ms: number, min: 0 | 1 = 0): string | undefined {
  if (ms > MAX_DURATION_MS) {
    return `"${text}" is out of range: write a duration of at most 24.8 days (${MAX_DURATION_MS}ms, the longest a timer can wait), e.g. 24d`;
  }
  if (ms < min) {
    return `"${text}" is out of range: write a duration from 1ms to 24.8 days, e.g. 10s (0 would turn it off or make it fire at once)`;
  }
  return undefined;
}

/** Parses a duration to milliseconds, or returns undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  if (s === '') return undefined;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (DURATION_MS[m[2]!] ?? NaN);
    at = DURATION_PART.lastIndex;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

const SIZE_UNIT: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};
const SIZE_NUMBER = String.raw`(\d+(?:\.\d+)?)`;
const SIZE = new RegExp(`^${SIZE_NUMBER}\\s*(${Object.keys(SIZE_UNIT).join('|')})?$`, 'i');

/**
 * What parseSize accepts above 0 bytes (every size key's least), as a JSON Schema pattern: it
 * has no flags, so each unit's letters are spelled in both cases ([kK][bB]).
 */
export const SIZE_PATTERN = `^\\s*(?=[\\d.]*[1-9])${SIZE_NUMBER}\\s*(?:${Object.keys(SIZE_UNIT)
  .map((u) => [...u].map((c) => `[${c}${c.toUpperCase()}]`).join(''))
  .join('|')})?\\s*$`;

/** Parses a size to bytes (k/m/g are powers of 1024, as in nginx), or undefined. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (SIZE_UNIT[(m[2] ?? 'b').toLowerCase()] ?? NaN));
}

/** Formats milliseconds the way a user would write them. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m${s}s` : `${m}m`;
}
