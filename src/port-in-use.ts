import { createServer } from 'node:net';

/**
 * For a port another process holds (EADDRINUSE), the one line to print, naming the port and the
 * variable that sets it; null for any other error.
 */
export function portInUseMessage(error: unknown, port: number, variable = 'PORT'): string | null {
  if ((error as NodeJS.ErrnoException | null)?.code !== 'EADDRINUSE') return null;
  return `port ${port} is already in use (${variable}=${port}): stop the other server or set ${variable}`;
}

/**
 * Resolves when `host:port` can be listened on (it listens there a moment, then closes), rejects
 * with the listen error (EADDRINUSE when taken) otherwise: a start-up can fail at once, before
 * it starts services and seeds, rather than when its server finally listens. Port 0 always can.
 */
export function checkPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}
