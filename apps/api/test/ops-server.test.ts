/**
 * The ops server (OPS_PORT): /metrics and the detailed readiness live here, and only here; the
 * reasons it gives are words, never a dependency's raw error.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CheckFailure, describeCheckFailure, TimeoutError } from '@inflow/shared';
import t from 'tap';
import { createApp } from '../src/app.ts';
import { createOpsApp, startOpsServer } from '../src/ops/ops-server.ts';
import { connectionRefused, fakeDeps, listen } from './fixtures/app.ts';

async function get(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}

t.test('GET /readyz: each dependency, its time, and why it failed, in words', async (t) => {
  const fake = fakeDeps();
  const { url } = await listen(t, createOpsApp(fake.deps));
  const ready = await get(`${url}/readyz`);
  t.equal(ready.status, 200);
  t.match(ready.body, { status: 'ready', instanceId: 'api-test', checks: { redis: { ok: true, ms: Number }, postgres: { ok: true, ms: Number } } });

  fake.state.databasePing = () => Promise.reject(connectionRefused('172.28.0.3', 5432));
  const down = await get(`${url}/readyz`);
  t.equal(down.status, 503);
  t.same(down.body, {
    error: { code: 'dependency_unavailable', message: 'not ready: postgres unavailable' },
    checks: { redis: { ok: true, ms: (down.body as { checks: { redis: { ms: number } } }).checks.redis.ms }, postgres: { ok: false, ms: (down.body as { checks: { postgres: { ms: number } } }).checks.postgres.ms, reason: 'connection refused' } },
  });
  t.notMatch(down.text, /172\.28|ECONNREFUSED|5432/, 'no address, no raw error');
  t.match(
    fake.logs.find((line) => line.msg === 'readiness: postgres unavailable'),
    { err: { message: 'connect ECONNREFUSED 172.28.0.3:5432' }, dependency: 'postgres' },
    'the raw error is in the log',
  );

  fake.state.redisStatus = 'reconnecting';
  const both = await get(`${url}/readyz`);
  t.match(both.body, {
    error: { message: 'not ready: redis and postgres unavailable' },
    checks: { redis: { ok: false, reason: 'not connected (reconnecting)' }, postgres: { ok: false, reason: 'connection refused' } },
  });

  fake.state.redisStatus = 'ready';
  fake.state.databasePing = () => Promise.resolve();
  fake.state.redisPing = () => new Promise(() => undefined);
  const slow = await get(`${url}/readyz`);
  t.match(slow.body, { checks: { redis: { ok: false, reason: 'no answer within 2000 ms' } } }, 'a timeout says how long it waited');
  t.ok((slow.body as { checks: { redis: { ms: number } } }).checks.redis.ms >= 1_900, 'and took that long');

  fake.state.redisPing = () => Promise.resolve('PONG');
  fake.state.draining = true;
  const draining = await get(`${url}/readyz`);
  t.equal(draining.status, 503);
  t.match(draining.body, { error: { code: 'shutting_down' }, checks: { redis: { ok: true }, postgres: { ok: true } } });
});

t.test('GET /metrics: Prometheus text with the public app\'s request counts and the queue depth', async (t) => {
  const fake = fakeDeps();
  const publicApp = await listen(t, createApp(fake.deps));
  const ops = await listen(t, createOpsApp(fake.deps));
  await get(`${publicApp.url}/api/instance`);
  const metrics = await get(`${ops.url}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /^text\/plain/);
  t.match(metrics.text, /inflow_http_requests_total\{method="GET",route="\/api\/instance",status="200",service="api",instance="api-test"\} 1/);
  t.match(metrics.text, /inflow_queue_jobs\{state="waiting",service="api",instance="api-test"\} 2/);
  t.match(metrics.text, /inflow_queue_oldest_waiting_age_seconds\{service="api",instance="api-test"\} 42\.5/);
  t.match(metrics.text, /inflow_api_ready\{service="api",instance="api-test"\} 1/);
  t.match(metrics.text, /nodejs_eventloop_lag_seconds/);
  fake.state.databasePing = () => Promise.reject(new Error('connection refused'));
  t.match((await get(`${ops.url}/metrics`)).text, /inflow_api_ready\{service="api",instance="api-test"\} 0/, 'not ready while a dependency fails');
  fake.state.databasePing = () => Promise.resolve();
  fake.state.draining = true;
  t.match((await get(`${ops.url}/metrics`)).text, /inflow_api_ready\{service="api",instance="api-test"\} 0/, 'not ready while draining');
  fake.state.draining = false;
  t.equal((await get(`${ops.url}/metrics`, { method: 'HEAD' })).status, 200);
  t.equal((await get(`${publicApp.url}/metrics`)).status, 404, 'not on the public app');
});

t.test('GET /healthz on the ops port names the host and start time; errors keep the one shape', async (t) => {
  const fake = fakeDeps();
  const { url } = await listen(t, createOpsApp(fake.deps));
  const health = await get(`${url}/healthz`);
  t.same(health.body, { status: 'ok', instanceId: 'api-test', hostname: 'container-3f2a9c1b7d4e', version: '9.8.7', startedAt: '2026-01-02T03:04:05.000Z' });
  t.equal(health.headers.get('x-instance-id'), 'api-test');
  t.equal(health.headers.get('cache-control'), 'no-store');
  const missing = await get(`${url}/api/entries`);
  t.equal(missing.status, 404, 'the public routes are not on the ops port');
  t.match(missing.body, { error: { code: 'not_found', message: String } });
  const wrong = await get(`${url}/metrics`, { method: 'POST' });
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('allow'), 'GET, HEAD');
  t.match(wrong.body, { error: { code: 'method_not_allowed' } });
});

t.test('startOpsServer: listens, refuses a taken port, and closes its keep-alive connections', async (t) => {
  const fake = fakeDeps();
  const ops = await startOpsServer({ app: createOpsApp(fake.deps), port: 0, instanceId: 'api-test' });
  const { port } = ops.server.address() as AddressInfo;
  t.equal(ops.server.requestTimeout, 10_000);
  t.equal(ops.server.headersTimeout, 5_000);
  t.equal((await get(`http://127.0.0.1:${String(port)}/healthz`)).status, 200, 'a keep-alive connection is open now');

  const blocker = createServer();
  blocker.listen(0);
  await once(blocker, 'listening');
  t.teardown(() => blocker.close());
  const taken = (blocker.address() as AddressInfo).port;
  await t.rejects(startOpsServer({ app: createOpsApp(fakeDeps().deps), port: taken, instanceId: 'api-test' }), { code: 'EADDRINUSE' });

  const closedAt = Date.now();
  await ops.close();
  t.ok(Date.now() - closedAt < 1_000, 'closed at once, the idle keep-alive connection too');
  await t.rejects(fetch(`http://127.0.0.1:${String(port)}/healthz`), 'no longer listening');
});

t.test('describeCheckFailure: a reason without addresses or raw text', async (t) => {
  const cases: readonly (readonly [unknown, string])[] = [
    [connectionRefused('10.1.2.3', 6379), 'connection refused'],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'connection reset'],
    [Object.assign(new Error('getaddrinfo ENOTFOUND postgres.internal'), { code: 'ENOTFOUND' }), 'host name not found'],
    [Object.assign(new Error('getaddrinfo EAI_AGAIN redis'), { code: 'EAI_AGAIN' }), 'host name lookup failed'],
    [Object.assign(new Error('connect EHOSTUNREACH 10.0.0.9:5432'), { code: 'EHOSTUNREACH' }), 'host unreachable'],
    [Object.assign(new Error('operation not permitted 10.0.0.9'), { code: 'EPERM' }), 'error EPERM'],
    [Object.assign(new Error('the database system is starting up'), { code: '57P03' }), 'PostgreSQL error 57P03'],
    [Object.assign(new Error('sorry, too many clients already'), { code: '53300' }), 'PostgreSQL error 53300'],
    [Object.assign(new Error('something at 10.0.0.9'), { code: 'ERR_SOMETHING' }), 'error ERR_SOMETHING'],
    [Object.assign(new Error('weird'), { code: 'not a code at 10.0.0.9' }), 'check failed (see the log)'],
    [new TimeoutError('PostgreSQL did not answer', 2000), 'no answer within 2000 ms'],
    [new Error('PostgreSQL did not answer within 2000 ms'), 'check failed (see the log)'],
    [new Error("Stream isn't writeable and enableOfflineQueue options is false"), 'check failed (see the log)'],
    [new Error('connect ECONNREFUSED 10.0.0.9:5432'), 'check failed (see the log)'],
    [new CheckFailure('not connected (end)'), 'not connected (end)'],
    ['a string', 'check failed (see the log)'],
    [undefined, 'check failed (see the log)'],
  ];
  for (const [error, reason] of cases) t.equal(describeCheckFailure(error), reason, reason);
});
