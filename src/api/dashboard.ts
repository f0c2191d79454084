// The dashboard's wire types: what GET /v1/events pushes (Server-Sent Events: a `snapshot`
// event whenever the service or a deploy changes, `progress` for each deploy progress line) and
// the session endpoints. Built in src/dashboard/feed.ts, read by the page (src/dashboard/).
import type { HistoryEntry, ProgressEvent } from './deploy.js';
import type { EdgeKind } from '../edge/edge.js';
import type { FreezeView } from './freeze.js';
import type { StatusView } from './status.js';

/** Another environment of the same baton.yaml, and where its dashboard is (null: unknown). */
export interface EnvironmentLink {
  readonly name: string;
  readonly url: string | null;
}

/** Requests per version as the edge counts them, and their rate since the previous snapshot. */
export interface VersionTraffic {
  readonly version: string;
  readonly instances: number;
  readonly inflight: number;
  /** Answered since its instances were added; null when the edge cannot tell. */
  readonly requests: number | null;
  /** 5xx answers plus requests with no upstream answer; null when the edge does not count them. */
  readonly errors: number | null;
  /** Per second, since the previous snapshot; null for the first one. */
  readonly rate: number | null;
  readonly errorRate: number | null;
}

/** One canary step of the config, with where the deploy stands. */
export interface StepView {
  readonly index: number;
  /** `setWeight 20%`, `pause 30s`, `pause until promote`, `header route (2 rules)`. */
  readonly text: string;
  readonly state: 'done' | 'current' | 'pending';
}

/** The thresholds of a canary's analysis (the numbers a verdict is held against). */
export interface AnalysisThresholds {
  readonly successRate: number;
  readonly latencyP99Ms: number | null;
  readonly minRequests: number;
  readonly failureLimit: number;
  readonly intervalMs: number;
}

export interface DashboardSnapshot {
  readonly at: string;
  readonly service: string;
  /** The environment this daemon runs (--env), and the file's others. */
  readonly environment: { readonly name: string | null; readonly all: readonly EnvironmentLink[] };
  readonly edge: { readonly kind: EdgeKind; readonly describe: string };
  readonly status: StatusView;
  /** Null when the daemon has no deploy gate (no app). */
  readonly freeze: FreezeView | null;
  readonly traffic: readonly VersionTraffic[];
  /** The configured strategy's steps (canary), with the running deploy's position. */
  readonly steps: readonly StepView[];
  readonly analysis: AnalysisThresholds | null;
  /** The running deploy's progress so far (the last lines). */
  readonly progress: readonly ProgressEvent[];
  /** Newest first; their proofs without the time series and marks (the report has them). */
  readonly history: readonly HistoryEntry[];
  /** `baton report <id>` or a URL: how a deploy's report is reached ({id} filled in by the page). */
  readonly report: { readonly command: string; readonly url: string | null };
}

/** POST /v1/session. */
export interface SessionBody {
  readonly token: string;
}

export interface SessionAnswer {
  /** Send it in the x-baton-csrf header with every state-changing request. */
  readonly csrf: string;
  readonly expiresAt: string;
}
