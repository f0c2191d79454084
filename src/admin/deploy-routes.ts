// Admin endpoints of the deploy controller. Deploy and rollback stream their progress as
// NDJSON until the end; a client that goes away does not stop the deploy (`abort` does).
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type {
  AbortAnswer,
  AbortBody,
  DeployBody,
  HistoryAnswer,
  PauseAnswer,
  ProgressEvent,
  PromoteAnswer,
  PromoteBody,
  ResumeAnswer,
  RollbackBody,
} from '../api/deploy.js';
import { SINCE_HELP, sinceTime, type LogsAnswer } from '../api/logs.js';
import { PATHS } from '../api/paths.js';
import type { StatusView } from '../api/status.js';
import type { Controller } from '../controller/controller.js';
import { BatonError } from '../errors.js';
import type { AdminServer } from './server.js';

const deployBody = z.strictObject({
  version: z.string().min(1),
  strategy: z.enum(['blue-green', 'rolling', 'recreate', 'canary', 'ab']).optional(),
  actor: z.string().max(200).optional(),
  force: z.boolean().optional(),
}) satisfies z.ZodType<DeployBody>;
const rollbackBody = z.strictObject({
  to: z.string().min(1).optional(),
  actor: z.string().max(200).optional(),
}) satisfies z.ZodType<RollbackBody>;
const promoteBody = z.strictObject({
  full: z.boolean().optional(),
  step: z.boolean().optional(),
  actor: z.string().max(200).optional(),
}) satisfies z.ZodType<PromoteBody>;
/** Whether a promote body asks for 100% now (default: the next step); contradicting itself: null. */
function promotesFull(body: PromoteBody): boolean | null {
  if (body.full !== undefined && body.step !== undefined && body.full === body.step) return null;
  return body.full ?? (body.step === undefined ? false : !body.step);
}
const abortBody = z.strictObject({ actor: z.string().max(200).optional() }) satisfies z.ZodType<AbortBody>;

type Running = ReturnType<Controller['deploy']>;

/** Streams a deployment's events (those so far, then live) until its 'done' event. */
async function follow(running: Running, res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
  const write = (e: ProgressEvent): void => {
    if (!res.destroyed) res.write(`${JSON.stringify(e)}\n`);
  };
  for (const e of running.events) write(e);
  running.listeners.add(write);
  res.on('close', () => running.listeners.delete(write));
  await running.done;
  running.listeners.delete(write);
  res.end();
}

export function registerDeployRoutes(
  admin: AdminServer,
  controller: Controller,
  recovered: Promise<void>,
): void {
  admin.stream('POST', PATHS.deploy, async (r, res) => {
    const body = await r.body(deployBody);
    await recovered;
    await follow(controller.deploy(body), res);
  });

  admin.stream('POST', PATHS.rollback, async (r, res) => {
    const body = await r.body(rollbackBody);
    await recovered;
    await follow(controller.rollback(body.to, body.actor ?? 'unknown'), res);
  });

  admin.stream('GET', PATHS.deployCurrent, async (_r, res) => {
    const running = controller.current();
    if (!running) throw new BatonError('BATON_E_NOT_FOUND', 'no deploy is running');
    await follow(running, res);
  });

  admin.route<AbortAnswer>('POST', PATHS.abort, async (r) => {
    const body = await r.body(abortBody);
    const d = controller.abort(body.actor ?? 'unknown');
    return { json: { aborting: d.id, version: d.version } };
  });

  admin.route<PromoteAnswer>('POST', PATHS.promote, async (r) => {
    const body = await r.body(promoteBody);
    const full = promotesFull(body);
    if (full === null) {
      throw new BatonError(
        'BATON_E_BAD_REQUEST',
        `promote body says both full: ${body.full} and step: ${body.step}; send { full: true } for 100% now, or {} for the next step`,
      );
    }
    const d = controller.promote(!full);
    return { json: { promoting: d.id, version: d.version, full, step: !full } };
  });

  admin.route<PauseAnswer>('POST', PATHS.pause, () => {
    const d = controller.pause(true);
    return { json: { paused: d.id, version: d.version } };
  });

  admin.route<ResumeAnswer>('POST', PATHS.resume, () => {
    const d = controller.pause(false);
    return { json: { resumed: d.id, version: d.version } };
  });

  admin.route<StatusView>('GET', PATHS.status, async () => ({ json: await controller.status() }));

  admin.route<LogsAnswer>('GET', PATHS.logs, async (r) => {
    const lines = Number(r.url.searchParams.get('lines') ?? 50);
    if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
      throw new BatonError(
        'BATON_E_BAD_REQUEST',
        `lines must be a whole number from 1 to 10000, not ${r.url.searchParams.get('lines')}`,
      );
    }
    const select = r.url.searchParams.get('select') ?? undefined;
    const sinceText = r.url.searchParams.get('since');
    if (sinceText === null) return { json: { logs: await controller.logs(select, lines) } };
    const since = sinceTime(sinceText, Date.now());
    if (since === undefined) {
      throw new BatonError('BATON_E_BAD_REQUEST', `since must be ${SINCE_HELP}, not "${sinceText}"`);
    }
    return { json: { logs: await controller.logs(select, lines, since) } };
  });
  admin.route<HistoryAnswer>('GET', PATHS.history, (r) => {
    const limit = Number(r.url.searchParams.get('limit') ?? 20);
    return { json: { history: controller.history(Number.isFinite(limit) && limit > 0 ? limit : 20) } };
  });
}
