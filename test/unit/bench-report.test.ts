import { describe, expect, it } from 'vitest';
import type { ContenderKey, ContenderSpec } from '../../bench/lib/contenders.js';
import type { LoadResult } from '../../bench/lib/load.js';
import type { MixedResult } from '../../bench/lib/mixed.js';
import { READ_QUERIES } from '../../bench/lib/queries.js';
import {
  MIN_REQUESTS,
  markdownTables,
  rateText,
  ratios,
  reqPerSec,
  svgChart,
  type ReadCell,
  type Results,
} from '../../bench/lib/report.js';

const spec = (key: ContenderKey, label: string): ContenderSpec => ({ key, label, project: key.startsWith('project'), args: [], env: {} });
const PROJECT = spec('project', 'this project, warm cache');
const FLOOR = spec('apollo-memory', 'Apollo in memory (floor)');
const APOLLO = spec('apollo', 'Apollo + DataLoader');

const round = (requests: number, reqPerSec: number): LoadResult => ({
  requests,
  seconds: requests / reqPerSec,
  reqPerSec,
  p50Ms: 5,
  p99Ms: 9,
  capped: false,
});
const cell = (...rounds: LoadResult[]): ReadCell => ({ rounds, mongoPerRequest: null, redisPerRequest: null });

function mixed(reads: number, readsPerSec: number): MixedResult {
  return {
    reads,
    readsPerSec,
    writes: { price: 5, review: 1, view: 1 },
    writesPerSec: 2,
    writesDue: 7,
    mutationShare: 0.5,
    stale: { reads: 0, price: 0, reviewCount: 0, viewCount: 0 },
    examples: [],
    oldest: null,
    errors: { writes: 0, reads: 0, acks: 0, first: null },
  };
}

/** The catalog query only: the project and the floor well measured, Apollo + DataLoader with `apolloRequests` in one round. */
function results(apolloRequests: number): Results {
  const catalog = READ_QUERIES[0];
  if (!catalog) throw new Error('no read query');
  return {
    meta: {
      date: '2026-01-01T00:00:00Z',
      command: '',
      machine: 'm',
      mongodb: 'db',
      redis: 'r',
      project: '',
      settings: 's',
      durationSeconds: 1,
    },
    contenders: [PROJECT, APOLLO, FLOOR],
    reads: [
      {
        query: catalog,
        cells: new Map([
          ['project', cell(round(200, 100), round(220, 110), round(180, 90))],
          ['apollo', cell(round(apolloRequests, 0.8))],
          ['apollo-memory', cell(round(400, 200), round(400, 200), round(400, 200))],
        ]),
      },
    ],
    cold: [],
    mixed: [
      { spec: PROJECT, result: mixed(300, 100), roundsReadsPerSec: [100], roundsReads: [300], allRounds: { reads: 300, stale: 0 } },
      { spec: APOLLO, result: mixed(3, 1), roundsReadsPerSec: [1], roundsReads: [3], allRounds: { reads: 3, stale: 0 } },
    ],
    mixedShape: 'test',
  };
}

describe('the benchmark report of runs with too few requests', () => {
  it('gives a rate only from MIN_REQUESTS completed requests up, and otherwise says how many completed', () => {
    expect(rateText(12.345, MIN_REQUESTS)).toBe('12.3');
    expect(rateText(1_234.5, 500)).toBe('1,235');
    expect(rateText(0, 0)).toBe('too few requests (0)');
    expect(rateText(0.8, 10, 'reads')).toBe('too few reads (10)');
    // Over all the rounds of a cell: three rounds of 10 are enough, one is not.
    expect(reqPerSec(cell(round(10, 3), round(10, 4), round(10, 5)))).toBe(4);
    expect(reqPerSec(cell(round(10, 3)))).toBe(0);
  });

  it('leaves out the ratios of a scenario with too few requests, and keeps the others', () => {
    const labels = ratios(results(10)).map(([label]) => label);
    expect(labels).toEqual(['catalog (products first: 50): project entity path (L1) / in-memory Apollo (issue 23: ≥ 0.9)']);
    const all = ratios(results(30));
    expect(all.map(([label]) => label)).toContain(
      'catalog (products first: 50): project entity path (L1) / Apollo + DataLoader (no cache)',
    );
    expect(all.find(([label]) => label.includes('Apollo + DataLoader'))?.[1]).toBeCloseTo(100 / 0.8);
    // The mixed workload: Apollo + DataLoader read 3 times, so no mixed ratio names it.
    expect(all.some(([label]) => label.startsWith('mixed'))).toBe(false);
  });

  it('prints no 0 req/s in the tables and the chart: it says too few instead', () => {
    const report = results(10);
    const tables = markdownTables(report);
    expect(tables).toMatch(/\| Apollo \+ DataLoader \| too few requests \(10\) \|/);
    expect(tables).toMatch(/\| Apollo \+ DataLoader \| too few reads \(3\) \| too few reads \(3\) \| 3 \|/);
    expect(tables).toMatch(/\| this project, warm cache \| 100 \(0\.50× floor\) \|/);
    expect(tables).not.toMatch(/\| 0\.00 /);
    expect(tables).not.toMatch(/Apollo \+ DataLoader \(no cache\)/); // its ratio
    const svg = svgChart(report);
    expect(svg).toContain('too few requests (10)');
    expect(svg).toContain('too few reads (3)');
  });
});
