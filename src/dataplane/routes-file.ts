// The route table the data plane serves, written after every change the controller pushes, so
// a data plane that restarts (crash, `baton upgrade` with no predecessor to ask, a reboot) comes
// back routing as it was, whether or not a controller runs.
import { z } from 'zod';
import type { EdgeRoutesBody } from '../api/edge.js';
import { edgeRoutesBody } from '../admin/edge-routes.js';
import { bootId } from '../drivers/local/proc.js';
import { writeFileAtomic } from '../state/atomic.js';
import { readStateFile } from '../state/read.js';

const fileSchema = edgeRoutesBody.extend({
  format: z.literal(1),
  savedAt: z.string(),
  bootId: z.string().nullable().optional(),
});

/**
 * The table saved last, or undefined: none, or saved before the machine rebooted (its ports may
 * be other processes' now; the controller routes what it starts).
 */
export function loadServedRoutes(file: string): EdgeRoutesBody | undefined {
  const saved = readStateFile(
    file,
    fileSchema,
    'fix it, or move it aside: the data plane then starts with no routes until the controller sends them',
  );
  if (!saved || (saved.bootId && bootId() && saved.bootId !== bootId())) return undefined;
  return { routes: saved.routes, split: saved.split };
}

export function saveServedRoutes(file: string, table: EdgeRoutesBody): void {
  const body = { format: 1, savedAt: new Date().toISOString(), bootId: bootId(), ...table };
  writeFileAtomic(file, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
}
