// npm run bench:codec — sizes and CPU of the cache codec on this project's real documents,
// to choose the compression algorithm and threshold (docs/cache-protocol.md, Compression).
import { brotliCompressSync, brotliDecompressSync, constants as zlib, gunzipSync, gzipSync } from 'node:zlib';
import { parse, stringify } from 'graphql-lease-cache';
import { objectIdReviver } from '../src/models/object-id-reviver.js';
import { generateDemoData } from '../src/dev/seed.js';

const data = generateDemoData({ adminEmail: 'admin@example.com', adminHash: 'scrypt$x', userHash: 'scrypt$y' });
const samples: [string, unknown][] = [
  ['User', data.users[1]],
  ['Review', data.reviews[0]],
  ['Product', data.products[0]],
  ['Order (3 items)', data.orders.find((o) => o.items.length === 3)],
  ['10 reviews', data.reviews.slice(0, 10)],
  ['20 products', data.products.slice(0, 20)],
  ['100 reviews', data.reviews.slice(0, 100)],
];

function microseconds(fn: () => unknown): number {
  for (let i = 0; i < 200; i += 1) fn();
  const runs = 2_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i += 1) fn();
  return Number(process.hrtime.bigint() - start) / runs / 1_000;
}

const rows = samples.map(([name, value]) => {
  const json = stringify(value, [objectIdReviver]);
  const buffer = Buffer.from(json);
  const gz = gzipSync(buffer, { level: 6 });
  const br = brotliCompressSync(buffer, { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } });
  return {
    value: name,
    'JSON B': buffer.length,
    'gzip B': gz.length,
    'brotli4 B': br.length,
    'stringify µs': +microseconds(() => stringify(value, [objectIdReviver])).toFixed(1),
    'parse µs': +microseconds(() => parse(json, [objectIdReviver])).toFixed(1),
    'gzip µs': +microseconds(() => gzipSync(buffer, { level: 6 })).toFixed(1),
    'gunzip µs': +microseconds(() => gunzipSync(gz)).toFixed(1),
    'brotli4 µs': +microseconds(() => brotliCompressSync(buffer, { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } })).toFixed(1),
    'unbrotli µs': +microseconds(() => brotliDecompressSync(br)).toFixed(1),
  };
});
console.table(rows);
