import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort, spawnChild, stopChild, waitUntil } from './processes.js';

/** Debian's varnishd (VARNISHD_PATH to change it); its xkey module comes with varnish-modules. */
export const VARNISHD = process.env.VARNISHD_PATH ?? '/usr/sbin/varnishd';

/** Debian's varnishstat, beside varnishd (VARNISHSTAT_PATH to change it). */
const VARNISHSTAT = process.env.VARNISHSTAT_PATH ?? '/usr/bin/varnishstat';

/** Whether {@link VARNISHD} is there (the tests and the bench's Varnish part need it). */
export function haveVarnish(): boolean {
  return existsSync(VARNISHD);
}

/** The VCL the project ships (deploy/varnish/default.vcl), which includes backend.vcl. */
const SHIPPED_VCL_DIR = resolve(import.meta.dirname, '../../deploy/varnish');

/** A varnishd running the shipped VCL. */
export interface LocalVarnish {
  /** Where it listens, e.g. http://127.0.0.1:40123. */
  url: string;
  /** Varnish's cache hits and misses so far (varnishstat's MAIN.cache_hit and MAIN.cache_miss). */
  stats(): Promise<{ hits: number; misses: number }>;
  /** Stops varnishd and removes its working directory. */
  stop(): Promise<void>;
}

/**
 * Starts varnishd on `port` (default a free one) with deploy/varnish/default.vcl, its backend
 * the server on `backendPort`: a copy of the VCL beside a backend.vcl of its own (Varnish looks
 * for an include next to the file that includes it first). Fails after 30 s without an answer,
 * or when varnishd is missing or exits.
 */
export async function startVarnish(options: { backendPort: number; port?: number }): Promise<LocalVarnish> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'local-varnish-'));
  // Started as root, varnishd reads its VCL as its unprivileged user.
  await chmod(dir, 0o755);
  await copyFile(join(SHIPPED_VCL_DIR, 'default.vcl'), join(dir, 'default.vcl'));
  await writeFile(join(dir, 'backend.vcl'), `backend default {\n  .host = "127.0.0.1";\n  .port = "${options.backendPort}";\n}\n`);
  const workDir = join(dir, 'work');
  const { child, output } = spawnChild(VARNISHD, [
    '-F',
    '-a',
    `127.0.0.1:${port}`,
    '-f',
    join(dir, 'default.vcl'),
    '-n',
    workDir,
    '-s',
    'malloc,32m',
  ]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      'varnishd to answer',
      async () => {
        if (child.exitCode !== null) throw new Error(`varnishd exited (${child.exitCode}): ${output()}`);
        return fetch(`${url}/healthz-probe`).then(
          () => true,
          () => false,
        );
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (error) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    async stats() {
      const { stdout } = await promisify(execFile)(VARNISHSTAT, ['-1', '-n', workDir, '-f', 'MAIN.cache_hit', '-f', 'MAIN.cache_miss']);
      const counter = (name: string) => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(stdout)?.[1] ?? 0);
      return { hits: counter('MAIN.cache_hit'), misses: counter('MAIN.cache_miss') };
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
