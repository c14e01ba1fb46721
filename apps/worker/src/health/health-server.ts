import { createServer, type Server } from 'node:http';

export interface DependencyCheck {
  name: string;
  check: () => Promise<void>;
}

/**
 * The worker's small HTTP server for container health checks: /healthz (the process answers)
 * and /readyz (Redis and PostgreSQL answer and the worker is consuming).
 */
export function createHealthServer(deps: { instanceId: string; checks: readonly DependencyCheck[] }): Server {
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
      void Promise.all(
        deps.checks.map(async ({ name, check }) => {
          try {
            await check();
            return [name, { ok: true }] as const;
          } catch (error) {
            return [name, { ok: false, error: error instanceof Error ? error.message : String(error) }] as const;
          }
        }),
      ).then((results) => {
        const failed = results.filter(([, result]) => !result.ok).map(([name]) => name);
        const checks = Object.fromEntries(results);
        if (failed.length > 0) {
          send(503, { error: { code: 'dependency_unavailable', message: `not ready: ${failed.join(' and ')} unavailable` }, checks });
        } else {
          send(200, { status: 'ready', instanceId: deps.instanceId, checks });
        }
      });
      return;
    }
    send(404, { error: { code: 'not_found', message: `no route for ${req.method} ${path ?? ''}` } });
  });
}
