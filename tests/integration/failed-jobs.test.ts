/**
 * Jobs that cannot be persisted end in BullMQ's failed set, and GET /api/entries/:id reports them
 * as "failed" with the reason: an invalid payload added straight to the queue (unrecoverable at
 * once), a payload the database refuses, and a job that exhausts its attempts.
 */
import { randomUUID } from 'node:crypto';
import { ENTRIES_QUEUE, entryJobOptions, PERSIST_ENTRY_JOB } from '@inflow/shared';
import { Queue } from 'bullmq';
import t from 'tap';
import { http, startStack, waitFor, waitForEntryStatus, type EntryView } from '../support/index.ts';

t.setTimeout(120_000);

const stack = await startStack(t, { apis: 1, workers: 1 });
const [api] = stack.apis;
const [worker] = stack.workers;
if (api === undefined || worker === undefined) throw new Error('no stack');

const queue = new Queue(ENTRIES_QUEUE, { connection: { host: '127.0.0.1', port: stack.redis.port } });
t.teardown(() => queue.close());

const validPayload = (id: string) => ({
  id,
  author: 'direct',
  message: 'added straight to the queue',
  acceptedBy: 'test',
  acceptedAt: new Date().toISOString(),
});

t.test('an invalid payload fails at once and GET shows it failed, with the reason', async (t) => {
  const payloads: readonly (readonly [string, (id: string) => Record<string, unknown>, RegExp])[] = [
    ['not an entry at all', () => ({ hello: 'world' }), /invalid job payload/],
    ['author too long', (id) => ({ ...validPayload(id), author: 'a'.repeat(81) }), /invalid job payload: author: author must be 1 to 80/],
    ['unknown field', (id) => ({ ...validPayload(id), priority: 'high' }), /invalid job payload: priority/],
    ['bad acceptedAt', (id) => ({ ...validPayload(id), acceptedAt: 'yesterday' }), /invalid job payload: acceptedAt/],
  ];
  for (const [what, make, reason] of payloads) {
    const id = randomUUID();
    await queue.add(PERSIST_ENTRY_JOB, make(id), entryJobOptions(id));
    const failed = await waitForEntryStatus(api.url, id, 'failed', 15_000);
    t.match(failed, { status: 'failed', id, failedReason: reason, persistedBy: null, persistedAt: null }, what);
    t.equal(failed.attemptsMade, 1, `${what}: no retry for an unrecoverable payload`);
    if (what === 'not an entry at all') t.match(failed, { author: null, message: null, acceptedBy: null, createdAt: null }, 'fields it lacks are null');
    else t.match(failed, { author: String, acceptedBy: 'test' }, 'the fields it has are shown');
    t.equal(await queue.getJobState(id), 'failed', `${what}: in the failed set`);
    const log = await worker.waitForLog((line) => line['entryId'] === id && line.msg?.startsWith('entry failed for good') === true);
    t.match(log, { level: 'error', final: true, instance: 'worker-1' });
  }
  t.equal(await stack.countRows(), 0, 'nothing was written');
});

t.test('a payload the database refuses fails for good, without retries', async (t) => {
  const id = randomUUID();
  // Passes the payload schema, but PostgreSQL cannot store a NUL character.
  await queue.add(PERSIST_ENTRY_JOB, { ...validPayload(id), acceptedBy: 'api\u0000x' }, entryJobOptions(id));
  const failed = await waitForEntryStatus(api.url, id, 'failed', 15_000);
  t.match(failed, { status: 'failed', id, author: 'direct', message: 'added straight to the queue', failedReason: /the database refused the entry/ });
  t.equal(failed.attemptsMade, 1);
  t.equal(await stack.countRows(), 0);
});

t.test('a job that exhausts its attempts shows failed with the last reason', async (t) => {
  await stack.pg.stop();
  const id = randomUUID();
  // Few, quick attempts, so the test need not wait out the production backoff.
  await queue.add(PERSIST_ENTRY_JOB, validPayload(id), { ...entryJobOptions(id), attempts: 3, backoff: { type: 'fixed', delay: 100 } });
  await waitFor(async () => (await queue.getJobState(id)) === 'failed', { timeoutMs: 20_000, what: 'the job to fail for good' });
  const retries = worker.logs.filter((line) => line['entryId'] === id && line.msg === 'entry attempt failed, will retry');
  t.equal(retries.length, 2, 'two retries were logged before giving up');
  await stack.pg.start();
  const failed = await waitFor(
    async () => {
      const result = await http<EntryView>(`${api.url}/api/entries/${id}`);
      return result.status === 200 ? result.body : undefined;
    },
    { timeoutMs: 15_000, what: 'the API to read again' },
  );
  t.match(failed, { status: 'failed', id, failedReason: /ECONNREFUSED|connect|terminat/i, attemptsMade: 3 });
  t.equal(await stack.countRows(), 0, 'not written');
});

t.test('a valid job added straight to the queue is persisted like any other', async (t) => {
  const id = randomUUID();
  await queue.add(PERSIST_ENTRY_JOB, validPayload(id), entryJobOptions(id));
  const entry = await waitForEntryStatus(api.url, id, 'persisted', 20_000);
  t.match(entry, { id, acceptedBy: 'test', persistedBy: 'worker-1' });
});
