/**
 * Layers import downward only (docs/architecture.md "Layers and the import rules"): the folder-level import
 * graph of src/ has no cycle, and no source file grows past 350 lines. bench/import-graph.ts prints the graph.
 */
import t from 'tap';
import { cycles, edgesWithin, fileImports, folderGraph, folderOf, longFiles } from '../../bench/import-graph.js';
import { repoPath } from '../helpers/repo.js';

const src = repoPath('src');

t.test('the cycle finder finds cycles and only cycles', async (t) => {
  const g = (o: Record<string, string[]>) => new Map(Object.entries(o).map(([k, v]) => [k, new Set(v)]));
  t.strictSame(cycles(g({ a: ['b'], b: ['c'], c: [] })), []);
  t.strictSame(cycles(g({ a: ['b'], b: ['a'], c: ['a'] })), [['a', 'b']]);
  t.strictSame(cycles(g({ a: ['b'], b: ['c'], c: ['a'], d: ['e'], e: ['d'] })), [['a', 'b', 'c'], ['d', 'e']]);
  t.equal(folderOf('proxy/auth/server.ts'), 'proxy');
  t.equal(folderOf('sidecar.ts'), '.');
  const edges = [{ from: 'a/x.ts', to: 'b/y.ts' }, { from: 'b/y.ts', to: 'a/z.ts' }, { from: 'a/x.ts', to: 'a/z.ts' }];
  t.strictSame(cycles(folderGraph(edges)), [['a', 'b']]);
  t.equal(edgesWithin(edges, ['a', 'b']).length, 2);
});

t.test('src/ has no folder-level import cycle', async (t) => {
  const edges = fileImports(src);
  t.ok(edges.length > 300, `${edges.length} imports read`);
  const found = cycles(folderGraph(edges));
  const shown = found.map((scc) => `${scc.join(' ↔ ')}:\n${edgesWithin(edges, scc).map((e) => `  ${e.from} → ${e.to}`).join('\n')}`);
  t.strictSame(shown, [], 'folder-level cycles');
});

t.test('the pure layers import nothing that does I/O', async (t) => {
  const g = folderGraph(fileImports(src));
  t.strictSame([...(g.get('domain') ?? [])].filter((f) => f !== 'protocol'), [], 'domain imports only protocol (the SQLSTATE catalogue)');
  t.strictSame([...(g.get('protocol') ?? [])], [], 'protocol imports no other folder');
  t.strictSame([...(g.get('router') ?? [])].filter((f) => f !== 'domain' && f !== 'protocol'), [], 'router imports only domain and protocol');
});

t.test('the proxy and the shadow know each other only through the tap interface (proxy/shadow-tap.ts)', async (t) => {
  const g = folderGraph(fileImports(src));
  t.notOk(g.get('proxy')?.has('shadow'), 'proxy imports nothing from shadow');
  t.notOk(g.get('shadow')?.has('proxy'), 'shadow imports nothing from proxy');
});

t.test('no source file is over 350 lines', async (t) => {
  const long = longFiles(src, 350);
  t.strictSame(long, [], 'files over 350 lines');
});
