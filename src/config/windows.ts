// The `windows:` section of baton.yaml: when deploys may run. Allow-lists ("only Monday to
// Friday, 09:00 to 18:00") and blackouts ("never from Friday 17:00 to Monday 09:00") in one IANA
// time zone. Every window is checked here and compiled to spans of the week in wall-clock
// minutes; src/controller/window-check.ts decides with them whether a deploy may run now.
import { z } from 'zod';
import { editorSchemas } from './schema/values.js';

export const MINUTES_PER_DAY = 1440;
export const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;

/** Monday first, as the spans count from Monday 00:00. */
export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const FULL_DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const DAY_HINT = `use ${DAYS.join(', ')} (or a range such as mon-fri)`;
const TIME_HINT = 'write "HH:MM" on a 24-hour clock, in quotes, e.g. "09:00" or "17:30"';

/** A half-open stretch of the week, [start, end), in minutes from Monday 00:00 wall-clock time. */
export interface WeekSpan {
  /** 0 to MINUTES_PER_WEEK - 1. */
  readonly start: number;
  /** After start, at most a week later; past MINUTES_PER_WEEK it wraps into the next week. */
  readonly end: number;
}

/** One checked window: what to call it in messages, and the stretches of the week it covers. */
export interface WindowRule {
  readonly label: string;
  readonly spans: readonly WeekSpan[];
}

export interface WindowsConfig {
  /** IANA time zone the windows are read in (the machine's when not given). */
  readonly timezone: string;
  /** Deploys only inside one of these; undefined = any time. */
  readonly allow?: readonly WindowRule[] | undefined;
  /** Never inside one of these; a deny wins over an allow. */
  readonly deny: readonly WindowRule[];
}

/** The machine's time zone (TZ, else the system's), as Intl resolves it. */
export function machineTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** True when `zone` is a time zone Intl knows (IANA names, UTC, Etc/GMT+N). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function dayIndex(word: string): number {
  const w = word.trim().toLowerCase();
  const i = DAYS.indexOf(w as (typeof DAYS)[number]);
  return i >= 0 ? i : FULL_DAYS.indexOf(w);
}

function dayGuess(word: string): string | undefined {
  const w = word.trim().toLowerCase();
  if (w.length < 2) return undefined;
  return DAYS.find((d, i) => FULL_DAYS[i]!.startsWith(w.slice(0, 2)) || (d[0] === w[0] && d[2] === w[2]));
}

function badDay(word: string): string {
  const guess = dayGuess(word);
  return `"${word}" is not a day: ${DAY_HINT}${guess ? `; did you mean "${guess}"?` : ''}`;
}

/** "09:00" → 540; "24:00" only when `end`. */
function parseTime(text: string, end: boolean): number | undefined {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59) return undefined;
  if (h === 24 && min === 0 && end) return MINUTES_PER_DAY;
  return h <= 23 ? h * 60 + min : undefined;
}

function formatTime(minutes: number): string {
  const h = Math.floor(minutes / 60);
  return `${String(h).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** [0, 1, 2, 3, 4] → "mon-fri"; [5, 6] → "sat-sun"; [0, 2] → "mon, wed"; all → "every day". */
function formatDays(days: readonly number[]): string {
  if (days.length === 7) return 'every day';
  const parts: string[] = [];
  for (let i = 0; i < days.length;) {
    let j = i;
    while (j + 1 < days.length && days[j + 1] === days[j]! + 1) j++;
    parts.push(
      j - i >= 2 ? `${DAYS[days[i]!]}-${DAYS[days[j]!]}` : DAYS.slice(days[i], days[j]! + 1).join(', '),
    );
    i = j + 1;
  }
  return parts.join(', ');
}

/** "mon", "Monday" or a range "mon-fri" (wrapping: "fri-mon" is fri, sat, sun, mon). */
const dayItem = z.string().transform((v, ctx): number[] => {
  const range = v.split('-');
  if (range.length === 2) {
    const [a, b] = range.map(dayIndex);
    if (a! < 0 || b! < 0) {
      ctx.addIssue({ code: 'custom', message: badDay(a! < 0 ? range[0]! : range[1]!) });
      return z.NEVER;
    }
    const out: number[] = [];
    for (let d = a!; ; d = (d + 1) % 7) {
      out.push(d);
      if (d === b) break;
    }
    return out;
  }
  const d = dayIndex(v);
  if (d < 0) {
    ctx.addIssue({ code: 'custom', message: badDay(v) });
    return z.NEVER;
  }
  return [d];
});

const timeText = z
  .union([z.string(), z.number()], { error: `a time: ${TIME_HINT}` })
  // What the checks below can accept: "HH:MM", or a day and "HH:MM" ("fri 17:00").
  .register(editorSchemas, {
    jsonSchema: { type: 'string', pattern: String.raw`^\s*(?:[A-Za-z]+\s+)?\d{1,2}:\d{2}\s*$` },
  });

const windowSchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe('How messages name this window, e.g. "weekend freeze".'),
    days: z
      .array(dayItem, { error: `a list of days: ${DAY_HINT}, e.g. [mon, tue, wed, thu, fri]` })
      .min(1, { message: `at least one day: ${DAY_HINT}` })
      .optional()
      .describe(
        'The days it applies to (mon, tue, ... or a range such as mon-fri); default every day. Not with "fri 17:00" times.',
      ),
    from: timeText
      .optional()
      .describe(
        'Where it starts: "HH:MM" on each of its days (in quotes), or "fri 17:00" for one stretch of the week.',
      ),
    to: timeText
      .optional()
      .describe('Where it ends: "HH:MM" (before from: the next day; "24:00" is midnight), or "mon 09:00".'),
  })
  .transform((w, ctx): WindowRule => {
    const issue = (path: string, message: string): typeof z.NEVER => {
      ctx.addIssue({ code: 'custom', path: [path], message });
      return z.NEVER;
    };
    if (w.from === undefined && w.to === undefined) {
      if (!w.days) {
        return issue(
          'days',
          'a window needs days, from and to: e.g. { days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00" } or { from: "fri 17:00", to: "mon 09:00" }',
        );
      }
      const days = [...new Set(w.days.flat())].sort((a, b) => a - b);
      return {
        label: w.name ?? `${formatDays(days)} (all day)`,
        spans: days.map((d) => ({ start: d * MINUTES_PER_DAY, end: (d + 1) * MINUTES_PER_DAY })),
      };
    }
    if (w.from === undefined) return issue('from', `"to" needs a "from": ${TIME_HINT}`);
    if (w.to === undefined) return issue('to', `"from" needs a "to": ${TIME_HINT}`);
    if (typeof w.from === 'number') return issue('from', `${w.from} is not a time: ${TIME_HINT}`);
    if (typeof w.to === 'number') return issue('to', `${w.to} is not a time: ${TIME_HINT}`);
    const qualified = /^\s*[a-z]+\s+\S+\s*$/i;
    const fromQualified = qualified.test(w.from);
    const toQualified = qualified.test(w.to);
    if (fromQualified || toQualified) {
      // One stretch of the week: "fri 17:00" to "mon 09:00".
      if (!fromQualified || !toQualified) {
        return issue(
          fromQualified ? 'to' : 'from',
          'give a day with both times ("fri 17:00" to "mon 09:00"), or with neither and the days in "days"',
        );
      }
      if (w.days) {
        return issue('days', 'leave out "days" when from and to name their day ("fri 17:00" to "mon 09:00")');
      }
      const ends: number[] = [];
      for (const [key, text, end] of [
        ['from', w.from, false],
        ['to', w.to, true],
      ] as const) {
        const [dayWord, timeWord] = text.trim().split(/\s+/) as [string, string];
        const d = dayIndex(dayWord);
        if (d < 0) return issue(key, `${badDay(dayWord)}; write e.g. "fri 17:00"`);
        const t = parseTime(timeWord, end);
        if (t === undefined) return issue(key, `"${timeWord}" is not a time: ${TIME_HINT}`);
        ends.push(d * MINUTES_PER_DAY + t);
      }
      const [start, endRaw] = ends as [number, number];
      if (start % MINUTES_PER_WEEK === endRaw % MINUTES_PER_WEEK) {
        return issue('to', 'from and to are the same moment: the window would be empty (or the whole week)');
      }
      const end = endRaw > start ? endRaw : endRaw + MINUTES_PER_WEEK;
      return {
        label: w.name ?? `${w.from.trim().toLowerCase()} to ${w.to.trim().toLowerCase()}`,
        spans: [{ start, end }],
      };
    }
    const from = parseTime(w.from, false);
    if (from === undefined) return issue('from', `"${w.from}" is not a time: ${TIME_HINT}`);
    const to = parseTime(w.to, true);
    if (to === undefined) return issue('to', `"${w.to}" is not a time: ${TIME_HINT}`);
    if (from === to) {
      return issue(
        'to',
        `from and to are both ${formatTime(from)}: the window would be empty; for whole days leave out from and to`,
      );
    }
    const days = w.days ? [...new Set(w.days.flat())].sort((a, b) => a - b) : [0, 1, 2, 3, 4, 5, 6];
    // Before `from`: it ends the next day ("22:00" to "06:00").
    const length = to > from ? to - from : to + MINUTES_PER_DAY - from;
    return {
      label: w.name ?? `${formatDays(days)} ${formatTime(from)}-${formatTime(to)}`,
      spans: days.map((d) => ({
        start: d * MINUTES_PER_DAY + from,
        end: d * MINUTES_PER_DAY + from + length,
      })),
    };
  });

export const windowsSchema = z
  .strictObject({
    timezone: z
      .string()
      .optional()
      .transform((v, ctx): string => {
        if (v === undefined) return machineTimeZone();
        if (isTimeZone(v)) return v;
        const guess = zoneGuess(v);
        ctx.addIssue({
          code: 'custom',
          message: `"${v}" is not a time zone: use an IANA name such as Europe/Berlin, America/New_York, Asia/Seoul or UTC${guess ? `; did you mean "${guess}"?` : ''}`,
        });
        return z.NEVER;
      })
      .describe(
        "The IANA time zone the windows are read in (Europe/Berlin, Asia/Seoul, UTC); default: the machine's.",
      ),
    allow: z
      .array(windowSchema)
      .min(1, { message: 'an empty allow list allows nothing: leave out "allow" to allow any time' })
      .optional()
      .describe('Deploys run only inside one of these; left out: any time.'),
    deny: z
      .array(windowSchema)
      .prefault([])
      .describe('Deploys never run inside one of these; a deny wins over an allow.'),
  })
  .superRefine((w, ctx) => {
    // Runs even when entries failed: only judge a fully parsed section.
    const rules = [...(w.allow ?? []), ...w.deny] as unknown[];
    if (w.allow?.length === 0 || rules.some((r) => !(r as Partial<WindowRule> | undefined)?.spans)) return;
    if (!hasOpenTime(w)) {
      ctx.addIssue({
        code: 'custom',
        path: [w.deny.length ? 'deny' : 'allow'],
        message:
          'the deny windows cover every allowed time: no deploy could ever run. Shorten a deny window (for a stop of unknown length, use `baton freeze`)',
      });
    }
  });

/** A guess at a mistyped zone: the same city part, or one starting alike, in the same region. */
function zoneGuess(v: string): string | undefined {
  let zones: string[];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch {
    return undefined;
  }
  const [region, city] = v.includes('/')
    ? [v.slice(0, v.lastIndexOf('/')), v.slice(v.lastIndexOf('/') + 1)]
    : ['', v];
  const c = city.toLowerCase().replace(/ /g, '_');
  const byCity = zones.filter((z) => z.toLowerCase().endsWith(`/${c}`));
  if (byCity.length) return byCity[0];
  if (c.length < 3) return undefined;
  const alike = zones.filter((z) =>
    z
      .slice(z.lastIndexOf('/') + 1)
      .toLowerCase()
      .startsWith(c.slice(0, 3)),
  );
  return alike.find((z) => z.toLowerCase().startsWith(`${region.toLowerCase()}/`)) ?? alike[0];
}

/** Inside the span, wrapping around the end of the week. */
export function spanHas(s: WeekSpan, minuteOfWeek: number): boolean {
  return (
    (minuteOfWeek >= s.start && minuteOfWeek < s.end) ||
    (minuteOfWeek + MINUTES_PER_WEEK >= s.start && minuteOfWeek + MINUTES_PER_WEEK < s.end)
  );
}

/** Whether any minute of the week is inside an allow window (when any) and outside every deny. */
function hasOpenTime(w: { allow?: readonly WindowRule[] | undefined; deny: readonly WindowRule[] }): boolean {
  // Openness only changes at a span's edge: checking every edge (and minute 0) is enough.
  const edges = new Set<number>([0]);
  for (const r of [...(w.allow ?? []), ...w.deny]) {
    for (const s of r.spans) {
      edges.add(s.start % MINUTES_PER_WEEK);
      edges.add(s.end % MINUTES_PER_WEEK);
    }
  }
  return [...edges].some(
    (m) =>
      (!w.allow || w.allow.some((r) => r.spans.some((s) => spanHas(s, m)))) &&
      !w.deny.some((r) => r.spans.some((s) => spanHas(s, m))),
  );
}
