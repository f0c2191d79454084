// Blue-green: the whole new set starts beside the old one, all traffic switches in one swap,
// the new set is watched for `verify`, then the old set is drained and kept `keepOld` for an
// instant rollback: switchBack, which `baton rollback` runs while the kept set still runs.
import { messageOf } from '../errors.js';
import { DeployFailure, type DeployContext, type Managed, type Strategy } from './strategy.js';
import { andThen } from '../util/text.js';

export const blueGreen: Strategy = async (ctx, config) => {
  if (config.type !== 'blue-green') throw new Error('blue-green strategy with another config');
  const old = [...ctx.live()];
  ctx.step(
    'starting',
    `starting ${ctx.app.instances} instance(s) of ${ctx.version} beside ${old.length} old`,
  );
  const fresh = await ctx.start(ctx.app.instances, ctx.version);
  ctx.checkAborted();
  ctx.step('switching', `switching all traffic to ${ctx.version}`);
  // The old set stays in the table as backup while the new one is watched: should every new
  // instance fail its health checks, requests go to the old set rather than fail.
  await ctx.route(fresh, old);
  try {
    await ctx.switched();
    if (config.verify > 0) {
      ctx.step('verifying', `watching ${ctx.version} for ${config.verify}ms before letting the old set go`);
      await ctx.verify(fresh, config.verify);
    }
    ctx.checkAborted();
  } catch (err) {
    ctx.step('rolling-back', `switching back to ${ctx.previousVersion ?? 'nothing'}: ${messageOf(err)}`);
    await ctx.route(old);
    await ctx.drain(fresh);
    await ctx.stop(fresh);
    throw new DeployFailure(
      andThen(messageOf(err), `traffic switched back to ${ctx.previousVersion}`),
      true,
      err,
    );
  }
  ctx.step('draining', `draining ${old.length} old instance(s)`);
  await ctx.route(fresh);
  await ctx.drain(old);
  if (!old.length) return;
  if (config.keepOld > 0) ctx.keepStandby(old, config.keepOld);
  else {
    ctx.step('stopping', `stopping ${old.length} drained instance(s) (keepOld 0: no instant rollback)`);
    await ctx.stop(old);
  }
};

/** The kept blue-green set takes all traffic back at once; the current set becomes the kept one. */
export async function switchBack(
  ctx: DeployContext,
  to: readonly Managed[],
  keepOldMs: number,
): Promise<void> {
  const current = [...ctx.live()];
  ctx.step('switching', `switching back to ${ctx.version}, still running: no restart`);
  await ctx.route(to);
  ctx.step('draining', `draining ${current.length} instance(s) of ${ctx.previousVersion}`);
  await ctx.drain(current);
  if (current.length) ctx.keepStandby(current, keepOldMs);
}
