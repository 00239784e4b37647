import { brotliCompressSync, brotliDecompressSync, constants as zlib, gunzipSync, gzipSync } from 'node:zlib';

/**
 * Values as Redis stores them: one marker byte, then the payload.
 *
 *   'j' JSON      'g' gzip(JSON)      'b' brotli(JSON)      '-' absent (negative cache)
 *
 * The reader trusts the marker, not the configuration, so changing the algorithm or the
 * threshold never makes stored values unreadable. JSON round-trips Dates exactly, and any class
 * of values a {@link Reviver} names (the app's ObjectIds, say): they travel as strings with a
 * NUL-led tag (`\0d:<ms>`, `\0<tag>:<text>`), and a genuine string that starts with NUL is
 * escaped (`\0s:`), so no value can be mistaken for another. A tag no reviver of this codec
 * knows makes the value unreadable (a miss), never a wrong value.
 */
export type Compression = 'none' | 'gzip' | 'brotli';

/** A class of values kept across JSON: found when encoding, revived when decoding, under a tag of its own. */
export interface Reviver<T = unknown> {
  /** One lower-case ASCII letter; `d` (Dates) and `s` (escaped strings) are the codec's own. */
  readonly tag: string;
  /** Whether `value` is one of these (asked of every object value when encoding). */
  matches(value: unknown): value is T;
  toText(value: T): string;
  fromText(text: string): T;
}

/** Revivers in order, and by the char code of their tag. */
interface Revivers {
  list: readonly Reviver[];
  byTag: ReadonlyMap<number, Reviver>;
}

/** The revivers by tag, checked: one letter each, not the codec's own, no tag twice. */
function reviversByTag(revivers: readonly Reviver[]): Revivers {
  const byTag = new Map<number, Reviver>();
  for (const reviver of revivers) {
    if (!/^[a-z]$/.test(reviver.tag) || reviver.tag === 'd' || reviver.tag === 's' || byTag.has(reviver.tag.charCodeAt(0)))
      throw new TypeError(`a reviver's tag must be one lower-case letter, not d, s or another reviver's: ${JSON.stringify(reviver.tag)}`);
    byTag.set(reviver.tag.charCodeAt(0), reviver);
  }
  return { list: revivers, byTag };
}

/** Options of {@link createCodec}. */
export interface CodecOptions {
  /** The classes of values to keep across JSON besides Dates (see {@link Reviver}); default none. */
  revivers?: readonly Reviver[];
  /** Algorithm for values over the threshold; default gzip (a stored value says which it used, so a change reads old values). */
  compression?: Compression;
  /** Compress JSON payloads of at least this many bytes; default 1024. */
  thresholdBytes?: number;
}

/** Encodes values for the cache and decodes them back, with compression past a threshold. */
export interface Codec {
  encode(value: unknown): Buffer;
  /** The decoded value; `ABSENT` for a negative-cache entry. Throws {@link CodecError} on garbage. */
  decode(payload: Buffer): unknown;
}

/** What {@link Codec.decode} returns for a cached "no such document". */
export const ABSENT: unique symbol = Symbol('absent');

/** A stored value the codec cannot read (corrupt, or written by an incompatible version). */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  readonly code = 'E_CACHE_CODEC';
}

const MARK_JSON = 0x6a; // j
const MARK_GZIP = 0x67; // g
const MARK_BROTLI = 0x62; // b
const MARK_ABSENT = 0x2d; // -
const ABSENT_PAYLOAD = Buffer.from([MARK_ABSENT]);

/**
 * The size of what `payload` decodes to, in bytes, estimated without decoding it: its length
 * when stored as plain JSON, four times it when compressed (what an in-process copy costs).
 */
export function decodedSizeEstimate(payload: Buffer): number {
  const marker = payload[0];
  return marker === MARK_GZIP || marker === MARK_BROTLI ? payload.length * 4 : payload.length;
}

/** A codec; see the module comment for the format. */
export function createCodec(options: CodecOptions = {}): Codec {
  const compression = options.compression ?? 'gzip';
  const threshold = options.thresholdBytes ?? 1024;
  const revivers = reviversByTag(options.revivers ?? []);
  const stringify = (value: unknown): string => stringifyWith(value, revivers);
  const parse = (text: string): unknown => parseWith(text, revivers);
  return {
    encode(value) {
      if (value === ABSENT) return ABSENT_PAYLOAD;
      const json = Buffer.from(stringify(value));
      if (compression === 'none' || json.length < threshold) return prefixed(MARK_JSON, json);
      if (compression === 'gzip') return prefixed(MARK_GZIP, gzipSync(json, { level: 6 }));
      return prefixed(
        MARK_BROTLI,
        brotliCompressSync(json, { params: { [zlib.BROTLI_PARAM_QUALITY]: 4, [zlib.BROTLI_PARAM_SIZE_HINT]: json.length } }),
      );
    },
    decode(payload) {
      const marker = payload[0];
      try {
        switch (marker) {
          case MARK_ABSENT:
            return ABSENT;
          case MARK_JSON:
            return parse(payload.toString('utf8', 1));
          case MARK_GZIP:
            return parse(gunzipSync(payload.subarray(1)).toString());
          case MARK_BROTLI:
            return parse(brotliDecompressSync(payload.subarray(1)).toString());
          default:
            throw new CodecError(`unknown cache value marker ${String(marker)}`);
        }
      } catch (error) {
        if (error instanceof CodecError) throw error;
        throw new CodecError(`unreadable cache value: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
  };
}

function prefixed(marker: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = marker;
  body.copy(out, 1);
  return out;
}

/** JSON.stringify that keeps Dates and what `revivers` name (see the module comment). */
export function stringify(value: unknown, revivers: readonly Reviver[] = []): string {
  return stringifyWith(value, reviversByTag(revivers));
}

function stringifyWith(value: unknown, revivers: Revivers): string {
  const { list } = revivers;
  return JSON.stringify(value, function replacer(this: Record<string, unknown>, key: string, converted: unknown) {
    // `converted` went through toJSON already; the original is this[key].
    const original = key === '' ? value : this[key];
    if (typeof original === 'object' && original !== null) {
      if (original instanceof Date) return `\0d:${original.getTime()}`;
      for (const reviver of list) if (reviver.matches(original)) return `\0${reviver.tag}:${reviver.toText(original)}`;
    }
    if (typeof converted === 'string' && converted.charCodeAt(0) === 0) return `\0s:${converted}`;
    return converted;
  });
}

/**
 * The inverse of {@link stringify}, with the same revivers. A plain `JSON.parse` and then one
 * walk that revives the tagged strings in place: a reviver function would be called back for
 * every value, which costs about 2.5 times as much on a typical document.
 */
export function parse(text: string, revivers: readonly Reviver[] = []): unknown {
  return parseWith(text, reviversByTag(revivers));
}

function parseWith(text: string, revivers: Revivers): unknown {
  return revive(JSON.parse(text) as unknown, revivers);
}

function revive(value: unknown, revivers: Revivers): unknown {
  if (typeof value === 'string') return value.charCodeAt(0) === 0 ? reviveTagged(value, revivers) : value;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) value[i] = revive(value[i], revivers);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    const item = record[key];
    // Most values are plain strings and numbers: only recurse where something may change.
    if (typeof item === 'object' ? item !== null : typeof item === 'string' && item.charCodeAt(0) === 0)
      record[key] = revive(item, revivers);
  }
  return record;
}

function reviveTagged(value: string, revivers: Revivers): unknown {
  const tag = value.charCodeAt(1);
  const rest = value.slice(3);
  if (tag === 0x64) return new Date(Number(rest)); // d
  if (tag === 0x73) return rest; // s: an escaped string
  const reviver = revivers.byTag.get(tag);
  if (!reviver) throw new CodecError(`no reviver for the tag ${JSON.stringify(value.slice(1, 2))} of a stored value`);
  return reviver.fromText(rest);
}
