/**
 * The worker's health server (HEALTH_PORT): its answers, errors included, in the API's one error
 * shape from the shared catalogue.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createMetricsRegistry, type DependencyCheck } from '@inflow/shared';
import t from 'tap';
import { createHealthServer } from '../src/health/health-server.ts';

async function start(t: { teardown: (fn: () => unknown) => void }, checks: DependencyCheck[]) {
  const server = createHealthServer({ instanceId: 'worker-test', checks, metrics: createMetricsRegistry({ service: 'worker', instanceId: 'worker-test' }) });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  return async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${url}${path}`, init);
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: text !== '' && response.headers.get('content-type')?.startsWith('application/json') === true ? (JSON.parse(text) as unknown) : undefined };
  };
}

const ok = (name: string): DependencyCheck => ({ name, check: () => Promise.resolve() });

t.test('GET /healthz and /readyz while every check passes', async (t) => {
  const get = await start(t, [ok('redis'), ok('postgres')]);
  const health = await get('/healthz');
  t.same(health.body, { status: 'ok', instanceId: 'worker-test' });
  t.equal(health.headers.get('x-instance-id'), 'worker-test');
  t.match((await get('/readyz')).body, { status: 'ready', instanceId: 'worker-test', checks: { redis: { ok: true }, postgres: { ok: true } } });
  t.match((await get('/metrics')).text, /nodejs_eventloop_lag_seconds\{service="worker",instance="worker-test"\}/);
});

t.test('a failing check: 503 dependency_unavailable naming it, with the checks', async (t) => {
  const get = await start(t, [ok('redis'), { name: 'consumer', check: () => Promise.reject(new Error('the worker is not consuming')) }]);
  const ready = await get('/readyz');
  t.equal(ready.status, 503);
  t.match(ready.body, {
    error: { code: 'dependency_unavailable', message: 'not ready: consumer unavailable' },
    checks: { redis: { ok: true }, consumer: { ok: false, error: 'the worker is not consuming' } },
  });
});

t.test('errors: the one shape, a 405 with Allow', async (t) => {
  const get = await start(t, [ok('redis')]);
  const missing = await get('/nothing?x=1');
  t.equal(missing.status, 404);
  t.same(missing.body, { error: { code: 'not_found', message: 'no route for GET /nothing' } });
  const wrong = await get('/healthz', { method: 'POST' });
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('allow'), 'GET, HEAD');
  t.same(wrong.body, { error: { code: 'method_not_allowed', message: 'POST is not allowed here; use GET or HEAD' } });
  t.equal((await get('/healthz', { method: 'HEAD' })).status, 200, 'HEAD is allowed');
});
