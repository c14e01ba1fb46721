/**
 * PostgreSQL stops: readiness names postgres, POSTs are still accepted (the queue takes them),
 * reads answer 503 database_unavailable, and the worker stops taking jobs instead of spending
 * their attempts. The outage lasts many times the whole retry budget (made short here: 2
 * attempts, 100 ms apart). PostgreSQL starts again: the worker resumes by itself and persists
 * every entry accepted meanwhile, none failed, and the same processes serve reads again.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { http, postEntry, startStack, waitFor, waitForEntryStatus, type ErrorBody } from '@inflow/test-support';

t.setTimeout(120_000);

t.test('PostgreSQL down and back', async (t) => {
  const retryBudgetMs = 100;
  const stack = await startStack(t, { apis: 1, workers: 1, env: { ENTRY_JOB_ATTEMPTS: '2', ENTRY_RETRY_DELAY_MS: String(retryBudgetMs) } });
  const [api] = stack.apis;
  const [worker] = stack.workers;
  if (api === undefined || worker === undefined) throw new Error('no stack');

  const first = await postEntry(api.url, { author: 'before', message: 'persisted before the outage' });
  await waitForEntryStatus(api.url, first.body.id, 'persisted');

  await stack.pg.stop();

  const ready = await http<ErrorBody>(`${api.opsUrl}/readyz`);
  t.equal(ready.status, 503);
  t.match(ready.body, { error: { code: 'dependency_unavailable', message: /postgres/ }, checks: { postgres: { ok: false }, redis: { ok: true } } });
  t.notMatch(ready.body.error.message, /redis/);
  const workerReady = await http<ErrorBody>(`${worker.url}/readyz`);
  t.equal(workerReady.status, 503);
  t.match(workerReady.body, { error: { message: /postgres/ }, checks: { postgres: { ok: false }, redis: { ok: true } } });
  t.equal((await http(`${api.url}/healthz`)).status, 200, 'liveness does not depend on PostgreSQL');

  // Writes go to the queue: still accepted.
  const accepted: string[] = [];
  for (let i = 0; i < 20; i += 1) {
    const result = await postEntry(api.url, { author: 'during', message: `accepted during the outage ${i}` });
    t.equal(result.status, 202, `POST ${i}: 202 (${result.text})`);
    accepted.push(result.body.id);
  }
  // A retried POST with an Idempotency-Key: the same id, even though the database cannot be asked.
  const key = randomUUID();
  const keyed = await postEntry(api.url, { author: 'during', message: 'keyed during the outage' }, { 'Idempotency-Key': key });
  t.equal(keyed.status, 202);
  const retried = await postEntry(api.url, { author: 'during', message: 'keyed during the outage' }, { 'Idempotency-Key': key });
  t.equal(retried.status, 202, `a retry is accepted too (${retried.text})`);
  t.equal(retried.body.id, keyed.body.id, 'with the same id');
  accepted.push(keyed.body.id);

  // Reads need the database.
  const list = await http<ErrorBody>(`${api.url}/api/entries`);
  t.equal(list.status, 503);
  t.match(list.body, { error: { code: 'database_unavailable' } });
  t.equal(list.headers.get('retry-after'), '1');
  t.equal(list.headers.get('x-instance-id'), 'api-1');
  const one = await http<ErrorBody>(`${api.url}/api/entries/${first.body.id}`);
  t.equal(one.status, 503);
  t.match(one.body, { error: { code: 'database_unavailable' } });

  // The worker finds the database gone and stops taking jobs; it does not spend attempts, give
  // up nor crash.
  await worker.waitForLog((line) => line.msg === 'database unavailable: not taking jobs until PostgreSQL answers', 30_000);
  const waiting = await waitFor(
    async () => {
      const result = await http<ErrorBody & { checks: Record<string, { ok: boolean; error?: string }> }>(`${worker.url}/readyz`);
      return result.body.checks['consumer']?.ok === false ? result : undefined;
    },
    { timeoutMs: 15_000, what: "the worker's /readyz to say it waits for the database" },
  );
  t.equal(waiting.status, 503);
  t.match(waiting.body.checks['consumer'], { ok: false, error: /waiting for the database/ });
  // What the alert rules read (deploy/prometheus/alerts.yml): the worker waits, the API is not ready.
  const workerMetrics = (await http(`${worker.url}/metrics`)).text;
  t.match(workerMetrics, /^inflow_worker_database_available\{[^}]*\} 0$/m, 'inflow_worker_database_available 0');
  t.match(workerMetrics, /^inflow_worker_ready\{[^}]*\} 0$/m, 'inflow_worker_ready 0');
  t.match((await http(`${api.opsUrl}/metrics`)).text, /^inflow_api_ready\{[^}]*\} 0$/m, 'inflow_api_ready 0');
  // The fault itself: the outage lasts fifty times the whole retry budget. Had an attempt been
  // spent per failed write, every entry would be in the failed set by now.
  await sleep(50 * retryBudgetMs * 2);
  t.equal(worker.child.exitCode, null, 'the worker keeps running');
  t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, 'no job failed for good');
  t.same(worker.logs.filter((line) => line.msg === 'entry attempt failed, will retry'), [], 'no attempt was spent');

  await stack.pg.start();

  await waitFor(async () => (await http(`${api.url}/readyz`)).status === 200, { timeoutMs: 15_000, what: 'the API to be ready again' });
  await waitFor(async () => (await http(`${worker.url}/readyz`)).status === 200, { timeoutMs: 15_000, what: 'the worker to be ready again' });
  await worker.waitForLog((line) => line.msg === 'database answers again: taking jobs', 15_000);
  const backMetrics = (await http(`${worker.url}/metrics`)).text;
  t.match(backMetrics, /^inflow_worker_database_available\{[^}]*\} 1$/m, 'inflow_worker_database_available 1 again');
  t.match(backMetrics, /^inflow_worker_ready\{[^}]*\} 1$/m, 'inflow_worker_ready 1 again');

  // Every entry accepted during the outage is persisted by the worker's retries.
  const persisted = await waitFor(
    async () => {
      const rows = (await stack.rows()).filter((row) => row.author === 'during');
      return rows.length >= accepted.length ? rows : undefined;
    },
    { timeoutMs: 45_000, what: 'the entries accepted during the outage to be persisted', intervalMs: 250 },
  );
  t.same(persisted.map((row) => row.id).sort(), [...accepted].sort(), 'exactly the accepted entries, once each');
  t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, 'and none failed');
  t.ok(persisted.every((row) => row.persisted_by === 'worker-1'), 'by the same worker process');
  t.equal(worker.child.exitCode, null);
  t.equal(api.child.exitCode, null);

  const list2 = await http<{ entries: unknown[] }>(`${api.url}/api/entries?limit=200`);
  t.equal(list2.status, 200, 'reads work again without a restart');
  t.equal(list2.body.entries.length, accepted.length + 1);
  t.match((await http(`${api.url}/api/entries/${keyed.body.id}`)).body, { status: 'persisted' });
});
