// The adminHosts: key of baton.yaml: the names the admin API answers to besides IP addresses,
// localhost and the host of admin: (src/admin/guard.ts refuses any other Host).
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** A host name as compared: trimmed, lower case, without the root's trailing dot. */
export function normalizeHostName(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** `adminHosts: [baton.internal, ...]`: the names the admin API is reached by, besides its address. */
export const adminHostsSchema = z
  .array(
    z
      .string()
      .transform((v) => normalizeHostName(v))
      .refine((v) => HOST_NAME.test(v), {
        message: 'a host name the admin API is reached by, e.g. baton.internal (no scheme, no port)',
      })
      .describe('A host name, e.g. baton.internal (no scheme, no port).'),
  )
  .prefault([...DEFAULTS.adminHosts]);
