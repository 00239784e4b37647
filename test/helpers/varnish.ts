import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, spawnChild, stopChild } from '../../src/dev/processes.js';
import { until } from './wait.js';

/** Debian's varnishd (VARNISHD_PATH to change it); its xkey module comes with varnish-modules. */
export const VARNISHD = process.env.VARNISHD_PATH ?? '/usr/sbin/varnishd';

/**
 * Whether {@link VARNISHD} is there; the Varnish tests are skipped without it, except in CI
 * (.ci/run installs it), where its absence throws at import so that no Varnish test passes by skipping.
 */
export const HAVE_VARNISH = existsSync(VARNISHD);
if (!HAVE_VARNISH && process.env.CI) {
  throw new Error(`${VARNISHD} not found: the Varnish tests need it (apt-get install -y varnish varnish-modules; .ci/run does it).`);
}
if (!HAVE_VARNISH) console.warn(`Skipping the Varnish tests: no ${VARNISHD} (apt-get install varnish varnish-modules).`);

/** The VCL the project ships (deploy/varnish/default.vcl), which includes backend.vcl. */
const SHIPPED_VCL_DIR = resolve(import.meta.dirname, '../../deploy/varnish');

/** A varnishd running the shipped VCL. */
export interface TestVarnish {
  /** Where it listens, e.g. http://127.0.0.1:40123. */
  url: string;
  /** Stops varnishd and removes its working directory. */
  stop(): Promise<void>;
}

/**
 * Starts varnishd on `port` (default a free one) with deploy/varnish/default.vcl, its backend
 * the server on `backendPort`: a copy of the VCL beside a backend.vcl of its own (Varnish looks
 * for an include next to the file that includes it first).
 */
export async function startVarnish(options: { backendPort: number; port?: number }): Promise<TestVarnish> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'test-varnish-'));
  // Started as root, varnishd reads its VCL as its unprivileged user.
  await chmod(dir, 0o755);
  await copyFile(join(SHIPPED_VCL_DIR, 'default.vcl'), join(dir, 'default.vcl'));
  await writeFile(join(dir, 'backend.vcl'), `backend default {\n  .host = "127.0.0.1";\n  .port = "${options.backendPort}";\n}\n`);
  const { child, output } = spawnChild(VARNISHD, [
    '-F',
    '-a',
    `127.0.0.1:${port}`,
    '-f',
    join(dir, 'default.vcl'),
    '-n',
    join(dir, 'work'),
    '-s',
    'malloc,32m',
  ]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`varnishd exited (${child.exitCode}): ${output()}`);
        return fetch(`${url}/healthz-probe`).then(
          () => true,
          () => false,
        );
      },
      { what: 'varnishd to answer', timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (error) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
