// HAProxy's counters for deploy proofs (Edge.traffic): `show stat` counts per server slot since
// HAProxy (re)started, whatever target the slot had meanwhile, so each reading's difference
// from the last one is given to the version the slot serves (or last served, once freed). The
// edge reads before every route change and the controller every PROOF_SAMPLE_MS while a deploy
// runs, so a slot's requests go to the version that had it. No latency histogram (HAProxy keeps
// averages): p50 / p99 are unknown.
import { KEPT_VERSIONS } from '../builtin/stats.js';
import type { TrafficSnapshot } from '../edge.js';
import type { ServerStat } from './runtime.js';

interface Counts {
  requests: number;
  status5xx: number;
  proxyErrors: number;
  clientAborts: number;
}

/** What the proof says of HAProxy's counts. */
export const HAPROXY_TRAFFIC_NOTE =
  "HAProxy's per-server counters (show stat): answers by status class and response errors (eresp: a 502/504 HAProxy made, or an answer cut); p50/p99 unknown (HAProxy keeps averages, no histogram); a 503 HAProxy answers with no server left is in no server's counters";

/** The version of a slot that serves no known version (routes adopted from HAProxy). */
export const UNKNOWN_VERSION = 'unknown version';

function countsOf(st: ServerStat): Counts {
  return {
    requests: st.hrsp.reduce((a, b) => a + b, 0) + st.hrspOther + st.eresp,
    status5xx: st.hrsp[4] ?? 0,
    proxyErrors: st.eresp,
    clientAborts: st.cliAbrt,
  };
}

export class SlotTraffic {
  /** Each slot's counters at the last reading. */
  private readonly last = new Map<string, Counts>();
  /** The version each slot served at the last reading (kept once the slot is freed). */
  private readonly slotVersion = new Map<string, string>();
  /** By version, at most KEPT_VERSIONS of them (as the built-in proxy's). */
  private readonly totals = new Map<string, Counts>();
  private at = 0;

  /**
   * One reading: `versionOf` names the version in a slot now, null for a free slot. One older
   * than the last recorded is ignored: its lower counts would look like a restarted HAProxy and
   * give the slots' whole counts again to their versions.
   */
  observe(stats: readonly ServerStat[], versionOf: (slot: string) => string | null, at: number): void {
    if (at < this.at) return;
    this.at = at;
    for (const st of stats) {
      const now = countsOf(st);
      const before = this.last.get(st.name);
      this.last.set(st.name, now);
      // Since the last reading the slot served the version it had then; one free then (no
      // traffic) has since been given the one it has now (a reading precedes every change).
      const current = versionOf(st.name);
      const version = this.slotVersion.get(st.name) ?? current;
      if (current === null) this.slotVersion.delete(st.name);
      else this.slotVersion.set(st.name, current);
      // The first reading is the baseline; a counter that went down is a restarted HAProxy.
      if (!before || version === null) continue;
      const from =
        now.requests < before.requests
          ? { requests: 0, status5xx: 0, proxyErrors: 0, clientAborts: 0 }
          : before;
      const t = this.totals.get(version) ?? this.add(version);
      t.requests += now.requests - from.requests;
      t.status5xx += Math.max(0, now.status5xx - from.status5xx);
      t.proxyErrors += Math.max(0, now.proxyErrors - from.proxyErrors);
      t.clientAborts += Math.max(0, now.clientAborts - from.clientAborts);
    }
  }

  /** New counters for a version; past KEPT_VERSIONS, the oldest one no slot serves is dropped. */
  private add(version: string): Counts {
    if (this.totals.size >= KEPT_VERSIONS) {
      const live = new Set(this.slotVersion.values());
      for (const old of this.totals.keys()) {
        if (!live.has(old)) {
          this.totals.delete(old);
          break;
        }
      }
    }
    const t = { requests: 0, status5xx: 0, proxyErrors: 0, clientAborts: 0 };
    this.totals.set(version, t);
    return t;
  }

  snapshot(): TrafficSnapshot {
    return {
      at: this.at,
      versions: [...this.totals].map(([version, c]) => ({ version, ...c, buckets: [] })),
      unknown: ['p50Ms', 'p99Ms'],
      note: HAPROXY_TRAFFIC_NOTE,
    };
  }
}
