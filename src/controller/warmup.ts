// Warm-up (`app.warmup`): requests straight to a new instance before it takes traffic, so its
// first users do not pay for cold caches and lazy start-up.
import { request } from 'undici';
import type { BatonConfig } from '../config/schema.js';
import type { Instance } from '../drivers/driver.js';
import { origin } from './readiness.js';

/** Warm-up: `count` requests over `paths`, `concurrency` at a time, straight to the instance. */
export async function warmUp(
  instance: Instance,
  w: NonNullable<NonNullable<BatonConfig['app']>['warmup']>,
  signal: AbortSignal,
): Promise<string> {
  const t0 = Date.now();
  let sent = 0;
  let ok = 0;
  const failures = new Map<string, number>();
  const worker = async (): Promise<void> => {
    while (sent < w.count && !signal.aborted) {
      const path = w.paths[sent++ % w.paths.length]!;
      try {
        const res = await request(origin(instance) + path, {
          headers: { 'user-agent': 'baton-warmup' },
          signal: AbortSignal.timeout(w.timeout),
        });
        await res.body.dump();
        if (res.statusCode < 500) ok++;
        else failures.set(`${res.statusCode}`, (failures.get(`${res.statusCode}`) ?? 0) + 1);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
        failures.set(code, (failures.get(code) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: w.concurrency }, worker));
  const bad = [...failures].map(([k, n]) => `${n}x ${k}`).join(', ');
  return `warm-up of ${instance.record.id}: ${ok}/${sent} requests ok in ${Date.now() - t0}ms${bad ? ` (failed: ${bad})` : ''}`;
}
