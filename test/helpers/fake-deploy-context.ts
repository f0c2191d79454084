// A fake DeployContext for the strategies' unit tests: instances are plain records, the route
// table is an array, and every call is recorded in order. Tests script failures through hooks
// (a start, a swap, a verify that throws), drive `baton promote`/pause/abort, and read back
// what was routed at each swap. It also records contract breaches a real edge would punish:
// routing a stopped instance, draining or stopping one still in the table.
import type { AppConfig } from '../../src/config/schema.js';
import type { SplitSpec, StatsSnapshot } from '../../src/edge/edge.js';
import { BatonError } from '../../src/errors.js';
import type { Verdict } from '../../src/strategies/analysis.js';
import {
  DeployAborted,
  type DeployContext,
  type DeployStep,
  type Managed,
} from '../../src/strategies/strategy.js';

/** One swap of the route table, as the edge would have it. */
export interface Swap {
  readonly table: readonly string[];
  readonly backup: readonly string[];
  readonly split: SplitSpec | null;
  /** Instances running (started, not stopped) when the swap happened. */
  readonly running: number;
}

/** Throw from a hook to make that call fail; return nothing to let it succeed. */
export interface Script {
  start?(count: number, version: string, nth: number): void;
  route?(table: readonly string[], nth: number): void;
  routeSplit?(split: SplitSpec, nth: number): void;
  verify?(ids: readonly string[], ms: number): void;
  switched?(): void;
  /** Counters of these instances; null (the default) as an edge that keeps none. */
  stats?(ids: readonly string[]): StatsSnapshot | null;
  verdict?(v: Verdict): void;
}

const byId = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });
const ids = (ms: readonly Managed[]): string[] => ms.map((m) => m.instance.record.id).sort(byId);
const list = (ms: readonly Managed[]): string => (ms.length ? ids(ms).join(' ') : '-');

export class FakeContext implements DeployContext {
  readonly service = 'web';
  /** Every call, in order, one line each ("route v2.1 v2.2 | backup v1.1"). */
  readonly calls: string[] = [];
  readonly swaps: Swap[] = [];
  readonly steps: { step: DeployStep; detail: string }[] = [];
  readonly verdicts: Verdict[] = [];
  readonly failures: string[] = [];
  /** Breaches of the DeployContext contract; a test expects none. */
  readonly violations: string[] = [];
  /** The most instances running at once. */
  peakRunning = 0;
  private current: Managed[] = [];
  private readonly running = new Set<Managed>();
  private readonly counter = new Map<string, number>();
  private aborted: Error | null = null;
  private promote: 'none' | 'step' | 'full' = 'none';
  private paused = false;
  private wake: (() => void) | null = null;
  private nth = { start: 0, route: 0, routeSplit: 0 };

  constructor(
    readonly app: AppConfig,
    readonly version: string,
    readonly previousVersion: string | null,
    live: number,
    private readonly script: Script = {},
  ) {
    if (previousVersion) this.current = this.make(live, previousVersion);
    this.peakRunning = this.running.size;
  }

  /** The route table now, sorted. */
  table(): string[] {
    return ids(this.current);
  }

  /** The moves only: start, route, split, drain, stop, verify, keep, switched, wait, fail. */
  moves(): string[] {
    return this.calls.filter((c) => !/^(step|stats|verdict|info) /.test(c));
  }

  runningIds(): string[] {
    return ids([...this.running]);
  }

  // --- what `baton abort`, `baton promote` and `baton pause` do to a running deploy ---------
  abort(by = 'test'): void {
    this.aborted = new DeployAborted(by);
    this.wake?.();
  }

  promoteNow(how: 'step' | 'full'): void {
    this.promote = how;
    this.paused = false;
    this.wake?.();
  }

  pause(paused: boolean): void {
    this.paused = paused;
    this.wake?.();
  }

  /** True while a `wait` is pending (a pause step the deploy is sitting in). */
  waiting(): boolean {
    return this.wake !== null;
  }

  // --- DeployContext -------------------------------------------------------------------------
  live(): readonly Managed[] {
    return this.current;
  }

  step(step: DeployStep, detail: string): void {
    this.calls.push(`step ${step}`);
    this.steps.push({ step, detail });
  }

  info(message: string): void {
    this.calls.push(`info ${message}`);
  }

  async switched(): Promise<void> {
    await Promise.resolve();
    this.calls.push('switched');
    this.script.switched?.();
  }

  async start(count: number, version: string, onHosts?: readonly string[]): Promise<Managed[]> {
    await Promise.resolve();
    const where = onHosts ? ` on ${onHosts.join(',')}` : '';
    try {
      this.script.start?.(count, version, ++this.nth.start);
    } catch (err) {
      // As the real one: what it started is stopped again before it throws.
      this.calls.push(`start ${count} ${version}${where} failed`);
      throw err;
    }
    const fresh = this.make(count, version);
    this.calls.push(`start ${count} ${version}${where} = ${list(fresh)}`);
    return fresh;
  }

  async route(instances: readonly Managed[], fallback: readonly Managed[] = []): Promise<void> {
    await Promise.resolve();
    const line = `route ${list(instances)}${fallback.length ? ` | backup ${list(fallback)}` : ''}`;
    try {
      this.script.route?.(ids(instances), ++this.nth.route);
    } catch (err) {
      this.calls.push(`${line} refused`);
      throw err; // the previous routes still in effect
    }
    this.calls.push(line);
    this.swap([...instances], fallback, null);
  }

  async routeSplit(stable: readonly Managed[], canary: readonly Managed[], split: SplitSpec): Promise<void> {
    await Promise.resolve();
    const rules = split.rules.length ? ` rules ${split.rules.length}` : '';
    const line = `split ${split.canaryPercent}% ${list(stable)} | canary ${list(canary)}${rules}`;
    try {
      this.script.routeSplit?.(split, ++this.nth.routeSplit);
    } catch (err) {
      this.calls.push(`${line} refused`);
      throw err;
    }
    this.calls.push(line);
    this.swap([...stable, ...canary], [], split);
  }

  async drain(instances: readonly Managed[]): Promise<void> {
    await Promise.resolve();
    this.calls.push(`drain ${list(instances)}`);
    for (const m of instances) {
      if (this.current.includes(m)) this.violations.push(`drained ${m.instance.record.id} while routed`);
    }
  }

  async stop(instances: readonly Managed[]): Promise<void> {
    await Promise.resolve();
    this.calls.push(`stop ${list(instances)}`);
    for (const m of instances) {
      if (this.current.includes(m)) this.violations.push(`stopped ${m.instance.record.id} while routed`);
      m.stopping = true;
      this.running.delete(m);
    }
  }

  async verify(instances: readonly Managed[], ms: number): Promise<void> {
    await Promise.resolve();
    this.calls.push(`verify ${list(instances)} for ${ms}`);
    this.script.verify?.(ids(instances), ms);
  }

  keepStandby(instances: readonly Managed[], ms: number): void {
    this.calls.push(`keep ${list(instances)} for ${ms}`);
  }

  checkAborted(): void {
    if (this.aborted) throw this.aborted;
  }

  stats(instances: readonly Managed[]): Promise<StatsSnapshot | null> {
    this.calls.push(`stats ${list(instances)}`);
    return Promise.resolve(this.script.stats?.(ids(instances)) ?? null);
  }

  verdict(v: Verdict): void {
    this.calls.push(`verdict ${v.result}`);
    this.verdicts.push(v);
    this.script.verdict?.(v);
  }

  fail(reason: string): void {
    this.calls.push(`fail ${reason}`);
    this.failures.push(reason);
    // As the real one: the deploy is aborted with this reason, its next wait or check throws.
    this.aborted = new BatonError('BATON_E_DEPLOY_FAILED', reason);
    this.wake?.();
  }

  /** Resolves at once (no real time passes), unless paused or waiting for `baton promote`. */
  async wait(ms: number | null): Promise<'elapsed' | 'step' | 'full'> {
    this.calls.push(`wait ${ms}`);
    for (;;) {
      if (this.aborted) throw this.aborted;
      if (this.promote !== 'none') {
        const how = this.promote;
        if (how === 'step') this.promote = 'none';
        return how;
      }
      if (!this.paused && ms !== null) return 'elapsed';
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  promotion(): 'full' | null {
    return this.promote === 'full' ? 'full' : null;
  }

  // --- internals -----------------------------------------------------------------------------
  private swap(table: Managed[], backup: readonly Managed[], split: SplitSpec | null): void {
    for (const m of [...table, ...backup]) {
      if (!this.running.has(m)) this.violations.push(`routed ${m.instance.record.id}, not running`);
    }
    this.current = table;
    this.swaps.push({
      table: ids(table),
      backup: ids(backup),
      split: split && { ...split, rules: [...split.rules] },
      running: this.running.size,
    });
  }

  private make(count: number, version: string): Managed[] {
    const made: Managed[] = [];
    for (let i = 0; i < count; i++) {
      const n = (this.counter.get(version) ?? 0) + 1;
      this.counter.set(version, n);
      const record = {
        id: `${version}.${n}`,
        version,
        host: '127.0.0.1',
        port: 9000 + this.running.size + made.length,
        pid: 0,
        logFile: '/dev/null',
        startedAt: new Date(0).toISOString(),
      };
      const m: Managed = {
        instance: {
          record,
          exited: new Promise(() => undefined),
          alive: () => !m.stopping,
          logTail: () => '',
        },
        slot: n,
        stopping: false,
      };
      made.push(m);
    }
    for (const m of made) this.running.add(m);
    this.peakRunning = Math.max(this.peakRunning, this.running.size);
    return made;
  }
}

/** Lets the deploy run (promises, immediates) until `check` holds; fails after `ms`. */
export async function until(check: () => boolean, what: string, ms = 1000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
