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
  equals: z.string().optional().describe('Matches when the value is exactly this.'),
  prefix: z.string().optional().describe('Matches when the value starts with this.'),
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
    .optional()
    .describe('Matches when the value matches this regular expression (JavaScript syntax).'),
};
const oneOperator = (m: {
  equals?: string | undefined;
  prefix?: string | undefined;
  regex?: string | undefined;
}): boolean => [m.equals, m.prefix, m.regex].filter((v) => v !== undefined).length <= 1;

/** A/B rule: a request matching it goes to the new version. */
export const matchSchema = z.union([
  z
    .strictObject({
      header: z
        .string()
        .min(1)
        .describe('The request header compared (with one of equals, prefix, regex; none: present).'),
      ...matchValue,
    })
    .refine(oneOperator, { message: 'use one of equals, prefix or regex' }),
  z
    .strictObject({
      cookie: z
        .string()
        .min(1)
        .describe('The cookie compared (with one of equals, prefix, regex; none: present).'),
      ...matchValue,
    })
    .refine(oneOperator, { message: 'use one of equals, prefix or regex' }),
  z.strictObject({ ip: cidr.describe("The client's address is in this IP range, e.g. 10.0.0.0/8.") }),
]);

const canaryStep = z.union([
  z.strictObject({
    setWeight: z
      .number()
      .min(0)
      .max(100, { message: 'a weight is a percentage: 0 to 100' })
      .describe("The canary's share of the traffic, in %; weights only go up."),
  }),
  z.strictObject({
    pause: z
      .union([
        duration,
        z.strictObject({
          duration: duration.optional().describe('How long to wait; left out: until `baton promote`.'),
        }),
      ])
      .describe('Waits this long (30s), or with {} until `baton promote`.'),
  }),
  z.strictObject({
    setHeaderRoute: z
      .array(matchSchema)
      .min(1)
      .describe('Requests matching any of these rules always go to the canary, whatever its share.'),
  }),
]);

const condition = z
  .string()
  .regex(/^\s*(<=|>=|==|!=|<|>)\s*-?\d+(\.\d+)?\s*$/, {
    message: 'a comparison with a number, e.g. "< 0.05" or ">= 99"',
  })
  .describe('What the number must satisfy: a comparison with a number, e.g. "< 0.05" or ">= 99".');

export const analysisSchema = z.strictObject({
  interval: positiveDuration.prefault(A.interval).describe('How often the new version is checked.'),
  failureLimit: z
    .number()
    .int()
    .min(1)
    .prefault(A.failureLimit)
    .describe('Failed checks (cumulative) before the deploy is aborted and rolled back.'),
  minRequests: z
    .number()
    .int()
    .min(0)
    .prefault(A.minRequests)
    .describe('Fewer requests to the new version than this in an interval: inconclusive, not a failure.'),
  successRate: z
    .number()
    .min(0)
    .max(100, { message: 'a percentage: 0 to 100' })
    .prefault(A.successRate)
    .describe(
      "The least % of the new version's answers that are neither 5xx nor proxy errors (client aborts left out).",
    ),
  latencyP99: duration
    .optional()
    .describe("The longest the new version's 99th percentile latency may be, e.g. 500ms."),
  baseline: z
    .boolean()
    .prefault(false)
    .describe('Also fail when the new version is clearly worse than stable over the same interval.'),
  checks: z
    .array(
      z.union([
        z.strictObject({
          name: z.string().optional().describe('How messages name this check.'),
          web: z
            .strictObject({
              url: z.url().describe('The URL fetched with GET; {version} is filled in.'),
              jsonPath: z
                .string()
                .min(1)
                .describe('Where the number is in the JSON answer, e.g. errors.rate.'),
              condition,
            })
            .describe('A number read from a JSON answer.'),
        }),
        z.strictObject({
          name: z.string().optional().describe('How messages name this check.'),
          prometheus: z
            .strictObject({
              url: z.url().describe('The Prometheus server, e.g. http://127.0.0.1:9090.'),
              query: z.string().min(1).describe('An instant query (PromQL); {version} is filled in.'),
              condition,
            })
            .describe('A Prometheus instant query.'),
        }),
      ]),
    )
    .optional()
    .describe(
      'Extra checks each interval: a number from a JSON URL, or a Prometheus query; any failure counts toward failureLimit.',
    ),
});

export const stickySchema = z.union([
  z.literal('baton'),
  z.strictObject({ header: z.string().min(1).describe('The request header whose value places a client.') }),
  z.strictObject({ cookie: z.string().min(1).describe('The cookie whose value places a client.') }),
]);

export const strategySchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z
      .literal('blue-green')
      .describe(
        'The whole new set beside the old, all traffic at once; the old set kept for an instant rollback.',
      ),
    keepOld: duration
      .prefault(S.keepOld)
      .describe(
        'How long the old set keeps running after the switch (an instant `baton rollback` meanwhile).',
      ),
    verify: duration
      .prefault(S.verify)
      .describe('How long the new set must stay healthy after the switch; a failure switches straight back.'),
  }),
  z.strictObject({
    type: z.literal('rolling').describe('Instances replaced batch by batch, each batch health-gated.'),
    maxSurge: count
      .prefault(S.maxSurge)
      .describe(
        'New instances above the count during the rollout: a number (1) or a percentage ("25%"), as in Kubernetes.',
      ),
    maxUnavailable: count
      .prefault(S.maxUnavailable)
      .describe('Instances that may be out of service at once: a number (0) or a percentage ("25%").'),
    minReady: duration
      .prefault(S.minReady)
      .describe('How long a new batch must stay healthy before the next batch starts.'),
  }),
  z.strictObject({
    type: z
      .literal('recreate')
      .describe('Stop all, then start the new version: downtime by design (the baseline).'),
  }),
  z
    .strictObject({
      type: z
        .literal('canary')
        .describe(
          'A share of the traffic to the new version, raised step by step, with analysis between the steps.',
        ),
      canaryInstances: z
        .number()
        .int()
        .min(1)
        .prefault(S.canaryInstances)
        .describe('Instances of the new version during the steps (the rest start at promotion).'),
      hosts: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .describe(
          'With hosts: the hosts (by name) the canary instances run on; left out: spread like any version.',
        ),
      steps: z
        .array(canaryStep)
        .min(1, { message: 'a canary needs steps, e.g. [{ setWeight: 10 }, { pause: 30s }]' })
        .describe(
          'In order: setWeight (a %), pause (a duration, or {} until `baton promote`), setHeaderRoute (match rules).',
        ),
      analysis: analysisSchema
        .optional()
        .describe(
          "Checks of the new version through the whole canary, from the proxy's own counters; a failure rolls back.",
        ),
      sticky: stickySchema
        .prefault(S.sticky)
        .describe(
          'What keeps a client on its side: baton (a baton_canary cookie Baton sets), { header: NAME } or { cookie: NAME }.',
        ),
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
    type: z
      .literal('ab')
      .describe(
        'An A/B test: requests matching a rule go to the new version for a while, then it is promoted.',
      ),
    match: z
      .array(matchSchema)
      .min(1)
      .describe('Requests matching any rule go to the new version; everyone else stays on stable.'),
    duration: duration.describe(
      'How long the test runs before the new version is promoted (if analysis passes).',
    ),
    analysis: analysisSchema
      .optional()
      .describe('Checks of the new version while the test runs; a failure rolls back.'),
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
