// One daemon per state directory: a pid file taken at start. A second `baton up` on the same
// stateDir is refused while the first is alive; a stale file (its process gone) is taken over.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../drivers/local/local.js';
import { BatonError } from '../errors.js';

export function takeDaemonLock(stateDir: string, configFile: string): () => void {
  mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, 'daemon.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid && pid !== process.pid && pidAlive(pid)) {
        throw new BatonError(
          'BATON_E_LOCKED',
          `another baton daemon (pid ${pid}) already runs with state in ${stateDir} (config ${configFile}). Stop it first, or give this one its own stateDir.`,
        );
      }
      unlinkSync(file); // stale: its daemon is gone (killed, or the machine rebooted)
    }
  }
  throw new BatonError('BATON_E_STATE', `cannot take the daemon lock ${file}`);
}
