/**
 * An entry through a real API process and a real worker process: queued while no worker runs,
 * "processing" while the worker writes it, then persisted with the acceptance time kept, and its
 * job gone from Redis. The HTTP contract itself is apps/api/test (entries-read, entries-write).
 */
import pg from 'pg';
import t from 'tap';
import { http, postEntry, startStack, waitFor, waitForEntryStatus, type EntryView } from '@inflow/test-support';

t.setTimeout(120_000);

const stack = await startStack(t, { apis: 1, workers: 0 });
const api = stack.apis[0];
if (api === undefined) throw new Error('no API');
const base = api.url;

t.test('queued, then persisted by the worker, the job removed from Redis', async (t) => {
  const accepted = await postEntry(base, { author: 'Ada Lovelace', message: 'hello' });
  t.equal(accepted.status, 202);
  const queued = await http<EntryView>(`${base}/api/entries/${accepted.body.id}`);
  t.match(queued.body, { status: 'queued', acceptedBy: 'api-1', persistedBy: null }, 'no worker yet: in the queue');

  const worker = await stack.addWorker();
  const persisted = await waitForEntryStatus(base, accepted.body.id, 'persisted');
  t.match(persisted, { id: accepted.body.id, author: 'Ada Lovelace', message: 'hello', acceptedBy: 'api-1', persistedBy: 'worker-1' });
  t.equal(persisted.createdAt, queued.body.createdAt, 'createdAt is the acceptance time, kept through the queue');
  t.ok(Date.parse(persisted.persistedAt ?? '') >= Date.parse(persisted.createdAt), 'persisted after accepted');
  // Completed jobs do not stay in Redis. BullMQ removes the job as it marks it completed, which
  // is just after the worker's INSERT committed (what the read above saw): wait for it.
  await waitFor(async () => (await stack.redis.client.exists(`bull:entries:${accepted.body.id}`)) === 0, {
    timeoutMs: 10_000,
    what: 'the completed job to be removed from Redis',
  });
  t.pass('the completed job is removed from Redis');
  await t.resolveMatch(stack.redis.client.zcard('bull:entries:completed'), 0, 'no completed set kept');

  // The worker's readiness, as main.ts wires it: its dependencies and its consumer.
  const ready = await http(`${worker.url}/readyz`);
  t.equal(ready.status, 200);
  t.match(ready.body, { status: 'ready', instanceId: 'worker-1', checks: { redis: { ok: true }, postgres: { ok: true }, consumer: { ok: true } } });
});

t.test('GET /api/entries/:id says "processing" while the worker writes the entry', async (t) => {
  // A table lock holds the worker's INSERT, so the job stays active long enough to be seen.
  const blocker = new pg.Client({ host: '127.0.0.1', port: stack.pg.port, user: 'inflow', database: 'inflow' });
  await blocker.connect();
  t.teardown(() => blocker.end().catch(() => undefined));
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE entries IN SHARE ROW EXCLUSIVE MODE');
  const accepted = await postEntry(base, { author: 'slow', message: 'held by a lock' });
  const processing = await waitForEntryStatus(base, accepted.body.id, 'processing');
  t.match(processing, { status: 'processing', id: accepted.body.id, author: 'slow', acceptedBy: 'api-1', persistedBy: null, persistedAt: null });
  await blocker.query('COMMIT');
  t.match(await waitForEntryStatus(base, accepted.body.id, 'persisted'), { persistedBy: 'worker-1' });
});
