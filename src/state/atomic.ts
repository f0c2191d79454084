// Crash-safe file writes: write a temporary file, fsync it, rename it over the old one, fsync
// the folder. A reader sees the old content or the new, never a torn file.
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

export function writeFileAtomic(
  file: string,
  data: string,
  { mode = 0o644, mkdir = true }: { mode?: number; mkdir?: boolean } = {},
): void {
  const dir = path.dirname(file);
  // Without mkdir a missing folder is the caller's error to report (a user's nginx conf.d).
  if (mkdir) mkdirSync(dir, { recursive: true });
  // Hidden and ending in .tmp: an `include conf.d/*.conf` never reads it.
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  // The rename is durable once the folder is synced; some filesystems refuse, which is harmless.
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // not supported here
  }
}

/** Reads a JSON file, or undefined when it does not exist. */
export function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
