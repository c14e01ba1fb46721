/**
 * createApp in this process, on a free port, over the real dependencies (createDependencies)
 * and a real PostgreSQL and Redis: what each dependency's outage does to the answers, and the
 * queue's view of accepted entries. The HTTP contract of reading and writing is
 * entries-read.test.ts and entries-write.test.ts; readiness is public-answers.test.ts and
 * ops-server.test.ts.
 */
import { acceptEntry, http, postEntry } from '@inflow/test-support';
import t from 'tap';
import { startRealApp } from './utils/real-app.ts';

// One app for the file; each test starts from an empty queue and an empty table.
const app = await startRealApp(t);
t.beforeEach(async () => {
  await app.redis.client.flushall();
  await app.postgres.query('TRUNCATE entries');
});

t.test('EntryQueue.findMany: the entries of the ids that have a job, one view with findState', async (t) => {
  const { id } = await acceptEntry(app.url, 'ada', 'hello');
  const unknown = '0190a8c4-0b1e-7c3a-9d2e-4f5a6b7c8d9e';
  const found = await app.deps.queue.findMany([id, unknown]);
  t.same([...found.keys()], [id], 'only the id with a job');
  const state = await app.deps.queue.findState(id);
  t.same(found.get(id), state?.entry, 'the same view as findState');
  t.match(found.get(id), { id, author: 'ada', message: 'hello', acceptedBy: 'api-test', persistedBy: null, persistedAt: null });
  t.same(await app.deps.queue.findMany([]), new Map(), 'no ids, no round trip');
});

t.test('Redis or PostgreSQL down: 503s that say which; accepting needs only Redis', async (t) => {
  await app.postgres.stop();
  const list = await http(`${app.url}/api/entries`);
  t.equal(list.status, 503);
  t.same(list.body, { error: { code: 'database_unavailable', message: 'the database is unavailable right now, please retry' } });
  t.equal(list.headers.get('retry-after'), '1');
  t.equal((await postEntry(app.url, { author: 'ada', message: 'while PostgreSQL is down' })).status, 202, 'accepting needs only Redis');

  await app.redis.stop();
  const refused = await postEntry(app.url, { author: 'ada', message: 'while Redis is down' });
  t.equal(refused.status, 503);
  t.same(refused.body, { error: { code: 'queue_unavailable', message: 'the queue is unavailable right now; the entry was not accepted, please retry (with the same Idempotency-Key)' } });
  t.equal((await http(`${app.url}/healthz`)).status, 200, 'liveness does not depend on them');
});
