/**
 * Redis stops: a POST is answered 503 (never 202), readiness names redis, nothing is persisted.
 * Redis starts again: the same API and worker processes recover by themselves.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { http, postEntry, startStack, waitFor, waitForEntryStatus, waitForQueueDrained, type ErrorBody } from '@inflow/test-support';

t.setTimeout(120_000);

t.test('Redis down and back', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 1 });
  const [api] = stack.apis;
  const [worker] = stack.workers;
  if (api === undefined || worker === undefined) throw new Error('no stack');

  const before = await postEntry(api.url, { author: 'before', message: 'accepted while Redis is up' });
  t.equal(before.status, 202);
  await waitForEntryStatus(api.url, before.body.id, 'persisted');
  const rowsBefore = await stack.countRows();

  await stack.redis.stop();

  // Writes: 503 while Redis is down, whatever the request. Redis comes back only once all of
  // these were answered, so none of them waited for it to return.
  const attempts = [
    () => postEntry(api.url, { author: 'down', message: 'no key' }),
    () => postEntry(api.url, { author: 'down', message: 'with key' }, { 'Idempotency-Key': randomUUID() }),
    () => postEntry(api.url, { author: 'down', message: 'no key, again' }),
  ];
  for (const attempt of attempts) {
    const result = await attempt();
    t.equal(result.status, 503, `503, not 202 (${result.text})`);
    t.match(result.body, { error: { code: 'queue_unavailable', message: String } });
    t.equal(result.headers.get('retry-after'), '1');
    t.equal(result.headers.get('x-instance-id'), 'api-1');
  }
  // A burst: every single answer is a 503.
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => postEntry(api.url, { author: 'down', message: `burst ${i}` })));
  t.same(new Set(burst.map((r) => r.status)), new Set([503]), 'no 202 in a burst either');
  // Validation still comes first.
  t.equal((await postEntry(api.url, { author: '' })).status, 400);

  // Readiness names the dependency that failed; liveness does not depend on it.
  const ready = await http<ErrorBody & { checks: Record<string, { ok: boolean }> }>(`${api.opsUrl}/readyz`);
  t.equal(ready.status, 503);
  t.match(ready.body, { error: { code: 'dependency_unavailable', message: /redis/ }, checks: { redis: { ok: false }, postgres: { ok: true } } });
  t.notMatch(ready.body.error.message, /postgres/);
  t.equal((await http(`${api.url}/healthz`)).status, 200, 'the API is alive');
  const workerReady = await http<ErrorBody>(`${worker.url}/readyz`);
  t.equal(workerReady.status, 503);
  t.match(workerReady.body, { error: { message: /redis/ }, checks: { redis: { ok: false }, postgres: { ok: true } } });
  t.equal((await http(`${worker.url}/healthz`)).status, 200, 'the worker is alive');

  // Reads from PostgreSQL still work; what needs the queue says it is unavailable.
  t.equal((await http(`${api.url}/api/entries`)).status, 200);
  t.match((await http(`${api.url}/api/entries/${before.body.id}`)).body, { status: 'persisted' });
  t.equal((await http(`${api.url}/api/entries/${randomUUID()}`)).status, 503, 'an unknown id cannot be ruled out without the queue');

  // Redis back, on the same port, empty (it had no persistence).
  await stack.redis.start();
  await waitFor(async () => (await http(`${api.url}/readyz`)).status === 200, { timeoutMs: 15_000, what: 'the API to be ready again' });
  await waitFor(async () => (await http(`${worker.url}/readyz`)).status === 200, { timeoutMs: 15_000, what: 'the worker to be ready again' });
  t.equal(api.child.exitCode, null, 'the API process was not restarted');
  t.equal(worker.child.exitCode, null, 'the worker process was not restarted');

  const after = await postEntry(api.url, { author: 'after', message: 'accepted once Redis is back' });
  t.equal(after.status, 202);
  const persisted = await waitForEntryStatus(api.url, after.body.id, 'persisted', 20_000);
  t.match(persisted, { acceptedBy: 'api-1', persistedBy: 'worker-1' });
  const keyed = await postEntry(api.url, { author: 'after', message: 'keyed' }, { 'Idempotency-Key': randomUUID() });
  t.equal(keyed.status, 202, 'the idempotency store works again too');
  await waitForEntryStatus(api.url, keyed.body.id, 'persisted');

  // Nothing answered 503 was persisted: once no job is left to run, any job a refused entry
  // had made after all would have been written.
  await waitForQueueDrained(stack.redis.client, { timeoutMs: 30_000 });
  const rows = await stack.rows();
  t.equal(rows.length, rowsBefore + 2);
  t.same(rows.filter((row) => row.author === 'down'), [], 'no refused entry was written');
});
