import type { TestApp } from './test-app.js';

/**
 * Where metrics are read from: a test app (its registry, in process), the URL of a `/metrics`
 * endpoint (fetched), or Prometheus exposition text already read (see {@link metricsText}).
 */
export type MetricsSource = TestApp | string;

/** The Prometheus exposition text of `source`. */
export async function metricsText(source: MetricsSource): Promise<string> {
  if (typeof source !== 'string') return source.app.metrics.registry.metrics();
  if (!/^https?:\/\/\S+$/.test(source)) return source;
  const response = await fetch(source);
  if (!response.ok) throw new Error(`GET ${source}: ${response.status}`);
  return response.text();
}

/**
 * The sum of the samples named `name` (e.g. `cache_hits_total`, or `<histogram>_count`) whose
 * labels include `labels`; 0 when none has been counted. Throws when `source` has no such metric.
 */
export async function metricValue(source: MetricsSource, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await metricsText(source);
  let known = false;
  let sum = 0;
  for (const line of text.split('\n')) {
    const family = /^# TYPE (\S+) /.exec(line)?.[1];
    if (family !== undefined) {
      known ||= name === family || ['_count', '_sum', '_bucket'].some((suffix) => name === `${family}${suffix}`);
      continue;
    }
    const sample = parseSample(line);
    if (sample?.name !== name) continue;
    known = true;
    if (Object.entries(labels).every(([label, want]) => sample.labels[label] === want)) sum += sample.value;
  }
  if (!known) throw new Error(`no metric ${name}`);
  return sum;
}

/** One sample line, `name{label="value",…} value [timestamp]`; null for comments and blank lines. */
function parseSample(line: string): { name: string; labels: Record<string, string>; value: number } | null {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
  if (!match?.[1] || match[3] === undefined) return null;
  const labels: Record<string, string> = {};
  for (const [, label, escaped] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    if (label !== undefined) labels[label] = (escaped ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  const raw = match[3];
  const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
  return { name: match[1], labels, value };
}
