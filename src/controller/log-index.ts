// `baton logs --since`: which part of an instance's log was written when. An app writes its log
// itself (its output goes straight to the file, so that it outlives the controller), and its
// lines carry no time Baton could trust. So the controller notes, about once a second, how many
// bytes each instance's log holds ("<epoch ms> <bytes>" lines in stateDir/log-index/<id>.idx).
// Lines written at or after a time T start at or after the size of the last sample taken at or
// before T: reading from there never misses a line, and shows at most a second's worth (the
// sampling interval) of earlier ones. Time the controller was not running is attributed to the
// sample before it (more is shown, nothing is lost). Samples older than an hour are thinned to
// one a minute, so a long-running instance's index stays small. A log that shrank (truncated
// by logrotate's copytruncate) starts its index again.
import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { Instance } from '../drivers/driver.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';

/** How often the sizes are sampled: the resolution of `--since`. */
export const LOG_SAMPLE_MS = 1000;
/** Samples kept at full resolution; older ones are thinned to one per THIN_MS. */
const RECENT_MS = 60 * 60_000;
const THIN_MS = 60_000;
/** Samples per instance before the index is thinned and rewritten. */
const COMPACT_AT = 2 * 3600;

interface Sample {
  readonly at: number;
  readonly bytes: number;
}

/** Where to start reading an instance's log for the lines written since a time. */
export interface LogStart {
  /** The byte offset (0: the beginning). */
  readonly offset: number;
  /** When the log had that size (null: the beginning, no sample that old). */
  readonly at: number | null;
}

export class LogIndex {
  private readonly samples = new Map<string, Sample[]>();
  private timer: NodeJS.Timeout | null = null;
  private writeProblem: string | null = null;
  private ticks = 0;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Samples `instances()` every LOG_SAMPLE_MS until close(); forgets the others (files too). */
  start(instances: () => readonly Instance[]): void {
    if (this.timer) return;
    const tick = (): void => {
      const now = instances();
      this.sample(now);
      // Once a minute (and at the first tick, after recovery): index files of instances that
      // are gone, this run or while no controller ran.
      if (this.ticks++ % 60 === 0) this.prune(new Set(now.map((i) => i.record.id)));
    };
    tick();
    this.timer = setInterval(tick, LOG_SAMPLE_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Notes each instance's log size, when it changed since its last sample. */
  sample(instances: readonly Instance[]): void {
    for (const instance of instances) {
      const size = instance.logSize?.();
      if (!size) continue;
      const id = instance.record.id;
      const list = this.loaded(id);
      const last = list[list.length - 1];
      if (last && last.bytes === size.bytes) continue;
      if (last && size.bytes < last.bytes) {
        // Truncated: the offsets noted before mean nothing now.
        list.length = 0;
        list.push({ at: size.at, bytes: size.bytes });
        this.rewrite(id, list);
        continue;
      }
      list.push({ at: size.at, bytes: size.bytes });
      if (list.length > COMPACT_AT) this.rewrite(id, thin(list, size.at));
      else this.write(() => appendFileSync(this.file(id), `${size.at} ${size.bytes}\n`, { mode: 0o600 }));
    }
  }

  /** Where the lines of instance `id` written at or after `since` (epoch ms) begin. */
  startOf(id: string, since: number): LogStart {
    const list = this.loaded(id);
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.at <= since) lo = mid + 1;
      else hi = mid;
    }
    const s = list[lo - 1];
    return s ? { offset: s.bytes, at: s.at } : { offset: 0, at: null };
  }

  /** Forgets every instance not in `keep`, and deletes its index file. */
  prune(keep: ReadonlySet<string>): void {
    for (const id of this.samples.keys()) if (!keep.has(id)) this.samples.delete(id);
    let files: string[];
    try {
      files = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const f of files) {
      if (f.endsWith('.idx') && !keep.has(f.slice(0, -4))) rmSync(path.join(this.dir, f), { force: true });
    }
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.idx`);
  }

  /** The samples of `id`, read from its file the first time (an instance adopted after a restart). */
  private loaded(id: string): Sample[] {
    let list = this.samples.get(id);
    if (list) return list;
    list = [];
    try {
      for (const line of readFileSync(this.file(id), 'utf8').split('\n')) {
        const [at, bytes] = line.split(' ').map(Number);
        if (Number.isSafeInteger(at) && Number.isSafeInteger(bytes) && bytes! >= 0) {
          const last = list[list.length - 1];
          // Kept in order and growing, whatever a damaged file says.
          if (!last || (at! >= last.at && bytes! >= last.bytes)) list.push({ at: at!, bytes: bytes! });
        }
      }
    } catch {
      // No index yet: this instance is new, or its file was lost (then --since shows more).
    }
    this.samples.set(id, list);
    return list;
  }

  private rewrite(id: string, list: Sample[]): void {
    this.samples.set(id, list);
    const tmp = `${this.file(id)}.tmp`;
    this.write(() => {
      writeFileSync(tmp, list.map((s) => `${s.at} ${s.bytes}\n`).join(''), { mode: 0o600 });
      renameSync(tmp, this.file(id));
    });
  }

  /** A write that fails (a full disk) is logged once; the samples stay in memory. */
  private write(work: () => void): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      work();
      if (this.writeProblem !== null) this.log.info({ dir: this.dir }, 'log index written again');
      this.writeProblem = null;
    } catch (err) {
      const problem = messageOf(err);
      if (this.writeProblem === null) {
        this.log.warn(
          { dir: this.dir, error: problem },
          'cannot write the log index (kept in memory: `baton logs --since` after a restart may show more lines than asked)',
        );
      }
      this.writeProblem = problem;
    }
  }
}

/** `list` with samples older than RECENT_MS before `now` thinned to one per THIN_MS (the first of each). */
function thin(list: readonly Sample[], now: number): Sample[] {
  const out: Sample[] = [];
  for (const s of list) {
    const prev = out[out.length - 1];
    if (s.at < now - RECENT_MS && prev && Math.floor(prev.at / THIN_MS) === Math.floor(s.at / THIN_MS))
      continue;
    out.push(s);
  }
  return out;
}
