/**
 * Graceful shutdown. The API, on SIGTERM, stops accepting connections, finishes the requests in
 * flight (also on keep-alive connections, as nginx holds them) and exits 0 well within the 10 s
 * Compose allows. The worker, on SIGTERM with a backlog, finishes its active jobs and exits 0
 * quickly, leaving no job locked; a new worker persists the rest, each entry once.
 */
import { Agent } from 'node:http';
import t from 'tap';
import { mapLimit, postEntry, rawRequest, slowPost, startStack, waitFor, type Accepted } from '../support/index.ts';

t.setTimeout(150_000);

const entryBody = (i: number) => JSON.stringify({ author: 'in flight', message: `request in flight ${i}` });

t.test('API: SIGTERM with requests in flight', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 1 });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');

  // An idle keep-alive connection, as a proxy keeps them: it must not hold the shutdown up.
  const keepAlive = new Agent({ keepAlive: true });
  t.teardown(() => {
    keepAlive.destroy();
  });
  const idle = slowPost(`${api.url}/api/entries`, entryBody(-1), {}, keepAlive);
  idle.finish();
  t.equal((await idle.response).status, 202);

  // Requests whose bodies are still arriving: over their own connections and over keep-alive ones.
  const inFlight = [
    ...Array.from({ length: 3 }, (_, i) => slowPost(`${api.url}/api/entries`, entryBody(i))),
    ...Array.from({ length: 3 }, (_, i) => slowPost(`${api.url}/api/entries`, entryBody(10 + i), {}, keepAlive)),
  ];
  await new Promise((resolve) => setTimeout(resolve, 300));

  const signalledAt = Date.now();
  api.signal('SIGTERM');
  await api.waitForLog((line) => line.msg === 'shutting down');

  // New connections are refused at once. (Over a connection of its own: fetch could reuse an
  // idle keep-alive one from its pool, which a draining API may still serve, with "Connection: close".)
  await t.rejects(rawRequest(`${api.url}/healthz`), { code: 'ECONNREFUSED' }, 'a new connection is refused while draining');

  // The requests in flight complete normally.
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const request of inFlight) request.finish();
  const results = await Promise.all(inFlight.map((request) => request.response));
  for (const result of results) {
    t.equal(result.status, 202, `in-flight request answered 202 (${result.text})`);
    t.equal(result.headers['x-instance-id'], 'api-1');
  }

  const code = await api.exited;
  const ms = Date.now() - signalledAt;
  t.equal(code, 0, 'exit code 0');
  t.ok(ms < 10_000, `exited ${ms} ms after SIGTERM (within 10 s)`);
  t.ok(api.logs.some((line) => line.msg === 'shutdown complete' && line['clean'] === true), 'a clean shutdown was logged');
  t.notOk(api.logs.some((line) => line.msg === 'shutdown deadline passed, exiting now'), 'not cut short by the deadline');

  // Nothing accepted is lost: the worker (still running) persists every 202.
  const ids = results.map((result) => (JSON.parse(result.text) as Accepted).id);
  await waitFor(async () => {
    const stored = new Set((await stack.rows()).map((row) => row.id));
    return ids.every((id) => stored.has(id));
  }, { timeoutMs: 15_000, what: 'the in-flight entries to be persisted' });
  t.pass('every in-flight entry was persisted');
});

t.test('API: SIGTERM in the middle of a burst loses no accepted entry', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 1 });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');

  const accepted: string[] = [];
  let refused = 0;
  let signalledAt = 0;
  const burst = mapLimit(Array.from({ length: 400 }, (_, i) => i), 16, async (i) => {
    if (i === 150) {
      signalledAt = Date.now();
      api.signal('SIGTERM');
    }
    try {
      const result = await postEntry(api.url, { author: 'burst', message: `burst ${i}` });
      if (result.status === 202) accepted.push(result.body.id);
      else t.fail(`POST ${i}: ${result.status} ${result.text}`);
    } catch {
      refused += 1; // connection refused or closed: the client knows it was not accepted
    }
  });
  await burst;
  const code = await api.exited;
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - signalledAt < 10_000, 'within 10 s');
  t.ok(accepted.length >= 100, `${accepted.length} accepted before or while draining`);
  t.ok(refused > 0, `${refused} refused once the API stopped listening`);

  await waitFor(async () => (await stack.countRows()) >= accepted.length, { timeoutMs: 20_000, what: 'every accepted entry to be persisted' });
  const stored = new Set((await stack.rows()).map((row) => row.id));
  t.ok(accepted.every((id) => stored.has(id)), 'every 202 was persisted');
  t.equal(stored.size, accepted.length, 'and nothing else');
});

t.test('worker: SIGTERM with a backlog finishes its active jobs and exits 0', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 0 });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');

  const total = 1_500;
  const ids = await mapLimit(Array.from({ length: total }, (_, i) => i), 24, async (i) => {
    const result = await postEntry(api.url, { author: 'backlog', message: `backlog ${i}` });
    if (result.status !== 202) throw new Error(`POST ${i}: ${result.status}`);
    return result.body.id;
  });
  t.equal(await stack.redis.client.llen('bull:entries:wait'), total, 'the backlog waits in the queue');

  // A deliberately small concurrency, so the backlog is still there when the signal comes.
  const first = await stack.addWorker({ WORKER_CONCURRENCY: '8' });
  await first.waitForLog((line) => line.msg === 'entry persisted');
  const signalledAt = Date.now();
  first.signal('SIGTERM');
  const code = await first.exited;
  const ms = Date.now() - signalledAt;
  t.equal(code, 0, 'exit code 0');
  t.ok(ms < 10_000, `exited ${ms} ms after SIGTERM (within 10 s)`);
  t.ok(first.logs.some((line) => line.msg === 'shutdown complete' && line['clean'] === true), 'a clean shutdown');
  t.notOk(first.logs.some((line) => line.msg === 'shutdown deadline passed, exiting now'), 'not cut short by the deadline');
  t.notOk(first.logs.some((line) => typeof line.msg === 'string' && line.msg.startsWith('forcing the worker closed')), 'not forced');

  const persistedByFirst = await stack.countRows();
  t.ok(persistedByFirst > 0 && persistedByFirst < total, `${persistedByFirst} of ${total} persisted before the signal`);
  t.equal(await stack.redis.client.llen('bull:entries:active'), 0, 'no job left active (locked) by the stopped worker');
  t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, 'no job failed');

  // A new worker persists the rest.
  const second = await stack.addWorker();
  await waitFor(async () => (await stack.countRows()) >= total, { timeoutMs: 30_000, what: `${total} rows`, intervalMs: 200 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const rows = await stack.rows();
  t.equal(rows.length, total, `exactly ${total} rows`);
  const stored = new Set(rows.map((row) => row.id));
  t.ok(ids.every((id) => stored.has(id)), 'every accepted id is there');
  t.equal(new Set(rows.map((row) => row.message)).size, total, 'no entry twice');
  t.same(new Set(rows.map((row) => row.persisted_by)), new Set(['worker-1', 'worker-2']), 'both workers took part');
  t.equal(second.child.exitCode, null);

  // The second one shuts down cleanly when idle, too.
  second.signal('SIGINT');
  t.equal(await second.exited, 0, 'SIGINT: exit code 0');
});
