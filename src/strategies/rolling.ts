// Rolling: instances are replaced in batches bounded by maxSurge (extra instances allowed) and
// maxUnavailable (instances allowed out of rotation), Kubernetes-style. Each batch must pass
// readiness and stay healthy `minReady` before the next. A failing batch rolls the updated
// instances back to the previous version, the same way, never below n - maxUnavailable serving;
// one that fails before any new instance served starts again the old ones it took out.
import type { StrategyConfig } from '../config/schema.js';
import { BatonError, isBatonError, messageOf } from '../errors.js';
import { DeployFailure, resolveCount, type DeployContext, type Managed, type Strategy } from './strategy.js';
import { andThen } from '../util/text.js';

export const rolling: Strategy = async (ctx, config) => {
  if (config.type !== 'rolling') throw new Error('rolling strategy with another config');
  try {
    await roll(ctx, ctx.version, config);
    await ctx.switched();
  } catch (err) {
    if (!ctx.previousVersion) throw err;
    if (!ctx.live().some((m) => m.instance.record.version === ctx.version)) {
      // Nothing of the new version took traffic; but instances of the old one may have been
      // taken out to make room for the batch that failed: start them again.
      throw await restore(ctx, ctx.previousVersion, config, err);
    }
    ctx.step('rolling-back', `rolling back to ${ctx.previousVersion}: ${messageOf(err)}`);
    await roll(ctx, ctx.previousVersion, config, false);
    throw new DeployFailure(andThen(messageOf(err), `rolled back to ${ctx.previousVersion}`), true, err);
  }
};

/**
 * After a failure before any instance of the new version served: the old version back to
 * `instances` (those retired for room started again), and the error to throw, saying so.
 */
async function restore(
  ctx: DeployContext,
  version: string,
  config: Extract<StrategyConfig, { type: 'rolling' }>,
  err: unknown,
): Promise<unknown> {
  const before = ctx.live().length;
  if (before >= ctx.app.instances) return err;
  let note: string;
  try {
    ctx.step(
      'rolling-back',
      `starting ${ctx.app.instances - before} instance(s) of ${version} again: ${messageOf(err)}`,
    );
    await roll(ctx, version, config, false);
    note = `started ${ctx.live().length - before} instance(s) of ${version} again in place of those taken out to make room`;
  } catch (again) {
    note = `${version} serves on ${ctx.live().length} of ${ctx.app.instances} instance(s): starting the others again failed too (${messageOf(again)})`;
  }
  const message = andThen(messageOf(err), note);
  return isBatonError(err) && err.code !== 'BATON_E_DEPLOY_FAILED'
    ? new BatonError(err.code, message, { cause: err })
    : new DeployFailure(message, false, err);
}

async function roll(
  ctx: DeployContext,
  version: string,
  config: Extract<StrategyConfig, { type: 'rolling' }>,
  abortable = true,
): Promise<void> {
  const n = ctx.app.instances;
  let surge = resolveCount(config.maxSurge, n, true);
  const unavailable = resolveCount(config.maxUnavailable, n, false);
  if (surge === 0 && unavailable === 0) surge = 1; // as Kubernetes: both 0 would never move
  let old = ctx.live().filter((m) => m.instance.record.version !== version);
  let fresh: Managed[] = ctx.live().filter((m) => m.instance.record.version === version);
  let batchNo = 0;
  const retire = async (count: number, why: string): Promise<void> => {
    if (count <= 0) return;
    const out = old.slice(0, count);
    old = old.slice(count);
    ctx.step('draining', `${why}: draining ${out.length} instance(s) of ${out[0]!.instance.record.version}`);
    await ctx.route([...old, ...fresh]);
    await ctx.drain(out);
    ctx.step('stopping', `stopping ${out.length} drained instance(s)`);
    await ctx.stop(out);
  };
  while (fresh.length < n || old.length > 0) {
    if (abortable) ctx.checkAborted();
    const want = n - fresh.length;
    // Out of rotation first, within maxUnavailable (counted from n: a set already short, after
    // a failed batch, takes none out); then start within maxSurge.
    const serving = old.length + fresh.length;
    const removeFirst = Math.min(unavailable, old.length, want, Math.max(0, serving - (n - unavailable)));
    await retire(removeFirst, 'making room');
    // Never more than n + maxSurge running; with more live than that (instances was lowered),
    // retire the excess first so the roll always moves.
    let room = n + surge - (old.length + fresh.length);
    if (room <= 0 && want > 0) {
      await retire(Math.min(old.length, 1 - room), 'over n + maxSurge');
      room = n + surge - (old.length + fresh.length);
    }
    const count = Math.min(want, room);
    if (count > 0) {
      batchNo++;
      ctx.step(
        'batch',
        `batch ${batchNo}: starting ${count} instance(s) of ${version} (${fresh.length}/${n} done)`,
      );
      const batch = await ctx.start(count, version);
      fresh = [...fresh, ...batch];
      await ctx.route([...old, ...fresh]);
      if (config.minReady > 0) {
        ctx.step('verifying', `batch ${batchNo}: watching for ${config.minReady}ms`);
        await ctx.verify(batch, config.minReady);
      }
    }
    await retire(old.length + fresh.length - n, `batch ${batchNo} is serving`);
  }
}
