/**
 * Issue 15: the public app (PORT, behind nginx) says only what a client needs. Readiness is
 * ready or not; /api/instance has no host name; /metrics is not there under any spelling; raw
 * dependency errors go to the log, never into a body. (The one body format, JSON in UTF-8, is
 * entries-write.test.ts.) Over the API's real dependencies and a PostgreSQL and Redis of this file's own, which the
 * tests stop, pause and restart for the failures.
 */
import { hostname } from 'node:os';
import { http } from '@inflow/test-support';
import t from 'tap';
import { pauseRedis, restartServers, startRealApp, stopPostgres, stopRedis } from './utils/real-app.ts';

const app = await startRealApp(t);

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// What no public body may hold: the host name, an address, a raw socket or database error.
const INTERNALS = new RegExp(`${escape(hostname())}|127\\.0\\.0\\.1|ECONNREFUSED|redis|postgres|\\bms\\b|latency|checks`, 'i');

t.test('GET /readyz: {"status":"ready"}, or 503 not_ready with nothing about why', async (t) => {
  const ready = await http(`${app.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ready' }, 'only the status');
  t.equal(ready.headers.get('x-instance-id'), 'api-test', 'the instance is in its header, as on every answer');

  const notReady = { error: { code: 'not_ready', message: 'this instance is not ready to serve requests; retry' } };
  // Each failure for real, and what ends it again.
  const failures: readonly (readonly [string, () => Promise<void> | void, () => Promise<void> | void])[] = [
    ['PostgreSQL refuses connections', () => stopPostgres(app), () => restartServers(app, { postgres: true })],
    ['Redis is reconnecting', () => stopRedis(app), () => restartServers(app, { redis: true })],
    // The readiness check gives up after 2 s; the paused PING is answered once the pause ends.
    [
      'Redis does not answer',
      () => pauseRedis(app, 2_500),
      async () => {
        await app.deps.redis.ping();
      },
    ],
    [
      'the instance drains',
      () => {
        app.deps.drainState.draining = true;
      },
      () => {
        app.deps.drainState.draining = false;
      },
    ],
  ];
  for (const [what, fail, recover] of failures) {
    await fail();
    const answer = await http(`${app.url}/readyz`);
    await recover();
    t.equal(answer.status, 503, `${what}: 503`);
    t.same(answer.body, notReady, `${what}: the one error shape, a generic message`);
    t.equal(answer.headers.get('retry-after'), '1');
    t.notMatch(answer.text, INTERNALS, `${what}: no dependency, latency or error in the body`);
  }
  t.same((await http(`${app.url}/readyz`)).body, { status: 'ready' }, 'ready again once each failure ended');
});

t.test('a raw dependency error goes to the log, not to the client', async (t) => {
  const { port } = app.postgres;
  await stopPostgres(app);
  t.teardown(() => restartServers(app, { postgres: true }));
  const logged = app.logs.length;
  const answer = await http(`${app.url}/readyz`);
  t.equal(answer.status, 503);
  t.notMatch(answer.text, new RegExp(`127\\.0\\.0\\.1|ECONNREFUSED|${String(port)}`));
  const line = app.logs.slice(logged).find((entry) => entry.msg === 'readiness: postgres unavailable');
  t.ok(line, 'logged');
  t.match(line, { level: 40, dependency: 'postgres', err: { message: `connect ECONNREFUSED 127.0.0.1:${String(port)}`, code: 'ECONNREFUSED' } });
});

t.test('GET /api/instance: the instance id and version, no host name or start time', async (t) => {
  const answer = await http(`${app.url}/api/instance`);
  t.equal(answer.status, 200);
  t.same(answer.body, { instanceId: 'api-test', version: '9.8.7' });
  t.notMatch(answer.text, new RegExp(`${escape(hostname())}|startedAt|hostname`));
});

t.test('/metrics is not served on the public port, under any spelling', async (t) => {
  // Express matches paths case-insensitively and ignores a trailing slash: all of these reached
  // the metrics route before.
  for (const path of ['/metrics', '/metrics/', '/Metrics', '/METRICS', '/metrics?x=1', '/%6detrics', '/metrics;', '/./metrics', '//metrics', '/metrics/.', '/api/../metrics']) {
    for (const method of ['GET', 'HEAD']) {
      const answer = await http(`${app.url}${path}`, { method });
      t.equal(answer.status, 404, `${method} ${path}: 404`);
      t.notMatch(answer.text, /inflow_|process_cpu|nodejs_/, `${method} ${path}: no metrics text`);
    }
  }
  t.equal((await http(`${app.url}/healthz`)).status, 200, 'liveness stays public');
  t.same((await http(`${app.url}/healthz`)).body, { status: 'ok', instanceId: 'api-test' });
});

t.test('GET /api/stats: a 503 says the queue is unavailable, not why', async (t) => {
  // A known queue: empty, then two entries that wait (no worker takes them).
  await app.redis.client.flushall();
  for (const message of ['one', 'two']) await http(`${app.url}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'ada', message }) });
  t.same((await http(`${app.url}/api/stats`)).body, { queue: { waiting: 2, active: 0, delayed: 0, failed: 0 } });

  await stopRedis(app);
  t.teardown(() => restartServers(app, { redis: true }));
  const logged = app.logs.length;
  const answer = await http(`${app.url}/api/stats`);
  t.equal(answer.status, 503);
  t.same(answer.body, { error: { code: 'queue_unavailable', message: 'the queue is unavailable right now' } });
  t.notMatch(answer.text, /writeable|offline|ECONNREFUSED|127\.0\.0\.1/, 'not why');
  const line = app.logs.slice(logged).find((entry) => entry.msg === 'the queue is unavailable right now');
  t.match(line, { level: 50, err: { message: /enableOfflineQueue/ } }, 'the cause is in the log');
});

t.test('an unknown failure is a plain 500 whose details are only in the log', async (t) => {
  // A failure nobody anticipated, for real: reading the entries raises an error of no known
  // class (P0001). A missing table is not one: it is the database's fault, a 503
  // (shared/src/database-errors.ts; apps/api/test/database-refuses.test.ts).
  await app.postgres.query('ALTER TABLE entries RENAME TO entries_elsewhere');
  await app.postgres.query("CREATE FUNCTION inflow_test_bug() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'a bug nobody anticipated at 127.0.0.1'; END $$");
  await app.postgres.query(
    'CREATE VIEW entries AS SELECT NULL::uuid AS id, inflow_test_bug() AS author, NULL::text AS message, NULL::text AS accepted_by, NULL::text AS persisted_by, now() AS created_at, now() AS persisted_at',
  );
  t.teardown(async () => {
    await app.postgres.query('DROP VIEW entries');
    await app.postgres.query('DROP FUNCTION inflow_test_bug()');
    await app.postgres.query('ALTER TABLE entries_elsewhere RENAME TO entries');
  });
  const answer = await http(`${app.url}/api/entries?limit=2`);
  t.equal(answer.status, 500);
  t.same(answer.body, { error: { code: 'internal_error', message: 'internal server error' } });
  t.notMatch(answer.text, /bug|127\.0\.0\.1|dist|entries"/);
  t.ok(app.logs.some((line) => JSON.stringify(line).includes('a bug nobody anticipated')), 'the error is in the log');
});
