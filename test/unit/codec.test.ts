import { Types } from 'mongoose';
import { describe, expect, it } from 'vitest';
import { ABSENT, CodecError, createCodec, parse, stringify, type Reviver } from 'graphql-lease-cache';
import { objectIdReviver } from '../../src/models/object-id-reviver.js';

const revivers = [objectIdReviver];

const doc = {
  _id: new Types.ObjectId('5eed00010000000000000001'),
  name: 'Kettle',
  description: null,
  nested: { at: new Date('2026-01-02T03:04:05.678Z'), ids: [new Types.ObjectId('5eed00000000000000000001')] },
  tricky: '\0d:123',
  priceCents: 1999,
};

describe('codec', () => {
  it('round-trips Dates, ObjectIds (a reviver) and NUL-led strings exactly', () => {
    const back = parse(stringify(doc, revivers), revivers) as typeof doc;
    expect(back).toEqual(doc);
    expect(back._id).toBeInstanceOf(Types.ObjectId);
    expect(back.nested.at).toBeInstanceOf(Date);
    expect(back.nested.at.getTime()).toBe(doc.nested.at.getTime());
    expect(back.tricky).toBe('\0d:123');
  });

  it.each(['gzip', 'brotli'] as const)('compresses with %s past the threshold, and not below it', (compression) => {
    const codec = createCodec({ compression, thresholdBytes: 200, revivers });
    const small = codec.encode({ a: 1 });
    expect(String.fromCharCode(small[0] ?? 0)).toBe('j');
    const big = { ...doc, description: 'lorem ipsum '.repeat(100) };
    const encoded = codec.encode(big);
    expect(String.fromCharCode(encoded[0] ?? 0)).toBe(compression === 'gzip' ? 'g' : 'b');
    expect(encoded.length).toBeLessThan(stringify(big, revivers).length / 3);
    expect(codec.decode(encoded)).toEqual(big);
  });

  it('reads what another configuration wrote (the marker decides)', () => {
    const big = { text: 'x'.repeat(5000) };
    const written = createCodec({ compression: 'brotli', thresholdBytes: 10 }).encode(big);
    expect(createCodec({ compression: 'none' }).decode(written)).toEqual(big);
  });

  it('encodes absence as one byte', () => {
    const codec = createCodec();
    expect(codec.encode(ABSENT)).toEqual(Buffer.from('-'));
    expect(codec.decode(Buffer.from('-'))).toBe(ABSENT);
  });

  it('throws a CodecError on garbage', () => {
    const codec = createCodec();
    expect(() => codec.decode(Buffer.from('?abc'))).toThrow(CodecError);
    expect(() => codec.decode(Buffer.from('g not gzip'))).toThrow(CodecError);
    expect(() => codec.decode(Buffer.from('j{not json'))).toThrow(CodecError);
  });

  it('a tag no reviver of this codec knows is unreadable (a miss), never a wrong value', () => {
    const written = createCodec({ revivers }).encode(doc);
    expect(() => createCodec().decode(written)).toThrow(CodecError);
  });

  it('takes revivers of its own tags only', () => {
    const reviver = (tag: string): Reviver<never> => ({ ...objectIdReviver, tag }) as unknown as Reviver<never>;
    expect(() => createCodec({ revivers: [reviver('d')] })).toThrow(TypeError); // Dates are the codec's
    expect(() => createCodec({ revivers: [reviver('s')] })).toThrow(TypeError); // so are escaped strings
    expect(() => createCodec({ revivers: [reviver('ab')] })).toThrow(TypeError);
    expect(() => createCodec({ revivers: [objectIdReviver, reviver('o')] })).toThrow(TypeError);
  });
});
