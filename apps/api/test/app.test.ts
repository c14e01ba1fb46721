/**
 * createApp in this process, on a free port, over the real dependencies (createDependencies)
 * and a real PostgreSQL and Redis: the routes, the service and the error middleware without a
 * spawned API. No worker runs, so an accepted entry stays a job until the test writes its row.
 */
import t from 'tap';
import { startRealApp, type RealApp } from './utils/real-app.ts';

// One app for the file; each test starts from an empty queue and an empty table.
const app = await startRealApp(t);
t.beforeEach(async () => {
  await app.redis.client.flushall();
  await app.postgres.query('TRUNCATE entries');
});

async function call(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

const post = (app: RealApp, body: unknown, headers: Record<string, string> = {}) =>
  call(`${app.url}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/** Writes the entry's row as the worker would, from its job. */
async function persist(app: RealApp, id: string, persistedBy = 'worker-test'): Promise<void> {
  const [job] = [...(await app.deps.queue.findMany([id])).values()];
  if (job === undefined) throw new Error(`no job for ${id}`);
  await app.postgres.query('INSERT INTO entries (id, author, message, accepted_by, persisted_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
    id,
    job.author,
    job.message,
    job.acceptedBy,
    persistedBy,
    job.createdAt,
  ]);
}

t.test('an accepted entry is a job until its row exists, then the row answers', async (t) => {
  const accepted = await post(app, { author: '  ada ', message: 'hello' });
  t.equal(accepted.status, 202);
  t.match(accepted.body, { id: String, status: 'queued', acceptedBy: 'api-test' });
  const id = String(accepted.body?.['id']);
  t.equal(accepted.headers.get('location'), `/api/entries/${id}`);
  t.equal(accepted.headers.get('x-instance-id'), 'api-test');

  const queued = await call(`${app.url}/api/entries/${id}`);
  t.equal(queued.status, 200);
  t.same(queued.body, {
    status: 'queued',
    id,
    author: 'ada',
    message: 'hello',
    acceptedBy: 'api-test',
    persistedBy: null,
    createdAt: (queued.body as { createdAt: string }).createdAt,
    persistedAt: null,
    attemptsMade: 0,
  });
  t.match(queued.body, { createdAt: /^\d{4}-\d\d-\d\dT/ }, 'createdAt is the acceptance time');
  t.same((await call(`${app.url}/api/stats`)).body, { queue: { waiting: 1, active: 0, delayed: 0, failed: 0 } }, 'the job waits');

  await persist(app, id);
  const persisted = await call(`${app.url}/api/entries/${id}`);
  t.match(persisted.body, { status: 'persisted', id, author: 'ada', message: 'hello', acceptedBy: 'api-test', persistedBy: 'worker-test', persistedAt: String });
  t.notOk('attemptsMade' in (persisted.body ?? {}), 'a row has no attempts');
  t.match((await call(`${app.url}/api/entries`)).body, { entries: [{ id, status: undefined, persistedBy: 'worker-test' }], next: null });
});

t.test('GET /api/entries pages newest first with an opaque cursor', async (t) => {
  const ids: string[] = [];
  for (const message of ['one', 'two', 'three']) {
    const { body } = await post(app, { author: 'ada', message });
    ids.push(String(body?.['id']));
  }
  for (const id of ids) await persist(app, id);

  const first = await call(`${app.url}/api/entries?limit=2`);
  t.same((first.body?.['entries'] as { message: string }[]).map((entry) => entry.message), ['three', 'two']);
  const next = first.body?.['next'];
  t.type(next, 'string');
  const second = await call(`${app.url}/api/entries?limit=2&before=${String(next)}`);
  t.same((second.body?.['entries'] as { message: string }[]).map((entry) => entry.message), ['one']);
  t.equal(second.body?.['next'], null, 'the last page says so');

  const bad = await call(`${app.url}/api/entries?before=not-a-cursor`);
  t.equal(bad.status, 400);
  t.same(bad.body, { error: { code: 'invalid_field', message: 'before must be a cursor returned as "next" by this API', field: 'before' } });
});

t.test('an Idempotency-Key retry answers the first id and enqueues nothing', async (t) => {
  const key = { 'idempotency-key': 'order-42' };
  const first = await post(app, { author: 'ada', message: 'once' }, key);
  t.equal(first.status, 202);
  const retry = await post(app, { author: 'ada', message: 'once' }, key);
  t.equal(retry.status, 202);
  t.equal(retry.body?.['id'], first.body?.['id'], 'the same id');
  t.equal(retry.headers.get('idempotent-replayed'), 'true');
  t.equal(first.headers.get('idempotent-replayed'), null, 'the first was not a replay');
  t.match((await call(`${app.url}/api/stats`)).body, { queue: { waiting: 1 } }, 'one job');

  const other = await post(app, { author: 'ada', message: 'something else' }, key);
  t.equal(other.status, 422);
  t.same(other.body, {
    error: {
      code: 'idempotency_key_reused',
      message: 'this Idempotency-Key was already used for a different entry; use a new key for a new entry',
      field: 'Idempotency-Key',
    },
  });
});

t.test('the error middleware answers in the one shape', async (t) => {
  t.same((await call(`${app.url}/api/nothing`)).body, { error: { code: 'not_found', message: 'no route for GET /api/nothing' } });
  const missing = await call(`${app.url}/api/entries/0190a8c4-0b1e-7c3a-9d2e-4f5a6b7c8d9e`);
  t.equal(missing.status, 404);
  t.same(missing.body, { error: { code: 'not_found', message: 'no entry with id 0190a8c4-0b1e-7c3a-9d2e-4f5a6b7c8d9e' } });
  const notUuid = await call(`${app.url}/api/entries/42`);
  t.same(notUuid.body, { error: { code: 'invalid_field', message: 'id must be a UUID', field: 'id' } });
  const wrong = await call(`${app.url}/api/entries`, { method: 'DELETE' });
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('allow'), 'GET, POST, HEAD');
  const broken = await call(`${app.url}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"author":' });
  t.equal(broken.status, 400);
  t.same(broken.body, { error: { code: 'invalid_json', message: 'the body is not valid JSON', field: 'body' } });
  const big = await post(app, { author: 'ada', message: 'x'.repeat(17 * 1024) });
  t.equal(big.status, 413);
  t.same(big.body, { error: { code: 'payload_too_large', message: 'the body must be at most 16384 bytes', field: 'body' } });
});

t.test('EntryQueue.findMany: the entries of the ids that have a job, one view with findState', async (t) => {
  const { body } = await post(app, { author: 'ada', message: 'hello' });
  const id = String(body?.['id']);
  const unknown = '0190a8c4-0b1e-7c3a-9d2e-4f5a6b7c8d9e';
  const found = await app.deps.queue.findMany([id, unknown]);
  t.same([...found.keys()], [id], 'only the id with a job');
  const state = await app.deps.queue.findState(id);
  t.same(found.get(id), state?.entry, 'the same view as findState');
  t.match(found.get(id), { id, author: 'ada', message: 'hello', acceptedBy: 'api-test', persistedBy: null, persistedAt: null });
  t.same(await app.deps.queue.findMany([]), new Map(), 'no ids, no round trip');
});

t.test('Redis or PostgreSQL down: 503s that say which, and a public /readyz that says only not_ready', async (t) => {
  t.same((await call(`${app.url}/readyz`)).body, { status: 'ready' });

  await app.postgres.stop();
  const list = await call(`${app.url}/api/entries`);
  t.equal(list.status, 503);
  t.same(list.body, { error: { code: 'database_unavailable', message: 'the database is unavailable right now, please retry' } });
  t.equal(list.headers.get('retry-after'), '1');
  t.equal((await post(app, { author: 'ada', message: 'while PostgreSQL is down' })).status, 202, 'accepting needs only Redis');

  await app.redis.stop();
  const refused = await post(app, { author: 'ada', message: 'while Redis is down' });
  t.equal(refused.status, 503);
  t.same(refused.body, { error: { code: 'queue_unavailable', message: 'the queue is unavailable right now; the entry was not accepted, please retry' } });
  const stats = await call(`${app.url}/api/stats`);
  t.same(stats.body, { error: { code: 'queue_unavailable', message: 'the queue is unavailable right now' } });
  const ready = await call(`${app.url}/readyz`);
  t.equal(ready.status, 503);
  t.same(ready.body, { error: { code: 'not_ready', message: 'this instance is not ready to serve requests; retry' } });
  t.equal((await call(`${app.url}/healthz`)).status, 200, 'liveness does not depend on them');
});
