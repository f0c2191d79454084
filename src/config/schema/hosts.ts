// The hosts: and ssh: sections of baton.yaml: the servers the app's instances run on, reached
// with the system's OpenSSH (keys and ~/.ssh/config as they are).
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { positiveDuration } from './values.js';

/** A server the app runs on. */
export const hostSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { message: 'a short name, e.g. worker-1' })
    .describe('A short name for the host, in messages and in strategy.hosts, e.g. worker-1.'),
  address: z
    .string()
    .min(1, { message: 'an IP address or host name, e.g. 10.0.0.11' })
    .refine((v) => !v.startsWith('-'), { message: 'cannot start with "-" (ssh would read it as an option)' })
    .describe(
      'What ssh connects to and what the edges send requests to: an IP address or host name, e.g. 10.0.0.11.',
    ),
  user: z
    .string()
    .min(1)
    .refine((v) => !v.startsWith('-'), { message: 'cannot start with "-" (ssh would read it as an option)' })
    .optional()
    .describe("The ssh user; default: ssh's own (~/.ssh/config, else yours)."),
  port: z.number().int().min(1).max(65535).optional().describe("The ssh port; default: ssh's own (22)."),
});

export const sshSchema = z.strictObject({
  options: z
    .array(z.string())
    .prefault([])
    .describe('Extra ssh options, e.g. ["-i", "/home/ci/.ssh/deploy_key"].'),
  connectTimeout: positiveDuration
    .prefault(DEFAULTS.ssh.connectTimeout)
    .describe('How long ssh may take to connect to a host.'),
  remoteDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Baton's folder on each host (logs, pid files); ~/ is the ssh user's home. Default: ~/.baton/SERVICE.",
    ),
});

export type HostConfig = z.output<typeof hostSchema>;
