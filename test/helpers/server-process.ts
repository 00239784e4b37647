import { spawn, type ChildProcess } from 'node:child_process';
import { untilOutput } from './wait.js';

/** The server as a process of its own (what signals reach), and the URL it printed. */
export interface ServerProcess {
  process: ChildProcess;
  url: string;
}

/** Runs `src/index.ts` as `npm start` does, with `env` over this process's, and waits for its ready line. */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await untilOutput(child, /ready at (http:\/\/[\d.:]+)\/graphql/, { what: 'the ready line', timeoutMs });
  return { process: child, url };
}
