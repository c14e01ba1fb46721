/**
 * A POST whose enqueue fails after its Idempotency-Key was claimed: the outcome of a failed write
 * is not always known (a deadline passed, a connection broke mid-command, the replicas did not
 * confirm), so the key stays claimed and the client's retry enqueues that same entry. Its own
 * file: every other write test asserts that no answer is a 5xx.
 */
import { randomUUID } from 'node:crypto';
import { assertError, postEntry, type ErrorBody } from '@inflow/test-support';
import t from 'tap';
import { startRealApp } from './utils/real-app.ts';

const app = await startRealApp(t);
const waiting = async () => (await app.deps.queue.counts()).waiting;

t.test('Idempotency-Key: a write that failed keeps its key; the retry enqueues that entry', async (t) => {
  // Redis refuses BullMQ's add (its job counter is not a number) after the key was claimed: the
  // outcome of a failed write is not always known, so the key must not be given back.
  const counter = 'bull:entries:id';
  const saved = await app.redis.client.get(counter);
  await app.redis.client.set(counter, 'not a number');
  t.teardown(() => (saved === null ? app.redis.client.del(counter) : app.redis.client.set(counter, saved)));
  const before = await waiting();
  const key = `key-${randomUUID()}`;
  const body = { author: 'kept key', message: 'the first try fails' };
  const refused = await postEntry<ErrorBody>(app.url, body, { 'idempotency-key': key });
  assertError(t, refused, 503, 'queue_unavailable');
  t.equal(await waiting(), before, 'nothing enqueued');

  await (saved === null ? app.redis.client.del(counter) : app.redis.client.set(counter, saved));
  const retry = await postEntry(app.url, body, { 'idempotency-key': key });
  t.equal(retry.status, 202, 'the retry is accepted');
  t.equal(retry.headers.get('idempotent-replayed'), 'true', 'as the entry the key was claimed for');
  t.equal((await waiting()) - before, 1, 'one job');
  const other = await postEntry<ErrorBody>(app.url, { author: 'kept key', message: 'something else' }, { 'idempotency-key': key });
  assertError(t, other, 422, 'idempotency_key_reused', 'Idempotency-Key');
});
