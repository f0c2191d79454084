// The built-in proxy as baton.yaml describes it: for `baton up` (targets, edge-only) and for the
// data plane process, which build it the same way.
import { hstsHeader, type AcmeConfig, type BatonConfig } from '../../config/schema.js';
import { createAccessLog, type Logger } from '../../log.js';
import { ServedCertificates } from './certificate-reload.js';
import { certificateFiles, checkCertificates, loadCertificates, tlsSettings } from './certificates.js';
import type { HttpsOptions } from './front.js';
import type { H2Settings } from './h2/sessions.js';
import { BuiltinProxy } from './proxy.js';
import { AlpnChallenges } from './acme/alpn.js';
import { acmeCertificateFiles, acmeFiles, ensureServable } from './acme/store.js';

export function proxyFromConfig(
  config: BatonConfig,
  log: Logger,
  onChange?: () => void,
  /** false in a data plane's worker: tls.acme's files are its data plane's to write. */
  acmeOwner = true,
): BuiltinProxy {
  const accessLog = config.proxy.accessLog === 'off' ? null : createAccessLog(config.proxy.accessLog);
  return new BuiltinProxy({
    listen: config.listen!,
    proxy: config.proxy,
    balance: config.balance,
    // Managed instances are health-checked in rotation with the app's own check.
    healthCheck: config.app ? config.app.health : config.healthCheck,
    log,
    accessLog,
    onChange,
    https: httpsFromConfig(config, log, acmeOwner),
  });
}

/** tls:, hsts: and redirectHttp:, the certificates read and checked (BATON_E_CONFIG if not). */
function httpsFromConfig(config: BatonConfig, log: Logger, acmeOwner: boolean): HttpsOptions | null {
  if (config.tls?.acme) return acmeHttps(config, config.tls.acme, log, acmeOwner);
  const { set } = checkCertificates(config);
  if (!config.tls || !set) return null;
  return {
    certificates: new ServedCertificates(certificateFiles(config), tlsSettings(config.tls), set, log),
    hsts: hstsHeader(config.hsts),
    redirectHttp: config.redirectHttp ?? null,
    http2: http2Of(config.tls),
  };
}

/** tls.http2 and tls.maxConcurrentStreams; null: HTTP/1.1 only. */
function http2Of(tls: NonNullable<BatonConfig['tls']>): H2Settings | null {
  return tls.http2 ? { maxConcurrentStreams: tls.maxConcurrentStreams } : null;
}

/**
 * tls.acme: the pair stored in stateDir/acme/ (a self-signed placeholder written first when
 * there is none yet), served and watched as tls:'s files are; the ACME client (acme/manager.ts)
 * is started by the process that owns the proxy and replaces the pair.
 */
function acmeHttps(config: BatonConfig, acme: AcmeConfig, log: Logger, owner: boolean): HttpsOptions {
  const files = acmeFiles(config.stateDirPath);
  // Only the owner writes a placeholder: a worker starting while its data plane stores a new
  // pair (key, then certificate) would otherwise take the half-written pair for none and
  // overwrite the new key.
  if (owner && ensureServable(files, acme)) {
    log.warn(
      { domains: acme.domains, file: files.cert },
      `tls.acme: no certificate for ${acme.domains.join(', ')} yet: a self-signed placeholder serves until ${acme.directory} issues one (clients do not trust it)`,
    );
  }
  const served = [acmeCertificateFiles(files)];
  const settings = tlsSettings(config.tls!);
  return {
    certificates: new ServedCertificates(
      served,
      settings,
      loadWhole(served, settings, owner),
      log,
      acme.domains.map((d) => d.toLowerCase().replace(/\.$/, '')),
    ),
    hsts: hstsHeader(config.hsts),
    redirectHttp: config.redirectHttp ?? null,
    http2: http2Of(config.tls!),
    alpn: acme.challenge === 'tls-alpn-01' ? new AlpnChallenges() : null,
  };
}

/**
 * The pair, read; a worker that finds it half-written (its data plane storing a new one) reads
 * again, for up to a second: it starts once, and only then.
 */
function loadWhole(
  served: Parameters<typeof loadCertificates>[0],
  settings: Parameters<typeof loadCertificates>[1],
  owner: boolean,
): ReturnType<typeof loadCertificates> {
  for (let tries = 1; ; tries++) {
    try {
      return loadCertificates(served, settings);
    } catch (err) {
      if (owner || tries >= 20) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}
