// The HAProxy edge: Baton drives one backend of the user's running HAProxy through its runtime
// API (src/edge/haproxy/runtime.ts); haproxy.cfg itself is never rewritten.
//
// Routes live in server-template slots, never in `add server` servers: HAProxy's server-state
// file (what keeps runtime changes across a reload, written here after every change) restores
// only servers that exist in the config, and dynamic servers are gone after a reload. The
// backend declares them once, e.g.
//
//   server-template baton 1-10 127.0.0.1:1 disabled check
//   server-template baton-backup 1-4 127.0.0.1:1 disabled check backup
//
// A slot in maintenance is free. Primary routes take `<prefix>N` slots, backup routes
// (RouteSpec.backup) `<prefix>-backupN` ones. A slot out of maintenance is a route, or a
// target on its way out when in drain (no new requests; the ones in flight finish).
//
// How a target comes in, from HAProxy 2.6's behaviour: a server leaving maintenance is UP at
// once (`UP 1/2`) before any check, and its last check result is the slot's previous target's.
// So a new target's slot is readied at weight 0 and forced down (`set server health down`): it
// is UP again only once a real check passed, and only then gets its weight.
//
// This file is the Edge: the apply sequence (prepare, wait up, weigh, drain, confirm, or put
// back), drains, counters and the server-state file. Which slot takes which route is slots.ts;
// addresses and weights are routes.ts.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EdgeConfig } from '../../config/schema.js';
import { messageOf } from '../../errors.js';
import { writeFileAtomic } from '../../state/atomic.js';
import {
  EdgeError,
  type DrainResult,
  type Edge,
  type EdgeCapabilities,
  type EdgeOptions,
  type EdgeTargetView,
  type RouteSpec,
  type SplitSpec,
  type StatsSnapshot,
  type TrafficSnapshot,
} from '../edge.js';
import { wantedOf, type Wanted } from './routes.js';
import { SlotTraffic, UNKNOWN_VERSION } from './traffic.js';
import { HaproxyRuntime, parseSocketAddress, type ServerState } from './runtime.js';
import {
  checkText,
  OP_RUNNING,
  OP_STOPPED,
  planSlots,
  slotNames,
  slotsOf,
  type Placement,
  type Slot,
  type SlotNames,
} from './slots.js';

type HaproxyConfig = Extract<EdgeConfig, { type: 'haproxy' }>;

const POLL_MS = 50;

type Undo = () => Promise<unknown>;

export class HaproxyEdge implements Edge {
  readonly kind = 'haproxy';
  readonly describe: string;
  /** Weights only: HAProxy's ACLs (A/B rules, sticky buckets) cannot change at runtime. */
  readonly can: EdgeCapabilities = {
    weightedSplit: true,
    matchRules: false,
    sticky: 'none',
    statusCounters: true,
    latencyBuckets: false,
  };

  private readonly runtime: HaproxyRuntime;
  private readonly stateFile: string | null;
  private readonly names: SlotNames;
  /** Versions of the routes applied; adopted routes have none (''). */
  private readonly versions = new Map<string, string>();
  /** Target ids by HAProxy `addr:port`, for routes given by host name. */
  private readonly ids = new Map<string, string>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Counters by version for deploy proofs, from `show stat` readings. */
  private readonly counted = new SlotTraffic();
  /** The last traffic reading (readTraffic chains them). */
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly cfg: HaproxyConfig,
    private readonly opts: EdgeOptions,
  ) {
    this.runtime = new HaproxyRuntime(parseSocketAddress(cfg.runtimeSocket, opts.baseDir), cfg.timeout);
    this.stateFile = cfg.stateFile === undefined ? null : path.resolve(opts.baseDir, cfg.stateFile);
    this.names = slotNames(cfg.serverPrefix);
    this.describe = `haproxy (backend ${cfg.backend} via ${this.runtime.describe})`;
  }

  /** Checks the socket's level and the backend's slots, and adopts what HAProxy serves. */
  async start(): Promise<void> {
    const level = await this.runtime.command('show cli level');
    if (level !== 'admin') {
      throw new EdgeError(
        `HAProxy runtime socket ${this.runtime.describe} is at level ${level}: Baton changes servers, which needs \`stats socket ${this.runtime.describe} level admin\``,
      );
    }
    const slots = await this.readSlots();
    if (!slots.some((s) => !s.backup)) {
      const p = this.cfg.serverPrefix;
      throw new EdgeError(
        `backend ${this.cfg.backend} has no server-template slots named ${p}1..: add \`server-template ${p} 1-10 127.0.0.1:1 disabled check\` to it`,
      );
    }
    await this.checkBackupFlags(slots);
    const adopted = slots.filter((s) => s.state === 'routed').map((s) => s.id);
    if (adopted.length > 0)
      this.opts.log.info({ routes: adopted }, 'haproxy: adopted the routes HAProxy serves');
    await this.saveState();
  }

  apply(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<void> {
    if (split && split.rules.length > 0) {
      return Promise.reject(
        new EdgeError(
          'A/B match rules need the built-in or nginx edge: HAProxy cannot change its ACLs through the runtime API (a weighted canaryPercent works)',
        ),
      );
    }
    return this.serialize(async () => this.change(await wantedOf(routes, split)));
  }

  drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[]> {
    const deadline = Date.now() + timeoutMs;
    return this.serialize(async () => {
      const wanted = new Set(ids);
      // Only targets out of rotation: one routed again meanwhile is not drained.
      const slots = (await this.readSlots()).filter((s) => s.state === 'draining' && wanted.has(s.id));
      const results = await Promise.all(slots.map((s) => this.drainSlot(s, deadline)));
      if (results.some((r) => r.drained)) await this.saveState();
      return results;
    });
  }

  /**
   * Counters by status class from `show stat`. They count per slot since HAProxy (re)started,
   * whatever target the slot had before: callers compare two snapshots. HAProxy keeps no
   * latency histogram, so `buckets` is empty.
   */
  async stats(ids: readonly string[]): Promise<StatsSnapshot> {
    const wanted = new Set(ids);
    const names = new Set(
      (await this.readSlots()).filter((s) => s.state !== 'free' && wanted.has(s.id)).map((s) => s.name),
    );
    const byClass = [0, 0, 0, 0, 0, 0];
    for (const st of await this.runtime.serverStats(this.cfg.backend)) {
      if (!names.has(st.name)) continue;
      st.hrsp.forEach((v, i) => (byClass[i]! += v));
      // No usable answer: connection failed (a request retried elsewhere also counts there),
      // response failed (HAProxy answered 502/504 itself, not in hrsp_5xx), or a status
      // outside 1xx..5xx.
      byClass[5]! += st.econ + st.eresp + st.hrspOther;
    }
    return { byClass, buckets: [] };
  }

  /** Counters by version (deploy proofs): not queued behind a route change, which can wait for checks. */
  async traffic(): Promise<TrafficSnapshot> {
    await this.readTraffic();
    return this.counted.snapshot();
  }

  /**
   * One reading at a time (the proof's sampler and change() both read): two overlapping could be
   * recorded out of order, and an older one after a newer looks like a restarted HAProxy.
   */
  private readTraffic(): Promise<void> {
    const run = this.reading.then(() => this.readTrafficNow());
    this.reading = run.catch(() => undefined);
    return run;
  }

  private async readTrafficNow(): Promise<void> {
    const slots = await this.readSlots();
    const routed = new Map(
      slots
        .filter((s) => s.state !== 'free')
        .map((s) => [s.name, this.versions.get(s.id) || UNKNOWN_VERSION]),
    );
    const asked = Date.now();
    const stats = await this.runtime.serverStats(this.cfg.backend);
    // Stamped halfway through the call: HAProxy answered somewhere in between.
    this.counted.observe(stats, (name) => routed.get(name) ?? null, Math.round((asked + Date.now()) / 2));
  }

  /** The routed slots; `requests` is the slot's session count since HAProxy (re)started. */
  async view(): Promise<EdgeTargetView[]> {
    const slots = (await this.readSlots()).filter((s) => s.state === 'routed');
    const stats = new Map((await this.runtime.serverStats(this.cfg.backend)).map((s) => [s.name, s]));
    return slots.map((s) => ({
      id: s.id,
      version: this.versions.get(s.id) ?? '',
      weight: s.weight,
      backup: s.backup,
      health: s.opState === OP_RUNNING ? 'healthy' : s.opState === OP_STOPPED ? 'unhealthy' : 'unknown',
      inflight: stats.get(s.name)?.scur ?? null,
      requests: stats.get(s.name)?.stot ?? null,
    }));
  }

  /** HAProxy does the work; nothing runs in the background here. */
  async close(): Promise<void> {}

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Brings the new targets up unseen (weight 0) and waits for their checks, then switches
   * weights and drains the removed ones. Whatever fails, what was changed is put back.
   */
  private async change(wanted: Wanted[]): Promise<void> {
    // What the slots served so far goes to their versions before any slot changes hands.
    await this.readTraffic().catch(() => undefined);
    const slots = await this.readSlots();
    const { place, keep, drain } = planSlots(slots, wanted, this.cfg);
    // Known from the start: a traffic reading while the change runs names the new slots' version.
    for (const w of wanted) if (!this.versions.has(w.id)) this.versions.set(w.id, w.version);
    const undo: Undo[] = [];
    try {
      const placed: Placement[] = [];
      for (const p of place) placed.push(await this.prepare(p, undo));
      const all = [...placed, ...keep];
      await this.waitUp(all);
      for (const p of all) await this.enable(p, undo);
      for (const s of drain) await this.setState(s, 'drain', 'ready', undo);
      await this.confirm(all, drain);
    } catch (err) {
      await this.revert(undo);
      throw err;
    }
    for (const w of wanted) {
      this.versions.set(w.id, w.version);
      if (w.id !== w.key) this.ids.set(w.key, w.id);
    }
    if (place.length + drain.length > 0) {
      this.opts.log.info(
        {
          added: place.map((p) => `${p.want.id} in ${p.slot.name}`),
          draining: drain.map((s) => s.id),
        },
        'haproxy: routes changed',
      );
    }
    await this.saveState();
  }

  /** Puts a new target in its free slot, out of maintenance but at weight 0 and forced down. */
  private async prepare({ slot, want }: Placement, undo: Undo[]): Promise<Placement> {
    const s = this.server(slot);
    // The slot takes no request before it is enabled: maintenance again frees it.
    undo.push(() => this.runtime.command(`set server ${s} state maint`));
    const reply = await this.runtime.command(`set server ${s} addr ${want.addr} port ${want.port}`);
    if (/invalid/i.test(reply)) {
      throw new EdgeError(
        `HAProxy refused \`set server ${s} addr ${want.addr} port ${want.port}\`: ${reply}`,
      );
    }
    await this.runtime.command(`set weight ${s} 0`);
    await this.runtime.command(`set server ${s} state ready`);
    // Up only once a real check of this target passes (see the top of this file).
    if (slot.checked) await this.runtime.command(`set server ${s} health down`);
    return { slot: { ...slot, state: 'routed', weight: 0 }, want };
  }

  /** Gives a slot its weight, and takes it out of drain when it was on its way out. */
  private async enable({ slot, want }: Placement, undo: Undo[]): Promise<void> {
    const s = this.server(slot);
    if (slot.weight !== want.weight) {
      await this.runtime.command(`set weight ${s} ${want.weight}`);
      undo.push(() => this.runtime.command(`set weight ${s} ${slot.weight}`));
    }
    if (slot.state === 'draining') await this.setState(slot, 'ready', 'drain', undo);
  }

  private async setState(
    slot: Slot,
    to: 'ready' | 'drain',
    back: 'ready' | 'drain',
    undo: Undo[],
  ): Promise<void> {
    const s = this.server(slot);
    await this.runtime.command(`set server ${s} state ${to}`);
    undo.push(() => this.runtime.command(`set server ${s} state ${back}`));
  }

  /** Waits for every slot to be UP: for a new target, its first passed check. */
  private async waitUp(placements: readonly Placement[]): Promise<void> {
    const down = await this.poll(async () => {
      const now = await this.readSlots();
      const left = placements.filter((p) => now.find((s) => s.name === p.slot.name)?.opState !== OP_RUNNING);
      return left.length === 0 ? null : left;
    });
    if (!down) return;
    const stats = new Map((await this.runtime.serverStats(this.cfg.backend)).map((s) => [s.name, s]));
    const list = down.map(
      (p) => `${p.want.id} (${this.cfg.backend}/${p.slot.name}: ${checkText(stats.get(p.slot.name))})`,
    );
    throw new EdgeError(
      `HAProxy did not bring ${list.join(', ')} up within ${this.cfg.timeout}ms: its health check of the target must pass (its \`inter\` and \`rise\` decide how soon; edge.timeout bounds the wait). The previous routes still serve.`,
      { details: { down: down.map((p) => p.want.id) } },
    );
  }

  /** Reads HAProxy back until it shows exactly the change: a command said ok is not enough. */
  private async confirm(placements: readonly Placement[], drained: readonly Slot[]): Promise<void> {
    const wrong = await this.poll(async () => {
      const now = new Map((await this.readSlots()).map((s) => [s.name, s]));
      const bad = placements
        .filter(({ slot, want }) => {
          const s = now.get(slot.name);
          return (
            s?.state !== 'routed' ||
            s.key !== want.key ||
            s.weight !== want.weight ||
            s.opState !== OP_RUNNING
          );
        })
        .map((p) => p.want.id);
      bad.push(...drained.filter((d) => now.get(d.name)?.state !== 'draining').map((d) => d.id));
      return bad.length === 0 ? null : bad;
    });
    if (wrong) {
      throw new EdgeError(
        `HAProxy does not show the change for ${wrong.join(', ')} within ${this.cfg.timeout}ms: it was put back`,
      );
    }
  }

  /** Polls until `check` returns null (done); what it returned last on timeout. */
  private async poll<T>(check: () => Promise<T | null>): Promise<T | null> {
    const deadline = Date.now() + this.cfg.timeout;
    for (;;) {
      const left = await check();
      if (left === null || Date.now() >= deadline) return left;
      await sleep(POLL_MS);
    }
  }

  private async revert(undo: Undo[]): Promise<void> {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (err) {
        this.opts.log.warn({ err: messageOf(err) }, 'haproxy: could not put a server back');
      }
    }
  }

  /** Waits for nothing in flight or queued on a draining slot, then frees it (maintenance). */
  private async drainSlot(slot: Slot, deadline: number): Promise<DrainResult> {
    const started = Date.now();
    for (;;) {
      const st = (await this.runtime.serverStats(this.cfg.backend)).find((s) => s.name === slot.name);
      const inflight = (st?.scur ?? 0) + (st?.qcur ?? 0);
      if (inflight === 0) {
        await this.runtime.command(`set server ${this.server(slot)} state maint`);
        return { id: slot.id, drained: true, waitedMs: Date.now() - started, inflightLeft: 0 };
      }
      if (Date.now() >= deadline) {
        return { id: slot.id, drained: false, waitedMs: Date.now() - started, inflightLeft: inflight };
      }
      await sleep(Math.min(POLL_MS * 2, Math.max(0, deadline - Date.now())));
    }
  }

  private async readSlots(): Promise<Slot[]> {
    let servers: ServerState[];
    try {
      ({ servers } = await this.runtime.serversState(this.cfg.backend));
    } catch (err) {
      // A refusal carries HAProxy's reply ("Can't find backend."); an unreachable socket does not.
      const reply =
        err instanceof EdgeError ? (err.details as { reply?: string } | undefined)?.reply : undefined;
      if (reply !== undefined && /backend/i.test(reply)) {
        throw new EdgeError(
          `HAProxy (${this.runtime.describe}) has no backend ${this.cfg.backend}: set edge.backend to a backend of haproxy.cfg`,
          { cause: err },
        );
      }
      throw err;
    }
    return slotsOf(servers, this.names, this.ids);
  }

  /** A `-backupN` slot that is not `backup` in haproxy.cfg would serve as a primary. */
  private async checkBackupFlags(slots: readonly Slot[]): Promise<void> {
    const stats = new Map((await this.runtime.serverStats(this.cfg.backend)).map((s) => [s.name, s]));
    const wrong = slots.filter((s) => {
      const st = stats.get(s.name);
      return st !== undefined && st.backup !== s.backup;
    });
    if (wrong.length > 0) {
      throw new EdgeError(
        `backend ${this.cfg.backend}: ${wrong.map((s) => s.name).join(', ')} must ${wrong[0]!.backup ? '' : 'not '}be \`backup\` in haproxy.cfg (slots named ${this.cfg.serverPrefix}-backupN are the backup ones, ${this.cfg.serverPrefix}N the primary ones)`,
      );
    }
  }

  /** Writes `show servers state` where HAProxy loads it after a reload. */
  private async saveState(): Promise<void> {
    if (!this.stateFile) return;
    const { text } = await this.runtime.serversState(this.cfg.backend);
    try {
      writeFileAtomic(this.stateFile, text);
    } catch (err) {
      throw new EdgeError(`cannot write the HAProxy server-state file ${this.stateFile}: ${messageOf(err)}`, {
        cause: err,
      });
    }
  }

  private server(slot: Slot): string {
    return `${this.cfg.backend}/${slot.name}`;
  }
}
