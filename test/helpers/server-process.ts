import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { TEST_VIEW_LIMITS } from './test-app.js';
import { untilOutput } from './wait.js';

/** The server as a process of its own (what signals reach), and the URL it printed. */
export interface ServerProcess {
  process: ChildProcess;
  url: string;
  /** All it printed so far, stdout and stderr. */
  output(): string;
}

/** Runs `src/index.ts` as `npm start` does, with `env` over this process's, and waits for its ready line. */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...TEST_VIEW_LIMITS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer): void => void (output += chunk.toString());
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const url = await untilOutput(child, /ready at (http:\/\/[\d.:]+)\/graphql/, { what: 'the ready line', timeoutMs });
  return { process: child, url, output: () => output };
}

/** Runs `src/index.ts` as {@link startServerProcess} does, for a start that must fail: its exit code and all it printed. */
export async function failedServerStart(env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...TEST_VIEW_LIMITS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  // 'close', not 'exit': all it printed has been read.
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}
