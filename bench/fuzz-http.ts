// Differential fuzz of the proxy's HTTP/1.1 parsers (src/edge/builtin/http1/) against llhttp,
// node's own parser: `npm run fuzz:http -- --cases N --seed S`. Every generated or mutated request
// or response goes through both; ours may refuse more (counted by kind), never accept what
// llhttp refuses or frame a message differently (a disagreement: printed, exit 1).
// `--bench`: heads per second for a typical ~300-byte GET head, ours vs llhttp's HTTPParser.
import { createRequire } from 'node:module';
import { DEFAULT_LIMITS, RequestHead } from '../src/edge/builtin/http1/request-head.js';
import { generate, type FuzzCase } from './http1/generate.js';
import { llhttpOutcome, type Outcome } from './http1/oracle.js';
import { compare, oursOutcome, newParsers, type Judgement } from './http1/ours.js';

export interface FuzzReport {
  cases: number;
  agreements: number;
  stricter: Map<string, number>;
  waits: Map<string, number>;
  /** All of them; `disagreements` keeps the first few. */
  disagreementCount: number;
  disagreementKinds: Map<string, number>;
  disagreements: {
    index: number;
    kind: string;
    label: string;
    bytes: string;
    llhttp: unknown;
    ours: unknown;
  }[];
  ms: number;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** One case through both parsers (ours also fed in two reads, which must not change its answer). */
export function judge(
  c: FuzzCase,
  parsers = newParsers(),
): { judgement: Judgement; theirs: unknown; ours: unknown } {
  const theirs = llhttpOutcome(c.type, c.bytes, c.headRequest);
  const whole = oursOutcome(c, parsers, false);
  const split = oursOutcome(c, parsers, true);
  // Refused either way is the same answer (the kind may differ: fewer bytes, an earlier clue).
  const same = (o: Outcome): string => JSON.stringify({ ...o, error: o.error !== null });
  if (same(whole) !== same(split)) {
    return {
      judgement: { verdict: 'disagree', kind: 'split-changes-the-answer' },
      theirs: whole,
      ours: split,
    };
  }
  return { judgement: compare(theirs, whole), theirs, ours: whole };
}

export function runFuzz(seed: number, cases: number, parsers = newParsers(), keep = 5): FuzzReport {
  const started = performance.now();
  const report: FuzzReport = {
    cases,
    agreements: 0,
    stricter: new Map(),
    waits: new Map(),
    disagreementCount: 0,
    disagreementKinds: new Map(),
    disagreements: [],
    ms: 0,
  };
  for (let i = 0; i < cases; i++) {
    const c = generate(seed, i);
    const { judgement, theirs, ours } = judge(c, parsers);
    if (judgement.verdict === 'agree') report.agreements++;
    else if (judgement.verdict === 'stricter') bump(report.stricter, judgement.kind);
    else if (judgement.verdict === 'waits') bump(report.waits, judgement.kind);
    else if ((bump(report.disagreementKinds, judgement.kind), report.disagreementCount++ < keep)) {
      report.disagreements.push({
        index: i,
        kind: judgement.kind,
        label: c.label,
        bytes: c.bytes.toString('latin1'),
        llhttp: theirs,
        ours,
      });
    }
  }
  report.ms = performance.now() - started;
  return report;
}

// --- micro-bench ---------------------------------------------------------------------------------

const TYPICAL_GET = Buffer.from(
  'GET /api/v1/items?id=42&sort=desc HTTP/1.1\r\n' +
    'Host: app.example.com\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n' +
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n' +
    'Accept-Language: en-US,en;q=0.5\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Connection: keep-alive\r\n' +
    '\r\n',
  'latin1',
);

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): unknown;
  [key: number]: unknown;
}

function bench(seconds: number): void {
  const { HTTPParser } = createRequire(import.meta.url)('_http_common') as {
    HTTPParser: {
      new (): LlhttpParser;
      REQUEST: number;
      kOnHeadersComplete: number;
      kOnMessageComplete: number;
    };
  };
  const head = new RequestHead();
  let sink = 0;
  const parser = new HTTPParser();
  parser[HTTPParser.kOnHeadersComplete] = () => 0;
  parser[HTTPParser.kOnMessageComplete] = () => undefined;
  parser.initialize(HTTPParser.REQUEST, {}, 16_384, 0);
  const variants: [name: string, one: () => void][] = [
    [
      'ours (RequestHead, reused)',
      () => {
        head.reset(0);
        sink += head.parse(TYPICAL_GET, TYPICAL_GET.length, DEFAULT_LIMITS);
      },
    ],
    [
      'ours + target and Host strings',
      () => {
        head.reset(0);
        sink += head.parse(TYPICAL_GET, TYPICAL_GET.length, DEFAULT_LIMITS);
        sink += head.target(TYPICAL_GET).length + head.value(TYPICAL_GET, head.hostField).length;
      },
    ],
    ['llhttp (node HTTPParser, reused)', () => void parser.execute(TYPICAL_GET)],
  ];
  // The machine is shared: rounds interleave the variants, and each keeps its best round.
  const rounds = 5;
  const best = variants.map(() => 0);
  for (const [, one] of variants) for (let i = 0; i < 20_000; i++) one(); // warm up
  for (let r = 0; r < rounds; r++) {
    variants.forEach(([, one], v) => {
      let n = 0;
      const started = performance.now();
      const until = started + (seconds * 1000) / rounds;
      while (performance.now() < until) {
        for (let i = 0; i < 1000; i++) one();
        n += 1000;
      }
      best[v] = Math.max(best[v]!, n / ((performance.now() - started) / 1000));
    });
  }
  console.log(
    `micro-bench: one ${TYPICAL_GET.length}-byte GET head, parsed again and again ` +
      `(best of ${rounds} rounds, ${seconds}s per variant)`,
  );
  variants.forEach(([name], v) => {
    console.log(`  ${name.padEnd(34)} ${Math.round(best[v]!).toLocaleString('en-US').padStart(12)} heads/s`);
  });
  const [ours = 0, oursStrings = 0, theirs = 1] = best;
  console.log(
    `  ours / llhttp: ${(ours / theirs).toFixed(2)}x (with strings: ${(oursStrings / theirs).toFixed(2)}x)`,
  );
  if (sink === 0.5) console.log(sink);
}

// --- command line ----------------------------------------------------------------------------------

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${name} takes a whole number, got ${process.argv[i + 1]}`);
  return n;
}

function sorted(map: Map<string, number>): string {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `    ${k.padEnd(30)} ${v}`)
    .join('\n');
}

function main(): void {
  if (process.argv.includes('--bench')) {
    bench(arg('--seconds', 3));
    return;
  }
  const cases = arg('--cases', 100_000);
  const seed = arg('--seed', 1);
  const report = runFuzz(seed, cases);
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const bad = report.disagreementCount;
  console.log(`http1 differential fuzz vs llhttp ${process.versions.llhttp} (node ${process.version})`);
  console.log(`  seed ${seed}, ${cases} cases in ${(report.ms / 1000).toFixed(1)}s`);
  console.log(`  agreements:          ${report.agreements}`);
  console.log(`  stricter refusals:   ${sum(report.stricter)} (ours refuses, llhttp accepts), by kind:`);
  console.log(sorted(report.stricter));
  console.log(
    `  ours waits for more: ${sum(report.waits)} (llhttp refused, ours accepted nothing yet), by llhttp error:`,
  );
  console.log(sorted(report.waits));
  console.log(`  disagreements:       ${bad}`);
  console.log(sorted(report.disagreementKinds));
  for (const d of report.disagreements) console.log(JSON.stringify(d));
  process.exitCode = bad === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) main();
