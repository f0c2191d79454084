// The proof of a deploy: what the edge saw from the deploy's (or rollback's) start to its end,
// as the difference of two snapshots of the edge's counters, with a time series of requests per
// version sampled while it ran and the deploy's steps and analysis verdicts on the same time
// axis. Stored with the history entry (`proof`), shown by `baton deploy`, `baton history`,
// notifications, the dashboard and `baton report <id>`.
//
// A number the edge cannot count is null and named in `unknown`, never a made-up zero.

/** Counts of one version, or of the whole deploy. */
export interface ProofCounts {
  /** Requests finished meanwhile: answered, failed, or abandoned by the client. */
  readonly requests: number | null;
  /** 5xx answers of the app. */
  readonly status5xx: number | null;
  /**
   * Errors the proxy made: 502/503/504 it answered itself (no target left, the target refused,
   * reset or timed out) and answers the target cut short.
   */
  readonly proxyErrors: number | null;
  /** Requests the client abandoned before the answer was complete: counted, not failed. */
  readonly clientAborts: number | null;
  /** Latency percentiles (ms) of the requests answered, from the edge's log-bucket histogram. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

/** One version's share; version '' holds requests that reached no target (the proxy's 503). */
export interface ProofVersion extends ProofCounts {
  readonly version: string;
}

/** One interval of the time series. */
export interface ProofSample {
  /** End of the interval, in ms since the proof's start. */
  readonly t: number;
  /** Requests finished in the interval, by version. */
  readonly requests: Readonly<Record<string, number>>;
  /** Of those, failed (5xx of the app + proxy errors). */
  readonly failed: number;
}

/** Something the deploy did, on the time axis. */
export interface ProofMark {
  /** Ms since the proof's start. */
  readonly t: number;
  readonly at: string;
  readonly kind: 'start' | 'step' | 'verdict' | 'done';
  /** The deploy step (`weight`, `draining`, ...), the verdict's result, or the deploy's result. */
  readonly label: string;
  readonly message: string;
}

export interface DeployProof extends ProofCounts {
  /** Which edge counted: `builtin`, `haproxy`, `nginx`, `multi`. */
  readonly edge: string;
  readonly startedAt: string;
  readonly endedAt: string;
  /** status5xx + proxyErrors; null when either is unknown. */
  readonly failed: number | null;
  /** By version, most requests first. */
  readonly versions: readonly ProofVersion[];
  readonly series: { readonly intervalMs: number; readonly samples: readonly ProofSample[] };
  readonly marks: readonly ProofMark[];
  /** The fields this edge cannot count (null above): `requests`, `p50Ms`, ... */
  readonly unknown: readonly string[];
  /** Why some are unknown, or what the numbers leave out; null when nothing to say. */
  readonly note: string | null;
}

const n = (x: number): string => x.toLocaleString('en-US');

/** `v2 31, v1 6` (requests that reached no target: `no target`). */
function byVersion(p: DeployProof, field: 'status5xx' | 'proxyErrors'): string {
  return p.versions
    .filter((v) => (v[field] ?? 0) > 0)
    .map((v) => `${v.version || 'no target'} ${n(v[field]!)}`)
    .join(', ');
}

/**
 * The proof in words, for `baton deploy`, notifications and the report: the headline
 * (`0 of 12,431 requests failed during this deploy`), then a line by kind when some failed.
 */
export function proofLines(p: DeployProof, what: 'deploy' | 'rollback' = 'deploy'): string[] {
  if (p.requests === null) {
    return [`requests during this ${what}: unknown (${p.note ?? 'the edge counts none'})`];
  }
  const latency =
    p.p50Ms !== null && p.p99Ms !== null ? `p50 ${p.p50Ms}ms, p99 ${p.p99Ms}ms` : 'latency unknown';
  const aborts =
    p.clientAborts === null ? '' : `; ${n(p.clientAborts)} abandoned by the client, not counted as failed`;
  const failed = p.failed === null ? 'an unknown number' : n(p.failed);
  const lines = [`${failed} of ${n(p.requests)} requests failed during this ${what} (${latency}${aborts})`];
  if ((p.failed ?? 0) > 0) {
    const kinds = [
      p.status5xx ? `${n(p.status5xx)} 5xx from the app (${byVersion(p, 'status5xx')})` : '',
      p.proxyErrors
        ? `${n(p.proxyErrors)} proxy errors: 502/503/504 or cut answers (${byVersion(p, 'proxyErrors')})`
        : '',
    ].filter(Boolean);
    lines.push(`failed: ${kinds.join('; ')}`);
  }
  if (p.unknown.length)
    lines.push(`not counted by ${p.edge}: ${p.unknown.join(', ')}${p.note ? ` (${p.note})` : ''}`);
  return lines;
}
