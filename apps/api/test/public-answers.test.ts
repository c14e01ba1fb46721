/**
 * Issue 15: the public app (PORT, behind nginx) says only what a client needs. Readiness is
 * ready or not; /api/instance has no host name; /metrics is not there under any spelling; raw
 * dependency errors go to the log, never into a body. And one body format: JSON in UTF-8.
 * Over the API's real dependencies and a PostgreSQL and Redis of this file's own, which the
 * tests stop, pause and restart for the failures.
 */
import { hostname } from 'node:os';
import t from 'tap';
import { pauseRedis, restartServers, startRealApp, stopPostgres, stopRedis } from './utils/real-app.ts';

const app = await startRealApp(t);

async function get(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** Jobs waiting in the real queue: no worker runs here, so an accepted entry stays one. */
const waiting = async () => (await app.deps.queue.counts()).waiting;

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// What no public body may hold: the host name, an address, a raw socket or database error.
const INTERNALS = new RegExp(`${escape(hostname())}|127\\.0\\.0\\.1|ECONNREFUSED|redis|postgres|\\bms\\b|latency|checks`, 'i');

t.test('GET /readyz: {"status":"ready"}, or 503 not_ready with nothing about why', async (t) => {
  const ready = await get(`${app.url}/readyz`);
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
    const answer = await get(`${app.url}/readyz`);
    await recover();
    t.equal(answer.status, 503, `${what}: 503`);
    t.same(answer.body, notReady, `${what}: the one error shape, a generic message`);
    t.equal(answer.headers.get('retry-after'), '1');
    t.notMatch(answer.text, INTERNALS, `${what}: no dependency, latency or error in the body`);
  }
  t.same((await get(`${app.url}/readyz`)).body, { status: 'ready' }, 'ready again once each failure ended');
});

t.test('a raw dependency error goes to the log, not to the client', async (t) => {
  const { port } = app.postgres;
  await stopPostgres(app);
  t.teardown(() => restartServers(app, { postgres: true }));
  const logged = app.logs.length;
  const answer = await get(`${app.url}/readyz`);
  t.equal(answer.status, 503);
  t.notMatch(answer.text, new RegExp(`127\\.0\\.0\\.1|ECONNREFUSED|${String(port)}`));
  const line = app.logs.slice(logged).find((entry) => entry.msg === 'readiness: postgres unavailable');
  t.ok(line, 'logged');
  t.match(line, { level: 40, dependency: 'postgres', err: { message: `connect ECONNREFUSED 127.0.0.1:${String(port)}`, code: 'ECONNREFUSED' } });
});

t.test('GET /api/instance: the instance id and version, no host name or start time', async (t) => {
  const answer = await get(`${app.url}/api/instance`);
  t.equal(answer.status, 200);
  t.same(answer.body, { instanceId: 'api-test', version: '9.8.7' });
  t.notMatch(answer.text, new RegExp(`${escape(hostname())}|startedAt|hostname`));
});

t.test('/metrics is not served on the public port, under any spelling', async (t) => {
  // Express matches paths case-insensitively and ignores a trailing slash: all of these reached
  // the metrics route before.
  for (const path of ['/metrics', '/metrics/', '/Metrics', '/METRICS', '/metrics?x=1', '/%6detrics', '/metrics;', '/./metrics', '//metrics', '/metrics/.', '/api/../metrics']) {
    for (const method of ['GET', 'HEAD']) {
      const answer = await get(`${app.url}${path}`, { method });
      t.equal(answer.status, 404, `${method} ${path}: 404`);
      t.notMatch(answer.text, /inflow_|process_cpu|nodejs_/, `${method} ${path}: no metrics text`);
    }
  }
  t.equal((await get(`${app.url}/healthz`)).status, 200, 'liveness stays public');
  t.same((await get(`${app.url}/healthz`)).body, { status: 'ok', instanceId: 'api-test' });
});

t.test('GET /api/stats: a 503 says the queue is unavailable, not why', async (t) => {
  // A known queue: empty, then two entries that wait (no worker takes them).
  await app.redis.client.flushall();
  for (const message of ['one', 'two']) await get(`${app.url}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'ada', message }) });
  t.same((await get(`${app.url}/api/stats`)).body, { queue: { waiting: 2, active: 0, delayed: 0, failed: 0 } });

  await stopRedis(app);
  t.teardown(() => restartServers(app, { redis: true }));
  const logged = app.logs.length;
  const answer = await get(`${app.url}/api/stats`);
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
  const answer = await get(`${app.url}/api/entries?limit=2`);
  t.equal(answer.status, 500);
  t.same(answer.body, { error: { code: 'internal_error', message: 'internal server error' } });
  t.notMatch(answer.text, /bug|127\.0\.0\.1|dist|entries"/);
  t.ok(app.logs.some((line) => JSON.stringify(line).includes('a bug nobody anticipated')), 'the error is in the log');
});

t.test('POST /api/entries: one charset, UTF-8', async (t) => {
  const before = await waiting();
  const body = JSON.stringify({ author: 'ada', message: 'hello' });
  const post = (contentType: string, payload: string | Uint8Array = body) =>
    get(`${app.url}/api/entries`, { method: 'POST', headers: { 'content-type': contentType }, body: payload });

  for (const type of ['application/json', 'application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'Application/JSON; Charset=Utf-8', 'application/json; foo=bar']) {
    t.equal((await post(type)).status, 202, `${type}: accepted`);
  }
  const refused = [
    'application/json; charset=utf-16',
    'application/json; charset=UTF-16',
    'application/json; charset=utf-16le',
    'application/json; charset=utf-32',
    'application/json; charset=utf-7',
    'application/json; charset=utf8',
    'application/json; charset=latin1',
    'application/json; charset=iso-8859-1',
    'application/json; charset=us-ascii',
    'application/json; charset=""',
    'application/json; charset=utf-8; charset=utf-16',
    'application/json; charset=utf-16; charset=utf-8',
  ];
  for (const type of refused) {
    const answer = await post(type);
    t.equal(answer.status, 415, `${type}: 415`);
    t.same(answer.body, {
      error: {
        code: 'unsupported_media_type',
        message: 'the body must be JSON encoded as UTF-8 (Content-Type: application/json, with no charset or charset=utf-8)',
        field: 'Content-Type',
      },
    });
  }
  // The case: UTF-16 text under a UTF-16 label was decoded and accepted.
  const utf16 = Buffer.from(body, 'utf16le');
  t.equal((await post('application/json; charset=utf-16', utf16)).status, 415, 'a UTF-16 body labelled UTF-16');
  t.equal((await waiting()) - before, 6, 'only the accepted ones were enqueued');
});

t.test('POST /api/entries: invalid UTF-8 is refused naming the body, never stored as U+FFFD', async (t) => {
  const before = await waiting();
  const invalid: readonly (readonly [string, number[]])[] = [
    ['a lone continuation byte', [0x80]],
    ['a truncated two-byte sequence', [0xc3]],
    ['a two-byte lead and an ASCII byte', [0xc3, 0x28]],
    ['an overlong "/"', [0xc0, 0xaf]],
    ['an encoded surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['0xFF', [0xff]],
    ['Latin-1 "é"', [0xe9]],
  ];
  for (const [what, bytes] of invalid) {
    for (const where of ['author', 'message'] as const) {
      const prefix = Buffer.from(where === 'author' ? '{"author":"ad' : '{"author":"ada","message":"he');
      const suffix = Buffer.from(where === 'author' ? 'a","message":"m"}' : 'llo"}');
      const answer = await get(`${app.url}/api/entries`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.concat([prefix, Buffer.from(bytes), suffix]),
      });
      t.equal(answer.status, 400, `${what} in ${where}: 400`);
      t.same(answer.body, { error: { code: 'invalid_json', message: 'the body is not valid UTF-8 (JSON must be UTF-8)', field: 'body' } });
    }
  }
  t.equal(await waiting(), before, 'nothing enqueued');
  // Valid multi-byte UTF-8 is read as written.
  const ok = await get(`${app.url}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ author: 'Zoë 李 \u{1F600}', message: 'caf\u00e9' }), 'utf8'),
  });
  t.equal(ok.status, 202);
  const id = String((ok.body as { id?: unknown }).id);
  const job = (await app.deps.queue.findMany([id])).get(id);
  t.match(job, { author: 'Zoë 李 \u{1F600}', message: 'caf\u00e9' }, 'the job holds what was written');
  t.notOk(`${job?.author ?? ''}${job?.message ?? ''}`.includes('\ufffd'), 'no U+FFFD');
});

t.test('POST /api/entries: bidi controls and other format characters in author are refused', async (t) => {
  const before = await waiting();
  for (const char of ['\u202e', '\u202a', '\u2066', '\u200e', '\u200f', '\u061c', '\u200b', '\u200d', '\ufeff', '\u2060']) {
    const hex = (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    const answer = await get(`${app.url}/api/entries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ author: `ad${char}min`, message: 'hi' }),
    });
    t.equal(answer.status, 400, `U+${hex}: 400`);
    t.match(answer.body, { error: { code: 'invalid_field', field: 'author', message: new RegExp(`invisible formatting characters.*U\\+${hex}`) } });
  }
  t.equal(await waiting(), before, 'nothing enqueued');
  const message = await get(`${app.url}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'ada', message: 'abc \u2067مرحبا\u2069 \u200f' }),
  });
  t.equal(message.status, 202, 'a message keeps them');
});
