/**
 * The ops server (OPS_PORT): /metrics and the detailed readiness live here, and only here; the
 * reasons it gives are words, never a dependency's raw error. Over the API's real dependencies
 * and a PostgreSQL and Redis of this file's own, which the tests stop and restart.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent, createServer, get as httpGet, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CheckFailure, describeCheckFailure, TimeoutError } from '@inflow/shared';
import { http, REPO_ROOT, waitFor } from '@inflow/test-support';
import t from 'tap';
import { createOpsApp, startOpsServer } from '../src/ops/ops-server.ts';
import { listen } from './utils/listen.ts';
import { pauseRedis, restartServers, startRealApp, stopPostgres, stopRedis } from './utils/real-app.ts';

// One app for the file; the ops app registers its gauges on the app's registry, so it is made once too.
const app = await startRealApp(t);
const opsApp = createOpsApp(app.deps);
const ops = await listen(t, opsApp);

/**
 * deploy/node/healthcheck.sh PATH PORT, as compose runs it against the ops port: its exit code.
 * Spawned without blocking: the server it probes runs in this process.
 */
async function healthcheck(path = '/readyz', port = String((ops.server.address() as AddressInfo).port)): Promise<number | null> {
  const child = spawn('bash', [join(REPO_ROOT, 'deploy/node/healthcheck.sh'), path, port], { env: { PATH: process.env['PATH'] ?? '' }, stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

t.test('GET /readyz: each dependency, its time, and why it failed, in words', async (t) => {
  const ready = await http(`${ops.url}/readyz`);
  t.equal(ready.status, 200);
  t.match(ready.body, { status: 'ready', instanceId: 'api-test', checks: { redis: { ok: true, ms: Number }, postgres: { ok: true, ms: Number } } });
  t.equal(ready.headers.get('x-instance-id'), 'api-test');
  t.equal(await healthcheck(), 0, 'healthcheck.sh /readyz OPS_PORT: healthy');
  t.equal(await healthcheck('/nope'), 1, 'a 404 is unhealthy');
  t.equal(await healthcheck('/readyz', 'x1'), 2, 'a port that is not a number is refused');

  await stopPostgres(app);
  const logged = app.logs.length;
  const down = await http(`${ops.url}/readyz`);
  t.equal(down.status, 503);
  t.same(down.body, {
    error: { code: 'dependency_unavailable', message: 'not ready: postgres unavailable' },
    checks: { redis: { ok: true, ms: (down.body as { checks: { redis: { ms: number } } }).checks.redis.ms }, postgres: { ok: false, ms: (down.body as { checks: { postgres: { ms: number } } }).checks.postgres.ms, reason: 'connection refused' } },
  });
  t.notMatch(down.text, new RegExp(`127\\.0\\.0\\.1|ECONNREFUSED|${String(app.postgres.port)}`), 'no address, no raw error');
  t.match(
    app.logs.slice(logged).find((line) => line.msg === 'readiness: postgres unavailable'),
    { err: { message: `connect ECONNREFUSED 127.0.0.1:${String(app.postgres.port)}` }, dependency: 'postgres' },
    'the raw error is in the log',
  );

  t.not(await healthcheck(), 0, 'the compose health check fails');

  await stopRedis(app);
  const both = await http(`${ops.url}/readyz`);
  t.match(both.body, {
    error: { message: 'not ready: redis and postgres unavailable' },
    // ioredis is 'reconnecting' between its attempts and 'connecting' during each one.
    checks: { redis: { ok: false, reason: /^not connected \((reconnecting|connecting)\)$/ }, postgres: { ok: false, reason: 'connection refused' } },
  });

  // ioredis reports the refused reconnection when it tries again (within about a second).
  const raw = await waitFor(() => app.logs.find((line) => JSON.stringify(line).includes(`ECONNREFUSED 127.0.0.1:${String(app.redis.port)}`)), {
    timeoutMs: 15_000,
    what: "ioredis's refused reconnection in the log",
  });
  t.match(raw, { level: 40, module: 'redis' }, 'the raw Redis error, with its address, is in the log');

  await restartServers(app, { postgres: true, redis: true });
  t.equal(await healthcheck(), 0, 'healthy again');
  await pauseRedis(app, 2_500);
  const slow = await http(`${ops.url}/readyz`);
  t.match(slow.body, { checks: { redis: { ok: false, reason: 'no answer within 2000 ms' } } }, 'a timeout says how long it waited');
  t.ok((slow.body as { checks: { redis: { ms: number } } }).checks.redis.ms >= 1_900, 'and took that long');

  // Answered once the pause ends.
  await app.deps.redis.ping();
  app.deps.drainState.draining = true;
  t.teardown(() => {
    app.deps.drainState.draining = false;
  });
  const draining = await http(`${ops.url}/readyz`);
  t.equal(draining.status, 503);
  t.match(draining.body, { error: { code: 'shutting_down' }, checks: { redis: { ok: true }, postgres: { ok: true } } });
});

t.test("GET /metrics: Prometheus text with the public app's request counts and the queue depth", async (t) => {
  await http(`${app.url}/api/instance`);
  // No worker runs in this process: both jobs wait, the first one the longest.
  const ids: string[] = [];
  for (const message of ['first', 'second']) {
    const response = await fetch(`${app.url}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'ada', message }) });
    const { id } = (await response.json()) as { id: string };
    ids.push(id);
  }
  const addedAt = Number(await app.redis.client.hget(`bull:entries:${String(ids[0])}`, 'timestamp'));
  const scrapeStartedAt = Date.now();
  const metrics = await http(`${ops.url}/metrics`);
  const scrapeEndedAt = Date.now();
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  t.match(metrics.text, /inflow_http_requests_total\{method="GET",route="\/api\/instance",status="200",service="api",instance="api-test"\} 1\n/);
  t.match(metrics.text, /inflow_queue_jobs\{state="waiting",service="api",instance="api-test"\} 2\n/);
  const age = Number(/inflow_queue_oldest_waiting_age_seconds\{service="api",instance="api-test"\} ([\d.]+)/.exec(metrics.text)?.[1]);
  t.ok(age >= (scrapeStartedAt - addedAt) / 1000 && age <= (scrapeEndedAt - addedAt) / 1000, `the first job's age at the scrape (${String(age)} s)`);
  t.match(metrics.text, /inflow_api_ready\{service="api",instance="api-test"\} 1/);
  t.match(metrics.text, /nodejs_eventloop_lag_seconds/);
  t.notMatch(metrics.text, /route="\/metrics"/, 'scrapes are not counted as API requests');

  await stopPostgres(app);
  t.match((await http(`${ops.url}/metrics`)).text, /inflow_api_ready\{service="api",instance="api-test"\} 0/, 'not ready while a dependency fails');
  await restartServers(app, { postgres: true });
  app.deps.drainState.draining = true;
  t.match((await http(`${ops.url}/metrics`)).text, /inflow_api_ready\{service="api",instance="api-test"\} 0/, 'not ready while draining');
  app.deps.drainState.draining = false;
  t.equal((await http(`${ops.url}/metrics`, { method: 'HEAD' })).status, 200);
  t.equal((await http(`${app.url}/metrics`)).status, 404, 'not on the public app');
});

t.test('GET /healthz on the ops port names the host and start time; errors keep the one shape', async (t) => {
  const health = await http(`${ops.url}/healthz`);
  t.same(health.body, { status: 'ok', instanceId: 'api-test', hostname: hostname(), version: '9.8.7', startedAt: app.deps.instance.startedAt });
  t.match(health.body, { startedAt: /^\d{4}-\d\d-\d\dT/ });
  t.equal(health.headers.get('x-instance-id'), 'api-test');
  t.equal(health.headers.get('cache-control'), 'no-store');
  const missing = await http(`${ops.url}/api/entries`);
  t.equal(missing.status, 404, 'the public routes are not on the ops port');
  t.match(missing.body, { error: { code: 'not_found', message: String } });
  const wrong = await http(`${ops.url}/metrics`, { method: 'POST' });
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('allow'), 'GET, HEAD');
  t.match(wrong.body, { error: { code: 'method_not_allowed' } });
});

t.test('startOpsServer: listens, refuses a taken port, and closes its keep-alive connections', async (t) => {
  const server = await startOpsServer({ app: opsApp, port: 0, instanceId: 'api-test' });
  const { port } = server.server.address() as AddressInfo;
  t.equal(server.server.requestTimeout, 10_000);
  t.equal(server.server.headersTimeout, 5_000);
  t.equal((await http(`http://127.0.0.1:${String(port)}/healthz`)).status, 200, 'it answers');
  // A keep-alive connection left idle in the client's pool, which close() must end itself: with
  // the server's keep-alive timeout off, nothing else would, and close() would never resolve.
  server.server.keepAliveTimeout = 0;
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => {
    agent.destroy();
  });
  const idle = await new Promise<IncomingMessage>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/healthz', agent }, resolve).on('error', reject);
  });
  // The socket stays in the agent's pool after the response; keep it before it is detached.
  const idleClosed = once(idle.socket, 'close');
  idle.resume();
  await once(idle, 'end');

  const blocker = createServer();
  blocker.listen(0);
  await once(blocker, 'listening');
  t.teardown(() => blocker.close());
  const taken = (blocker.address() as AddressInfo).port;
  await t.rejects(startOpsServer({ app: opsApp, port: taken, instanceId: 'api-test' }), { code: 'EADDRINUSE' });

  await server.close();
  await idleClosed;
  t.pass('closed, and it closed the idle keep-alive connection');
  await t.rejects(fetch(`http://127.0.0.1:${String(port)}/healthz`), 'no longer listening');
});

t.test('describeCheckFailure: a reason without addresses or raw text', async (t) => {
  const cases: readonly (readonly [unknown, string])[] = [
    [Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:6379'), { code: 'ECONNREFUSED' }), 'connection refused'],
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
