// One health probe of an app instance or a target (GET `health.path`, the status checked
// against `expectStatus`, everything bounded by `timeout`), and the connections probes use.
// Shared by the controller (instance readiness and supervision), the built-in proxy's active
// health checks and the nginx edge's own.
import { Agent, request } from 'undici';
import type { HealthConfig } from '../config/schema.js';

/**
 * The connections health checks use. The connect timeout is the check's own: undici's default
 * (10s) would hold a check to a host that drops packets ten times longer than configured.
 */
export function healthAgent(cfg: Pick<HealthConfig, 'interval' | 'timeout'>): Agent {
  return new Agent({
    connect: { timeout: cfg.timeout },
    keepAliveTimeout: Math.min(cfg.interval + 1000, 4000),
    connections: 2,
  });
}

/** For probes made without an agent of their own: one per timeout, kept for the process. */
const sharedAgents = new Map<number, Agent>();

function sharedAgent(timeout: number): Agent {
  let a = sharedAgents.get(timeout);
  if (!a) {
    a = new Agent({ connect: { timeout }, keepAliveTimeout: 4000 });
    sharedAgents.set(timeout, a);
  }
  return a;
}

export function statusMatches(status: number, expect: HealthConfig['expectStatus']): boolean {
  if (typeof expect === 'number') return status === expect;
  if (Array.isArray(expect)) return expect.includes(status);
  return String(status)[0] === expect[0];
}

/** One health probe: resolves to null when it passed, else the reason it failed. */
export async function probe(
  origin: string,
  cfg: Pick<HealthConfig, 'path' | 'timeout' | 'expectStatus'>,
  dispatcher?: Agent,
): Promise<string | null> {
  return (await probeTarget(origin, cfg, dispatcher)).failure;
}

/**
 * One health probe, and whether the target answered at all (with which status): a wrong status
 * comes from a process that still serves, a refused or timed-out connection from one (or a host)
 * that does not.
 */
export async function probeTarget(
  origin: string,
  cfg: Pick<HealthConfig, 'path' | 'timeout' | 'expectStatus'>,
  dispatcher?: Agent,
): Promise<{ failure: string | null; answered: boolean; status: number | null }> {
  try {
    const res = await request(origin + cfg.path, {
      method: 'GET',
      headers: { 'user-agent': 'baton-health-check' },
      headersTimeout: cfg.timeout,
      bodyTimeout: cfg.timeout,
      signal: AbortSignal.timeout(cfg.timeout),
      dispatcher: dispatcher ?? sharedAgent(cfg.timeout),
    });
    await res.body.dump();
    const failure = statusMatches(res.statusCode, cfg.expectStatus)
      ? null
      : `GET ${cfg.path} answered ${res.statusCode}, expected ${String(cfg.expectStatus)}`;
    return { failure, answered: true, status: res.statusCode };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      failure: `GET ${cfg.path} failed: ${e.code ?? e.name}${e.message ? ` (${e.message})` : ''}`,
      answered: false,
      status: null,
    };
  }
}
