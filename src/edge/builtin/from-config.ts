// The built-in proxy as baton.yaml describes it: for `baton up` (targets, edge-only) and for the
// data plane process, which build it the same way.
import { hstsHeader, type BatonConfig } from '../../config/schema.js';
import { createAccessLog, type Logger } from '../../log.js';
import { ServedCertificates } from './certificate-reload.js';
import { certificateFiles, checkCertificates, tlsSettings } from './certificates.js';
import type { HttpsOptions } from './front.js';
import { BuiltinProxy } from './proxy.js';

export function proxyFromConfig(config: BatonConfig, log: Logger, onChange?: () => void): BuiltinProxy {
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
    https: httpsFromConfig(config, log),
  });
}

/** tls:, hsts: and redirectHttp:, the certificates read and checked (BATON_E_CONFIG if not). */
function httpsFromConfig(config: BatonConfig, log: Logger): HttpsOptions | null {
  const { set } = checkCertificates(config);
  if (!config.tls || !set) return null;
  return {
    certificates: new ServedCertificates(certificateFiles(config), tlsSettings(config.tls), set, log),
    hsts: hstsHeader(config.hsts),
    redirectHttp: config.redirectHttp ?? null,
  };
}
