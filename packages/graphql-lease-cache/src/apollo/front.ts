import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FastPathRequest } from './fast-path.js';

/** A request as the front hands it on: node's, with what it read of the body. */
export type FrontRequest = IncomingMessage & {
  /** The parsed JSON body (an object or an array) when the front read and parsed it; the next handler must not read it again. */
  body?: unknown;
  /**
   * The bytes the front read when they are not a JSON object or array (empty, malformed): the next
   * handler's own body parser must answer them, over {@link replayedBody}.
   */
  rawBody?: Buffer;
};

/** Options of {@link responseFront}. */
export interface ResponseFrontOptions<Req extends FrontRequest = FrontRequest, Res extends ServerResponse = ServerResponse> {
  /** The GraphQL path (exact; a query string may follow); default `/graphql`. */
  path?: string;
  /**
   * The largest body the front reads, in bytes: the limit of the server's own JSON parser on the
   * path. A request that declares more (or no `Content-Length`) is handed on unread, for the
   * server to answer (413) as it does without the front.
   */
  maxBodyBytes: number;
  /** `responseFastPath(...)`: answers a hit, or calls its `next` for everything else. */
  fastPath(req: Req & FastPathRequest, res: Res, next: () => void): void;
  /**
   * Runs before the fast path, with the body parsed: sets the headers every response of the path
   * carries (those the server's middleware sets before its fast path) and calls `serve`, maybe
   * in a context of its own (a request trace). Default: calls `serve`.
   */
  prepare?(req: Req, res: Res, serve: () => void): void;
  /** The server (an Express app): everything that is not a hit, with `body` (or `rawBody`) set when the front read it. */
  next(req: Req, res: Res): void;
}

/**
 * A `node:http` request listener in front of the server (`createServer(responseFront({...}))`):
 * a JSON POST to the GraphQL path is read and parsed here, and a stored response is answered
 * by the fast path before the server's routing and middleware run at all. Everything else goes
 * to `next` unchanged: other paths and methods, other content types or encodings, bodies over
 * `maxBodyBytes`; a body read here is handed on parsed (`req.body`: Express's body parsers skip
 * a request whose body was read) or, when it is not a JSON object or array, as `rawBody` for
 * the server's parser to answer as it would have.
 */
export function responseFront<Req extends FrontRequest = FrontRequest, Res extends ServerResponse = ServerResponse>(
  options: ResponseFrontOptions<Req, Res>,
): (req: Req, res: Res) => void {
  const path = options.path ?? '/graphql';
  const pathWithQuery = `${path}?`;
  const limit = options.maxBodyBytes;
  if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`maxBodyBytes must be a non-negative integer, got ${limit}`);
  const handOn = (req: Req, res: Res): void => options.next(req, res);
  const parsed = (req: Req, res: Res): void => {
    const fastPath = () => options.fastPath(req as Req & FastPathRequest, res, () => handOn(req, res));
    if (options.prepare) options.prepare(req, res, fastPath);
    else fastPath();
  };
  return (req, res) => {
    const url = req.url ?? '';
    const length = req.method === 'POST' && (url === path || url.startsWith(pathWithQuery)) ? readableLength(req, limit) : null;
    if (length === null) return handOn(req, res);
    readBody(req, length, (raw) => {
      const body = parseJson(raw);
      if (body === undefined) {
        req.rawBody = raw;
        return handOn(req, res);
      }
      req.body = body;
      parsed(req, res);
    });
  };
}

/**
 * A readable of the bytes the front read (`rawBody`) that carries the request's headers: give
 * it to the server's body parser in place of the request, whose body is consumed. Null when the
 * front left the body unread.
 */
export function replayedBody(req: FrontRequest): (Readable & { headers: IncomingMessage['headers'] }) | null {
  if (!req.rawBody) return null;
  return Object.assign(Readable.from([req.rawBody]), { headers: req.headers });
}

/** The body's declared length when the front reads it: plain JSON (UTF-8, no encoding), declared, within the limit; else null. */
function readableLength(req: IncomingMessage, limit: number): number | null {
  const { headers } = req;
  if (!isPlainJson(headers['content-type'])) return null;
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return null;
  const declared = headers['content-length'];
  if (declared === undefined || headers['transfer-encoding'] !== undefined || !/^\d{1,9}$/.test(declared)) return null;
  const length = Number(declared);
  return length <= limit ? length : null;
}

const PLAIN_JSON = /^application\/json\s*(?:;\s*charset\s*=\s*(?:utf-8|"utf-8")\s*)?$/i;

/** `application/json`, with no parameter but a UTF-8 charset. */
function isPlainJson(contentType: string | undefined): boolean {
  return contentType !== undefined && PLAIN_JSON.test(contentType);
}

/** Reads a body of `length` bytes (node's parser holds it to its Content-Length); a request that is aborted is dropped. */
function readBody(req: IncomingMessage, length: number, done: (raw: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    received += chunk.length;
  });
  req.once('end', () => {
    if (received !== length) return;
    done(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received));
  });
  // An aborted request has no one to answer; node destroys its socket.
  req.once('error', () => undefined);
}

/** The JSON object or array of `raw` (UTF-8, no BOM), or undefined for anything else (left to the server's parser). */
function parseJson(raw: Buffer): unknown {
  let i = 0;
  while (i < raw.length && (raw[i] === 0x20 || raw[i] === 0x09 || raw[i] === 0x0a || raw[i] === 0x0d)) i += 1;
  if (raw[i] !== 0x7b && raw[i] !== 0x5b) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
