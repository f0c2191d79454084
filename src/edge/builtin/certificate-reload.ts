// The certificates a running proxy serves, kept up to date: the files are watched (fs.watch on
// their folders, and a poll for the file systems where it sees nothing) and re-read when they
// change, and on reload() (SIGHUP). A new set is checked whole, then swapped whole (the server's
// default context with setSecureContext, the SNI contexts by reference): connections open keep
// the certificate they have, new ones get the new one. A set that fails a check is refused with
// a log line naming the file, and the one serving stays.
import { statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type tls from 'node:tls';
import type { Logger } from '../../log.js';
import { andThen } from '../../util/text.js';
import {
  CertificateProblem,
  certificateWarnings,
  loadCertificates,
  type CertificateFiles,
  type CertificateSet,
  type TlsSettings,
} from './certificates.js';

/** A change is read this long after the last event (an editor, cp of cert then key). */
const DEBOUNCE_MS = 300;
/** How often the files are stat'ed besides fs.watch (NFS, some container mounts). */
const POLL_MS = 5000;

/** What identifies a file's version: a rename (atomic replace) changes ino, a write mtime/size. */
function signature(files: readonly CertificateFiles[]): string {
  return files
    .flatMap((f) => [f.cert, f.key])
    .map((file) => {
      try {
        const s = statSync(file);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

export class ServedCertificates {
  private current: CertificateSet;
  private server: tls.Server | null = null;
  private seen: string;
  private readonly watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;

  constructor(
    readonly files: readonly CertificateFiles[],
    readonly settings: TlsSettings,
    initial: CertificateSet,
    private readonly log: Logger,
    /** Names served though no certificate may have them yet (tls.acme's domains, while proved). */
    private readonly pending: readonly string[] = [],
  ) {
    this.current = initial;
    this.seen = signature(files);
  }

  get set(): CertificateSet {
    return this.current;
  }

  /** Whether the certificates serving now (or `pending`) are for `host` (redirect.ts asks). */
  covers(host: string): boolean {
    return this.current.covers(host) || this.pending.includes(host.toLowerCase().replace(/\.$/, ''));
  }

  /** The server's TLS options: the default certificate, the shared settings, SNI. */
  serverOptions(): tls.TlsOptions {
    return { ...this.current.serverOptions, SNICallback: this.sni };
  }

  private readonly sni = (
    servername: string,
    cb: (err: Error | null, ctx?: tls.SecureContext) => void,
  ): void => {
    cb(null, this.current.pick(servername).context);
  };

  /** What the certificates serving should be told about (expired, soon, a key others can read). */
  warnings(): string[] {
    return this.current.all.flatMap((c) => certificateWarnings(c));
  }

  /** Starts watching the files for the server that serves them. */
  attach(server: tls.Server): void {
    this.server = server;
    const dirs = new Set(this.files.flatMap((f) => [path.dirname(f.cert), path.dirname(f.key)]));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.changed());
        w.on('error', () => undefined); // the folder went away: the poll still looks
        this.watchers.push(w);
      } catch (err) {
        this.log.warn(
          { dir, error: (err as Error).message },
          'cannot watch the certificate folder; polling it',
        );
      }
    }
    this.poll = setInterval(() => this.changed(), POLL_MS).unref();
  }

  private changed(): void {
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      const now = signature(this.files);
      if (now === this.seen) return;
      this.seen = now;
      this.reload('the files changed');
    }, DEBOUNCE_MS).unref();
  }

  /**
   * Re-reads every certificate; swaps them in when all pass, else logs what is wrong (naming the
   * file) and keeps the ones serving. Returns whether the new ones are in.
   */
  reload(why = 'reload asked'): boolean {
    this.seen = signature(this.files);
    let next: CertificateSet;
    try {
      next = loadCertificates(this.files, this.settings);
    } catch (err) {
      if (!(err instanceof CertificateProblem)) throw err;
      this.log.error(
        { file: err.file, at: err.at, error: err.message, why },
        andThen(`certificate reload refused: ${err.message}`, 'the previous certificates keep serving'),
      );
      return false;
    }
    this.current = next;
    this.server?.setSecureContext(next.serverOptions);
    for (const w of this.warnings()) this.log.warn(w);
    this.log.info(
      {
        why,
        certificates: next.all.map((c) => ({
          file: c.files.cert,
          names: c.names,
          serial: c.serial,
          validTo: c.validTo.toISOString(),
        })),
      },
      'certificates reloaded',
    );
    return true;
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    if (this.poll !== null) clearInterval(this.poll);
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.poll = this.debounce = null;
  }
}
