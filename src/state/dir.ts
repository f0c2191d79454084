// The state directory, checked before the daemon writes anything: refused (BATON_E_STATE, exit
// 8) when a file stands in its place or it cannot be written (a read-only mount, an immutable
// folder, another user's). Nothing is created here: a missing one is made by the daemon lock.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { BatonError } from '../errors.js';

/** Throws BATON_E_STATE saying why `dir` (or, while missing, the folder it goes in) cannot hold the state. */
export function checkStateDir(dir: string, configFile: string): void {
  const code = problemOf(dir);
  if (code === undefined) return;
  const what =
    code === 'ENOTDIR'
      ? 'is not a directory (a file is in its place, or in the place of a folder above it)'
      : code === 'EROFS'
        ? 'is on a read-only file system'
        : code === 'EACCES' || code === 'EPERM'
          ? `cannot be written by this user (${code})`
          : `cannot be used (${code})`;
  throw new BatonError(
    'BATON_E_STATE',
    `stateDir ${dir} ${what}: Baton keeps its state there. Fix that, or set stateDir in ${configFile || 'the config'} to a directory Baton can write.`,
  );
}

/** The errno a write in `dir` would meet, from the folder itself or the nearest that exists above it. */
function problemOf(dir: string): string | undefined {
  for (let p = dir; ; p = path.dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && p !== path.dirname(p)) continue; // created later: ask its parent
      return code === 'ENOENT' ? undefined : code;
    }
    if (!isDir) return 'ENOTDIR';
    try {
      // W_OK, not the mode bits: root passes those, but not a read-only mount or chattr +i.
      accessSync(p, constants.W_OK);
      return undefined;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'EACCES';
    }
  }
}
