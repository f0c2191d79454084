// The values the sections of baton.yaml share: durations and sizes with their unit, addresses,
// IP ranges and command lines, each refused with what to write instead.
import { z } from 'zod';
import { commandWords } from '../../process/command.js';
import { parseHostPort, parseListen, type ListenAddress, type TcpAddress } from '../address.js';
import {
  DURATION_PATTERN,
  POSITIVE_DURATION_PATTERN,
  SIZE_PATTERN,
  durationRangeProblem,
  parseDuration,
  parseSize,
} from '../units.js';

/**
 * The JSON Schema of a value whose zod schema says too little to an editor (a transform's input:
 * `string | number` for a duration): src/config/json-schema.ts writes this form instead.
 */
export const editorSchemas = z.registry<{ jsonSchema: Record<string, unknown> }>();

/** A duration as an editor checks it: the text parseDuration reads (0 also as a number when allowed). */
export function durationJson(min: 0 | 1): Record<string, unknown> {
  return min === 1
    ? { type: 'string', pattern: POSITIVE_DURATION_PATTERN }
    : {
        anyOf: [
          { type: 'string', pattern: DURATION_PATTERN },
          { type: 'integer', const: 0 },
        ],
      };
}

/** Reports `message` on the value being checked; what a transform returns when it refuses it. */
export function fail(ctx: z.RefinementCtx<unknown>, message: string): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

/** Milliseconds, up to what a timer can wait; `min` 1 where 0 would turn a limit off or spin a timer. */
function durationFrom(min: 0 | 1) {
  const schema = z.union([z.string(), z.number()]).transform((v, ctx): number => {
    if (typeof v === 'number' && v !== 0) {
      return fail(ctx, `${v} has no unit: write a duration such as "${v}s" or "${v}ms"`);
    }
    const ms = typeof v === 'number' ? 0 : parseDuration(v);
    if (ms === undefined) return fail(ctx, `"${v}" is not a duration: write e.g. 500ms, 3s, 1m, 1m30s`);
    const problem = durationRangeProblem(String(v), ms, min);
    return problem === undefined ? ms : fail(ctx, problem);
  });
  return schema.register(editorSchemas, { jsonSchema: durationJson(min) });
}
export const duration = durationFrom(0);
/** A timeout or an interval: above 0, which would turn the limit off, or spin its timer. */
export const positiveDuration = durationFrom(1);

/** Bytes, at least `min`: to the proxy a size limit of 0 would mean none. */
export function sizeFrom(min: number, example: string) {
  const schema = z.union([z.string(), z.number()]).transform((v, ctx): number => {
    const n = typeof v === 'number' ? (Number.isInteger(v) ? v : undefined) : parseSize(v);
    if (n === undefined) return fail(ctx, `"${v}" is not a size: write e.g. 16k, 10m, 1g`);
    if (n >= min) return n;
    const least = min === 1 ? '1 byte' : `${min / 1024}k`;
    return fail(
      ctx,
      `"${v}" is out of range: write a size of ${least} or more, e.g. ${example} (0 would turn this limit off)`,
    );
  });
  const json = {
    anyOf: [
      { type: 'string', pattern: SIZE_PATTERN },
      { type: 'integer', minimum: min },
    ],
  };
  return schema.register(editorSchemas, { jsonSchema: json });
}

/** Refuses a command line the driver could not run without a shell (the driver's own split). */
export function splitsWithoutShell(v: string, ctx: z.RefinementCtx<string>): void {
  const words = commandWords(v);
  if (!Array.isArray(words)) ctx.addIssue({ code: 'custom', message: words.problem });
}

/** A command line run without a shell (words split like the app's command). */
export const commandLine = z
  .string()
  .trim()
  .min(1, { message: 'a command, e.g. nginx -s reload' })
  .superRefine(splitsWithoutShell);

export const listenAddress = z.string().transform((v, ctx): ListenAddress => {
  const a = parseListen(v);
  return a ?? fail(ctx, `"${v}" is not an address: write host:port (e.g. 127.0.0.1:8080) or unix:/path.sock`);
});

export const targetAddress = z.string().transform((v, ctx): TcpAddress => {
  const a = parseHostPort(v);
  return a ?? fail(ctx, `"${v}" is not a target address: write host:port, e.g. 127.0.0.1:9001`);
});

export const cidr = z.string().refine((v) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(v), {
  message: 'not an IP address or CIDR range (e.g. 10.0.0.0/8, 127.0.0.1)',
});
