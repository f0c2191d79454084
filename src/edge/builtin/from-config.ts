// The built-in proxy as baton.yaml describes it: for `baton up` (targets, edge-only) and for the
// data plane process, which build it the same way.
import type { BatonConfig } from '../../config/schema.js';
import { createAccessLog, type Logger } from '../../log.js';
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
  });
}
