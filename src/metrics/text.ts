// The Prometheus text exposition format, as /metrics writes and puts together: a family of
// samples with its HELP and TYPE lines, label values escaped, and the merge of several texts
// (the controller's, the data plane's) into one where no family appears twice.

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

/** One metric family: its name, type and every line of it (HELP, TYPE, samples), in order. */
export interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly lines: readonly string[];
}

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `a="x",b="y"` from { a: 'x', b: 'y' }, escaped. */
export function labelsText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
}

/** Writes families: `family()` starts one (HELP, TYPE), `sample()` adds to it. */
export class FamilyWriter {
  private readonly lines: string[] = [];

  family(name: string, type: MetricType, help: string): void {
    this.lines.push(
      `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`,
      `# TYPE ${name} ${type}`,
    );
  }

  /** `name{labels} value`; `labels` is already text (see labelsText). */
  sample(name: string, labels: string, value: number): void {
    this.lines.push(`${name}${labels ? `{${labels}}` : ''} ${formatValue(value)}`);
  }

  text(): string {
    return this.lines.length ? `${this.lines.join('\n')}\n` : '';
  }
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const META = /^# (HELP|TYPE) (\S+)(?: (.*))?$/;

/**
 * The families of a text, in order. A family starts at its HELP or TYPE line; samples belong to
 * the family before them. Samples with no HELP or TYPE before them form an untyped family of
 * their own name. Other comments go with the family they are in.
 */
export function parseFamilies(text: string): Family[] {
  const out: { name: string; type: MetricType; lines: string[] }[] = [];
  let current: (typeof out)[number] | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = META.exec(line);
    if (meta) {
      const name = meta[2]!;
      if (current?.name !== name) {
        current = { name, type: 'untyped', lines: [] };
        out.push(current);
      }
      if (meta[1] === 'TYPE') current.type = (meta[3] ?? 'untyped') as MetricType;
      current.lines.push(line);
      continue;
    }
    if (!current && !line.startsWith('#')) {
      current = { name: /^[^{\s]+/.exec(line)![0], type: 'untyped', lines: [] };
      out.push(current);
    }
    if (current) current.lines.push(line);
  }
  return out;
}

/**
 * Several texts as one. A family already given by an earlier text is left out of a later one:
 * the same family twice (process metrics of two processes, say) would make Prometheus refuse
 * the whole scrape.
 */
export function mergeMetrics(texts: readonly string[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const text of texts) {
    for (const f of parseFamilies(text)) {
      if (seen.has(f.name)) continue;
      seen.add(f.name);
      lines.push(...f.lines);
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
