/**
 * Redis full. Redis runs with maxmemory and noeviction; at the limit it refuses every write,
 * BullMQ's own scripts included, so a queue filled to maxmemory could never drain. The API
 * therefore stops accepting at QUEUE_MEMORY_LIMIT_PERCENT of maxmemory: POSTs get 503
 * queue_unavailable (never 202), the worker drains the backlog, and the API accepts again by
 * itself. And when Redis itself refuses a write (OOM), that is a 503 too.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { mapLimit, postEntry, startStack, waitFor, waitForQueueDrained, type Accepted, type ErrorBody, type HttpResult } from '@inflow/test-support';

t.setTimeout(180_000);

async function usedMemory(client: { info(section: string): Promise<string> }): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await client.info('memory'))?.[1]);
}

t.test('the queue fills up to the limit, drains, and accepts again', async (t) => {
  // Half of maxmemory is left above the limit: far more than one second of this load, which is
  // how long a replica trusts one reading of Redis's memory.
  const stack = await startStack(t, { apis: 1, workers: 0, env: { QUEUE_MEMORY_LIMIT_PERCENT: '50' } });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no stack');
  const redis = stack.redis.client;
  const maxmemory = (await usedMemory(redis)) + 16 * 1024 * 1024;
  await redis.config('SET', 'maxmemory', String(maxmemory));
  await redis.config('SET', 'maxmemory-policy', 'noeviction');

  // Bounded: at most 20,000 entries of about 1.8 KB (36 MB, far past the 8 MB of room), and it
  // stops at the first refusal of each sender.
  const accepted: string[] = [];
  const refusals: HttpResult<Accepted | ErrorBody>[] = [];
  const senders = Array.from({ length: 8 }, (_, sender) => sender);
  await mapLimit(senders, senders.length, async (sender) => {
    for (let i = 0; i < 2_500; i += 1) {
      const result = await postEntry<Accepted | ErrorBody>(api.url, { author: 'filler', message: `${sender}-${i} ${randomBytes(900).toString('hex')}` });
      if (result.status === 202) {
        accepted.push((result.body as Accepted).id);
        continue;
      }
      refusals.push(result);
      return;
    }
  });
  t.ok(accepted.length > 0, `${accepted.length} entries accepted before the limit`);
  t.equal(refusals.length, senders.length, 'every sender was refused in the end');
  for (const refusal of refusals) {
    t.equal(refusal.status, 503, refusal.text);
    t.match(refusal.body, { error: { code: 'queue_unavailable', message: /full/ } });
    t.equal(refusal.headers.get('retry-after'), '1');
  }
  t.ok((await usedMemory(redis)) < maxmemory, 'Redis itself never reached maxmemory');

  // The worker drains the backlog; Redis has room again and the API accepts by itself.
  await stack.addWorker();
  await waitForQueueDrained(redis, { timeoutMs: 120_000 });
  const after = await waitFor(
    async () => {
      const result = await postEntry(api.url, { author: 'after', message: 'accepted again once the queue drained' });
      return result.status === 202 ? result : undefined;
    },
    { timeoutMs: 30_000, what: 'the API to accept again', intervalMs: 250 },
  );
  accepted.push(after.body.id);
  await waitForQueueDrained(redis, { timeoutMs: 30_000 });

  const rows = await stack.rows();
  t.same(rows.map((row) => row.id).sort(), [...accepted].sort(), 'every 202 persisted, once, and nothing else');
  t.equal(await redis.zcard('bull:entries:failed'), 0, 'no job failed');
});

t.test('a write Redis refuses (out of memory) is a 503, never a 202', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 1, env: { QUEUE_MEMORY_LIMIT_PERCENT: '95' } });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no stack');
  const redis = stack.redis.client;
  // Below what Redis uses already: every write is refused from now on, whatever the API's reading.
  await redis.config('SET', 'maxmemory', String(Math.floor((await usedMemory(redis)) / 2)));
  const results = await mapLimit(Array.from({ length: 20 }, (_, i) => i), 4, (i) =>
    postEntry<ErrorBody>(api.url, { author: 'oom', message: `refused ${i}` }, i % 2 === 0 ? { 'Idempotency-Key': `oom-${i}` } : {}),
  );
  for (const result of results) {
    t.equal(result.status, 503, result.text);
    t.match(result.body, { error: { code: 'queue_unavailable' } });
  }
  await redis.config('SET', 'maxmemory', '0');
  const accepted = await waitFor(
    async () => {
      const result = await postEntry(api.url, { author: 'oom', message: 'accepted once Redis has room' }, { 'Idempotency-Key': 'oom-0' });
      return result.status === 202 ? result : undefined;
    },
    { timeoutMs: 30_000, what: 'the API to accept again', intervalMs: 250 },
  );
  t.equal(accepted.headers.get('idempotent-replayed'), null, 'the refused attempt left no idempotency record behind');
  await waitForQueueDrained(redis, { timeoutMs: 30_000 });
  t.same((await stack.rows()).map((row) => row.id), [accepted.body.id], 'only the accepted entry exists');
});
