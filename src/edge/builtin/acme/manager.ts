// tls.acme in the process that owns the proxy (the data plane with an app, `baton up` without):
// at start and then every 12 hours (or sooner, when a renewal falls due before) it looks at the
// certificate stored in stateDir/acme/ and gets a new one when there is none yet (the
// placeholder serves), it no longer covers tls.acme.domains, it came from another directory, or
// less than a third of its lifetime is left. A new one is stored, then swapped in through
// ServedCertificates (open connections keep theirs; workers' watchers see the files). A failure
// is logged naming the domain and the ACME server's words, and tried again after 1 minute,
// doubling up to 6 hours, while the certificate serving (or the placeholder) serves on.
import type { AcmeConfig } from '../../../config/schema.js';
import { messageOf } from '../../../errors.js';
import type { Logger } from '../../../log.js';
import { andThen } from '../../../util/text.js';
import type { ServedCertificates } from '../certificate-reload.js';
import { AcmeFailure, issueCertificate, type ChallengeAnswers } from './issue.js';
import {
  accountKey,
  acmeFiles,
  readStored,
  storeIssued,
  type AcmeFiles,
  type StoredCertificate,
} from './store.js';

export interface AcmeTiming {
  /** How often the stored certificate is looked at. */
  readonly checkMs: number;
  /** The first retry after a failure; doubled at each failure after. */
  readonly retryMs: number;
  readonly maxRetryMs: number;
  /** Renewed when less than this share of its lifetime is left. */
  readonly renewWhenLeft: number;
}

export const ACME_TIMING: AcmeTiming = {
  checkMs: 12 * 3_600_000,
  retryMs: 60_000,
  maxRetryMs: 6 * 3_600_000,
  renewWhenLeft: 1 / 3,
};

/** When a certificate falls due for renewal. */
export function renewalTime(c: Pick<StoredCertificate, 'notBefore' | 'notAfter'>, share: number): Date {
  const life = c.notAfter.getTime() - c.notBefore.getTime();
  return new Date(c.notAfter.getTime() - life * share);
}

/** Why the stored certificate should be replaced now; null: it serves on. */
export function renewalReason(
  stored: StoredCertificate | null,
  acme: AcmeConfig,
  share: number,
  now = Date.now(),
): string | null {
  if (stored === null || stored.placeholder) return 'no certificate issued yet';
  const want = acme.domains.map((d) => d.toLowerCase().replace(/\.$/, ''));
  const missing = want.filter((d) => !stored.names.includes(d));
  if (missing.length) return `tls.acme.domains has names it lacks: ${missing.join(', ')}`;
  if (stored.directory !== acme.directory) return `it came from another ACME server than ${acme.directory}`;
  if (now >= renewalTime(stored, share).getTime()) {
    return `less than ${Math.round(share * 100)}% of its lifetime is left (it expires ${stored.notAfter.toISOString()})`;
  }
  return null;
}

export class AcmeManager {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failures = 0;
  private stopped = false;
  /** Whether a check ran already (the first one logs what it found). */
  private looked = false;

  constructor(
    private readonly acme: AcmeConfig,
    private readonly files: AcmeFiles,
    private readonly certificates: ServedCertificates,
    private readonly answers: ChallengeAnswers,
    private readonly log: Logger,
    private readonly timing: AcmeTiming = ACME_TIMING,
    /** After a new pair is stored and served here (a data plane tells its workers). */
    private readonly issued: () => void = () => undefined,
  ) {}

  /** Looks at once (the placeholder, a certificate due), then on its schedule. */
  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One look: renews when due. Never throws (a failure is logged and retried). */
  check(): Promise<void> {
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(), Math.max(0, ms)).unref();
  }

  private async run(): Promise<void> {
    const stored = readStored(this.files);
    const why = renewalReason(stored, this.acme, this.timing.renewWhenLeft);
    if (why === null) {
      if (!this.looked) {
        this.log.info(
          { serial: stored!.serial, validTo: stored!.notAfter.toISOString() },
          `ACME: serving the stored certificate for ${stored!.names.join(', ')} (serial ${stored!.serial}, valid until ${stored!.notAfter.toISOString()}); renewal from ${renewalTime(stored!, this.timing.renewWhenLeft).toISOString()}`,
        );
      }
      this.looked = true;
      return this.scheduleRenewal(stored!);
    }
    this.looked = true;
    const domains = this.acme.domains.join(', ');
    this.log.info(
      { domains: this.acme.domains, directory: this.acme.directory, challenge: this.acme.challenge, why },
      `ACME: asking ${this.acme.directory} for a certificate for ${domains} (${why})`,
    );
    let issued: StoredCertificate;
    try {
      const { chain, key } = await issueCertificate(this.acme, accountKey(this.files), this.answers);
      if (this.stopped) return;
      issued = storeIssued(this.files, chain, key, this.acme.directory);
    } catch (err) {
      if (this.stopped) return;
      return this.failed(err, stored);
    }
    this.failures = 0;
    this.certificates.reload('ACME: certificate issued');
    this.issued();
    this.log.info(
      {
        domains: issued.names,
        serial: issued.serial,
        validTo: issued.notAfter.toISOString(),
        renewFrom: renewalTime(issued, this.timing.renewWhenLeft).toISOString(),
      },
      `ACME: certificate issued for ${issued.names.join(', ')} (serial ${issued.serial}, valid until ${issued.notAfter.toISOString()}), serving it`,
    );
    this.scheduleRenewal(issued);
  }

  private scheduleRenewal(c: StoredCertificate): void {
    const due = renewalTime(c, this.timing.renewWhenLeft).getTime() - Date.now();
    this.schedule(Math.min(this.timing.checkMs, Math.max(1000, due)));
  }

  private failed(err: unknown, stored: StoredCertificate | null): void {
    this.failures += 1;
    const wait = Math.min(this.timing.maxRetryMs, this.timing.retryMs * 2 ** (this.failures - 1));
    const f = err instanceof AcmeFailure ? err : new AcmeFailure(null, 'issue', messageOf(err));
    const what = f.domain !== null ? `for ${f.domain}` : `for ${this.acme.domains.join(', ')}`;
    const serving =
      stored === null || stored.placeholder
        ? 'the self-signed placeholder keeps serving (clients do not trust it)'
        : `the previous certificate (serial ${stored.serial}, valid until ${stored.notAfter.toISOString()}) keeps serving`;
    this.log.error(
      {
        domain: f.domain,
        domains: this.acme.domains,
        directory: this.acme.directory,
        step: f.step,
        error: f.detail,
        failures: this.failures,
        retryInMs: wait,
      },
      andThen(
        andThen(
          `ACME: could not get a certificate ${what} from ${this.acme.directory} (${f.step}): ${f.detail}`,
          serving,
        ),
        `next attempt in ${Math.round(wait / 1000)}s`,
      ),
    );
    this.schedule(wait);
  }
}

/** Where the proxy answers challenges, as startAcme needs it. */
interface AcmeProxy {
  readonly front: {
    readonly certificates: ServedCertificates | null;
    readonly redirect: { readonly challenges: Map<string, string> } | null;
    readonly alpn: ChallengeAnswers['alpn'];
  };
}

/**
 * tls.acme: starts the ACME client for a proxy that listens (its challenges need the
 * listeners); null without tls.acme. The caller stops it when the proxy stops serving.
 */
export function startAcme(
  config: {
    readonly tls?: { readonly acme?: AcmeConfig | undefined } | undefined;
    readonly stateDirPath: string;
  },
  proxy: AcmeProxy,
  log: Logger,
  /** Called after each new certificate is stored and served by `proxy`. */
  issued?: () => void,
): AcmeManager | null {
  const acme = config.tls?.acme;
  const certificates = proxy.front.certificates;
  if (!acme || !certificates) return null;
  const manager = new AcmeManager(
    acme,
    acmeFiles(config.stateDirPath),
    certificates,
    { http: proxy.front.redirect?.challenges ?? null, alpn: proxy.front.alpn },
    log,
    ACME_TIMING,
    issued,
  );
  manager.start();
  return manager;
}
