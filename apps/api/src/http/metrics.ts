import type { Registry } from '@inflow/shared';
import type { RequestHandler, Router } from 'express';
import { Router as createRouter } from 'express';
import { Counter, Gauge, Histogram } from 'prom-client';
import { allowOnly } from './method-guard.ts';

/** Counts and times every request by route pattern (not raw path: ids would explode the series). */
export function httpMetrics(registry: Registry): RequestHandler {
  const requests = new Counter({
    name: 'inflow_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'inflow_http_request_duration_seconds',
    help: 'Time from request to response, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return (req, res, next) => {
    const startedAt = process.hrtime.bigint();
    res.once('finish', () => {
      const route: unknown = (req.route as { path?: unknown } | undefined)?.path;
      const labels = { method: req.method, route: typeof route === 'string' ? route : 'other', status: String(res.statusCode) };
      requests.inc(labels);
      duration.observe(labels, Number(process.hrtime.bigint() - startedAt) / 1e9);
    });
    next();
  };
}

/** 1 while this replica is ready (every dependency answers and it is not draining), else 0; read at scrape time. */
export function registerReadyGauge(registry: Registry, isReady: () => Promise<boolean>): void {
  new Gauge({
    name: 'inflow_api_ready',
    help: '1 while this API replica is ready to accept entries (Redis and PostgreSQL answer, not draining), else 0',
    registers: [registry],
    async collect() {
      this.set((await isReady()) ? 1 : 0);
    },
  });
}

/** GET /metrics in Prometheus text format, on the ops port only (ops/ops-server.ts), which nginx never proxies. */
export function metricsRoute(registry: Registry): Router {
  const router = createRouter();
  router
    .route('/metrics')
    .get(async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    })
    .all(allowOnly('GET'));
  return router;
}
