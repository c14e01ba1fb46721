/**
 * Issue 15: the public app (PORT, behind nginx) says only what a client needs. Readiness is
 * ready or not; /api/instance has no host name; /metrics is not there under any spelling; raw
 * dependency errors go to the log, never into a body. And one body format: JSON in UTF-8.
 */
import t from 'tap';
import { createApp } from '../src/app.ts';
import { connectionRefused, fakeDeps, listen, type Fake } from './fixtures/app.ts';

async function start(t: { teardown: (fn: () => unknown) => void }): Promise<Fake & { url: string }> {
  const fake = fakeDeps();
  const { url } = await listen(t, createApp(fake.deps));
  return { ...fake, url };
}

async function get(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

// What no public body may hold: the container's host name, an address, a raw socket or database error.
const INTERNALS = /container-3f2a9c1b7d4e|172\.28\.|ECONNREFUSED|redis|postgres|\bms\b|latency|checks/i;

t.test('GET /readyz: {"status":"ready"}, or 503 not_ready with nothing about why', async (t) => {
  const app = await start(t);
  const ready = await get(`${app.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ready' }, 'only the status');
  t.equal(ready.headers.get('x-instance-id'), 'api-test', 'the instance is in its header, as on every answer');

  const notReady = { error: { code: 'not_ready', message: 'this instance is not ready to serve requests; retry' } };
  const failures: readonly (readonly [string, Partial<Fake['state']>])[] = [
    ['PostgreSQL refuses connections', { databasePing: () => Promise.reject(connectionRefused()) }],
    ['Redis is reconnecting', { redisStatus: 'reconnecting' }],
    ['Redis does not answer', { redisPing: () => Promise.reject(new Error('Redis did not answer within 2000 ms')) }],
    ['the instance drains', { draining: true }],
  ];
  for (const [what, failure] of failures) {
    const fresh = await start(t);
    Object.assign(fresh.state, failure);
    const answer = await get(`${fresh.url}/readyz`);
    t.equal(answer.status, 503, `${what}: 503`);
    t.same(answer.body, notReady, `${what}: the one error shape, a generic message`);
    t.equal(answer.headers.get('retry-after'), '1');
    t.notMatch(answer.text, INTERNALS, `${what}: no dependency, latency or error in the body`);
  }
});

t.test('a raw dependency error goes to the log, not to the client', async (t) => {
  const app = await start(t);
  app.state.databasePing = () => Promise.reject(connectionRefused('172.28.0.3', 5432));
  const answer = await get(`${app.url}/readyz`);
  t.equal(answer.status, 503);
  t.notMatch(answer.text, /172\.28|ECONNREFUSED|5432/);
  const line = app.logs.find((entry) => entry.msg === 'readiness: postgres unavailable');
  t.ok(line, 'logged');
  t.match(line, { level: 40, dependency: 'postgres', err: { message: 'connect ECONNREFUSED 172.28.0.3:5432', code: 'ECONNREFUSED' } });
});

t.test('GET /api/instance: the instance id and version, no host name or start time', async (t) => {
  const app = await start(t);
  const answer = await get(`${app.url}/api/instance`);
  t.equal(answer.status, 200);
  t.same(answer.body, { instanceId: 'api-test', version: '9.8.7' });
  t.notMatch(answer.text, /container-3f2a9c1b7d4e|startedAt|hostname/);
});

t.test('/metrics is not served on the public port, under any spelling', async (t) => {
  const app = await start(t);
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
  const app = await start(t);
  t.same((await get(`${app.url}/api/stats`)).body, { queue: { waiting: 2, active: 1, delayed: 0, failed: 0 } });
  app.state.queueCounts = () => Promise.reject(connectionRefused('172.28.0.4', 6379));
  const answer = await get(`${app.url}/api/stats`);
  t.equal(answer.status, 503);
  t.same(answer.body, { error: { code: 'queue_unavailable', message: 'the queue is unavailable right now' } });
  t.ok(app.logs.some((line) => JSON.stringify(line).includes('connect ECONNREFUSED 172.28.0.4:6379')), 'the cause is in the log');
});

t.test('an unknown failure is a plain 500 whose details are only in the log', async (t) => {
  const app = await start(t);
  // The fake database fails every query as a bug would, its message full of internals.
  const answer = await get(`${app.url}/api/entries?limit=2`);
  t.equal(answer.status, 500);
  t.same(answer.body, { error: { code: 'internal_error', message: 'internal server error' } });
  t.notMatch(answer.text, /relation|10\.0\.0\.7|dist|entries"/);
  t.ok(app.logs.some((line) => JSON.stringify(line).includes('relation \\"entries\\" does not exist (pg at 10.0.0.7:5432')), 'the error is in the log');
});

t.test('POST /api/entries: one charset, UTF-8', async (t) => {
  const app = await start(t);
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
  t.equal(app.enqueued.length, 6, 'only the accepted ones were enqueued');
});

t.test('POST /api/entries: invalid UTF-8 is refused naming the body, never stored as U+FFFD', async (t) => {
  const app = await start(t);
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
  t.same(app.enqueued, [], 'nothing enqueued');
  // Valid multi-byte UTF-8 is read as written.
  const ok = await get(`${app.url}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ author: 'Zoë 李 \u{1F600}', message: 'caf\u00e9' }), 'utf8'),
  });
  t.equal(ok.status, 202);
  t.match(app.enqueued, [{ author: 'Zoë 李 \u{1F600}', message: 'caf\u00e9' }]);
  t.notOk(app.enqueued.some((entry) => entry.author.includes('\ufffd') || entry.message.includes('\ufffd')), 'no U+FFFD');
});

t.test('POST /api/entries: bidi controls and other format characters in author are refused', async (t) => {
  const app = await start(t);
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
  t.same(app.enqueued, [], 'nothing enqueued');
  const message = await get(`${app.url}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'ada', message: 'abc \u2067مرحبا\u2069 \u200f' }),
  });
  t.equal(message.status, 202, 'a message keeps them');
});
