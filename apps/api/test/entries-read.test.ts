/**
 * The HTTP contract of reading, in this process over the API's real dependencies and a
 * PostgreSQL and Redis of this file's own: an entry by id (its job, then its row), pages, unknown
 * routes and methods, HEAD, liveness, and request ids, each error in the one shape. No worker
 * runs: a test writes an entry's row as the worker would (utils/persist.ts).
 */
import { randomUUID } from 'node:crypto';
import { assertError, http, postEntry, rawRequest, seenResponseProblems, sortedKeys, UUID, type EntryPage, type EntryView } from '@inflow/test-support';
import t from 'tap';
import { persist } from './utils/persist.ts';
import { startRealApp } from './utils/real-app.ts';

const app = await startRealApp(t);
const base = app.url;

// Enough that the last test sees every kind of answer above.
const MIN_CHECKED = 50;

/** Accepts an entry and writes its row: what a worker would have done by now. */
async function persisted(author: string, message: string): Promise<string> {
  const accepted = await postEntry(base, { author, message });
  if (accepted.status !== 202) throw new Error(`POST answered ${String(accepted.status)}: ${accepted.text}`);
  await persist(app, accepted.body.id);
  return accepted.body.id;
}

t.test('GET /api/entries/:id: the job while the entry is queued, then its row', async (t) => {
  const accepted = await postEntry(base, { author: '  ada ', message: 'hello' });
  const { id } = accepted.body;
  const queued = await http<EntryView>(`${base}/api/entries/${id}`);
  t.equal(queued.status, 200);
  t.same(queued.body, { status: 'queued', id, author: 'ada', message: 'hello', acceptedBy: 'api-test', persistedBy: null, createdAt: queued.body.createdAt, persistedAt: null, attemptsMade: 0 });
  t.match(queued.body, { createdAt: /^\d{4}-\d\d-\d\dT/ }, 'createdAt is the acceptance time');
  t.match((await http(`${base}/api/stats`)).body, { queue: { waiting: 1, active: 0, delayed: 0, failed: 0 } }, 'the job waits');

  await persist(app, id);
  const row = await http<EntryView>(`${base}/api/entries/${id}`);
  t.same(sortedKeys(row.body), ['acceptedBy', 'author', 'createdAt', 'id', 'message', 'persistedAt', 'persistedBy', 'status']);
  t.match(row.body, { status: 'persisted', id, author: 'ada', message: 'hello', acceptedBy: 'api-test', persistedBy: 'worker-test', persistedAt: String });
  t.equal(row.body.createdAt, queued.body.createdAt, 'createdAt is the acceptance time, kept through the queue');
  t.notOk('attemptsMade' in row.body, 'a row has no attempts');

  const byUpper = await http<EntryView>(`${base}/api/entries/${id.toUpperCase()}`);
  t.equal(byUpper.status, 200, 'ids are case-insensitive, as UUIDs are');
  t.equal(byUpper.body.id, id);

  for (const bad of ['not-a-uuid', '123', '42', `${randomUUID()}x`, 'null', randomUUID().replaceAll('-', '')]) {
    assertError(t, await http(`${base}/api/entries/${encodeURIComponent(bad)}`), 400, 'invalid_field', 'id');
  }
  t.same((await http(`${base}/api/entries/42`)).body, { error: { code: 'invalid_field', message: 'id must be a UUID', field: 'id' } });
  // Broken percent-encoding is a malformed id too, not a server error.
  const broken = await rawRequest(`${base}/api/entries/%E0%A4%A`);
  assertError(t, { ...broken, body: JSON.parse(broken.text) }, 400, 'bad_request', 'path');
  t.equal(broken.headers['x-instance-id'], 'api-test');
  const unknown = '0190a8c4-0b1e-7c3a-9d2e-4f5a6b7c8d9e';
  const missing = await http(`${base}/api/entries/${unknown}`);
  assertError(t, missing, 404, 'not_found');
  t.same(missing.body, { error: { code: 'not_found', message: `no entry with id ${unknown}` } });
});

t.test('GET /api/entries: newest first, paged with an opaque cursor', async (t) => {
  await app.redis.client.flushall();
  await app.postgres.query('TRUNCATE entries');
  const ids: string[] = [];
  for (let i = 0; i < 7; i += 1) ids.push(await persisted('pager', `page entry ${String(i)}`));

  const all = await http<EntryPage>(`${base}/api/entries`);
  t.equal(all.status, 200);
  t.same(sortedKeys(all.body), ['entries', 'next']);
  t.equal(all.body.next, null, 'fewer than 50 rows: no next page');
  t.same(all.body.entries.map((entry) => entry.id), [...ids].reverse(), 'every row, newest first, by the default limit');
  for (const entry of all.body.entries) {
    t.same(sortedKeys(entry), ['acceptedBy', 'author', 'createdAt', 'id', 'message', 'persistedAt', 'persistedBy']);
  }

  const pageOne = await http<EntryPage>(`${base}/api/entries?limit=3`);
  t.same(pageOne.body.entries.map((entry) => entry.message), ['page entry 6', 'page entry 5', 'page entry 4']);
  t.type(pageOne.body.next, 'string');
  const pageTwo = await http<EntryPage>(`${base}/api/entries?limit=3&before=${pageOne.body.next ?? ''}`);
  t.equal(pageTwo.status, 200);
  t.same([...pageOne.body.entries, ...pageTwo.body.entries].map((entry) => entry.id), all.body.entries.slice(0, 6).map((entry) => entry.id), 'page two continues page one');
  const last = await http<EntryPage>(`${base}/api/entries?limit=3&before=${pageTwo.body.next ?? ''}`);
  t.same(last.body.entries.map((entry) => entry.message), ['page entry 0']);
  t.equal(last.body.next, null, 'the last page says so');
  t.equal((await http<EntryPage>(`${base}/api/entries?limit=7`)).body.next, null, 'no next page when the page holds the last row');
  t.equal((await http<EntryPage>(`${base}/api/entries?limit=200`)).status, 200);
  t.equal((await http<EntryPage>(`${base}/api/entries?limit=1`)).body.entries.length, 1);
  t.equal((await http<EntryPage>(`${base}/api/entries?limit=007`)).body.entries.length, 7, 'leading zeros are a number');

  for (const limit of ['0', '201', '-1', 'abc', '1.5', '', '1e2', ' 5', '99999']) {
    assertError(t, await http(`${base}/api/entries?limit=${encodeURIComponent(limit)}`), 400, 'invalid_field', 'limit');
  }
  assertError(t, await http(`${base}/api/entries?limit=1&limit=2`), 400, 'invalid_field', 'limit');
  const notOurs = Buffer.from(`2025-01-01T00:00:00.000Z|${randomUUID()}|x`).toString('base64url');
  const badTime = Buffer.from(`2025-13-01T00:00:00.000Z|${randomUUID()}`).toString('base64url');
  const badId = Buffer.from(`2025-01-01T00:00:00.000Z|not-a-uuid`).toString('base64url');
  for (const before of ['garbage!', 'not-a-cursor', '', 'x'.repeat(201), notOurs, badTime, badId, "' OR 1=1 --"]) {
    assertError(t, await http(`${base}/api/entries?before=${encodeURIComponent(before)}`), 400, 'invalid_field', 'before');
  }
  t.same((await http(`${base}/api/entries?before=not-a-cursor`)).body, {
    error: { code: 'invalid_field', message: 'before must be a cursor returned as "next" by this API', field: 'before' },
  });
  assertError(t, await http(`${base}/api/entries?before=a&before=b`), 400, 'invalid_field', 'before');
  // Unknown query parameters are ignored.
  t.equal((await http(`${base}/api/entries?foo=bar`)).status, 200);
});

t.test('unknown routes 404, wrong methods 405 with Allow', async (t) => {
  t.same((await http(`${base}/api/nothing`)).body, { error: { code: 'not_found', message: 'no route for GET /api/nothing' } });
  for (const [method, path] of [
    ['GET', '/api'],
    ['GET', '/api/entriesx'],
    ['POST', '/api/other'],
    ['GET', `/api/entries/${randomUUID()}/extra`],
    ['DELETE', '/nothing'],
  ] as const) {
    assertError(t, await http(`${base}${path}`, { method }), 404, 'not_found');
  }
  const cases: readonly (readonly [string, string, string])[] = [
    ['DELETE', '/api/entries', 'GET, POST, HEAD'],
    ['PUT', '/api/entries', 'GET, POST, HEAD'],
    ['PATCH', '/api/entries', 'GET, POST, HEAD'],
    ['POST', `/api/entries/${randomUUID()}`, 'GET, HEAD'],
    ['DELETE', `/api/entries/${randomUUID()}`, 'GET, HEAD'],
    ['POST', '/api/instance', 'GET, HEAD'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['PUT', '/readyz', 'GET, HEAD'],
    ['POST', '/api/events', 'GET, HEAD'],
  ];
  for (const [method, path, allow] of cases) {
    const result = await http(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: '{}' });
    assertError(t, result, 405, 'method_not_allowed');
    t.equal(result.headers.get('allow'), allow, `${method} ${path}: Allow ${allow}`);
  }
});

t.test('HEAD works wherever GET does', async (t) => {
  const id = await persisted('head', 'for HEAD');
  for (const path of ['/api/entries', '/api/entries?limit=2', `/api/entries/${id}`, '/api/instance', '/healthz', '/readyz']) {
    const get = await http(`${base}${path}`);
    const head = await http(`${base}${path}`, { method: 'HEAD' });
    t.equal(head.status, 200, `HEAD ${path}`);
    t.equal(head.text, '', 'no body');
    t.equal(head.headers.get('content-type'), get.headers.get('content-type'));
    t.equal(head.headers.get('x-instance-id'), 'api-test');
  }
  t.equal((await http(`${base}/api/entries/${randomUUID()}`, { method: 'HEAD' })).status, 404);
  t.equal((await http(`${base}/api/entries/nope`, { method: 'HEAD' })).status, 400);
  // An event stream's HEAD answers at once, with the stream's type.
  const events = await http(`${base}/api/events`, { method: 'HEAD' });
  t.equal(events.status, 200, 'HEAD /api/events');
  t.match(events.headers.get('content-type'), /^text\/event-stream/);
});

t.test('request ids', async (t) => {
  const given = await http(`${base}/healthz`, { headers: { 'x-request-id': 'trace-abc.123:4' } });
  t.equal(given.headers.get('x-request-id'), 'trace-abc.123:4', 'a given id is echoed');
  const generated = await http(`${base}/healthz`);
  const other = await http(`${base}/healthz`);
  t.match(generated.headers.get('x-request-id'), UUID, 'an id is generated');
  t.not(generated.headers.get('x-request-id'), other.headers.get('x-request-id'), 'one per request');
  for (const bad of ['has space', 'x'.repeat(129), 'quote"d', '<script>']) {
    const result = await http(`${base}/healthz`, { headers: { 'x-request-id': bad } });
    t.match(result.headers.get('x-request-id'), UUID, `an unsafe id (${bad.slice(0, 10)}) is replaced`);
  }
  const onError = await http(`${base}/api/entries/nope`, { headers: { 'x-request-id': 'err-1' } });
  t.equal(onError.status, 400);
  t.equal(onError.headers.get('x-request-id'), 'err-1', 'echoed on errors too');
});

// Last: every response the tests above received from the API.
t.test('every API response carried X-Instance-Id and X-Request-Id; no error leaked internals', async (t) => {
  const { checked, problems } = seenResponseProblems(base, 'api-test');
  t.ok(checked > MIN_CHECKED, `${String(checked)} responses checked`);
  for (const problem of problems) t.fail(problem);
  t.pass('checked');
});
