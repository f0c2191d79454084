// The hosts: and ssh: sections of baton.yaml: the servers the app's instances run on, reached
// with the system's OpenSSH (keys and ~/.ssh/config as they are).
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { positiveDuration } from './values.js';

/** A server the app runs on. */
export const hostSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { message: 'a short name, e.g. worker-1' }),
  /** What ssh connects to and what the edges send requests to. */
  address: z
    .string()
    .min(1, { message: 'an IP address or host name, e.g. 10.0.0.11' })
    .refine((v) => !v.startsWith('-'), { message: 'cannot start with "-" (ssh would read it as an option)' }),
  user: z
    .string()
    .min(1)
    .refine((v) => !v.startsWith('-'), { message: 'cannot start with "-" (ssh would read it as an option)' })
    .optional(),
  port: z.number().int().min(1).max(65535).optional(),
});

export const sshSchema = z.strictObject({
  /** Extra ssh options, e.g. ["-i", "/home/ci/.ssh/deploy_key"]. */
  options: z.array(z.string()).prefault([]),
  connectTimeout: positiveDuration.prefault(DEFAULTS.ssh.connectTimeout),
  /** Baton's folder on each host (logs, pid files); ~/ is the ssh user's home. */
  remoteDir: z.string().min(1).optional(),
});

export type HostConfig = z.output<typeof hostSchema>;
