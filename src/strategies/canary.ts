// Canary (and A/B, its sibling): a few instances of the new version take a growing share of
// traffic step by step (setWeight, pause, setHeaderRoute), sticky per client, with analysis
// running throughout. At the end, or on `baton promote`, the rest of the new set starts and
// takes all traffic; on a failed analysis or `baton abort`, traffic goes back to stable.
import type { MatchConfig, StrategyConfig } from '../config/schema.js';
import { messageOf } from '../errors.js';
import type { SplitSpec } from '../edge/edge.js';
import { Analysis } from './analysis.js';
import { DeployFailure, type Managed, type Strategy } from './strategy.js';
import { andThen } from '../util/text.js';

type CanaryLike = Extract<StrategyConfig, { type: 'canary' | 'ab' }>;

export const canary: Strategy = async (ctx, config) => {
  if (config.type !== 'canary' && config.type !== 'ab')
    throw new Error('canary strategy with another config');
  const plan = planOf(config);
  const stable = [...ctx.live()];
  const n = Math.min(plan.canaryInstances, ctx.app.instances);
  ctx.step(
    'starting',
    `starting ${n} canary instance(s) of ${ctx.version}${plan.hosts ? ` on ${plan.hosts.join(', ')}` : ''} beside ${stable.length} stable`,
  );
  const canaries = await ctx.start(n, ctx.version, plan.hosts);
  let rest: Managed[] = [];
  let retired: Managed[] = [];
  const split = { canaryPercent: 0, rules: [] as MatchConfig[], sticky: plan.sticky };
  // Stable as it is now: the supervisor may have replaced a crashed stable instance meanwhile.
  const stableNow = (): Managed[] => ctx.live().filter((m) => !canaries.includes(m) && !rest.includes(m));
  // Whether the new version took traffic yet: a failure before that is not a rollback.
  let served = false;
  const apply = async (): Promise<void> => {
    await ctx.routeSplit(stableNow(), canaries, { ...split });
    if (split.canaryPercent > 0 || split.rules.length > 0) served = true;
  };
  const analysis = plan.analysis
    ? new Analysis(
        plan.analysis,
        () => ctx.stats(canaries),
        () => ctx.stats(stableNow()),
        (v) => ctx.verdict(v),
        (reason) => ctx.fail(reason),
        { version: ctx.version, previousVersion: ctx.previousVersion ?? '', service: ctx.service },
      )
    : null;
  try {
    // In the try: should the edge refuse even the 0% split, the canaries are stopped below.
    await apply();
    await analysis?.start();
    for (const [i, step] of plan.steps.entries()) {
      ctx.checkAborted();
      const where = `step ${i + 1}/${plan.steps.length}`;
      if ('setWeight' in step) {
        split.canaryPercent = step.setWeight;
        ctx.step('weight', `${where}: ${step.setWeight}% of traffic to ${ctx.version}`);
        await apply();
      } else if ('setHeaderRoute' in step) {
        split.rules = step.setHeaderRoute;
        ctx.step(
          'weight',
          `${where}: requests matching ${describe(step.setHeaderRoute)} go to ${ctx.version}`,
        );
        await apply();
      } else {
        const ms = typeof step.pause === 'number' ? step.pause : (step.pause.duration ?? null);
        ctx.step(
          'paused',
          `${where}: ${ms === null ? 'paused until `baton promote`' : `watching for ${ms}ms`}`,
        );
        if ((await ctx.wait(ms)) === 'full') break;
      }
      if (ctx.promotion() === 'full') break;
    }
    analysis?.stop();
    ctx.checkAborted();
    ctx.step('promoting', `promoting ${ctx.version}: starting ${ctx.app.instances - n} more instance(s)`);
    rest = ctx.app.instances > n ? await ctx.start(ctx.app.instances - n, ctx.version) : [];
    retired = stableNow();
    served = true; // an edge may have applied a route it then reported failed
    await ctx.route([...canaries, ...rest]);
    await ctx.switched();
  } catch (err) {
    analysis?.stop();
    ctx.step('rolling-back', `all traffic back to ${ctx.previousVersion}: ${messageOf(err)}`);
    // Once promotion routed the new set alone, stable is the set it retired.
    const back = retired.length ? retired : stableNow();
    await ctx.route(back);
    const fresh = [...canaries, ...rest];
    await ctx.drain(fresh);
    await ctx.stop(fresh);
    const after = served
      ? `all traffic back on ${ctx.previousVersion}`
      : `no traffic reached ${ctx.version}; ${ctx.previousVersion} serves as before`;
    throw new DeployFailure(andThen(messageOf(err), after), served, err);
  }
  const old = retired;
  ctx.step('draining', `draining ${old.length} instance(s) of ${ctx.previousVersion}`);
  await ctx.drain(old);
  ctx.step('stopping', `stopping ${old.length} drained instance(s)`);
  await ctx.stop(old);
};

function planOf(config: CanaryLike): {
  steps: Extract<StrategyConfig, { type: 'canary' }>['steps'];
  canaryInstances: number;
  hosts?: readonly string[] | undefined;
  sticky: SplitSpec['sticky'];
  analysis: CanaryLike['analysis'];
} {
  if (config.type === 'canary') return { ...config, analysis: config.analysis };
  // A/B: the matching requests go to one instance of the new version for `duration`.
  return {
    steps: [{ setHeaderRoute: config.match }, { pause: config.duration }],
    canaryInstances: 1,
    sticky: 'baton',
    analysis: config.analysis,
  };
}

function describe(rules: readonly MatchConfig[]): string {
  return rules
    .map((r) => {
      if ('ip' in r) return `ip ${r.ip}`;
      const what = 'header' in r ? `header ${r.header}` : `cookie ${r.cookie}`;
      if (r.equals !== undefined) return `${what} = ${r.equals}`;
      if (r.prefix !== undefined) return `${what} starts with ${r.prefix}`;
      if (r.regex !== undefined) return `${what} ~ /${r.regex}/`;
      return `${what} present`;
    })
    .join(' or ');
}
