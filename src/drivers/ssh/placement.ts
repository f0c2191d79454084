// Where the SSH driver puts a new instance: which host (the fewest instances of that version,
// then the fewest in all) and which port of app.ports (one Baton does not use there and that
// nothing else listens on, asked of the host in one ssh call).
import { BatonError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { InstanceRecord, Placement } from '../driver.js';
import { parsePorts, portsScript } from './scripts.js';
import { HOST_ERROR_CODE, SshHostError, type SshHost, type SshTransport } from './transport.js';

/** Ports asked about per host and allocation (the /dev/tcp fallback tries each). */
const MAX_CANDIDATES = 64;

/** What placing needs of the driver. */
export interface PlacementHost {
  readonly hosts: readonly SshHost[];
  readonly ports: { readonly from: number; readonly to: number };
  readonly transport: SshTransport;
  /** Deadline of the ports call (connecting plus the command). */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/**
 * The hosts to try, in order: fewest instances of this version first (a new set spreads over
 * the hosts, whatever the old set left where), then fewest in all; the order of `hosts` breaks
 * ties. `onHosts`: only these host names.
 */
export function placementOrder(
  hosts: readonly SshHost[],
  running: readonly InstanceRecord[],
  version?: string,
  onHosts?: readonly string[],
): SshHost[] {
  const count = (host: SshHost, v?: string): number =>
    running.filter((r) => r.host === host.address && (v === undefined || r.version === v)).length;
  return hosts
    .filter((h) => onHosts === undefined || onHosts.includes(h.name))
    .map((h, i) => ({ h, i, mine: version === undefined ? 0 : count(h, version), all: count(h) }))
    .sort((a, b) => a.mine - b.mine || a.all - b.all || a.i - b.i)
    .map((x) => x.h);
}

/** A host and a free port for a new instance, or an error that says why none is. */
export async function place(
  d: PlacementHost,
  running: readonly InstanceRecord[],
  version?: string,
  onHosts?: readonly string[],
): Promise<Placement> {
  const order = placementOrder(d.hosts, running, version, onHosts);
  const failures: SshHostError[] = [];
  const full: string[] = [];
  const { from, to } = d.ports;
  for (const host of order) {
    const taken = new Set(running.filter((r) => r.host === host.address).map((r) => r.port));
    const candidates: number[] = [];
    for (let p = from; p <= to && candidates.length < MAX_CANDIDATES; p++)
      if (!taken.has(p)) candidates.push(p);
    if (candidates.length === 0) {
      full.push(`${host.name}: all ${to - from + 1} used by Baton`);
      continue;
    }
    let used: Set<number> | null;
    try {
      const { stdout } = await d.transport.run(host, portsScript(candidates), {
        timeoutMs: d.timeoutMs,
        what: 'list listening ports',
      });
      used = parsePorts(stdout);
    } catch (err) {
      if (!(err instanceof SshHostError)) throw err;
      d.log.warn(
        { host: host.name, error: err.message },
        'cannot place an instance on this host; trying the next',
      );
      failures.push(err);
      continue;
    }
    if (used === null) {
      d.log.warn(
        { host: host.name },
        'neither ss nor bash on this host: cannot tell which ports are free, taking the first unused by Baton',
      );
    }
    const port = candidates.find((p) => !used?.has(p));
    if (port !== undefined) return { host: host.address, port };
    full.push(`${host.name}: ${taken.size} used by Baton, ${candidates.length} by other processes`);
  }
  if (failures.length === 1 && full.length === 0) throw failures[0]!;
  if (failures.length > 0) {
    throw new BatonError(
      HOST_ERROR_CODE,
      `no host can take a new instance:\n${[...failures.map((f) => `- ${f.message}`), ...full.map((f) => `- ${f} (app.ports ${from}-${to})`)].join('\n')}`,
      { details: { hosts: failures.map((f) => ({ host: f.host.name, kind: f.kind })) } },
    );
  }
  throw new BatonError(
    'BATON_E_CONFLICT',
    `no free port left in app.ports ${from}-${to} on any host (${full.join('; ')}). Widen the range, add hosts or stop what holds them.`,
  );
}
