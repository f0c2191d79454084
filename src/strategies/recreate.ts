// Recreate: stop everything, then start the new version. It has downtime by design; it is the
// baseline the zero-downtime strategies are measured against.
import { messageOf } from '../errors.js';
import { DeployFailure, startAlone, type Strategy } from './strategy.js';
import { andThen } from '../util/text.js';

export const recreate: Strategy = async (ctx) => {
  const old = [...ctx.live()];
  ctx.step('stopping', `stopping ${old.length} old instance(s): requests fail until the new ones are up`);
  await ctx.route([]);
  await ctx.drain(old);
  await ctx.stop(old);
  ctx.step('starting', `starting ${ctx.app.instances} instance(s) of ${ctx.version}`);
  try {
    await startAlone(ctx, ctx.version);
  } catch (err) {
    if (!ctx.previousVersion) throw err;
    ctx.step('rolling-back', `starting ${ctx.previousVersion} again: ${messageOf(err)}`);
    await ctx.route(await ctx.start(ctx.app.instances, ctx.previousVersion));
    throw new DeployFailure(andThen(messageOf(err), `${ctx.previousVersion} started again`), true, err);
  }
};
