import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real MongoDB-compatible server that can lose the reply to one
 * chosen command: the command reaches the server (and is applied), its reply never comes back,
 * as when a network or a server stalls after a write committed. A fault injector, not a fake:
 * every byte that is not dropped goes to and comes from the real server.
 */
export interface MongoProxy {
  /** `mongodb://127.0.0.1:<port>`, without a database name. */
  uri: string;
  /**
   * The next `<command>` on `<collection>` (e.g. `insert` on `orders`) is forwarded, and its
   * connection's replies are dropped from then on; one-shot. Resolves when that command passed.
   */
  loseReplyTo(command: string, collection: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a proxy to `target` (`host:port`) on a free loopback port. */
export async function startMongoProxy(target: string): Promise<MongoProxy> {
  const [targetHost = '127.0.0.1', targetPort = '27017'] = target.split(':');
  let armed: { marker: Buffer; passed: () => void } | null = null;
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const upstream = connect(Number(targetPort), targetHost);
    sockets.add(client).add(upstream);
    let swallowReplies = false;
    let pending = Buffer.alloc(0);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    upstream.on('data', (chunk: Buffer) => {
      if (!swallowReplies) client.write(chunk);
    });
    // Whole wire messages (int32 length first), so that a marker split across chunks is still seen.
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= pending.readInt32LE(0)) {
        const length = pending.readInt32LE(0);
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        if (armed && message.includes(armed.marker)) {
          const { passed } = armed;
          armed = null;
          swallowReplies = true;
          upstream.write(message, () => passed());
          continue;
        }
        upstream.write(message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    uri: `mongodb://127.0.0.1:${port}`,
    loseReplyTo(command, collection) {
      return new Promise<void>((resolve) => {
        armed = { marker: bsonStringElement(command, collection), passed: resolve };
      });
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The BSON bytes of the element `{ <name>: "<value>" }`: what a command document starts with. */
function bsonStringElement(name: string, value: string): Buffer {
  const length = Buffer.alloc(4);
  length.writeInt32LE(Buffer.byteLength(value) + 1);
  return Buffer.concat([Buffer.from([0x02]), Buffer.from(`${name}\0`), length, Buffer.from(`${value}\0`)]);
}
