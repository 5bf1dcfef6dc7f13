import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The folders of src/ depend one way (cli → services/migrator/upgrade → repositories/inspect →
 * entities): a folder that imports a folder that imports it back is a design that wants fixing,
 * so the build of the folder graph fails on any cycle.
 */
const SRC = path.resolve(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** The top-level room of a file under src/: its first folder, or the file itself (errors.ts). */
function room(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0].replace(/\.ts$/, '');
}

/** The code without its comments: a comment may name a command, advice in a string may not. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    // The package entry re-exports every room; nothing imports it.
    if (file === path.join(SRC, 'index.ts')) continue;
    const from = room(file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), match[1]);
      const to = room(target);
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('layout of src/', () => {
  it('has no import cycle between its folders', () => {
    expect(findCycle(folderGraph())).toBeUndefined();
  });

  it('finds a cycle when one exists (the check itself works)', () => {
    const graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
    ]);
    expect(findCycle(graph)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('keeps the migration runner from importing migration classes', () => {
    const runner = sourceFiles(path.join(SRC, 'migrator'))
      .map((file) => readFileSync(file, 'utf8'))
      .join('\n');
    expect(runner).not.toMatch(/from '\.\.\/migrations\/\d+-/);
  });

  it('keeps operator advice out of the library: command names live in src/cli/', () => {
    // Migrations are the exception: plain `typeorm migration:revert` runs them without this CLI,
    // so their own refusals must name the command that works.
    const library = sourceFiles(SRC).filter((file) => !['cli', 'migrations'].includes(room(file)));
    const offenders = library.filter((file) =>
      /`(npx )?pixcrawler-db \w/.test(withoutComments(readFileSync(file, 'utf8'))),
    );
    expect(offenders.map((file) => path.relative(SRC, file))).toEqual([]);
  });
});
