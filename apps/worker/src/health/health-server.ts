import { createServer, type Server } from 'node:http';
import { checkReadiness, type DependencyCheck, type Registry } from '@inflow/shared';

/**
 * The worker's small HTTP server for container health checks: /healthz (the process answers)
 * and /readyz (Redis and PostgreSQL answer and the worker is consuming), and /metrics.
 */
export function createHealthServer(deps: { instanceId: string; checks: readonly DependencyCheck[]; metrics: Registry }): Server {
  return createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'X-Instance-Id': deps.instanceId });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, { error: { code: 'method_not_allowed', message: `${req.method ?? ''} is not allowed here; use GET` } });
      return;
    }
    if (path === '/healthz') {
      send(200, { status: 'ok', instanceId: deps.instanceId });
      return;
    }
    if (path === '/readyz') {
      void checkReadiness(deps.checks).then(({ ok, checks, failed }) => {
        if (ok) send(200, { status: 'ready', instanceId: deps.instanceId, checks });
        else send(503, { error: { code: 'dependency_unavailable', message: `not ready: ${failed.join(' and ')} unavailable` }, checks });
      });
      return;
    }
    if (path === '/metrics') {
      void deps.metrics.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': deps.metrics.contentType, 'X-Instance-Id': deps.instanceId });
        res.end(text);
      });
      return;
    }
    send(404, { error: { code: 'not_found', message: `no route for ${req.method} ${path ?? ''}` } });
  });
}
