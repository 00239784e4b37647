// npm run check:write-behind — are write-behind view counts exact under load? Views of one
// product recorded by 4 clients while an admin sets its stock (a synchronous write of the same
// document) 7 times a second (on a fixed schedule: slow writes overlap) and 3 readers read it:
// no read may show fewer views than were acknowledged before it began, and MongoDB must hold
// exactly the acknowledged views soon after the load stops. Two scenarios, each on a fresh product: the plain load, and the load
// with Redis frozen (SIGSTOP) for FREEZE_SECONDS from 5 s in. Exits 1 on any stale or
// impossible answer or a final mismatch.
//
// BENCH_SECONDS (default 20) is each scenario's load, FREEZE_SECONDS (default 10) the freeze;
// LOG_LEVEL (default error) the app's log, on stderr. Other app variables (CACHE_*,
// WRITE_BEHIND_*, REDIS_COMMAND_TIMEOUT_MS…) pass through; the worker always runs in-process.
// Embedded MongoDB and Redis only (the freeze needs the redis-server's pid); loopback only.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { startApp, type App } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { BENCH_VIEW_LIMITS } from './lib/contenders.js';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/dev/embedded-redis.js';
import { seedDemoData } from '../src/dev/seed.js';
import type { Logger } from '../src/logger.js';
import { ProductModel } from '../src/models/index.js';
import type { ProductDoc } from '../src/models/product.model.js';

const loadSeconds = positiveNumber('BENCH_SECONDS', 20);
const freezeSeconds = positiveNumber('FREEZE_SECONDS', 10);
/** When the freeze starts, in milliseconds after the load started. */
const FREEZE_AT_MS = 5_000;
const VIEW_CLIENTS = 4;
const READERS = 3;
const STOCK_WRITES_PER_SECOND = 7;
/** How long MongoDB may take to hold every acknowledged view once the load stopped, in milliseconds. */
const CONVERGE_TIMEOUT_MS = 60_000;
/** A request unanswered this long is abandoned (its outcome unknown), in milliseconds. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Stock values written are STOCK_BASE + 1, + 2, …: increasing, so a read can tell an old one. */
const STOCK_BASE = 10_000;
/** Stock writes sent and not yet answered, at most (a tick finding this many skips its write). */
const MAX_STOCK_WRITES_IN_FLIGHT = 16;
/** Stale or impossible answers printed in full, per kind. */
const DETAILS_SHOWN = 10;

const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';
const UPDATE = 'mutation($id: ID!, $stock: Int!) { updateProduct(id: $id, input: { stock: $stock }) { stock viewCount } }';
const READ = 'query($id: ID!) { product(id: $id) { viewCount stock } }';
const LOGIN = 'mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }';

const logger: Logger = pino({ level: process.env.LOG_LEVEL ?? 'error' }, pino.destination(2));

async function main(): Promise<boolean> {
  const base = loadConfig({ ...process.env, NODE_ENV: 'development' });
  const mongo = await startEmbeddedMongo({ logger, prefer: base.embeddedMongodb, ferretdbBin: base.ferretdbBin });
  let redis: EmbeddedRedis | null = null;
  const results: ScenarioResult[] = [];
  try {
    redis = await startEmbeddedRedis();
    const mongodbUri = `${mongo.uri}/wbcheck`;
    console.log(
      `MongoDB: ${mongo.kind}; Redis pid ${redis.pid}. Per scenario: ${loadSeconds} s, ${VIEW_CLIENTS} view clients, ` +
        `${READERS} readers, 1 admin setting stock ~${STOCK_WRITES_PER_SECOND}/s`,
    );
    const scenarios: ScenarioOptions[] = [
      { name: 'plain load', productId: '5eed00010000000000000001', freeze: null },
      {
        name: `Redis frozen ${freezeSeconds} s from ${FREEZE_AT_MS / 1_000} s`,
        productId: '5eed00010000000000000002',
        freeze: { redis, atMs: FREEZE_AT_MS, forMs: freezeSeconds * 1_000 },
      },
    ];
    for (const [index, scenario] of scenarios.entries()) {
      const config = appConfig(mongodbUri, redis.url);
      const app = await startApp({ config, logger, mongodbUri, redisUrl: redis.url });
      try {
        if (index === 0) await seedDemoData({ logger, admin: config.seedAdmin });
        const result = await runScenario(app, config, scenario);
        results.push(result);
        printScenario(result);
      } finally {
        await app.stop();
      }
    }
  } finally {
    await redis?.stop();
    await mongo.stop();
  }
  console.log('\nSummary');
  const rows = Object.keys(results[0]?.summary ?? {});
  console.table(Object.fromEntries(rows.map((row) => [row, Object.fromEntries(results.map((r) => [r.name, r.summary[row] ?? '']))])));
  const failed = results.filter((r) => r.failures.length > 0);
  for (const r of failed) console.log(`FAIL ${r.name}: ${r.failures.join('; ')}`);
  if (!failed.length) console.log('PASS: no stale or impossible answers; MongoDB exact in every scenario');
  return failed.length === 0;
}

interface ScenarioOptions {
  name: string;
  /** A seeded product nobody viewed yet. */
  productId: string;
  /** Null: no freeze. */
  freeze: { redis: EmbeddedRedis; atMs: number; forMs: number } | null;
}

/** An answer that showed too few views (or an old stock), or more views than were ever sent. */
interface Anomaly {
  kind: string;
  /** When the request was sent and answered, in seconds after the load started. */
  sentS: number;
  answeredS: number;
  phase: string;
  saw: number;
  /** The least (stale) or most (impossible) it could correctly have shown. */
  bound: number;
}

interface ScenarioResult {
  name: string;
  summary: Record<string, string | number>;
  failures: string[];
  anomalies: Anomaly[];
  errorSamples: string[];
  phases: Record<string, Record<string, number>> | null;
  metrics: Record<string, number | string>;
  freezeWindowS: [number, number] | null;
}

/** The load's shared ledger: every answer is checked against what was acknowledged before its request was sent. */
interface Ledger {
  t0: number;
  initialViews: number;
  /** Views sent so far (acknowledged, failed and in flight). */
  viewsSent: number;
  /** Arrival time (performance.now()) of each acknowledged view, in order. */
  viewAcks: number[];
  viewErrors: number;
  /** Views with no answer at all (network failure or timeout): they may or may not have counted. */
  viewsLost: number;
  stockAcks: number;
  stockErrors: number;
  /** Ticks with no write sent because MAX_STOCK_WRITES_IN_FLIGHT were unanswered. */
  stockSkipped: number;
  reads: number;
  readErrors: number;
  /** The highest stock value sent so far (values only grow). */
  stockSent: number;
  /** Each stock write by value: when it was sent, and when its acknowledgement arrived (undefined: not, or failed). */
  stockWrites: Map<number, { sentAt: number; ackAt?: number }>;
  /** Of the stock writes acknowledged so far, the one sent last (null: none yet). */
  latestAckedStock: { value: number; sentAt: number } | null;
  staleReads: number;
  worstReadShortfall: number;
  staleStockReads: number;
  staleViewAnswers: number;
  staleUpdateAnswers: number;
  overCounts: number;
  anomalies: Anomaly[];
  errorSamples: string[];
  latenciesMs: { view: number[]; read: number[]; update: number[] };
  /** Events by phase (before/frozen/after the freeze), for the freeze scenario. */
  phaseOf(at: number): string;
  phases: Record<string, Record<string, number>>;
}

async function runScenario(app: App, config: Config, options: ScenarioOptions): Promise<ScenarioResult> {
  const url = `${app.url}/graphql`;
  const id = options.productId;
  const client = app.cache.store?.client;
  if (!client || !app.cache.writeBehind.available) throw new Error('write-behind is unavailable: nothing to check');
  const stream = app.cache.keys.writeQueue.stream;
  const stored = await storedViews(id);
  const queued = await client.xlen(stream);
  const read = await post(url, READ, { id });
  if (read.kind !== 'ok') throw new Error(`the first read failed: ${read.message}`);
  const shown = (read.data.product as { viewCount: number }).viewCount;
  if (queued !== 0 || shown !== stored)
    throw new Error(`not a fresh start: MongoDB has ${stored} views, reads show ${shown}, ${queued} queued`);
  const login = await post(url, LOGIN, { email: config.seedAdmin.email, password: config.seedAdmin.password });
  if (login.kind !== 'ok') throw new Error(`admin login failed: ${login.message}`);
  const token = (login.data.login as { token: string }).token;

  const freezeWindow: { startMs: number; endMs: number } = { startMs: Number.POSITIVE_INFINITY, endMs: Number.POSITIVE_INFINITY };
  const ledger = newLedger(stored, (at) =>
    !options.freeze ? 'load' : at < freezeWindow.startMs ? 'before freeze' : at < freezeWindow.endMs ? 'frozen' : 'after freeze',
  );
  const deadline = ledger.t0 + loadSeconds * 1_000;
  let frozen = false;
  const resume = (): void => {
    if (!frozen || !options.freeze) return;
    frozen = false;
    process.kill(options.freeze.redis.pid, 'SIGCONT');
    freezeWindow.endMs = performance.now();
  };
  // Never leave Redis stopped, whatever ends this process.
  const onSignal = (signal: NodeJS.Signals): void => {
    resume();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', resume);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let loadEnd: number;
  try {
    const freeze = async (): Promise<void> => {
      if (!options.freeze) return;
      await sleep(Math.max(0, ledger.t0 + options.freeze.atMs - performance.now()));
      process.kill(options.freeze.redis.pid, 'SIGSTOP');
      frozen = true;
      freezeWindow.startMs = performance.now();
      freezeWindow.endMs = Number.POSITIVE_INFINITY;
      await sleep(options.freeze.forMs);
      resume();
    };
    await Promise.all([
      freeze(),
      ...Array.from({ length: VIEW_CLIENTS }, () => viewClient(url, id, deadline, ledger)),
      ...Array.from({ length: READERS }, () => reader(url, id, deadline, ledger)),
      stockWriter(url, id, token, deadline, ledger),
    ]);
    loadEnd = performance.now();
  } finally {
    resume();
    process.removeListener('exit', resume);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  // MongoDB must come to hold exactly the acknowledged views, and the queue must drain.
  const expected = ledger.initialViews + ledger.viewAcks.length;
  const upper = expected + ledger.viewsLost;
  let final = Number.NaN;
  let left: number | null = null;
  let convergedS: number | null = null;
  while (performance.now() - loadEnd < CONVERGE_TIMEOUT_MS) {
    final = await storedViews(id);
    left = await client.xlen(stream).catch(() => null);
    if (left === 0 && final >= expected && final <= upper) {
      convergedS = (performance.now() - loadEnd) / 1_000;
      break;
    }
    await sleep(100);
  }
  // Nothing may arrive late: the count stays, and reads agree with MongoDB.
  await sleep(2_000);
  const settled = await storedViews(id);
  const after = await post(url, READ, { id });
  const readAfter = after.kind === 'ok' ? (after.data.product as { viewCount: number }).viewCount : Number.NaN;

  const exact = final === expected;
  const failures: string[] = [];
  if (ledger.staleReads) failures.push(`${ledger.staleReads} stale reads (worst ${ledger.worstReadShortfall} views short)`);
  if (ledger.staleStockReads) failures.push(`${ledger.staleStockReads} reads with an old stock`);
  if (ledger.staleViewAnswers) failures.push(`${ledger.staleViewAnswers} stale recordProductView answers`);
  if (ledger.staleUpdateAnswers) failures.push(`${ledger.staleUpdateAnswers} stale updateProduct answers`);
  if (ledger.overCounts) failures.push(`${ledger.overCounts} answers showing more views than were sent`);
  if (convergedS === null)
    failures.push(
      `MongoDB did not converge in ${CONVERGE_TIMEOUT_MS / 1_000} s: ${final} views, expected ${expected}, ${left ?? '?'} queued`,
    );
  else if (!exact && ledger.viewsLost === 0) failures.push(`MongoDB holds ${final} views, expected ${expected}`);
  if (!exact && final > expected && ledger.viewErrors > 0 && ledger.viewsLost === 0)
    failures.push(`${final - expected} views answered with an error were counted`);
  if (settled !== final) failures.push(`MongoDB changed after converging: ${final} then ${settled}`);
  if (readAfter !== settled) failures.push(`a read after the load shows ${readAfter} views, MongoDB ${settled}`);

  const elapsedS = (loadEnd - ledger.t0) / 1_000;
  const perSecond = (n: number): number => Math.round((n / elapsedS) * 10) / 10;
  const summary: Record<string, string | number> = {
    'views acknowledged': ledger.viewAcks.length,
    'views answered with an error': ledger.viewErrors,
    'views unanswered (outcome unknown)': ledger.viewsLost,
    'stock writes acknowledged': ledger.stockAcks,
    'stock writes failed': ledger.stockErrors,
    'stock writes skipped (too many in flight)': ledger.stockSkipped,
    reads: ledger.reads,
    'reads failed': ledger.readErrors,
    'stale reads (views)': ledger.staleReads,
    'worst read shortfall (views)': ledger.worstReadShortfall,
    'stale reads (stock)': ledger.staleStockReads,
    'stale view answers': ledger.staleViewAnswers,
    'stale updateProduct answers': ledger.staleUpdateAnswers,
    'answers above views sent': ledger.overCounts,
    'MongoDB final': final,
    'MongoDB expected': ledger.viewsLost ? `${expected}..${upper}` : expected,
    exact: exact ? 'yes' : 'no',
    'MongoDB 2 s later': settled,
    'read after load': readAfter,
    'seconds to converge': convergedS === null ? `> ${CONVERGE_TIMEOUT_MS / 1_000}` : round(convergedS, 2),
    'load seconds': round(elapsedS, 1),
    'views/s': perSecond(ledger.viewAcks.length + ledger.viewErrors + ledger.viewsLost),
    'stock writes/s': perSecond(ledger.stockAcks + ledger.stockErrors),
    'reads/s': perSecond(ledger.reads + ledger.readErrors),
    'view p50/p99/max ms': latencies(ledger.latenciesMs.view),
    'update p50/p99/max ms': latencies(ledger.latenciesMs.update),
    'read p50/p99/max ms': latencies(ledger.latenciesMs.read),
  };
  return {
    name: options.name,
    summary,
    failures,
    anomalies: ledger.anomalies,
    errorSamples: ledger.errorSamples,
    phases: options.freeze ? ledger.phases : null,
    metrics: await counters(app),
    freezeWindowS: options.freeze
      ? [round((freezeWindow.startMs - ledger.t0) / 1_000, 2), round((freezeWindow.endMs - ledger.t0) / 1_000, 2)]
      : null,
  };
}

/** Records views back to back until the deadline; checks each answer against the views acknowledged before it was sent. */
async function viewClient(url: string, id: string, deadline: number, ledger: Ledger): Promise<void> {
  while (performance.now() < deadline) {
    const ackedBefore = ledger.viewAcks.length;
    const sentAt = performance.now();
    ledger.viewsSent += 1;
    const answer = await post(url, VIEW, { id });
    const at = performance.now();
    const phase = ledger.phaseOf(at);
    if (answer.kind !== 'ok') {
      if (answer.kind === 'lost') ledger.viewsLost += 1;
      else ledger.viewErrors += 1;
      count(ledger, phase, answer.kind === 'lost' ? 'views unanswered' : 'views failed');
      sample(ledger, `recordProductView ${answer.kind} at ${rel(ledger, at)} s: ${answer.message}`);
      if (answer.kind === 'lost') await sleep(50);
      continue;
    }
    ledger.viewAcks.push(at);
    ledger.latenciesMs.view.push(at - sentAt);
    count(ledger, phase, 'views acknowledged');
    const saw = (answer.data.recordProductView as { viewCount: number }).viewCount;
    // Its own view included: at least one more than was acknowledged before it was sent.
    const least = ledger.initialViews + ackedBefore + 1;
    if (saw < least) {
      ledger.staleViewAnswers += 1;
      note(ledger, { kind: 'stale view answer', sentS: rel(ledger, sentAt), answeredS: rel(ledger, at), phase, saw, bound: least });
    }
    checkOverCount(ledger, 'view answer', sentAt, at, saw);
  }
}

/** Reads the product back to back until the deadline. */
async function reader(url: string, id: string, deadline: number, ledger: Ledger): Promise<void> {
  while (performance.now() < deadline) {
    const ackedBefore = ledger.viewAcks.length;
    const stockBefore = ledger.latestAckedStock;
    const sentAt = performance.now();
    const answer = await post(url, READ, { id });
    const at = performance.now();
    const phase = ledger.phaseOf(sentAt);
    if (answer.kind !== 'ok') {
      ledger.readErrors += 1;
      count(ledger, phase, 'reads failed');
      sample(ledger, `read ${answer.kind} at ${rel(ledger, at)} s: ${answer.message}`);
      if (answer.kind === 'lost') await sleep(50);
      continue;
    }
    ledger.reads += 1;
    ledger.latenciesMs.read.push(at - sentAt);
    count(ledger, phase, 'reads');
    const product = answer.data.product as { viewCount: number; stock: number } | null;
    const saw = product?.viewCount ?? Number.NaN;
    const least = ledger.initialViews + ackedBefore;
    if (!(saw >= least)) {
      ledger.staleReads += 1;
      ledger.worstReadShortfall = Math.max(ledger.worstReadShortfall, Number.isNaN(saw) ? Number.POSITIVE_INFINITY : least - saw);
      count(ledger, phase, 'stale reads');
      note(ledger, { kind: 'stale read (views)', sentS: rel(ledger, sentAt), answeredS: rel(ledger, at), phase, saw, bound: least });
    }
    const stock = product?.stock ?? Number.NaN;
    if (stockBefore && !stockMayShow(ledger, stock, stockBefore.sentAt)) {
      ledger.staleStockReads += 1;
      note(ledger, {
        kind: 'stale read (stock)',
        sentS: rel(ledger, sentAt),
        answeredS: rel(ledger, at),
        phase,
        saw: stock,
        bound: stockBefore.value,
      });
    }
    checkOverCount(ledger, 'read', sentAt, at, saw);
  }
}

/**
 * Sets the product's stock to increasing values STOCK_WRITES_PER_SECOND times a second, on a
 * fixed schedule: a slow write (Redis frozen) does not slow the next ones, up to
 * MAX_STOCK_WRITES_IN_FLIGHT unanswered.
 */
async function stockWriter(url: string, id: string, token: string, deadline: number, ledger: Ledger): Promise<void> {
  const intervalMs = 1_000 / STOCK_WRITES_PER_SECOND;
  const inFlight = new Set<Promise<void>>();
  let next = performance.now();
  while (performance.now() < deadline) {
    if (inFlight.size >= MAX_STOCK_WRITES_IN_FLIGHT) ledger.stockSkipped += 1;
    else {
      const write = writeStock(url, id, token, ledger).finally(() => inFlight.delete(write));
      inFlight.add(write);
    }
    next += intervalMs;
    await sleep(Math.max(0, next - performance.now()));
  }
  await Promise.all(inFlight);
}

async function writeStock(url: string, id: string, token: string, ledger: Ledger): Promise<void> {
  const stock = ledger.stockSent + 1;
  ledger.stockSent = stock;
  const ackedBefore = ledger.viewAcks.length;
  const sentAt = performance.now();
  const write: { sentAt: number; ackAt?: number } = { sentAt };
  ledger.stockWrites.set(stock, write);
  const answer = await post(url, UPDATE, { id, stock }, token);
  const at = performance.now();
  const phase = ledger.phaseOf(at);
  if (answer.kind !== 'ok') {
    ledger.stockErrors += 1;
    count(ledger, phase, 'stock writes failed');
    sample(ledger, `updateProduct ${answer.kind} at ${rel(ledger, at)} s: ${answer.message}`);
    return;
  }
  write.ackAt = at;
  ledger.stockAcks += 1;
  if (!ledger.latestAckedStock || sentAt > ledger.latestAckedStock.sentAt) ledger.latestAckedStock = { value: stock, sentAt };
  ledger.latenciesMs.update.push(at - sentAt);
  count(ledger, phase, 'stock writes');
  const answered = answer.data.updateProduct as { viewCount: number; stock: number };
  if (answered.stock !== stock) sample(ledger, `updateProduct of stock ${stock} answered stock ${answered.stock}`);
  const least = ledger.initialViews + ackedBefore;
  if (answered.viewCount < least) {
    ledger.staleUpdateAnswers += 1;
    note(ledger, {
      kind: 'stale updateProduct answer',
      sentS: rel(ledger, sentAt),
      answeredS: rel(ledger, at),
      phase,
      saw: answered.viewCount,
      bound: least,
    });
  }
  checkOverCount(ledger, 'updateProduct answer', sentAt, at, answered.viewCount);
}

/**
 * Whether a read that began after the write sent at `ackedSentAt` was acknowledged may show
 * `stock`. Writes overlap, so a later value need not win; but a write acknowledged before that
 * one was even sent was certainly overwritten by it, and so was the seeded value.
 */
function stockMayShow(ledger: Ledger, stock: number, ackedSentAt: number): boolean {
  const write = ledger.stockWrites.get(stock);
  if (!write) return false;
  return write.ackAt === undefined || write.ackAt >= ackedSentAt;
}

function newLedger(initialViews: number, phaseOf: (at: number) => string): Ledger {
  return {
    t0: performance.now(),
    initialViews,
    viewsSent: 0,
    viewAcks: [],
    viewErrors: 0,
    viewsLost: 0,
    stockAcks: 0,
    stockErrors: 0,
    stockSkipped: 0,
    reads: 0,
    readErrors: 0,
    stockSent: STOCK_BASE,
    stockWrites: new Map(),
    latestAckedStock: null,
    staleReads: 0,
    worstReadShortfall: 0,
    staleStockReads: 0,
    staleViewAnswers: 0,
    staleUpdateAnswers: 0,
    overCounts: 0,
    anomalies: [],
    errorSamples: [],
    latenciesMs: { view: [], read: [], update: [] },
    phaseOf,
    phases: {},
  };
}

/** No answer may show more views than had been sent when it arrived (a view counted twice). */
function checkOverCount(ledger: Ledger, what: string, sentAt: number, at: number, saw: number): void {
  const most = ledger.initialViews + ledger.viewsSent;
  if (saw <= most) return;
  ledger.overCounts += 1;
  note(ledger, {
    kind: `${what} above views sent`,
    sentS: rel(ledger, sentAt),
    answeredS: rel(ledger, at),
    phase: ledger.phaseOf(at),
    saw,
    bound: most,
  });
}

function note(ledger: Ledger, anomaly: Anomaly): void {
  if (ledger.anomalies.filter((a) => a.kind === anomaly.kind).length < DETAILS_SHOWN) ledger.anomalies.push(anomaly);
}

function sample(ledger: Ledger, message: string): void {
  if (ledger.errorSamples.length < DETAILS_SHOWN) ledger.errorSamples.push(message);
}

function count(ledger: Ledger, phase: string, what: string): void {
  const row = (ledger.phases[phase] ??= {});
  row[what] = (row[what] ?? 0) + 1;
}

function rel(ledger: Ledger, at: number): number {
  return round((at - ledger.t0) / 1_000, 3);
}

type Answer =
  | { kind: 'ok'; data: Record<string, unknown> }
  /** An answer with errors (or not JSON): the operation did not take effect. */
  | { kind: 'error'; message: string }
  /** No answer (network failure, timeout): it may or may not have taken effect. */
  | { kind: 'lost'; message: string };

async function post(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<Answer> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await response.text();
  } catch (error) {
    return { kind: 'lost', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
  let body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return { kind: 'error', message: `HTTP ${response.status}: ${text.slice(0, 200)}` };
  }
  if (body.errors?.length || !body.data) {
    const errors = (body.errors ?? []).map((e) => `${e.extensions?.code ?? '?'}: ${e.message}`).join('; ');
    return { kind: 'error', message: `HTTP ${response.status}: ${errors || 'no data'}` };
  }
  return { kind: 'ok', data: body.data };
}

async function storedViews(id: string): Promise<number> {
  const product = await ProductModel.findById(id).lean<ProductDoc>().exec();
  if (!product) throw new Error(`product ${id} is not in MongoDB`);
  return product.viewCount;
}

/** The app's counters of interest, summed over their labels (cache errors also by operation). */
async function counters(app: App): Promise<Record<string, number | string>> {
  const wanted = [
    'write_behind_enqueued_total',
    'write_behind_fallbacks_total',
    'write_behind_flushed_total',
    'write_behind_mongo_writes_total',
    'write_behind_retries_total',
    'write_behind_dead_letters_total',
    'cache_errors_total',
  ];
  const out: Record<string, number | string> = {};
  for (const metric of await app.metrics.registry.getMetricsAsJSON()) {
    if (!wanted.includes(metric.name)) continue;
    const values = (metric as { values?: { value: number; labels: Record<string, string | number> }[] }).values ?? [];
    out[metric.name] = values.reduce((sum, v) => sum + v.value, 0);
    if (metric.name === 'cache_errors_total' && values.length) {
      out['cache_errors_total by op'] = values.map((v) => `${String(v.labels.op)}=${v.value}`).join(', ');
    }
  }
  return out;
}

function printScenario(result: ScenarioResult): void {
  console.log(
    `\n== ${result.name}${result.freezeWindowS ? ` (Redis stopped at ${result.freezeWindowS[0]} s, resumed at ${result.freezeWindowS[1]} s)` : ''}`,
  );
  console.table(result.summary);
  if (result.phases) {
    console.log('by phase (views and stock writes by answer time, reads by start time):');
    console.table(result.phases);
  }
  console.log('app counters:');
  console.table(result.metrics);
  if (result.anomalies.length) {
    console.log(
      'stale or impossible answers (times in s after the load started; bound: the least, or for "above", the most it could show):',
    );
    console.table(result.anomalies);
  }
  if (result.errorSamples.length) console.log(`failed requests (first ${DETAILS_SHOWN}):\n  ${result.errorSamples.join('\n  ')}`);
  console.log(result.failures.length ? `FAIL: ${result.failures.join('; ')}` : 'ok');
}

function appConfig(mongodbUri: string, redisUrl: string): Config {
  return loadConfig({
    ...process.env,
    NODE_ENV: 'production',
    METRICS_PORT: '0',
    ...BENCH_VIEW_LIMITS,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    MONGODB_URI: mongodbUri,
    REDIS_URL: redisUrl,
    REDIS_CLUSTER_NODES: undefined,
    WRITE_BEHIND_WORKER: 'true',
  });
}

function latencies(values: number[]): string {
  if (!values.length) return '-';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
  return `${at(0.5)}/${at(0.99)}/${Math.round(sorted.at(-1) ?? 0)}`;
}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new TypeError(`${name} must be a positive number of seconds, got ${JSON.stringify(raw)}`);
  return value;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

const passed = await main().catch((error: unknown) => {
  console.error(error);
  return false;
});
process.exitCode = passed ? 0 : 1;
// Whatever handle a failed run left open, do not hang.
setTimeout(() => process.exit(process.exitCode), 5_000).unref();
