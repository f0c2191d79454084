// This process's own metrics, under their standard names (process_*, nodejs_*): prom-client's
// default collectors, in a registry of their own made on first use, one per process (a second
// one would count the same process twice).
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parseFamilies } from './text.js';

let registry: Registry | null = null;

export async function processMetrics(): Promise<string> {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  // prom-client names three gauges *_total (nodejs_active_handles_total, ..._requests_total,
  // ..._resources_total), which `promtool check metrics` refuses: only counters end in _total.
  // Each is the sum of the by-type gauge beside it (nodejs_active_handles...), so they are left out.
  const kept = parseFamilies(await registry.metrics()).filter(
    (f) => !(f.type !== 'counter' && f.name.endsWith('_total')),
  );
  return kept.map((f) => `${f.lines.join('\n')}\n`).join('');
}
