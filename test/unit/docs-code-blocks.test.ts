import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Docs that run: every `ts` (or `typescript`) code block in the markdown is compiled under strict
 * TypeScript, as an application on the published package would compile it, so a snippet that
 * stops compiling (a renamed export, a changed option) fails here instead of misleading a reader.
 *
 * All blocks compile in one program, each as a module of its own, importing the package by its
 * public names (mapped to the sources, as package.json `exports` publishes them). The blocks live
 * in test/fixtures/docs-app/src, beside the few files of the application the docs import (its
 * own entity and migration). A block that starts with `// continues the block above` is compiled
 * after the previous block of its file; prefer blocks that stand alone.
 */
const ROOT = path.resolve(__dirname, '../..');
const APP = path.join(ROOT, 'test/fixtures/docs-app/src');
const TS_LANGUAGES = new Set(['ts', 'typescript']);
const CONTINUES = '// continues the block above';

interface CodeBlock {
  /** The markdown file, relative to the repository root. */
  file: string;
  /** 1-based: the nth ts block of its file. */
  index: number;
  /** The markdown line of the block's first line of code. */
  line: number;
  code: string;
}

/** The `ts`/`typescript` fenced blocks of a markdown text, with where each starts. */
function codeBlocks(markdown: string, file: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, language] = open;
    const close = new RegExp(`^ *${fence[0]}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end])) end++;
    if (TS_LANGUAGES.has(language.toLowerCase())) {
      // Inside a list item the fence is indented; so is every line of its code.
      const code = lines
        .slice(i + 1, end)
        .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()))
        .join('\n');
      blocks.push({ file, index: blocks.length + 1, line: i + 2, code });
    }
    i = end;
  }
  return blocks;
}

/** README.md, CONTRIBUTING.md, docs/ and the examples' markdown. */
function markdownFiles(): string[] {
  const under = (dir: string): string[] =>
    readdirSync(path.join(ROOT, dir)).flatMap((name) => {
      const relative = `${dir}/${name}`;
      if (statSync(path.join(ROOT, relative)).isDirectory()) return under(relative);
      return name.endsWith('.md') ? [relative] : [];
    });
  return ['README.md', 'CONTRIBUTING.md', ...under('docs'), ...under('examples')];
}

function docsBlocks(): CodeBlock[] {
  return markdownFiles().flatMap((file) =>
    codeBlocks(readFileSync(path.join(ROOT, file), 'utf8'), file),
  );
}

/**
 * `@pixcrawler/data/<entry>` → its source, from package.json `exports`: each entry's types
 * (`./dist/src/index.d.ts`) name the source file they are compiled from (`./src/index.ts`).
 */
function entryPoints(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, string | { types: string }>;
  };
  const paths: Record<string, string[]> = {};
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    const source = target.types.replace(/^\.\/dist\//, './').replace(/\.d\.ts$/, '.ts');
    if (!existsSync(path.join(ROOT, source))) {
      throw new Error(`package.json exports ${entry}: no source ${source} for ${target.types}`);
    }
    paths[path.posix.join(pkg.name, entry)] = [source];
  }
  return paths;
}

/** The repository's compiler options, strict, for an application compiled to CommonJS. */
function compilerOptions(): ts.CompilerOptions {
  const configFile = path.join(ROOT, 'tsconfig.json');
  const { config } = ts.readConfigFile(configFile, ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, configFile);
  return {
    ...options,
    strict: true,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    // Every block is a module of its own, even one without an import, so blocks may reuse names.
    moduleDetection: ts.ModuleDetectionKind.Force,
    // The globals an application's code and its jest tests have; no other @types package.
    types: ['node', 'jest'],
    paths: entryPoints(),
  };
}

/** Library and source files parsed once, shared by every program the tests build. */
const parsed = new Map<string, ts.SourceFile>();

/**
 * Compiles the blocks in one program and returns every problem as
 * `docs/library.md:123 (block 4): TS2304: Cannot find name 'x'.`, with the markdown line.
 */
function compile(blocks: CodeBlock[]): string[] {
  const options = compilerOptions();
  const files = new Map<string, { text: string; lines: { block: CodeBlock; line: number }[] }>();
  blocks.forEach((block, n) => {
    const parts = [block];
    for (let k = n; parts[0].code.trimStart().startsWith(CONTINUES); k--) {
      const previous = blocks[k - 1];
      if (previous?.file !== block.file) {
        throw new Error(`${block.file}:${block.line} continues a block, but none is above it`);
      }
      parts.unshift(previous);
    }
    const name = `${block.file.replace(/[/.]/g, '-')}-block-${block.index}.ts`;
    files.set(path.join(APP, name), {
      text: parts.map((part) => part.code).join('\n'),
      lines: parts.flatMap((part) =>
        part.code.split('\n').map((_, i) => ({ block: part, line: part.line + i })),
      ),
    });
  });

  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (file) => files.has(file) || fileExists.call(host, file);
  host.readFile = (file) => files.get(file)?.text ?? readFile.call(host, file);
  host.getSourceFile = (file, language, ...rest) => {
    const block = files.get(file);
    if (block) return ts.createSourceFile(file, block.text, language);
    let source = parsed.get(file);
    if (!source) {
      source = getSourceFile.call(host, file, language, ...rest);
      if (source) parsed.set(file, source);
    }
    return source;
  };
  const program = ts.createProgram([...files.keys()], options, host);

  const problems = new Set(
    [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map(
      (d) => `compiler: ${message(d)}`,
    ),
  );
  // A block that others continue is compiled with each of them: its errors are named once.
  for (const [file, { lines }] of files) {
    const source = program.getSourceFile(file)!;
    const diagnostics = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ];
    for (const d of diagnostics) {
      const at = lines[source.getLineAndCharacterOfPosition(d.start ?? 0).line];
      problems.add(`${at.block.file}:${at.line} (block ${at.block.index}): ${message(d)}`);
    }
  }
  return [...problems];
}

const message = (d: ts.Diagnostic) =>
  `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n  ')}`;

describe('code blocks in the docs', () => {
  it('every ts block compiles under strict TypeScript against the package', () => {
    expect(compile(docsBlocks())).toEqual([]);
  });

  it('finds the blocks: the one under "## Configure" in docs/library.md, and all the others', () => {
    const blocks = docsBlocks();
    const count = (file: string) => blocks.filter((b) => b.file === file).length;
    expect(count('README.md')).toBeGreaterThanOrEqual(1);
    expect(count('docs/library.md')).toBeGreaterThanOrEqual(11);

    const library = readFileSync(path.join(ROOT, 'docs/library.md'), 'utf8').split('\n');
    const heading = library.indexOf('## Configure') + 1;
    const configure = blocks.find((b) => b.file === 'docs/library.md' && b.line > heading);
    expect(configure?.code).toContain('dataSourceOptions({ url: process.env.DATABASE_URL');
  });

  it('reads fences as markdown does: indented, ~~~, longer fences, other languages skipped', () => {
    const markdown = [
      '# Title', // 1
      '```sh', // 2
      'npm test', // 3
      '```', // 4
      '- a list item:', // 5
      '', // 6
      '  ```ts', // 7
      '  const a = 1;', // 8
      '    const b = 2;', // 9
      '  ```', // 10
      '````typescript title', // 11
      '```', // 12
      '````', // 13
      '~~~TS', // 14
      'const c = 3;', // 15
      '~~~', // 16
    ].join('\n');
    expect(codeBlocks(markdown, 'x.md')).toEqual([
      { file: 'x.md', index: 1, line: 8, code: 'const a = 1;\n  const b = 2;' },
      { file: 'x.md', index: 2, line: 12, code: '```' },
      { file: 'x.md', index: 3, line: 15, code: 'const c = 3;' },
    ]);
  });

  it('names the markdown line and block of each error, and joins a block that continues one', () => {
    const markdown = [
      '```ts', // 1
      "import { dataSourceOptions } from '@pixcrawler/data';", // 2
      'const options = dataSourceOptions({});', // 3
      '```', // 4
      '```ts', // 5
      CONTINUES, // 6
      'const url: number = options.url;', // 7
      '```', // 8
      '```ts', // 9
      'const fine = 1;', // 10
      'options.extra;', // 11
      '```', // 12
    ].join('\n');
    const problems = compile(codeBlocks(markdown, 'x.md'));
    expect(problems).toEqual([
      expect.stringMatching(/^x\.md:7 \(block 2\): TS2322: Type 'string \| undefined'/),
      "x.md:11 (block 3): TS2304: Cannot find name 'options'.",
    ]);
  });
});
