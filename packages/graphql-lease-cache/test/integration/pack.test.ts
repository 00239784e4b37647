import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// What an outside developer gets: `npm pack` (prepack builds), the tarball installed into a
// scratch directory with no network (its dependencies linked from this repository's
// node_modules), and the Apollo example compiled there against the tarball's types and run on a
// private Redis.

const run = promisify(execFile);
const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));
const ROOT_MODULES = fileURLToPath(new URL('../../../../node_modules/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  exports: Record<string, { types: string; default: string }>;
};
/** What the scratch project installs besides the package: its dependencies, the example's, and the compiler's types. */
const LINKED = [...Object.keys(manifest.dependencies), 'ioredis', 'graphql', '@apollo/server', '@types/node'];

/** The program the scratch project runs: the example's hit, mutation and new value, one JSON line each. */
const RUNNER = `import { Redis } from 'ioredis';
import { InMemorySource } from 'graphql-lease-cache/testing';
import { createApolloExample } from './apollo-server.js';
import type { Book } from './books.js';

const entries = ['graphql-lease-cache', 'graphql-lease-cache/apollo', 'graphql-lease-cache/envelop', 'graphql-lease-cache/write-behind', 'graphql-lease-cache/testing'];
for (const entry of entries) {
  const names = Object.keys(await import(entry));
  console.log(JSON.stringify({ entry, resolved: import.meta.resolve(entry), names: names.length }));
}
const redis = new Redis(process.env.REDIS_URL ?? '');
const db = new InMemorySource<Book>({ '1': { id: '1', title: 'Dune', version: 1 } });
const { server, context, cache } = createApolloExample(redis, db);
for (const [step, query] of [
  ['read', '{ book(id: "1") { title words } }'],
  ['repeat', '{ book(id: "1") { title words } }'],
  ['mutation', 'mutation { renameBook(id: "1", title: "Dune Messiah") { title words } }'],
  ['after', '{ book(id: "1") { title words } }'],
]) {
  const res = await server.executeOperation({ query }, { contextValue: await context() });
  const body = res.body.kind === 'single' ? res.body.singleResult : null;
  console.log(JSON.stringify({ step, data: body?.data, errors: body?.errors, loads: db.loads }));
}
console.log(JSON.stringify({ stats: cache.stats.snapshot() }));
cache.close();
await server.stop();
redis.disconnect();
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    types: ['node'],
    outDir: 'dist',
    rootDir: 'src',
  },
  include: ['src'],
};

let redis: TestRedis;
let scratch: string;
let installed: string;
beforeAll(async () => {
  redis = await startRedis();
  scratch = await mkdtemp(join(tmpdir(), 'lease-cache-pack-'));
  installed = join(scratch, 'node_modules', 'graphql-lease-cache');
  await mkdir(installed, { recursive: true });
  // Output of the prepack build goes to stdout too: the tarball is found by its name, not in npm's report.
  await run('npm', ['pack', '--pack-destination', scratch], { cwd: PACKAGE_DIR, maxBuffer: 16 << 20 });
  const tarball = (await readdir(scratch)).find((file) => file.endsWith('.tgz'));
  await run('tar', ['xzf', join(scratch, tarball ?? 'no tarball'), '-C', installed, '--strip-components=1']);
  for (const name of LINKED) {
    const link = join(scratch, 'node_modules', name);
    await mkdir(dirname(link), { recursive: true });
    await symlink(join(ROOT_MODULES, name), link, 'dir');
  }
  await mkdir(join(scratch, 'src'));
  for (const file of ['apollo-server.ts', 'books.ts']) await copyFile(join(PACKAGE_DIR, 'examples', file), join(scratch, 'src', file));
  await writeFile(join(scratch, 'src', 'run.ts'), RUNNER);
  await writeFile(join(scratch, 'tsconfig.json'), JSON.stringify(TSCONFIG));
  await writeFile(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
}, 180_000);
afterAll(async () => {
  await redis?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships every entry built, with its types, and nothing of the sources or tests', async () => {
    for (const [entry, target] of Object.entries(manifest.exports)) {
      expect(existsSync(join(installed, target.default)), `${entry}: ${target.default}`).toBe(true);
      expect(existsSync(join(installed, target.types)), `${entry}: ${target.types}`).toBe(true);
    }
    expect((await readdir(installed)).sort()).toEqual(['README.md', 'dist', 'package.json']);
  });

  it("has declarations whose comments point at nothing outside the package (the app's files, the repository's docs)", async () => {
    const declarations = (await readdir(join(installed, 'dist'), { recursive: true })).filter((file) => file.endsWith('.d.ts'));
    expect(declarations.length).toBeGreaterThan(0);
    const outside = declarations.flatMap((file) =>
      readFileSync(join(installed, 'dist', file), 'utf8')
        .split('\n')
        .filter((line) => /^\s*(\*|\/\/|\/\*\*)/.test(line) && /docs\/[\w-]+\.md|\bsrc\/[\w/.-]+|\.\.\/\.\.\//.test(line))
        .map((line) => `${file}: ${line.trim()}`),
    );
    expect(outside).toEqual([]);
  });

  it('runs the Apollo example from the tarball: a hit, a mutation, then the new value', async () => {
    // The example type-checks against the tarball's declarations, then runs on Node alone.
    await run(join(ROOT_MODULES, '.bin', 'tsc'), ['-p', scratch]);
    const { stdout } = await run(process.execPath, [join(scratch, 'dist', 'run.js')], {
      cwd: scratch,
      env: { ...process.env, REDIS_URL: redis.url },
    });
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const entries = lines.filter((line) => 'entry' in line);
    expect(entries.map((line) => line.entry).sort()).toEqual(
      Object.keys(manifest.exports)
        .map((key) => join('graphql-lease-cache', key))
        .sort(),
    );
    for (const line of entries) {
      // The scratch copy's built files, not this workspace's sources.
      expect(fileURLToPath(String(line.resolved))).toMatch(new RegExp(`^${installed}/dist/.*\\.js$`));
      expect(line.names).toBeGreaterThan(0);
    }
    const steps = lines.filter((line) => 'step' in line);
    expect(steps).toEqual([
      { step: 'read', data: { book: { title: 'Dune', words: 1 } }, loads: 1 },
      { step: 'repeat', data: { book: { title: 'Dune', words: 1 } }, loads: 1 },
      { step: 'mutation', data: { renameBook: { title: 'Dune Messiah', words: 2 } }, loads: 1 },
      { step: 'after', data: { book: { title: 'Dune Messiah', words: 2 } }, loads: 1 },
    ]);
    expect(lines.at(-1)).toEqual({
      stats: [
        { name: 'Book', hits: 1, misses: 1 },
        { name: 'Book.words', hits: 1, misses: 2 },
        { name: 'Response', hits: 1, misses: 2 },
      ],
    });
  }, 120_000);
});
