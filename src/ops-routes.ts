import { createServer, type Server } from 'node:http';
import express, { Router } from 'express';
import { pingRedis, type RedisClient } from 'graphql-lease-cache';
import type { Database } from './db.js';
import type { Metrics } from './metrics.js';

/** Options of {@link opsRoutes}. */
export interface OpsRoutesOptions {
  db: Database;
  redis: RedisClient | null;
  /** Serve GET /metrics from this registry; null: not on this router. */
  metrics: Metrics | null;
  /** GET /readyz names which backing service is down; false: the status alone (a public port in production). */
  details: boolean;
}

/**
 * GET /readyz (MongoDB reachable: 200 `ready`, or `degraded` while Redis is down or disabled,
 * since every query is then served from MongoDB; 503 `unavailable` without MongoDB) and, when
 * given a registry, GET /metrics in Prometheus's text format.
 */
export function opsRoutes(options: OpsRoutesOptions): Router {
  const { db, redis, metrics, details } = options;
  const router = Router();
  router.get('/readyz', async (_req, res) => {
    const [mongoOk, redisOk] = await Promise.all([db.ping(), pingRedis(redis)]);
    const redisState = redis ? (redisOk ? 'up' : 'down') : 'disabled';
    const status = mongoOk ? (redisState === 'up' ? 'ready' : 'degraded') : 'unavailable';
    res.status(mongoOk ? 200 : 503).json(details ? { status, mongodb: mongoOk ? 'up' : 'down', redis: redisState } : { status });
  });
  if (metrics) {
    router.get('/metrics', async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  }
  return router;
}

/** A listening metrics server (METRICS_PORT) and its base URL. */
export interface MetricsServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Serves `routes` (GET /metrics, /readyz) on `host:port` of their own, apart from the app's public port. */
export async function listenMetrics(routes: Router, host: string, port: number): Promise<MetricsServer> {
  const app = express();
  app.disable('x-powered-by');
  app.use(routes);
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return {
    server,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
