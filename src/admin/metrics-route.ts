// GET /metrics: one Prometheus text put together from several sources, each a part of Baton
// that knows its own families: the controller's deploy metrics, the built-in proxy's per-target
// ones (in this process, or fetched from the data plane's), and this process's own (process_*,
// nodejs_*), added here once when asked for. No family appears twice (see mergeMetrics). A
// source that fails is left out with a comment naming why; the others still answer, so a data
// plane that is away does not hide the deploy metrics.
import { PATHS } from '../api/paths.js';
import { messageOf } from '../errors.js';
import { processMetrics } from '../metrics/process.js';
import { mergeMetrics, METRICS_CONTENT_TYPE } from '../metrics/text.js';
import type { AdminServer } from './server.js';

/** A part of /metrics: its families as Prometheus text. */
export type MetricsSource = () => Promise<string>;

export interface MetricsRouteOptions {
  /** Add this process's process_* and nodejs_* families (one source per process has them). */
  readonly processMetrics?: boolean;
}

/** The text of every source, in order, then the process metrics when asked for. */
export async function renderMetrics(
  sources: readonly MetricsSource[],
  options: MetricsRouteOptions = {},
): Promise<string> {
  const all = [...sources, ...(options.processMetrics ? [processMetrics] : [])];
  const failed: string[] = [];
  const texts = await Promise.all(
    all.map((source) =>
      source().catch((err: unknown) => {
        failed.push(messageOf(err).replace(/\n/g, ' '));
        return '';
      }),
    ),
  );
  return mergeMetrics(texts) + failed.map((f) => `# a source of these metrics failed: ${f}\n`).join('');
}

export function registerMetricsRoute(
  admin: AdminServer,
  sources: readonly MetricsSource[],
  options: MetricsRouteOptions = {},
): void {
  admin.route('GET', PATHS.metrics, async () => ({
    text: await renderMetrics(sources, options),
    contentType: METRICS_CONTENT_TYPE,
  }));
}
