// Deploy windows, the check: is a deploy allowed at an instant, and if not, why and from
// when. Windows are wall-clock stretches of the week in one time zone (src/config/windows.ts);
// Intl.DateTimeFormat gives the wall clock of an instant in that zone, so offsets and daylight
// saving time come from the platform's time zone data. No I/O.
import { MINUTES_PER_WEEK, spanHas, type WindowRule, type WindowsConfig } from '../config/windows.js';

export type WindowCheck =
  | { readonly open: true }
  | {
      readonly open: false;
      /** Which window keeps it closed, e.g. `inside the deny window "fri 17:00 to mon 09:00"`. */
      readonly reason: string;
      /** The first instant after `now` at which a deploy is allowed. */
      readonly nextOpen: Date;
    };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Whether a deploy may run at `now` under `windows` (none configured: always). */
export function checkWindow(windows: WindowsConfig | undefined, now: Date): WindowCheck {
  if (!windows) return { open: true };
  const zone = windows.timezone;
  const t0 = now.getTime();
  const wall0 = wallClock(t0, zone);
  const closedBy = blocker(windows, wall0);
  if (closedBy === null) return { open: true };
  // Openness changes only where an allow window starts or a deny window ends: the first such
  // edge after now (within the next two weeks, in wall-clock time) that is open is the answer.
  const weekStart = wall0 - weekOffset(wall0);
  const edges: number[] = [];
  for (const r of windows.allow ?? []) for (const s of r.spans) edges.push(s.start);
  for (const r of windows.deny) for (const s of r.spans) edges.push(s.end % MINUTES_PER_WEEK);
  const candidates = [...new Set(edges)]
    .flatMap((m) => [0, 1, 2].map((k) => weekStart + k * WEEK + m * MINUTE))
    .filter((wall) => wall > wall0)
    .sort((a, b) => a - b);
  for (const wall of candidates) {
    if (blocker(windows, wall) !== null) continue;
    // The instant the wall clock shows `wall` (the first one after now, when it shows it twice);
    // checked again at that instant, for the odd daylight-saving edge.
    const t = instantsOf(wall, zone).find((i) => i > t0);
    if (t !== undefined && blocker(windows, wallClock(t, zone)) === null) {
      return { open: false, reason: closedBy, nextOpen: new Date(t) };
    }
  }
  // The config loader refuses windows that leave no time open; this is a config built in code.
  throw new Error(`the deploy windows (${zone}) leave no time in the week open`);
}

/** Why the wall-clock time `wall` is closed, or null when it is open. */
function blocker(windows: WindowsConfig, wall: number): string | null {
  const m = weekOffset(wall) / MINUTE;
  const deny = windows.deny.find((r) => inside(r, m));
  if (deny) return `inside the deny window "${deny.label}"`;
  if (windows.allow && !windows.allow.some((r) => inside(r, m))) {
    const labels = windows.allow.map((r) => `"${r.label}"`).join(', ');
    return `outside the allow window${windows.allow.length > 1 ? 's' : ''} ${labels}`;
  }
  return null;
}

function inside(rule: WindowRule, minuteOfWeek: number): boolean {
  return rule.spans.some((s) => spanHas(s, minuteOfWeek));
}

/**
 * "Mon 2025-06-09 09:00 Asia/Seoul (UTC+09:00)": an instant as the wall clock in `zone` shows
 * it, for messages.
 */
export function formatInZone(date: Date, zone: string): string {
  const t = date.getTime();
  const wall = wallClock(t, zone);
  const d = new Date(wall);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]!;
  const offset = Math.round((wall - t) / MINUTE);
  const abs = Math.abs(offset);
  const utc = `UTC${offset < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  return `${day} ${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} ${zone} (${utc})`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

// --- wall clock ------------------------------------------------------------------------------
// A wall-clock time is held as the milliseconds at which a UTC clock would show the same date
// and time: plain arithmetic on it is wall-clock arithmetic, and getUTCDay() its weekday.

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The wall clock in `zone` at instant `t`. */
export function wallClock(t: number, zone: string): number {
  const p = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  for (const { type, value } of formatter(zone).formatToParts(t)) {
    if (type in p) p[type as keyof typeof p] = Number(value);
  }
  const ms = ((t % 1000) + 1000) % 1000;
  return Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second) + ms;
}

/** Milliseconds since Monday 00:00 of the wall clock's week. */
function weekOffset(wall: number): number {
  const monday0 = (new Date(wall).getUTCDay() + 6) % 7;
  return monday0 * DAY + (((wall % DAY) + DAY) % DAY);
}

/**
 * The instants at which the wall clock in `zone` shows `wall`, earliest first: one, or two in
 * the hour a clock is set back. In the hour skipped when a clock is set forward there is none:
 * then the instant the clock jumps past it.
 */
export function instantsOf(wall: number, zone: string): number[] {
  // The offset is the same within hours of the instant (time zone changes are months apart).
  const guesses = [
    ...new Set([wall - offsetAt(wall - DAY / 2, zone), wall - offsetAt(wall + DAY / 2, zone)]),
  ];
  const exact = guesses.filter((t) => wallClock(t, zone) === wall).sort((a, b) => a - b);
  if (exact.length) return exact;
  // Skipped: the first instant whose wall clock is at or past `wall`.
  let lo = Math.min(...guesses);
  let hi = Math.max(...guesses);
  if (wallClock(hi, zone) < wall) return [hi];
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (wallClock(mid, zone) >= wall) hi = mid;
    else lo = mid;
  }
  return [hi];
}

function offsetAt(t: number, zone: string): number {
  return wallClock(t, zone) - t;
}
