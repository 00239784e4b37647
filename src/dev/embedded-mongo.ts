import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';
import type { Logger } from '../logger.js';
import { freePort, spawnChild, stopChild, waitUntil } from './processes.js';

/** A MongoDB-compatible server started for development or tests. */
export interface EmbeddedMongo {
  /** Connection string without a database name (append `/name`). */
  uri: string;
  /** `mongod` (mongodb-memory-server) or `ferretdb`. */
  kind: 'mongod' | 'ferretdb';
  /** The server's process id (tests pause it, SIGSTOP, to simulate a hung server); null when unknown. */
  pid: number | null;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

/** Which embedded server {@link startEmbeddedMongo} starts. */
export type EmbeddedMongoPreference = 'auto' | 'mongodb-memory-server' | 'ferretdb';

/** Options of {@link startEmbeddedMongo}. */
export interface EmbeddedMongoOptions {
  logger: Logger;
  /** A ferretdb binary to use; default: PATH, then the project's .cache, then a build with Go. */
  ferretdbBin?: string;
  /** Which server to start: `auto` tries mongodb-memory-server, then FerretDB; default auto. */
  prefer?: EmbeddedMongoPreference;
  /** Where a failed mongod download is remembered (`auto` skips it for a day); default .cache/mongod-download-failed. */
  downloadMarker?: string;
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where scripts/install-ferretdb.sh builds ferretdb: its FERRETDB_DIR, by default the project's .cache/ferretdb. */
function cachedFerretdb(): string {
  return join(process.env.FERRETDB_DIR || join(projectRoot, '.cache', 'ferretdb'), 'bin', 'ferretdb');
}
const installScript = join(projectRoot, 'scripts', 'install-ferretdb.sh');

/**
 * Starts a real `mongod` through mongodb-memory-server when it can get one (its cache,
 * `MONGOMS_SYSTEM_BINARY`, or a download), else a local FerretDB on SQLite in a temporary
 * directory (found, or built once with Go). Throws a message saying how to provide MongoDB
 * when neither can be had.
 */
export async function startEmbeddedMongo(options: EmbeddedMongoOptions): Promise<EmbeddedMongo> {
  const { logger } = options;
  const marker = options.downloadMarker ?? DOWNLOAD_MARKER;
  let prefer = options.prefer ?? 'auto';
  // Looked for once: the skip below needs one at hand, and FerretDB then runs it.
  const onHand = findFerretdb(options.ferretdbBin);
  if (prefer === 'auto' && !process.env.MONGOMS_SYSTEM_BINARY && recentlyFailed(marker) && onHand) {
    // Offline, the download fails every time, after seconds of silence: not again for a day.
    logger.info(`skipping the mongod download, which failed less than a day ago (delete ${marker} to try again)`);
    prefer = 'ferretdb';
  }
  if (prefer !== 'ferretdb') {
    try {
      const { MongoBinary, MongoMemoryServer } = await import('mongodb-memory-server');
      // Resolve (or download) the binary first: a failure here is quiet, unlike a failed create().
      const systemBinary = await MongoBinary.getPath();
      const server = await MongoMemoryServer.create({ binary: { systemBinary } });
      logger.info('embedded MongoDB: mongod from mongodb-memory-server');
      return {
        uri: server.getUri().replace(/\/$/, ''),
        kind: 'mongod',
        pid: server.instanceInfo?.instance.mongodProcess?.pid ?? null,
        stop: async () => void (await server.stop()),
      };
    } catch (error) {
      if (prefer === 'mongodb-memory-server') throw error;
      logger.info({ reason: firstLine(error) }, 'mongodb-memory-server could not get a mongod; trying FerretDB');
      await mkdir(dirname(marker), { recursive: true });
      await writeFile(marker, `${new Date().toISOString()} ${firstLine(error)}\n`).catch(() => undefined);
    }
  }
  const found = onHand ?? { bin: await buildFerretdb(logger), from: 'built just now' };
  return startFerretdb(found, logger);
}

/** Written when mongodb-memory-server could not get a mongod (offline): the next starts skip it for a day. */
const DOWNLOAD_MARKER = join(projectRoot, '.cache', 'mongod-download-failed');

function recentlyFailed(marker: string): boolean {
  try {
    return Date.now() - statSync(marker).mtimeMs < 86_400_000;
  } catch {
    return false; // never failed here
  }
}

/** A ferretdb binary, and where it was found (for the log). */
interface FoundFerretdb {
  bin: string;
  from: string;
}

function findFerretdb(explicit: string | undefined): FoundFerretdb | undefined {
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`FERRETDB_BIN=${explicit} does not exist`);
    return { bin: explicit, from: 'FERRETDB_BIN' };
  }
  const onPath = onPathSync('ferretdb');
  if (onPath && spawnSync(onPath, ['--version'], { stdio: 'ignore' }).status === 0) return { bin: onPath, from: 'found on PATH' };
  // The project's build, when it is current (built with this version of the script's fixes).
  return spawnSync('bash', [installScript, '--check'], { stdio: 'ignore' }).status === 0
    ? { bin: cachedFerretdb(), from: "the project's build, scripts/install-ferretdb.sh" }
    : undefined;
}

/** The first executable `name` on PATH, as a full path. */
function onPathSync(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir || '.', name);
    try {
      accessSync(candidate, constants.X_OK);
      return resolve(candidate);
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Builds FerretDB with scripts/install-ferretdb.sh, which says what it builds and prints a line
 * every few seconds while it compiles. Asynchronously, and every line through `logger`: a build
 * run synchronously (spawnSync) held up the logger's output (pino-pretty's transport flushes on
 * the event loop) until the build had ended, so its own lines came before the ones that announced
 * it. stdout and stderr share one pipe (2>&1), so they stay in the order the script wrote them.
 */
async function buildFerretdb(logger: Logger): Promise<string> {
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      'No MongoDB server is available: set MONGODB_URI to your MongoDB, or install one of ' +
        'mongod (MONGOMS_SYSTEM_BINARY=/path/to/mongod), ferretdb (FERRETDB_BIN=...), or Go (to build FerretDB).',
    );
  }
  logger.info("no ferretdb binary (FERRETDB_BIN, PATH or the project's build): building one with Go (once, about two minutes)");
  const child = spawn('bash', ['-c', 'exec bash "$0" 2>&1', installScript], { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (line.trim()) logger.info(line.startsWith('install-ferretdb:') ? line : `install-ferretdb: ${line}`);
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0 || !existsSync(cachedFerretdb())) throw new Error('building FerretDB failed (see the install-ferretdb lines above)');
  return cachedFerretdb();
}

async function startFerretdb({ bin, from }: FoundFerretdb, logger: Logger): Promise<EmbeddedMongo> {
  const dir = await mkdtemp(join(tmpdir(), 'gfc-ferretdb-'));
  const port = await freePort();
  const { child, output } = spawnChild(bin, [
    '--handler=sqlite',
    `--sqlite-url=file:${dir}/`,
    `--state-dir=${dir}`,
    `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-',
    '--telemetry=disable',
    '--log-level=warn',
  ]);
  const uri = `mongodb://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(`FerretDB on port ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`ferretdb exited: ${output()}`);
      const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 500 });
      try {
        await client.db('admin').command({ ping: 1 });
        return true;
      } finally {
        await client.close();
      }
    });
  } catch (error) {
    await stop();
    throw error;
  }
  logger.info({ bin, from }, `embedded MongoDB: FerretDB (SQLite) in a temporary directory, running ${bin} (${from})`);
  return { uri, kind: 'ferretdb', pid: child.pid ?? null, stop };
}

function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error)
    .replace(/\s+/g, ' ')
    .slice(0, 300);
}
