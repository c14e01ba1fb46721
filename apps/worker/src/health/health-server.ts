import { createServer, type Server, type ServerResponse } from 'node:http';
import {
  checkReadiness,
  dependencyUnavailable,
  errorBody,
  methodNotAllowed,
  notFound,
  type DependencyCheck,
  type HttpError,
  type Registry,
} from '@inflow/shared';

/**
 * The worker's small HTTP server for container health checks: /healthz (the process answers)
 * and /readyz (Redis and PostgreSQL answer and the worker is consuming), and /metrics. Its
 * errors come from the shared catalogue, in the API's shape.
 */
export function createHealthServer(deps: { instanceId: string; checks: readonly DependencyCheck[]; metrics: Registry }): Server {
  const send = (res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}) => {
    res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'X-Instance-Id': deps.instanceId });
    res.end(JSON.stringify(body));
  };
  const sendError = (res: ServerResponse, error: HttpError, extra: object = {}) => {
    send(res, error.status, { ...errorBody(error), ...extra }, error.headers);
  };

  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, methodNotAllowed(req.method ?? '', ['GET', 'HEAD']));
      return;
    }
    if (path === '/healthz') {
      send(res, 200, { status: 'ok', instanceId: deps.instanceId });
      return;
    }
    if (path === '/readyz') {
      void checkReadiness(deps.checks).then(({ ok, checks, failed }) => {
        if (ok) send(res, 200, { status: 'ready', instanceId: deps.instanceId, checks });
        else sendError(res, dependencyUnavailable(failed), { checks });
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
    sendError(res, notFound(`no route for ${req.method} ${path}`));
  });
}
