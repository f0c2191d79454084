// Admin endpoints of deploy freezes and windows: GET /v1/freeze (the freeze and the windows
// right now), POST /v1/freeze (freeze, with a reason), DELETE /v1/freeze (unfreeze).
import { z } from 'zod';
import type { FreezeAnswer, FreezeBody, FreezeView, UnfreezeAnswer, UnfreezeBody } from '../api/freeze.js';
import { PATHS } from '../api/paths.js';
import type { DeployGate } from '../controller/gate.js';
import type { Logger } from '../log.js';
import type { AdminServer } from './server.js';

const freezeBody = z.strictObject({
  reason: z.string().trim().min(1, { message: 'say why deploys are frozen' }).max(500),
  actor: z.string().max(200).optional(),
}) satisfies z.ZodType<FreezeBody>;
const unfreezeBody = z.strictObject({
  actor: z.string().max(200).optional(),
}) satisfies z.ZodType<UnfreezeBody>;

export function registerFreezeRoutes(admin: AdminServer, gate: DeployGate, log: Logger): void {
  admin.route<FreezeView>('GET', PATHS.freeze, () => ({ json: gate.state() }));

  admin.route<FreezeAnswer>('POST', PATHS.freeze, async (r) => {
    const body = await r.body(freezeBody);
    const actor = body.actor ?? 'unknown';
    const { freeze, replaced } = gate.freezes.freeze(body.reason, actor);
    log.warn({ reason: freeze.reason, actor, replaced }, 'deploys frozen');
    return { json: { freeze, replaced } };
  });

  admin.route<UnfreezeAnswer>('DELETE', PATHS.freeze, async (r) => {
    const body = await r.body(unfreezeBody);
    const lifted = gate.freezes.unfreeze();
    if (lifted) log.info({ actor: body.actor ?? 'unknown', lifted }, 'deploys unfrozen');
    // And whether the deploy windows let a deploy run now.
    return { json: { unfrozen: lifted, window: gate.state().window } };
  });
}
