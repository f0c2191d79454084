// Reads baton.yaml: YAML syntax, then the schema. Every problem is reported at once, each with
// its place in the file (line:column and key path) and a hint; unknown keys get "did you mean".
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import type { z } from 'zod';
import { BatonError, messageOf } from '../errors.js';
import { configSchema, withHostCounts, type BatonConfig } from './schema.js';

/** How far aliases may expand (yaml's own default): more is refused as a resource attack. */
const MAX_ALIAS_COUNT = 100;

export interface ConfigProblem {
  /** Key path, e.g. "targets[0].weight". */
  readonly path: string;
  /** "line:column" in the file, when known. */
  readonly at?: string;
  readonly message: string;
}

export function loadConfigFile(file: string, env?: string): BatonConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(err);
    throw new BatonError(
      'BATON_E_CONFIG',
      `cannot read config ${abs}: ${why}. Pass the file with -c baton.yaml.`,
      {
        cause: err,
      },
    );
  }
  return parseConfigText(text, abs, env);
}

/**
 * Parses config text; `file` names it in errors and anchors relative paths. With `env`, the
 * file's `environments.<env>` is deep-merged over the rest first, and state lives in
 * `<stateDir>/<env>` (unless the environment sets its own stateDir).
 */
export function parseConfigText(text: string, file: string, env?: string): BatonConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number): string => {
    const p = lines.linePos(offset);
    return `${p.line}:${p.col}`;
  };
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({
      path: '',
      at: where(e.pos[0]),
      message: e.message.split('\n')[0]!,
    }));
    throw configError(file, problems);
  }
  let raw: unknown;
  try {
    // maxAliasCount (yaml's default, said here on purpose) bounds what aliases may expand to:
    // a "billion laughs" file is refused instead of filling the memory.
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    const bomb = err instanceof ReferenceError && /alias count/i.test(err.message);
    throw configError(file, [
      {
        path: '',
        message: bomb
          ? `the aliases (*name) expand to more than ${MAX_ALIAS_COUNT} copies, the shape of a "billion laughs" attack: write the values out, or use fewer aliases`
          : `cannot read the YAML: ${messageOf(err)}`,
      },
    ]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError(file, [
      { path: '', message: 'the file must be a YAML mapping (key: value lines), e.g. service: web' },
    ]);
  }
  const { environments, ...base } = raw as Record<string, unknown>;
  let merged: Record<string, unknown> = raw as Record<string, unknown>;
  let overlay: Record<string, unknown> | null = null;
  if (env !== undefined) {
    const known = isPlainObject(environments) ? Object.keys(environments) : [];
    const picked = isPlainObject(environments) ? environments[env] : undefined;
    if (!isPlainObject(picked)) {
      const guess = closest(env, known);
      throw configError(file, [
        {
          path: 'environments',
          message: known.length
            ? `no environment "${env}"${guess ? `; did you mean "${guess}"?` : ''} (the file has: ${known.join(', ')})`
            : `--env ${env} was given, but the file has no environments section`,
        },
      ]);
    }
    overlay = picked;
    merged = { ...deepMerge(base, picked), environments };
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const overlayPath = env !== undefined ? ['environments', env] : null;
    const problems = result.error.issues.flatMap((issue) =>
      describeIssue(issue, doc.contents, merged, where, overlayPath),
    );
    throw configError(file, problems);
  }
  const baseDir = file ? path.dirname(file) : process.cwd();
  const stateDir = path.resolve(baseDir, result.data.stateDir);
  return deepFreeze({
    ...withHostCounts(result.data),
    file,
    baseDir,
    environment: env ?? null,
    stateDirPath:
      env !== undefined && !(overlay && 'stateDir' in overlay) ? path.join(stateDir, env) : stateDir,
  });
}

function configError(file: string, problems: ConfigProblem[]): BatonError {
  const lines = problems.map((p) => {
    const place = [p.at ? `${path.basename(file) || 'config'}:${p.at}` : '', p.path]
      .filter(Boolean)
      .join(' ');
    return `  - ${place ? `${place}: ` : ''}${p.message}`;
  });
  const n = problems.length;
  return new BatonError(
    'BATON_E_CONFIG',
    `invalid config ${file} (${n} problem${n === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    {
      details: problems,
    },
  );
}

function describeIssue(
  issue: z.core.$ZodIssue,
  root: unknown,
  raw: unknown,
  where: (offset: number) => string,
  overlayPath: readonly string[] | null = null,
): ConfigProblem[] {
  // A key set by the selected environment is found under environments.<env> in the file.
  const locate = (p: readonly (string | number)[], wantKey: boolean): number | undefined =>
    (overlayPath ? nodeAt(root, [...overlayPath, ...p], wantKey) : undefined) ?? nodeAt(root, p, wantKey);
  const keyPath = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(keyPath);
    return issue.keys.map((key) => {
      const guess = closest(key, known);
      // In a union (strategy), a key of another branch: say so rather than "did you mean" itself.
      const hint = known.includes(key)
        ? `it does not apply to this ${String(keyPath.at(-1) ?? '')} type`
        : guess
          ? `did you mean "${guess}"?`
          : known.length
            ? `known keys: ${known.join(', ')}`
            : '';
      const node = locate([...keyPath, key], true);
      return {
        path: formatPath([...keyPath, key]),
        ...(node ? { at: where(node) } : {}),
        message: `unknown key "${key}"${hint ? `; ${hint}` : ''}`,
      };
    });
  }
  const node = locate(keyPath, false) ?? locate(keyPath.slice(0, -1), false);
  let message = issue.message;
  // Zod 4 leaves `issue.input` out by default: look the value up to tell "missing" from "wrong type".
  if (issue.code === 'invalid_type' && valueAt(raw, keyPath) === undefined) message = 'is required';
  else if (issue.code === 'invalid_value' && 'values' in issue) {
    message = `must be one of: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (issue.code === 'invalid_union' && 'options' in issue && Array.isArray(issue.options)) {
    // A discriminated union (strategy.type): name the choices, and the likely one.
    const options = (issue.options as unknown[]).map(String);
    const given = valueAt(raw, keyPath);
    const guess = typeof given === 'string' ? closest(given, options) : undefined;
    message = `must be one of: ${options.join(', ')}${guess ? `; did you mean "${guess}"?` : ''}`;
  } else if (issue.code === 'invalid_union') {
    // "A string or an object" given an object: the object branch's problems, each in its place.
    const given = valueAt(raw, keyPath);
    const branch = given !== null && typeof given === 'object' ? matchedBranch(issue) : undefined;
    if (branch) {
      return branch.flatMap((i) =>
        describeIssue({ ...i, path: [...issue.path, ...i.path] }, root, raw, where),
      );
    }
    message = unionMessage(issue) ?? message;
  }
  return [
    {
      path: formatPath(keyPath) || '(top level)',
      ...(node !== undefined ? { at: where(node) } : {}),
      message,
    },
  ];
}

/** The issues of the only union branch whose type the value has, if exactly one has it. */
function matchedBranch(issue: z.core.$ZodIssueInvalidUnion): z.core.$ZodIssue[] | undefined {
  const typed = issue.errors.filter(
    (b) => !(b.length === 1 && b[0]?.code === 'invalid_type' && b[0].path.length === 0),
  );
  return typed.length === 1 && typed[0]!.length > 0 ? typed[0] : undefined;
}

function unionMessage(issue: z.core.$ZodIssueInvalidUnion): string | undefined {
  // A union of "string or number" with a transform: the transform's message is the useful one.
  for (const branch of issue.errors) {
    const custom = branch.find((i) => i.code === 'custom');
    if (custom) return custom.message;
  }
  return undefined;
}

function valueAt(o: unknown, keyPath: readonly (string | number)[]): unknown {
  for (const k of keyPath) {
    if (o === null || typeof o !== 'object') return undefined;
    o = (o as Record<string | number, unknown>)[k];
  }
  return o;
}

function formatPath(p: readonly (string | number)[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** Offset of the node (or of its key, for `wantKey`) at a key path in the YAML tree. */
function nodeAt(root: unknown, keyPath: readonly (string | number)[], wantKey: boolean): number | undefined {
  let node = root as Node | null | undefined;
  let keyNode: Node | undefined;
  for (const k of keyPath) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === k);
      if (!pair) return undefined;
      keyNode = pair.key as Node;
      node = pair.value as Node | null;
    } else if (isSeq(node) && typeof k === 'number') {
      node = node.items[k] as Node | null;
      keyNode = undefined;
    } else return undefined;
  }
  const target = wantKey ? (keyNode ?? node) : (node ?? keyNode);
  return target?.range?.[0];
}

/** The keys the schema accepts at an object path (for "did you mean"). */
function knownKeys(keyPath: readonly (string | number)[]): string[] {
  let s: unknown = configSchema;
  for (const k of [...keyPath, null]) {
    s = unwrap(s);
    const def = (
      s as { _zod?: { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown } } }
    )._zod?.def;
    if (!def) return [];
    if (k === null) {
      if (def.type === 'object' && def.shape) return Object.keys(def.shape);
      // A union of objects (strategy): the keys of every branch.
      const options = (def as { options?: unknown[] }).options;
      if (def.type === 'union' && options) return [...new Set(options.flatMap((o) => keysOf(unwrap(o))))];
      return [];
    }
    if (def.type === 'object' && typeof k === 'string') s = def.shape?.[k];
    else if (def.type === 'array') s = def.element;
    else return [];
  }
  return [];
}

function keysOf(s: unknown): string[] {
  const shape = (s as { _zod?: { def?: { shape?: Record<string, unknown> } } })._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

function unwrap(s: unknown): unknown {
  for (let i = 0; i < 10; i++) {
    const def = (
      s as { _zod?: { def?: { type?: string; innerType?: unknown; in?: unknown; schema?: unknown } } }
    )?._zod?.def;
    if (!def) return s;
    if (
      def.type === 'default' ||
      def.type === 'optional' ||
      def.type === 'nullable' ||
      def.type === 'prefault'
    ) {
      s = def.innerType;
    } else if (def.type === 'pipe') s = def.in;
    else return s;
  }
  return s;
}

/** The known word nearest to `word`, if it is close enough to be a typo. */
export function closest(word: string, known: readonly string[]): string | undefined {
  // A start of a known word ("prod" for "production") is as good a hint as a typo.
  const start =
    word.length >= 3 ? known.find((k) => k.toLowerCase().startsWith(word.toLowerCase())) : undefined;
  if (start !== undefined) return start;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Objects merge key by key; anything else in `over` (lists included) replaces. */
export function deepMerge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
