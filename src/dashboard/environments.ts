// The environments picker: the other environments of the same baton.yaml, each run by its own
// `baton up --env NAME` with its own admin address, so its dashboard is a link there. Read once
// per loaded config (a SIGHUP reload reads them again).
import { readFileSync } from 'node:fs';
import type { EnvironmentLink } from '../api/dashboard.js';
import { formatAddress } from '../config/address.js';
import { parseConfigText } from '../config/load.js';
import type { BatonConfig } from '../config/schema.js';

const cache = new WeakMap<BatonConfig, EnvironmentLink[]>();

export function environmentLinks(config: BatonConfig): EnvironmentLink[] {
  const known = cache.get(config);
  if (known) return known;
  const names = Object.keys(config.environments ?? {});
  let text: string | null = null;
  try {
    text = config.file ? readFileSync(config.file, 'utf8') : null;
  } catch {
    text = null;
  }
  const links = names.map((name): EnvironmentLink => {
    if (text === null) return { name, url: null };
    try {
      const admin = parseConfigText(text, config.file, name).admin;
      if (admin?.kind !== 'tcp') return { name, url: null };
      const host = admin.host === '0.0.0.0' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host;
      return { name, url: `http://${formatAddress({ ...admin, host })}/` };
    } catch {
      return { name, url: null };
    }
  });
  cache.set(config, links);
  return links;
}
