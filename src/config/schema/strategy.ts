// The strategy: section of baton.yaml: how a new version replaces the old one (blue-green,
// rolling, recreate, canary, ab), with the canary's steps and analysis and the A/B test's rules.
// STRATEGY_TYPES, the one list of strategies, is read off the union below.
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { cidr, duration, positiveDuration } from './values.js';

const S = DEFAULTS.strategy;
const A = DEFAULTS.analysis;

const count = z.union([
  z.number().int().min(0),
  z.string().regex(/^\d{1,3}%$/, { message: 'a count (1) or a percentage ("25%")' }),
]);

const matchValue = {
  equals: z.string().optional(),
  prefix: z.string().optional(),
  regex: z
    .string()
    .refine(
      (r) => {
        try {
          new RegExp(r);
          return true;
        } catch {
          return false;
        }
      },
      { message: 'not a valid regular expression' },
    )
    .optional(),
};
const oneOperator = (m: {
  equals?: string | undefined;
  prefix?: string | undefined;
  regex?: string | undefined;
}): boolean => [m.equals, m.prefix, m.regex].filter((v) => v !== undefined).length <= 1;

/** A/B rule: a request matching it goes to the new version. */
export const matchSchema = z.union([
  z.strictObject({ header: z.string().min(1), ...matchValue }).refine(oneOperator, {
    message: 'use one of equals, prefix or regex',
  }),
  z.strictObject({ cookie: z.string().min(1), ...matchValue }).refine(oneOperator, {
    message: 'use one of equals, prefix or regex',
  }),
  z.strictObject({ ip: cidr }),
]);

const canaryStep = z.union([
  z.strictObject({
    setWeight: z.number().min(0).max(100, { message: 'a weight is a percentage: 0 to 100' }),
  }),
  z.strictObject({
    /** A duration, or {} to wait for `baton promote`. */
    pause: z.union([duration, z.strictObject({ duration: duration.optional() })]),
  }),
  z.strictObject({ setHeaderRoute: z.array(matchSchema).min(1) }),
]);

const condition = z.string().regex(/^\s*(<=|>=|==|!=|<|>)\s*-?\d+(\.\d+)?\s*$/, {
  message: 'a comparison with a number, e.g. "< 0.05" or ">= 99"',
});

export const analysisSchema = z.strictObject({
  interval: positiveDuration.prefault(A.interval),
  /** Failed checks (cumulative) before the canary is aborted. */
  failureLimit: z.number().int().min(1).prefault(A.failureLimit),
  /** Fewer canary requests than this in an interval: inconclusive, not a failure. */
  minRequests: z.number().int().min(0).prefault(A.minRequests),
  /** % of canary answers that are neither 5xx nor proxy errors. */
  successRate: z.number().min(0).max(100, { message: 'a percentage: 0 to 100' }).prefault(A.successRate),
  latencyP99: duration.optional(),
  /** Also fail when the canary is clearly worse than stable over the same interval. */
  baseline: z.boolean().prefault(false),
  /** Extra checks each interval: a JSON value from a URL, or a Prometheus instant query. */
  checks: z
    .array(
      z.union([
        z.strictObject({
          name: z.string().optional(),
          web: z.strictObject({ url: z.url(), jsonPath: z.string().min(1), condition }),
        }),
        z.strictObject({
          name: z.string().optional(),
          prometheus: z.strictObject({ url: z.url(), query: z.string().min(1), condition }),
        }),
      ]),
    )
    .optional(),
});

export const stickySchema = z.union([
  z.literal('baton'),
  z.strictObject({ header: z.string().min(1) }),
  z.strictObject({ cookie: z.string().min(1) }),
]);

export const strategySchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('blue-green'),
    /** How long the old set keeps running after the switch (instant rollback meanwhile). */
    keepOld: duration.prefault(S.keepOld),
    /** How long the new set must stay healthy after the switch before the old set is let go. */
    verify: duration.prefault(S.verify),
  }),
  z.strictObject({
    type: z.literal('rolling'),
    maxSurge: count.prefault(S.maxSurge),
    maxUnavailable: count.prefault(S.maxUnavailable),
    /** How long a new batch must stay healthy before the next batch starts. */
    minReady: duration.prefault(S.minReady),
  }),
  z.strictObject({ type: z.literal('recreate') }),
  z
    .strictObject({
      type: z.literal('canary'),
      /** Instances of the new version during the canary steps (the rest start at promotion). */
      canaryInstances: z.number().int().min(1).prefault(S.canaryInstances),
      /** With hosts: the hosts (by name) the canary instances run on; none: spread like any version. */
      hosts: z.array(z.string().min(1)).min(1).optional(),
      steps: z
        .array(canaryStep)
        .min(1, { message: 'a canary needs steps, e.g. [{ setWeight: 10 }, { pause: 30s }]' }),
      analysis: analysisSchema.optional(),
      sticky: stickySchema.prefault(S.sticky),
    })
    .superRefine((c, ctx) => {
      let last = -1;
      c.steps.forEach((step, i) => {
        if ('setWeight' in step) {
          if (step.setWeight < last) {
            ctx.addIssue({
              code: 'custom',
              path: ['steps', i, 'setWeight'],
              message: `weights only go up (${step.setWeight} after ${last}): a sticky client must never flip back`,
            });
          }
          last = step.setWeight;
        }
      });
    }),
  z.strictObject({
    type: z.literal('ab'),
    /** Requests matching any rule go to the new version; everyone else stays on stable. */
    match: z.array(matchSchema).min(1),
    /** How long the test runs before the new version is promoted (if analysis passes). */
    duration: duration,
    analysis: analysisSchema.optional(),
  }),
]);

export type StrategyConfig = z.output<typeof strategySchema>;
export type StrategyType = StrategyConfig['type'];
export type CanaryConfig = Extract<StrategyConfig, { type: 'canary' }>;
export type AnalysisConfig = z.output<typeof analysisSchema>;
export type MatchConfig = z.output<typeof matchSchema>;

/**
 * Every strategy, in the order of the union above: what `strategy.type`, `baton deploy
 * --strategy` and POST /v1/deploy accept, and the keys of anything kept per strategy.
 */
export const STRATEGY_TYPES: readonly StrategyType[] = Object.freeze(
  strategySchema.options.map((o) => o.shape.type.value),
);

/**
 * `strategy: { type }` with every default filled in (what a `--strategy` other than the
 * config's runs with); undefined for a type that needs keys of its own (canary's steps, ab's
 * match and duration).
 */
export function defaultStrategyConfig(type: StrategyType): StrategyConfig | undefined {
  const parsed = strategySchema.safeParse({ type });
  return parsed.success ? parsed.data : undefined;
}
