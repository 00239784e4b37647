// The benchmark's report: Markdown tables (printed and written to bench/results.md) and a
// hand-made SVG bar chart (bench/results.svg) of the read throughput per query and contender.
import type { ContenderKey, ContenderSpec } from './contenders.js';
import type { LoadResult } from './load.js';
import { median } from './load.js';
import type { MixedResult } from './mixed.js';
import type { ReadQuery } from './queries.js';

/** One contender's rounds on one query. */
export interface ReadCell {
  rounds: LoadResult[];
  /** From the project's /metrics over all rounds; null for the peers. */
  mongoPerRequest: number | null;
  redisPerRequest: number | null;
}

/** The cold-cache figures of one query (the project only). */
export interface ColdRow {
  query: ReadQuery;
  requests: number;
  p50Ms: number;
  meanMs: number;
  mongoPerRequest: number;
  redisPerRequest: number;
}

/** Everything a run measured, and how. */
export interface Results {
  meta: {
    date: string;
    command: string;
    machine: string;
    mongodb: string;
    redis: string;
    project: string;
    settings: string;
    durationSeconds: number;
  };
  contenders: ContenderSpec[];
  reads: { query: ReadQuery; cells: Map<ContenderKey, ReadCell> }[];
  cold: ColdRow[];
  /**
   * Each contender's median mixed round, the reads/s of every round (in order), and the reads
   * and stale reads of all its rounds together.
   */
  mixed: {
    spec: ContenderSpec;
    result: MixedResult;
    roundsReadsPerSec: number[];
    /** The reads of every round (in order): a round with fewer than {@link MIN_REQUESTS} gets no rate. */
    roundsReads: number[];
    allRounds: { reads: number; stale: number };
    /** The project's whole-response hits and misses over all its rounds (from its /metrics), when it has the layer. */
    responses?: { hits: number; misses: number };
  }[];
  mixedShape: string;
}

/**
 * The fewest requests (or reads) a scenario must complete for the report to give its rate: a
 * contender on a read query over all its rounds, a contender's median mixed round. Fewer (a run
 * far too short, e.g. BENCH_SECONDS=0.05) would time mostly the first and the last answer: the
 * report says how many completed instead, and prints no ratio with it.
 */
export const MIN_REQUESTS = 20;

/** A ratio with two decimals, or two significant digits below 0.1. */
function ratioText(ratio: number): string {
  return ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2);
}

/** A rate as the tables show it: no decimals from 100, one from 10, two below. */
export function formatRate(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** `rate` as the tables show it, or, when fewer than {@link MIN_REQUESTS} completed, e.g. `too few requests (12)`. */
export function rateText(rate: number, completed: number, unit = 'requests'): string {
  return completed >= MIN_REQUESTS ? formatRate(rate) : `too few ${unit} (${completed})`;
}

/** The requests a cell completed over all its rounds. */
export function cellRequests(cell: ReadCell | undefined): number {
  return cell ? cell.rounds.reduce((sum, r) => sum + r.requests, 0) : 0;
}

/** The median req/s of a cell; 0 when it has no rounds, or completed fewer than {@link MIN_REQUESTS} requests over them. */
export function reqPerSec(cell: ReadCell | undefined): number {
  return cell && cell.rounds.length && cellRequests(cell) >= MIN_REQUESTS ? median(cell.rounds.map((r) => r.reqPerSec)) : 0;
}

/** A mixed entry's reads/s; 0 when its round completed fewer than {@link MIN_REQUESTS} reads. */
function mixedReadsPerSec(entry: Results['mixed'][number] | undefined): number {
  return entry && entry.result.reads >= MIN_REQUESTS ? entry.result.readsPerSec : 0;
}

/** The ratios issue 10 asks for, as [label, value] pairs; none with a scenario of too few requests (a rate of 0). */
export function ratios(results: Results): [string, number][] {
  const pairs: [string, number][] = [];
  const of = (query: string, key: ContenderKey) => reqPerSec(results.reads.find((r) => r.query.key === query)?.cells.get(key));
  const add = (label: string, a: number, b: number) => {
    if (a > 0 && b > 0) pairs.push([label, a / b]);
  };
  for (const { query } of results.reads) {
    add(
      `${query.label}: project every layer / Apollo response cache (issue 23: ≥ 3)`,
      of(query.key, 'project-responses'),
      of(query.key, 'apollo-response-cache'),
    );
  }
  for (const { query } of results.reads) {
    add(
      `${query.label}: project entity path (L1) / in-memory Apollo (issue 23: ≥ 0.9)`,
      of(query.key, 'project'),
      of(query.key, 'apollo-memory'),
    );
  }
  for (const { query } of results.reads) {
    add(
      `${query.label}: project entity path (L1) / Apollo response cache`,
      of(query.key, 'project'),
      of(query.key, 'apollo-response-cache'),
    );
  }
  for (const { query } of results.reads) {
    add(`${query.label}: project entity path (L1) / Apollo + DataLoader (no cache)`, of(query.key, 'project'), of(query.key, 'apollo'));
  }
  const mixed = (key: ContenderKey) => mixedReadsPerSec(results.mixed.find(({ spec }) => spec.key === key));
  add(
    'mixed workload reads/s: project every layer / the same with CACHE_L1=false (issue 23: ≥ 2)',
    mixed('project-responses'),
    mixed('project-no-l1'),
  );
  add('mixed workload reads/s: project every layer, two instances / one', mixed('project-two'), mixed('project-responses'));
  add('mixed workload reads/s: project entity path (L1) / Apollo response cache', mixed('project'), mixed('apollo-response-cache'));
  add('mixed workload reads/s: project every layer / Apollo response cache', mixed('project-responses'), mixed('apollo-response-cache'));
  add('mixed workload reads/s: project every layer / project entity path (L1)', mixed('project-responses'), mixed('project'));
  // The same, paired: both ran in each round, under that round's share of the machine's noise.
  const rounds = (key: ContenderKey) => {
    const entry = results.mixed.find(({ spec }) => spec.key === key);
    return entry ? entry.roundsReadsPerSec.map((rate, i) => ((entry.roundsReads[i] ?? 0) >= MIN_REQUESTS ? rate : 0)) : [];
  };
  const paired = (label: string, a: ContenderKey, b: ContenderKey) => {
    const [first, second] = [rounds(a), rounds(b)];
    const each = first.flatMap((r, i) => (r > 0 && (second[i] ?? 0) > 0 ? [r / (second[i] as number)] : []));
    if (each.length > 0) pairs.push([`${label}, median of the rounds’ ratios`, median(each)]);
  };
  paired('mixed workload reads/s: project every layer / project entity path (L1)', 'project-responses', 'project');
  paired('mixed workload reads/s: project every layer / the same with CACHE_L1=false', 'project-responses', 'project-no-l1');
  return pairs;
}

/** The report as Markdown (tables only: the header and the notes are the caller's). */
export function markdownTables(results: Results): string {
  const out: string[] = [];
  // The mixed workload's own contenders (no read rounds) have no row in the read tables.
  const contenders = results.contenders.filter((spec) => !spec.mixedOnly);
  const fmt = formatRate;
  if (results.reads.length) {
    out.push('### Reads: requests/s (median of the rounds)', '');
    out.push(`| contender | ${results.reads.map((r) => r.query.label).join(' | ')} |`);
    out.push(`|---|${results.reads.map(() => '---:').join('|')}|`);
    for (const spec of contenders) {
      const cells = results.reads.map(({ cells }) => {
        const cell = cells.get(spec.key);
        if (!cell?.rounds.length) return '–';
        if (cellRequests(cell) < MIN_REQUESTS) return rateText(0, cellRequests(cell));
        const floor = reqPerSec(cells.get('apollo-memory'));
        const ratio = floor > 0 && spec.key !== 'apollo-memory' ? ` (${ratioText(reqPerSec(cell) / floor)}× floor)` : '';
        return `${fmt(reqPerSec(cell))}${ratio}`;
      });
      out.push(`| ${spec.label} | ${cells.join(' | ')} |`);
    }
    out.push('', '### Reads: latency p50 / p99 ms (median of the rounds), and every round’s req/s', '');
    out.push(`| contender | ${results.reads.map((r) => r.query.label).join(' | ')} |`);
    out.push(`|---|${results.reads.map(() => '---').join('|')}|`);
    for (const spec of contenders) {
      const cells = results.reads.map(({ cells }) => {
        const cell = cells.get(spec.key);
        if (!cell?.rounds.length) return '–';
        const p50 = median(cell.rounds.map((r) => r.p50Ms));
        const p99 = median(cell.rounds.map((r) => r.p99Ms));
        const enough = cellRequests(cell) >= MIN_REQUESTS;
        return `${p50} / ${p99} (${cell.rounds.map((r) => (enough ? fmt(r.reqPerSec) : `${r.requests} requests`)).join(', ')})`;
      });
      out.push(`| ${spec.label} | ${cells.join(' | ')} |`);
    }
    const pairs = ratios(results);
    if (pairs.length) {
      out.push('', '### Ratios', '', '| ratio of medians | × |', '|---|---:|');
      for (const [label, value] of pairs) out.push(`| ${label} | ${value.toFixed(2)} |`);
    }
    const costs = contenders.filter((spec) => results.reads.some(({ cells }) => cells.get(spec.key)?.mongoPerRequest != null));
    if (costs.length) {
      out.push('', '### The project’s cost per request under load (from its /metrics)', '');
      out.push('| contender | query | MongoDB cmds/req | Redis round trips/req |', '|---|---|---:|---:|');
      for (const spec of costs) {
        for (const { query, cells } of results.reads) {
          const cell = cells.get(spec.key);
          if (cell?.mongoPerRequest == null) continue;
          out.push(`| ${spec.label} | ${query.label} | ${cell.mongoPerRequest.toFixed(2)} | ${(cell.redisPerRequest ?? 0).toFixed(2)} |`);
        }
      }
    }
  }
  if (results.cold.length) {
    out.push('', '### The project, cold: one request at a time, its cache namespace emptied before each', '');
    out.push('| query | requests | p50 ms | mean ms | MongoDB cmds/req | Redis round trips/req |', '|---|---:|---:|---:|---:|---:|');
    for (const row of results.cold) {
      out.push(
        `| ${row.query.label} | ${row.requests} | ${row.p50Ms.toFixed(1)} | ${row.meanMs.toFixed(1)} | ${row.mongoPerRequest.toFixed(2)} | ${row.redisPerRequest.toFixed(2)} |`,
      );
    }
  }
  if (results.mixed.length) {
    out.push('', `### Mixed: ${results.mixedShape}`, '');
    out.push(
      '| contender | reads/s | every round’s reads/s | reads | writes (price / review / view) | writes/s | mutations | stale reads | stale price / reviewCount / viewCount | stale reads, all rounds | errors |',
      '|---|---:|---|---:|---|---:|---:|---:|---|---:|---:|',
    );
    for (const { spec, result, roundsReadsPerSec, roundsReads, allRounds } of results.mixed) {
      const { stale, writes, errors } = result;
      const share = result.reads ? `${((stale.reads / result.reads) * 100).toFixed(1)}%` : '–';
      const everyRound = roundsReadsPerSec.map((rate, i) => rateText(rate, roundsReads[i] ?? 0, 'reads')).join(', ');
      const written = writes.price + writes.review + writes.view;
      out.push(
        `| ${spec.label} | ${rateText(result.readsPerSec, result.reads, 'reads')} | ${everyRound} | ${result.reads} | ${writes.price} / ${writes.review} / ${writes.view} | ${rateText(result.writesPerSec, written, 'writes')}${behind(result)} | ${(result.mutationShare * 100).toFixed(0)}% | **${stale.reads}** (${share}) | ${stale.price} / ${stale.reviewCount} / ${stale.viewCount} | **${allRounds.stale}** of ${allRounds.reads} | ${errors.writes + errors.reads + errors.acks} |`,
      );
    }
    for (const { spec, responses } of results.mixed) {
      if (!responses || responses.hits + responses.misses === 0) continue;
      const rate = (100 * responses.hits) / (responses.hits + responses.misses);
      out.push(
        '',
        `${spec.label}: whole-response hit rate ${rate.toFixed(1)}% (${responses.hits} hits, ${responses.misses} misses, all rounds), ` +
          'with views in the mix: a view voids only the responses that show `viewCount` (the catalog read does not select it).',
      );
    }
    const examples = results.mixed.filter(({ result }) => result.examples.length);
    if (examples.length) {
      out.push('', 'The first stale reads of each contender that had any, and its oldest (last):', '');
      for (const { spec, result } of examples) {
        const lines = [...result.examples, ...(result.oldest ? [result.oldest] : [])].map(
          (e) =>
            `${e.read} read of ${e.productId}: ${e.field} ${e.shown}, but ${e.floor} was acknowledged ${e.ackedMsBefore} ms before the read began`,
        );
        out.push(`- ${spec.label}: ${lines.join('; ')}`);
      }
    }
    const failing = results.mixed.filter(({ result }) => result.errors.first);
    for (const { spec, result } of failing) out.push(`- ${spec.label}: first error: ${result.errors.first}`);
  }
  return out.join('\n');
}

/** A contender whose writers fell behind their schedule did fewer writes than the others: say so. */
function behind({ writes, writesDue }: MixedResult): string {
  const done = writes.price + writes.review + writes.view;
  return done < 0.95 * writesDue ? ` (behind: ${done} of ${writesDue} due)` : '';
}

const COLORS: Record<ContenderKey, string> = {
  project: '#1f77b4',
  'project-responses': '#17becf',
  'project-no-l1': '#6baed6',
  'project-two': '#08519c',
  'project-no-cache': '#9ecae1',
  apollo: '#ff7f0e',
  'apollo-response-cache': '#d62728',
  'apollo-memory': '#2ca02c',
};

/**
 * A horizontal bar chart on a log scale (the contenders span three orders of magnitude): per read
 * query the median req/s of each contender with its ratio to the in-memory floor, then the mixed
 * workload's reads/s with the share of stale reads.
 */
export function svgChart(results: Results): string {
  const groups: { title: string; bars: { spec: ContenderSpec; value: number; note: string }[] }[] = results.reads.map(
    ({ query, cells }) => {
      const floor = reqPerSec(cells.get('apollo-memory'));
      return {
        title: `${query.label}: requests/s`,
        bars: results.contenders
          .filter((spec) => !spec.mixedOnly)
          .map((spec) => {
            const cell = cells.get(spec.key);
            const value = reqPerSec(cell);
            if (cell?.rounds.length && !value) return { spec, value, note: rateText(0, cellRequests(cell)) };
            const note = spec.key === 'apollo-memory' ? 'floor' : floor > 0 ? `${ratioText(value / floor)}× floor` : '';
            return { spec, value, note };
          }),
      };
    },
  );
  if (results.mixed.length) {
    groups.push({
      title: 'mixed workload (reads + sequential writers): reads/s, and the reads that were stale',
      bars: results.mixed.map((entry) => ({
        spec: entry.spec,
        value: mixedReadsPerSec(entry),
        note:
          entry.result.reads < MIN_REQUESTS
            ? rateText(0, entry.result.reads, 'reads')
            : `${entry.result.stale.reads ? ((entry.result.stale.reads / Math.max(entry.result.reads, 1)) * 100).toFixed(1) : 0}% stale`,
      })),
    });
  }
  const width = 960;
  const labelWidth = 220;
  const plotLeft = labelWidth + 10;
  const plotWidth = width - plotLeft - 170;
  const barHeight = 16;
  const barGap = 4;
  const groupGap = 34;
  const top = 56;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0);
  const min = 10 ** Math.floor(Math.log10(Math.max(Math.min(...values, 1), 0.1)));
  const max = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const x = (v: number) => plotLeft + ((Math.log10(Math.max(v, min)) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) * plotWidth;
  const groupHeights = groups.map((g) => g.bars.length * (barHeight + barGap) + groupGap);
  const plotBottom = top + groupHeights.reduce((sum, h) => sum + h, 0) - groupGap + 6;
  const height = plotBottom + 30;
  const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Throughput (log scale; reads: median of the rounds, ${esc(results.meta.settings)})</text>`,
  ];
  for (let decade = min; decade <= max; decade *= 10) {
    const gx = x(decade).toFixed(1);
    parts.push(`<line x1="${gx}" y1="${top - 10}" x2="${gx}" y2="${plotBottom}" stroke="#dddddd"/>`);
    parts.push(
      `<text x="${gx}" y="${top - 14}" text-anchor="middle" fill="#666666">${decade >= 1 ? decade.toLocaleString('en-US') : decade}</text>`,
    );
  }
  let y0 = top;
  groups.forEach((group, g) => {
    parts.push(`<text x="10" y="${y0 + 2}" font-weight="bold">${esc(group.title)}</text>`);
    group.bars.forEach(({ spec, value, note }, i) => {
      const y = y0 + 8 + i * (barHeight + barGap);
      parts.push(`<text x="${labelWidth}" y="${y + barHeight - 4}" text-anchor="end" fill="#333333">${esc(spec.label)}</text>`);
      if (!value) {
        // Too few requests to time: the note says so where the bar would be.
        if (note) parts.push(`<text x="${plotLeft + 5}" y="${y + barHeight - 4}" fill="#666666">${esc(note)}</text>`);
        return;
      }
      const w = Math.max(x(value) - plotLeft, 1);
      parts.push(`<rect x="${plotLeft}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLORS[spec.key]}"/>`);
      const shown = value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
      parts.push(
        `<text x="${(plotLeft + w + 5).toFixed(1)}" y="${y + barHeight - 4}" fill="#111111">${shown}${note ? ` (${esc(note)})` : ''}</text>`,
      );
    });
    y0 += groupHeights[g] as number;
  });
  parts.push(
    `<text x="${width - 10}" y="${height - 10}" text-anchor="end" fill="#666666">${esc(results.meta.date.slice(0, 10))}, ${esc(results.meta.machine.split(',')[0] ?? '')}, ${esc(results.meta.mongodb.split(',')[0] ?? '')}</text>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
