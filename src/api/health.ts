// GET /v1/health: which Baton answers, and what it runs.
import type { EdgeKind } from '../edge/edge.js';

export interface HealthAnswer {
  readonly ok: true;
  readonly service: string;
  /** Baton's own version. */
  readonly version: string;
  /** app: it deploys an app; targets: a plain load balancer; edge: another Baton routes it. */
  readonly mode: 'app' | 'targets' | 'edge';
  readonly edge: EdgeKind;
  /** The proxy's bound address (the config may say port 0); null when nginx / HAProxy own it. */
  readonly listen: string | null;
  /**
   * Where clients send requests: the edge's `url:` (the first edge that has one), else the
   * built-in proxy's bound address (loopback for a wildcard); null for nginx / HAProxy without it.
   */
  readonly url: string | null;
}
