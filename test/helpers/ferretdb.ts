import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';
import { freePort, spawnChild, stopChild, waitUntil } from '../../src/dev/processes.js';

// A FerretDB of a test's (or a bench's) own that can be stopped in the two ways an outage looks
// like: hung (SIGSTOP, SIGCONT) and dead (SIGKILL, then started again on the same data
// directory and port, so that the app's driver reconnects to it as to a restarted server).
// src/dev/embedded-mongo.ts starts one too, but keeps its directory to itself.

/** A FerretDB that a test pauses, kills and restarts. */
export interface OwnFerretdb {
  /** mongodb://127.0.0.1:port, without a database name. */
  readonly uri: string;
  /** SIGSTOP: the server hangs (connections open, no replies). */
  pause(): void;
  /** SIGCONT after {@link OwnFerretdb.pause}. */
  resume(): void;
  /** SIGKILL: connections refused until {@link OwnFerretdb.restart}; resolves once it has exited. */
  kill(): Promise<void>;
  /** Starts it again on the same data and port; resolves once it answers a ping. */
  restart(): Promise<void>;
  /** Stops it (resuming it first if paused) and removes its data. */
  stop(): Promise<void>;
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The ferretdb binary: FERRETDB_BIN, else the project's build (scripts/install-ferretdb.sh). */
function ferretdbBin(): string {
  const bin = process.env.FERRETDB_BIN || join(process.env.FERRETDB_DIR || join(projectRoot, '.cache', 'ferretdb'), 'bin', 'ferretdb');
  if (!existsSync(bin)) throw new Error(`no ferretdb at ${bin}: run scripts/install-ferretdb.sh (or set FERRETDB_BIN)`);
  return bin;
}

async function ping(uri: string): Promise<boolean> {
  const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 500 });
  try {
    await client.db('admin').command({ ping: 1 });
    return true;
  } finally {
    await client.close();
  }
}

/** Starts a FerretDB (SQLite) in a fresh temporary directory on a free port. */
export async function startOwnFerretdb(): Promise<OwnFerretdb> {
  const bin = ferretdbBin();
  const dir = await mkdtemp(join(tmpdir(), 'gfc-ferretdb-own-'));
  const port = await freePort();
  const uri = `mongodb://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let paused = false;
  const start = async (): Promise<void> => {
    const spawned = spawnChild(bin, [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--debug-addr=-',
      '--telemetry=disable',
      '--log-level=warn',
    ]);
    child = spawned.child;
    const started = spawned.child;
    await waitUntil(`FerretDB on port ${port}`, async () => {
      if (started.exitCode !== null) throw new Error(`ferretdb exited: ${spawned.output()}`);
      return ping(uri);
    });
  };
  const signal = (name: NodeJS.Signals): void => {
    if (!child?.pid) throw new Error('ferretdb is not running');
    process.kill(child.pid, name);
  };
  await start();
  return {
    uri,
    pause() {
      signal('SIGSTOP');
      paused = true;
    },
    resume() {
      signal('SIGCONT');
      paused = false;
    },
    async kill() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((done) => running.once('exit', () => done()));
      running.kill('SIGKILL');
      await exited;
      paused = false;
    },
    restart: start,
    async stop() {
      if (paused && child?.pid) process.kill(child.pid, 'SIGCONT');
      if (child) await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
