import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { metricsText } from '../helpers/metrics.js';
import { familyOf, metricFamilies, promqlMetricNames } from '../helpers/promql.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// The monitoring profile (docker-compose.yml, monitoring/): every metric the Grafana dashboard
// queries is one the server registers, and Prometheus scrapes the compose services where they listen.

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating?: { list?: { type?: string; name?: string; query?: string | { query?: string } }[] };
  annotations?: { list?: (Target & { name?: string })[] };
}
interface ComposeService {
  image?: string;
  profiles?: string[];
  environment?: Record<string, string> | string[];
  volumes?: string[];
  ports?: string[];
}
interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type?: string; port?: number }[];
}

const DASHBOARD_PATH = 'monitoring/grafana/dashboards/graphql-cache.json';
const dashboard = JSON.parse(read(DASHBOARD_PATH)) as Dashboard;
const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService> };
const prometheus = parse(read('monitoring/prometheus/prometheus.yml')) as { scrape_configs: ScrapeConfig[]; rule_files?: string[] };
const alerts = parse(read('monitoring/prometheus/alerts.yml')) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] };
const datasources = parse(read('monitoring/grafana/provisioning/datasources/prometheus.yml')) as {
  datasources: { uid: string; type: string; url: string }[];
};
const providers = parse(read('monitoring/grafana/provisioning/dashboards/dashboards.yml')) as {
  providers: { options: { path: string } }[];
};

/** Every panel, those inside rows too. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

/** Each PromQL query of the dashboard (panel targets, annotations, query variables), with where it is. */
function dashboardQueries(board: Dashboard): { where: string; expr: string }[] {
  const queries: { where: string; expr: string }[] = [];
  for (const panel of allPanels(board.panels)) {
    for (const target of panel.targets ?? []) {
      if (target.expr) queries.push({ where: `panel "${panel.title}" ${target.refId ?? ''}`, expr: target.expr });
    }
  }
  for (const annotation of board.annotations?.list ?? []) {
    if (annotation.expr) queries.push({ where: `annotation "${annotation.name}"`, expr: annotation.expr });
  }
  for (const variable of board.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
    // label_values(<selector>, label), query_result(<expr>); label_names() and metrics(regex) select no series.
    const inner = /^\s*label_values\((.*),\s*\w+\s*\)\s*$/s.exec(query)?.[1] ?? /^\s*query_result\((.*)\)\s*$/s.exec(query)?.[1];
    if (inner) queries.push({ where: `variable $${variable.name}`, expr: inner });
  }
  return queries;
}

/** What the dashboard queries that `families` lacks (or cannot be checked), one line each; and the families it uses. */
function checkDashboard(board: Dashboard, families: ReadonlyMap<string, string>): { problems: string[]; used: Set<string> } {
  const problems: string[] = [];
  const used = new Set<string>();
  for (const { where, expr } of dashboardQueries(board)) {
    let names: string[];
    try {
      names = promqlMetricNames(expr);
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
      continue;
    }
    if (names.length === 0) problems.push(`${where}: selects no metric: ${expr}`);
    for (const name of names) {
      const family = familyOf(name, families);
      if (family) used.add(family);
      else problems.push(`${where}: ${name} is not in /metrics`);
    }
  }
  return { problems, used };
}

/** A compose service's environment as an object (compose allows a map or `KEY=value` lines). */
function environment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]));
  return Object.fromEntries(env.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

/** The port a compose service serves /metrics on: the worker's WORKER_METRICS_PORT, the server's METRICS_PORT, else its PORT. */
function metricsPort(service: ComposeService): number | undefined {
  const env = environment(service);
  const port = env.WORKER_METRICS_PORT ?? env.METRICS_PORT ?? env.PORT;
  return port === undefined ? undefined : Number(port);
}

describe('PromQL metric names', () => {
  it('finds the selected series and skips functions, matchers, label lists, ranges and variables', () => {
    expect(
      promqlMetricNames(
        'histogram_quantile(0.99, sum by (le, op) (rate(cache_redis_duration_seconds_bucket{op=~"get|set", job!="x"}[$__rate_interval])))',
      ),
    ).toEqual(['cache_redis_duration_seconds_bucket']);
    expect(
      promqlMetricNames(
        '(sum by (name) (rate(cache_hits_total{name!~".+\\\\..+"}[5m])) or sum(rate(cache_misses_total[1h:1m] offset 5m)) without (job) * 0) / on (name) group_left () max_over_time(up{}[5m] @ end())',
      ).sort(),
    ).toEqual(['cache_hits_total', 'cache_misses_total', 'up']);
    expect(promqlMetricNames('{__name__="cache_breaker_state", job="app"} > bool 1e3 and topk(5, x:recorded:rate5m)')).toEqual([
      'cache_breaker_state',
      'x:recorded:rate5m',
    ]);
    expect(promqlMetricNames('sum(rate(foo_total{label="by (bar) sum("}[${interval}])) # baz_total')).toEqual(['foo_total']);
    expect(() => promqlMetricNames('histogram_quantil(0.5, x_bucket)')).toThrow(/unknown PromQL function histogram_quantil/);
    expect(() => promqlMetricNames('{__name__=~"cache_.*"}')).toThrow(/__name__ =~/);
  });

  it('maps a histogram series back to its family', () => {
    const families = new Map([
      ['h_seconds', 'histogram'],
      ['c_total', 'counter'],
      ['s', 'summary'],
    ]);
    expect(['h_seconds_bucket', 'h_seconds_sum', 'h_seconds_count', 'c_total', 's_count'].map((n) => familyOf(n, families))).toEqual([
      'h_seconds',
      'h_seconds',
      'h_seconds',
      'c_total',
      's',
    ]);
    expect(['c_total_count', 's_bucket', 'h_seconds_total', 'nope'].map((n) => familyOf(n, families))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe('the Grafana dashboard', () => {
  let t: TestApp;
  let families: Map<string, string>;
  beforeAll(async () => {
    t = await startTestApp({ seed: false });
    families = metricFamilies(await metricsText(`${t.url}/metrics`));
  });
  afterAll(() => t?.stop());

  it('queries only metrics that the server registers at /metrics', () => {
    const { problems, used } = checkDashboard(dashboard, families);
    expect(problems).toEqual([]);
    // What the dashboard is for (docs/operations.md, Dashboard).
    expect([...used].sort()).toEqual(
      expect.arrayContaining([
        'cache_breaker_state',
        'cache_hits_total',
        'cache_misses_total',
        'cache_redis_duration_seconds',
        'graphql_operations_total',
        'graphql_request_mongodb_commands',
        'graphql_request_redis_round_trips',
        'write_behind_dead_letters_total',
        'write_behind_flush_duration_seconds',
        'write_behind_queue_depth',
        'cache_audit_checked_total',
        'cache_audit_mismatches_total',
      ]),
    );
  });

  it('fails on a metric the server does not register', () => {
    const probe: Dashboard = {
      uid: 'probe',
      panels: [
        {
          type: 'row',
          title: 'Row',
          panels: [
            {
              type: 'timeseries',
              title: 'Probe',
              targets: [
                { refId: 'A', expr: 'sum(rate(cache_hits_total[5m]))' },
                { refId: 'B', expr: 'histogram_quantile(0.9, sum by (le) (rate(cache_no_such_seconds_bucket[5m])))' },
                { refId: 'C', expr: 'sum(rate(cache_hits_total_bucket[5m]))' },
                { refId: 'D', expr: 'vector(1)' },
              ],
            },
          ],
        },
      ],
      templating: { list: [{ type: 'query', name: 'op', query: { query: 'label_values(cache_redis_op_seconds_count, op)' } }] },
    };
    expect(checkDashboard(probe, families).problems).toEqual([
      'panel "Probe" B: cache_no_such_seconds_bucket is not in /metrics',
      'panel "Probe" C: cache_hits_total_bucket is not in /metrics',
      'panel "Probe" D: selects no metric: vector(1)',
      'variable $op: cache_redis_op_seconds_count is not in /metrics',
    ]);
  });

  it('has alert rules, loaded by Prometheus and mounted by compose, on metrics the server registers', () => {
    expect(prometheus.rule_files).toEqual(['alerts.yml']);
    expect(compose.services.prometheus?.volumes).toContain('./monitoring/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
    const rules = alerts.groups.flatMap((group) => group.rules);
    expect(rules.map((rule) => rule.alert)).toContain('CacheAuditMismatch');
    const board: Dashboard = {
      uid: 'alerts',
      panels: rules.map((rule) => ({ type: 'stat', title: rule.alert, targets: [{ expr: rule.expr }] })),
    };
    expect(checkDashboard(board, families).problems).toEqual([]);
  });

  it('has queries in every panel, on the provisioned Prometheus datasource', () => {
    const [datasource] = datasources.datasources;
    expect(datasource?.type).toBe('prometheus');
    const panels = allPanels(dashboard.panels).filter((panel) => panel.type !== 'row');
    expect(panels.length).toBeGreaterThan(0);
    expect(new Set(panels.map((panel) => panel.id)).size).toBe(panels.length);
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const ds of [panel.datasource, ...(panel.targets ?? []).map((target) => target.datasource)]) {
        expect(ds, panel.title).toEqual({ type: 'prometheus', uid: datasource?.uid });
      }
    }
  });
});

describe('the monitoring profile', () => {
  it('scrapes the compose services on the ports where they serve /metrics', () => {
    const scraped = new Map<string, number>();
    for (const job of prometheus.scrape_configs) {
      expect(job.metrics_path ?? '/metrics', job.job_name).toBe('/metrics');
      const targets = [
        ...(job.static_configs ?? []).flatMap((c) =>
          c.targets.map((target) => {
            const [host = '', port] = target.split(':');
            return { host, port: Number(port) };
          }),
        ),
        ...(job.dns_sd_configs ?? []).flatMap((c) => c.names.map((host) => ({ host, port: c.port }))),
      ];
      expect(targets.length, job.job_name).toBeGreaterThan(0);
      for (const { host, port } of targets) {
        const service = compose.services[host];
        expect(service, `${job.job_name}: ${host} is a compose service`).toBeDefined();
        expect(port, `${job.job_name}: ${host}'s metrics port`).toBe(metricsPort(service ?? {}));
        scraped.set(host, port ?? 0);
      }
    }
    // The app and the worker, whatever else may be added.
    expect([...scraped.keys()]).toEqual(expect.arrayContaining(['app', 'worker']));
  });

  it('runs Prometheus and Grafana, pinned, only with --profile monitoring', () => {
    const { prometheus: prom, grafana } = compose.services;
    for (const service of [prom, grafana]) {
      expect(service?.profiles).toEqual(['monitoring']);
      expect(service?.image).toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+$/);
    }
    const services = Object.entries(compose.services);
    expect(services.filter(([, s]) => s.profiles?.includes('monitoring')).map(([name]) => name)).toEqual(['prometheus', 'grafana']);
    // Without a profile: MongoDB, Redis and the app, as before.
    expect(services.filter(([, s]) => !s.profiles).map(([name]) => name)).toEqual(['mongo', 'redis', 'app']);

    expect(prom?.volumes).toContain('./monitoring/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    expect(grafana?.volumes).toEqual(
      expect.arrayContaining([
        './monitoring/grafana/provisioning:/etc/grafana/provisioning:ro',
        `./monitoring/grafana/dashboards:${providers.providers[0]?.options.path}:ro`,
      ]),
    );
    // Grafana reaches Prometheus by its service name, on Prometheus's port.
    expect(datasources.datasources[0]?.url).toBe('http://prometheus:9090');
    expect(prom?.ports).toEqual(['127.0.0.1:9090:9090']);
  });
});
