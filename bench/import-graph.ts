/**
 * The folder-level import graph of src/ and its cycles (issue 13: layers import downward only). Each file
 * belongs to its first folder under src/ (`src/proxy/auth/server.ts` → `proxy`; files directly in src/ →
 * `.`, the composition root); an edge A → B means some file in A imports (statically, dynamically or for
 * types only) a file in B. A cycle is a strongly connected component of more than one folder; each is
 * printed with the file-level imports that close it.
 *
 *   npm run build && node dist/bench/import-graph.js [srcDir]     (exit code 1 when a cycle exists)
 *
 * test/layers.test.ts asserts there are none.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file-level import: `from` imports `to` (both relative to the source root). */
export interface ImportEdge {
  readonly from: string;
  readonly to: string;
}

const IMPORT = /(?:\bimport|\bexport)\s[^'";]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every relative import between files under `root`, paths relative to `root` with '/' separators. */
export function fileImports(root: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  const rel = (p: string) => relative(root, p).split(sep).join('/');
  for (const file of tsFiles(root)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (!target.startsWith(root)) continue;
      edges.push({ from: rel(file), to: rel(target) });
    }
  }
  return edges;
}

/** The folder a source file belongs to: its first path segment, or '.' for files in the root. */
export function folderOf(path: string): string {
  const i = path.indexOf('/');
  return i < 0 ? '.' : path.slice(0, i);
}

/** Folder → folders it imports (self-imports left out). */
export function folderGraph(edges: readonly ImportEdge[]): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const e of edges) {
    const a = folderOf(e.from);
    const b = folderOf(e.to);
    if (!g.has(a)) g.set(a, new Set());
    if (!g.has(b)) g.set(b, new Set());
    if (a !== b) g.get(a)!.add(b);
  }
  return g;
}

/** Strongly connected components with more than one node (Tarjan), each sorted, in a stable order. */
export function cycles(g: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** The file-level imports between folders of one cycle, e.g. for a report. */
export function edgesWithin(edges: readonly ImportEdge[], scc: readonly string[]): ImportEdge[] {
  const inside = new Set(scc);
  return edges.filter((e) => folderOf(e.from) !== folderOf(e.to) && inside.has(folderOf(e.from)) && inside.has(folderOf(e.to)));
}

/** Source files longer than `max` lines, longest first. */
export function longFiles(root: string, max: number): { file: string; lines: number }[] {
  return tsFiles(root)
    .map((f) => ({ file: relative(root, f).split(sep).join('/'), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
    .filter((f) => f.lines > max)
    .sort((a, b) => b.lines - a.lines);
}

function main(): void {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/bench/import-graph.js or bench/import-graph.ts → repository root.
  const repo = [resolve(here, '..', '..'), resolve(here, '..')].find((d) => {
    try {
      return statSync(join(d, 'src', 'sidecar.ts')).isFile();
    } catch {
      return false;
    }
  })!;
  const root = resolve(process.argv[2] ?? join(repo, 'src'));
  const edges = fileImports(root);
  const g = folderGraph(edges);
  for (const [a, bs] of [...g].sort(([x], [y]) => x.localeCompare(y))) console.log(`${a.padEnd(12)} → ${[...bs].sort().join(', ') || '(nothing)'}`);
  const found = cycles(g);
  console.log(found.length === 0 ? '\nno folder-level import cycles' : `\n${found.length} folder-level import cycle(s):`);
  for (const scc of found) {
    console.log(`  ${scc.join(' ↔ ')}`);
    for (const e of edgesWithin(edges, scc)) console.log(`    ${e.from} → ${e.to}`);
  }
  const long = longFiles(root, 350);
  if (long.length > 0) console.log(`\nfiles over 350 lines:\n${long.map((f) => `  ${f.lines} ${f.file}`).join('\n')}`);
  if (found.length > 0) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
