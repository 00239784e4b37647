import { Cluster } from 'ioredis';
import type { RedisClient } from './redis-client.js';

/**
 * A connection of its own, duplicated from the cache's client and opened on first use (again
 * after a failure to open it): for commands that hold up every command behind them on their
 * connection (`WAIT`), so that the cache's reads never queue behind them.
 */
export class DedicatedConnection {
  readonly #source: RedisClient;
  /** Names the user in the error after {@link close}, e.g. `write-behind`. */
  readonly #what: string;
  #connection: Promise<RedisClient> | undefined;
  #closed = false;

  constructor(source: RedisClient, what: string) {
    this.#source = source;
    this.#what = what;
  }

  /** The connection, opened if need be; rejects once closed. */
  get(): Promise<RedisClient> {
    if (this.#closed) return Promise.reject(new Error(`${this.#what}: the cache is closed`));
    this.#connection ??= (async () => {
      const source = this.#source;
      const client: RedisClient = source instanceof Cluster ? source.duplicate() : source.duplicate();
      client.on('error', () => undefined); // the cache's own client reports Redis errors
      try {
        await client.connect();
        return client;
      } catch (error) {
        client.disconnect();
        this.#connection = undefined;
        throw error;
      }
    })();
    return this.#connection;
  }

  /** Closes it (and refuses to open it again). */
  close(): void {
    this.#closed = true;
    void this.#connection?.then((client) => client.disconnect()).catch(() => undefined);
  }
}
