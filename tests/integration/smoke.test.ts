import t from 'tap';
import { startApi, startPostgres, startRedis, startWorker, waitFor } from '@inflow/test-support';

t.test('an entry goes from the API to the database', async (t) => {
  const [pg, redis] = await Promise.all([startPostgres(t), startRedis(t)]);
  const env = { ...pg.env, ...redis.env };
  const api = await startApi(t, { ...env, INSTANCE_ID: 'api-1' });
  await startWorker(t, { ...env, INSTANCE_ID: 'worker-1' });
  const res = await fetch(`${api.url}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'ada', message: 'hello' }),
  });
  t.equal(res.status, 202);
  const body = (await res.json()) as { id: string };
  const entry = await waitFor(async () => {
    const r = await fetch(`${api.url}/api/entries/${body.id}`);
    const j = (await r.json()) as { status: string };
    return j.status === 'persisted' ? j : undefined;
  }, { timeoutMs: 10_000, what: 'persisted' });
  t.match(entry, { status: 'persisted', acceptedBy: 'api-1', persistedBy: 'worker-1' });
});
