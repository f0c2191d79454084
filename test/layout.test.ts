// The layout rules of src/, checked from the source text alone (no build, no processes):
//
// - No file under src/ over MAX_LINES lines: a bigger one is several ideas waiting for a name.
// - No folder-level import cycle. A node is what a newcomer would call one concept:
//     src/<top>/               for most folders, its subfolders included (src/cli/commands/ is
//                              part of src/cli/, src/edge/builtin/balancers/ of src/edge/builtin/);
//     src/edge/<impl>/, src/drivers/<impl>/
//                              each implementation folder on its own (builtin, nginx, haproxy,
//                              local, ssh), since they are separate concepts behind one contract;
//     src/<file>.ts, src/edge/<file>.ts, src/drivers/<file>.ts
//                              each loose file on its own: the contracts (edge/edge.ts,
//                              drivers/driver.ts), the factory and composite edges (edge/create.ts,
//                              edge/multi.ts, edge/remote.ts), errors.ts, log.ts. A factory must
//                              import its implementations, which import the contract: putting both
//                              in one node would make a cycle by construction.
//   Edges come from `import ... from`, `export ... from`, `import '...'` and `import('...')` with
//   a relative specifier (`.js` resolved to the `.ts` beside it). Type-only imports count: they
//   show the dependency direction as much as value imports do. So do lazy `import()`s: a lazy
//   load is still a dependency.
// - src/edge/edge.ts, the edge contract, imports no implementation and nothing outside a small
//   allowed set (config types, errors, log types): like undici's dispatcher.js, it knows nothing
//   of what implements it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const MAX_LINES = 500;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONTRACT = 'src/edge/edge.ts';
/** Folders whose subfolders are each a node of their own (implementations behind a contract). */
const SPLIT_FOLDERS = new Set(['edge', 'drivers']);

/**
 * What src/edge/edge.ts may import, by repository path (a folder ends in /). `typeOnly`: only
 * with `import type` (or every name marked `type`), since the contract needs the shapes, not the
 * code. Widen this only with a reason in the comment.
 */
const CONTRACT_ALLOWED: readonly {
  readonly target: string;
  readonly typeOnly: boolean;
  readonly why: string;
}[] = [
  { target: 'src/config/', typeOnly: true, why: 'config types (health, balance...)' },
  { target: 'src/errors.ts', typeOnly: false, why: 'BatonError and its codes' },
  { target: 'src/log.ts', typeOnly: true, why: 'the Logger type' },
];

interface ImportRef {
  /** Repository path of the importing file, e.g. src/controller/controller.ts. */
  readonly from: string;
  readonly line: number;
  readonly specifier: string;
  /** Repository path of the imported .ts file; null when it is a package or node: builtin. */
  readonly to: string | null;
  /** Relative but no such file: reported, since a missed edge could hide a cycle. */
  readonly unresolved: boolean;
  readonly typeOnly: boolean;
  /** The statement as written, on one line, for messages. */
  readonly text: string;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full));
    else out.push(full);
  }
  return out;
}

const rel = (full: string): string => path.relative(ROOT, full).split(path.sep).join('/');

/** Lines as `wc -l` and editors count them. */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.length > 0 && !text.endsWith('\n') ? n + 1 : n;
}

/** The node (concept) a repository path belongs to: see the header. */
function nodeOf(file: string): string {
  const parts = file.split('/');
  const top = parts[1];
  if (parts.length <= 2 || top === undefined) return file;
  if (SPLIT_FOLDERS.has(top)) return parts.length === 3 ? file : `src/${top}/${parts[2]}/`;
  return `src/${top}/`;
}

function resolveSpecifier(from: string, specifier: string): { to: string | null; unresolved: boolean } {
  if (!specifier.startsWith('.')) return { to: null, unresolved: false };
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  const candidates = [
    target.replace(/\.js$/, '.ts'),
    target.replace(/\.js$/, '.tsx'),
    target,
    `${target}/index.ts`,
  ];
  for (const c of candidates) {
    try {
      if (statSync(path.join(ROOT, c)).isFile()) return { to: c, unresolved: false };
    } catch {
      // not this one
    }
  }
  return { to: null, unresolved: true };
}

function importsOf(file: string, text: string): ImportRef[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const refs: ImportRef[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, typeOnly: boolean): void => {
    if (!spec || !ts.isStringLiteralLike(spec)) return;
    const { to, unresolved } = resolveSpecifier(file, spec.text);
    refs.push({
      from: file,
      line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1,
      specifier: spec.text,
      to,
      unresolved,
      typeOnly,
      text: node.getText(sf).replace(/\s+/g, ' '),
    });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const typeOnly =
        c !== undefined &&
        (c.isTypeOnly ||
          (c.name === undefined &&
            c.namedBindings !== undefined &&
            ts.isNamedImports(c.namedBindings) &&
            c.namedBindings.elements.length > 0 &&
            c.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, typeOnly);
      return;
    }
    if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
      return;
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

interface SrcFile {
  readonly path: string;
  readonly lines: number;
  readonly imports: readonly ImportRef[];
}

/** Every file under src/, read once for all the checks below. */
const files: readonly SrcFile[] = walk(path.join(ROOT, 'src')).map((full) => {
  const p = rel(full);
  const text = readFileSync(full, 'utf8');
  return { path: p, lines: lineCount(text), imports: /\.tsx?$/.test(p) ? importsOf(p, text) : [] };
});

const where = (r: ImportRef): string => `${r.from}:${r.line}  ${r.text}`;

/** node -> node -> the imports that make that edge. */
function folderGraph(): Map<string, Map<string, ImportRef[]>> {
  const graph = new Map<string, Map<string, ImportRef[]>>();
  for (const f of files) {
    const a = nodeOf(f.path);
    if (!graph.has(a)) graph.set(a, new Map());
    for (const r of f.imports) {
      if (r.to === null || !r.to.startsWith('src/')) continue;
      const b = nodeOf(r.to);
      if (b === a) continue;
      const edges = graph.get(a)!;
      const list = edges.get(b) ?? [];
      list.push(r);
      edges.set(b, list);
    }
  }
  return graph;
}

/** Strongly connected components with more than one node (Tarjan). */
function cyclicComponents(graph: Map<string, Map<string, ImportRef[]>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of [...(graph.get(v)?.keys() ?? [])].sort()) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  return out;
}

/** Shortest path from `from` to `to` inside `within` (BFS), both ends included. */
function shortestPath(
  graph: Map<string, Map<string, ImportRef[]>>,
  from: string,
  to: string,
  within: Set<string>,
): string[] | null {
  const prev = new Map<string, string>([[from, from]]);
  const queue = [from];
  for (let q = queue.shift(); q !== undefined; q = queue.shift()) {
    if (q === to) {
      const p = [to];
      while (p[0] !== from) p.unshift(prev.get(p[0]!)!);
      return p;
    }
    for (const n of [...(graph.get(q)?.keys() ?? [])].sort()) {
      if (within.has(n) && !prev.has(n)) {
        prev.set(n, q);
        queue.push(n);
      }
    }
  }
  return null;
}

/**
 * A set of cycles that covers every edge inside a cyclic component: for each edge a -> b, the
 * shortest way back from b to a. Deduplicated (a cycle is the same whichever node it starts at).
 */
function cyclesOf(graph: Map<string, Map<string, ImportRef[]>>, comp: string[]): string[][] {
  const within = new Set(comp);
  const seen = new Set<string>();
  const cycles: string[][] = [];
  for (const a of comp) {
    for (const b of [...(graph.get(a)?.keys() ?? [])].sort()) {
      if (!within.has(b)) continue;
      const back = shortestPath(graph, b, a, within);
      if (!back) continue;
      const cycle = [a, ...back.slice(0, -1)];
      // Canonical rotation: start at the smallest node.
      const start = cycle.indexOf([...cycle].sort()[0]!);
      const canon = [...cycle.slice(start), ...cycle.slice(0, start)];
      const key = canon.join(' -> ');
      if (seen.has(key)) continue;
      seen.add(key);
      cycles.push(canon);
    }
  }
  return cycles.sort((x, y) => x.length - y.length || x.join().localeCompare(y.join()));
}

describe('layout of src/', () => {
  it(`no file under src/ has more than ${MAX_LINES} lines`, () => {
    const big = files.filter((f) => f.lines > MAX_LINES).sort((a, b) => b.lines - a.lines);
    assert.deepEqual(
      big.map((f) => f.path),
      [],
      `${big.length} file(s) under src/ over ${MAX_LINES} lines:\n` +
        big.map((f) => `  ${f.path}: ${f.lines} lines (${f.lines - MAX_LINES} over)`).join('\n') +
        `\nSplit each by responsibility (one idea per file, a name a newcomer can guess), as pure moves.`,
    );
  });

  it('every relative import under src/ resolves to a file (a missed edge could hide a cycle)', () => {
    const bad = files.flatMap((f) => f.imports.filter((r) => r.unresolved));
    assert.deepEqual(
      bad.map(where),
      [],
      `${bad.length} relative import(s) that name no file (write the .js of a .ts beside it):\n` +
        bad.map((r) => `  ${where(r)}`).join('\n'),
    );
  });

  it('no import cycle between folders of src/', () => {
    const graph = folderGraph();
    const components = cyclicComponents(graph);
    const cycles = components.flatMap((comp) => cyclesOf(graph, comp));
    const describeEdge = (a: string, b: string): string => {
      const refs = graph.get(a)?.get(b) ?? [];
      const first = refs[0];
      const more = refs.length > 1 ? `  (+${refs.length - 1} more import(s) ${a} -> ${b})` : '';
      return `       ${a} -> ${b}: ${first ? where(first) : '?'}${more}`;
    };
    const report = cycles.map((c, i) => {
      const ring = [...c, c[0]!];
      const edges = ring.slice(0, -1).map((a, j) => describeEdge(a, ring[j + 1]!));
      return `  ${i + 1}. ${ring.join(' -> ')}\n${edges.join('\n')}`;
    });
    // The edges most cycles go through: breaking one of them breaks all those cycles.
    const through = new Map<string, number>();
    for (const c of cycles) {
      c.forEach((a, j) => {
        const key = `${a} -> ${c[(j + 1) % c.length]!}`;
        through.set(key, (through.get(key) ?? 0) + 1);
      });
    }
    const busiest = [...through]
      .filter(([, n]) => n > 1)
      .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
      .slice(0, 5)
      .map(([e, n]) => `  ${e}: in ${n} of the cycles`);
    assert.deepEqual(
      cycles.map((c) => [...c, c[0]].join(' -> ')),
      [],
      `${cycles.length} folder-level import cycle(s) in src/ (nodes as in the header of test/layout.test.ts),\n` +
        `among ${components.map((c) => c.join(', ')).join('; and among ')}.\n` +
        `They cover every import edge inside those folders; each edge with its first import:\n` +
        report.join('\n') +
        (busiest.length > 0
          ? `\nEdges in the most cycles (breaking one breaks all its cycles):\n${busiest.join('\n')}`
          : '') +
        '\nBreak each at the edge that points the wrong way (usually the lower-level folder importing the one' +
        ' that uses it): move what it imports into the lower folder, or into a shared module both import,' +
        ' and import that instead. Type-only imports count too.',
    );
  });

  it(`${CONTRACT} (the edge contract) imports no implementation, only config types, errors and log types`, () => {
    const contract = files.find((f) => f.path === CONTRACT);
    assert.ok(contract, `${CONTRACT} is missing: the edge contract (Edge, RouteSpec...) lives there`);
    const problems: string[] = [];
    for (const r of contract.imports) {
      if (r.to !== null && r.to.startsWith('src/edge/')) {
        problems.push(
          `  ${where(r)}\n     ${r.to} is an edge implementation (or its factory): move what the contract needs from it into ${CONTRACT}, and have ${r.to} import it from there`,
        );
        continue;
      }
      const target = r.to ?? r.specifier;
      const allowed = CONTRACT_ALLOWED.find((a) =>
        a.target.endsWith('/') ? target.startsWith(a.target) : target === a.target,
      );
      if (!allowed) {
        problems.push(
          `  ${where(r)}\n     ${target} is not in the contract's allowed set (${CONTRACT_ALLOWED.map((a) => a.target).join(', ')}): move the type into ${CONTRACT}, or into one of those, or (with a reason) add it to CONTRACT_ALLOWED in test/layout.test.ts`,
        );
      } else if (allowed.typeOnly && !r.typeOnly) {
        problems.push(
          `  ${where(r)}\n     the contract may import only types from ${allowed.target}: write \`import type\``,
        );
      }
    }
    assert.deepEqual(problems, [], `${CONTRACT} imports what a contract must not:\n${problems.join('\n')}`);
  });
});
