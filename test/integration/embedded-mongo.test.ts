import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedMongo } from '../../src/dev/embedded-mongo.js';

/** A logger that keeps each line (message and fields), in the order logged. */
function recordingLogger() {
  const lines: { msg: string; bin?: string; from?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  return { logger, lines, messages: () => lines.map((l) => l.msg) };
}

/** Runs `fn` with these environment variables set, then restores them. */
async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** Starts the embedded FerretDB as `npm start` would (prefer ferretdb), returns what it logged, and stops it. */
async function startFerretdb(ferretdbBin?: string) {
  const log = recordingLogger();
  const mongo = await startEmbeddedMongo({ logger: log.logger, prefer: 'ferretdb', ferretdbBin });
  await mongo.stop();
  return log;
}

let dir: string;
/** The ferretdb the default search finds (or builds): the real binary the other cases reuse. */
let realBin: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gfc-embedded-mongo-test-'));
  const { lines } = await startFerretdb();
  realBin = lines.find((l) => l.bin)?.bin ?? '';
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the embedded FerretDB says which ferretdb it runs', () => {
  it('the project build (or one on PATH) by default', () => {
    expect(realBin).toMatch(/ferretdb$/);
  });

  it('FERRETDB_BIN', async () => {
    const { messages } = await startFerretdb(realBin);
    expect(messages()).toContain(`embedded MongoDB: FerretDB (SQLite) in a temporary directory, running ${realBin} (FERRETDB_BIN)`);
  });

  it('a ferretdb on PATH', async () => {
    const pathDir = join(dir, 'path');
    await mkdir(pathDir);
    await symlink(realBin, join(pathDir, 'ferretdb'));
    const { messages } = await withEnv({ PATH: `${pathDir}${delimiter}${process.env.PATH}` }, () => startFerretdb());
    expect(messages()).toContain(
      `embedded MongoDB: FerretDB (SQLite) in a temporary directory, running ${join(pathDir, 'ferretdb')} (found on PATH)`,
    );
  });
});

describe('building FerretDB when there is none', () => {
  it('says what it builds, then how far it got every few seconds, every line in order through the logger', async () => {
    // A stand-in for Go: the module "source" the install script patches, and a 2.5-second
    // `go build` that prints a package on stdout and one on stderr, then copies the real binary.
    const fakeGo = join(dir, 'go-bin');
    const src = join(dir, 'src');
    await mkdir(join(src, 'build', 'version'), { recursive: true });
    await mkdir(join(src, 'internal', 'backends', 'sqlite', 'metadata'), { recursive: true });
    await writeFile(join(src, 'internal', 'backends', 'sqlite', 'metadata', 'metadata.go'), `IDColumn = DefaultColumn + "->'$._id'"\n`);
    // The two lines of collection.go (Query, Explain) the field-index fix patches.
    await writeFile(
      join(src, 'internal', 'backends', 'sqlite', 'collection.go'),
      '\tq += whereClause\n\torderByClause := prepareOrderByClause(params.Sort)\n',
    );
    await mkdir(fakeGo);
    await writeFile(
      join(fakeGo, 'go'),
      `#!/usr/bin/env bash
case "$1" in
  version) echo "go version go0.0-fake linux/amd64" ;;
  mod) printf '{\\n\\t"Dir": "%s",\\n}\\n' "${src}" ;;
  build)
    while [[ $# -gt 0 ]]; do [[ "$1" == "-o" ]] && out="$2"; shift; done
    echo "example.com/first"; sleep 1.5; echo "example.com/second" >&2; sleep 1
    cp "${realBin}" "$out" ;;
esac
`,
    );
    await chmod(join(fakeGo, 'go'), 0o755);
    const target = join(dir, 'ferretdb-build');
    const { messages, lines } = await withEnv(
      { PATH: `${fakeGo}${delimiter}${process.env.PATH}`, FERRETDB_DIR: target, FERRETDB_PROGRESS_SECONDS: '1' },
      () => startFerretdb(),
    );
    const built = join(target, 'bin', 'ferretdb');
    const said = messages();
    const at = (pattern: RegExp) => said.findIndex((m) => pattern.test(m));
    const steps = [
      /^no ferretdb binary .*building one with Go/,
      new RegExp(`^install-ferretdb: building FerretDB v[\\d.]+\\+sqlite-id-index\\S* into ${built} with go0\\.0-fake`),
      /^install-ferretdb: fetching the source of github\.com\/FerretDB\/FerretDB@/,
      /^install-ferretdb: compiling \.\/cmd\/ferretdb .*a progress line every 1 s/,
      /^install-ferretdb: still building after \d+ s: [12] packages compiled$/,
      new RegExp(`^install-ferretdb: ferretdb .* built at ${built} in \\d+ s$`),
      /^embedded MongoDB: FerretDB .*\(built just now\)$/,
    ].map(at);
    expect(
      steps.every((index) => index >= 0),
      said.join('\n'),
    ).toBe(true);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(lines.at(-1)?.bin).toBe(built);
  }, 60_000);
});

describe('a mongod download that failed', () => {
  it('is not tried again for a day: auto goes straight to FerretDB, and says how to try again', async () => {
    const marker = join(dir, 'mongod-download-failed');
    await writeFile(marker, 'offline\n');
    const log = recordingLogger();
    const mongo = await startEmbeddedMongo({ logger: log.logger, prefer: 'auto', ferretdbBin: realBin, downloadMarker: marker });
    await mongo.stop();
    expect(mongo.kind).toBe('ferretdb');
    expect(log.messages()).toContain(`skipping the mongod download, which failed less than a day ago (delete ${marker} to try again)`);
    expect(log.messages().some((m) => m.startsWith('mongodb-memory-server could not get a mongod'))).toBe(false);
  });
});
