/**
 * inflow_queue_oldest_waiting_age_seconds (the API's ops /metrics, read from the queue at scrape
 * time; InflowOldestEntryWaitingTooLong reads it): 0 while nothing waits; with no worker, the
 * age of the oldest entry accepted, growing, never more than the time since it was accepted;
 * back to 0 once a worker has persisted everything.
 */
import t from 'tap';
import { http, postEntry, startStack, waitFor, waitForEntryStatus } from '@inflow/test-support';

t.setTimeout(120_000);

const AGE = /^inflow_queue_oldest_waiting_age_seconds\{[^}]*\} (\S+)$/m;

t.test('the oldest waiting entry\'s age', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 0 });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no api');
  const age = async () => Number(AGE.exec((await http(`${api.opsUrl}/metrics`)).text)?.[1] ?? Number.NaN);

  t.equal(await age(), 0, '0 while nothing waits');
  const before = Date.now();
  const first = await postEntry(api.url, { author: 'age', message: 'the oldest' });
  t.equal(first.status, 202);
  await postEntry(api.url, { author: 'age', message: 'a younger one' });
  const grown = await waitFor(async () => {
    const value = await age();
    return value >= 0.2 ? value : undefined;
  }, { timeoutMs: 10_000, what: 'the age to grow', intervalMs: 100 });
  t.ok(grown <= (Date.now() - before) / 1000 + 0.05, `${grown} s: no more than the time since the first was accepted`);

  const worker = await stack.addWorker();
  t.ok(worker, 'a worker starts');
  await waitForEntryStatus(api.url, first.body.id, 'persisted');
  const drained = await waitFor(async () => ((await age()) === 0 ? true : undefined), { timeoutMs: 15_000, what: 'the age back to 0', intervalMs: 100 });
  t.ok(drained, '0 once everything is persisted');
});
