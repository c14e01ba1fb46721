/**
 * Graceful shutdown. The API, on SIGTERM, stops accepting connections, finishes the requests in
 * flight (also on keep-alive connections, as nginx holds them) and exits 0 before its own
 * shutdown deadline (SHUTDOWN_TIMEOUT_MS, inside the 10 s Compose allows). The worker, on SIGTERM
 * with a backlog, finishes its active jobs and exits 0, leaving no job locked; a new worker
 * persists the rest, each entry once. No wall-clock bound: what is asserted is the order of
 * events in the processes' own logs and that the deadline never fired.
 */
import { Agent } from 'node:http';
import pg from 'pg';
import tap from 'tap';
import {
  mapLimit,
  postEntry,
  rawRequest,
  slowPost,
  startStack,
  waitFor,
  waitForQueueDrained,
  type Accepted,
  type AppProcess,
  type LogLine,
} from '@inflow/test-support';

tap.setTimeout(150_000);

const entryBody = (i: number) => JSON.stringify({ author: 'in flight', message: `request in flight ${i}` });

const API_STEPS = ['drain http', 'close queue events', 'close queue', 'close redis', 'close database'];
const WORKER_STEPS = ['close worker', 'close redis', 'close health server', 'close database'];

const stepDone = (step: string) => (line: LogLine) => line.msg === 'shutdown step done' && line['step'] === step;
const isSignal = (line: LogLine) => line.msg === 'shutting down';

/**
 * When the process wrote a line, by its own clock (pino's ISO time, to the millisecond); NaN
 * for a line that is not there, so that every comparison with it fails. Lines are ordered by
 * this, not by where they arrived on stdout: at exit, pino's final synchronous flush can
 * overtake an asynchronous write still in flight, and the last lines arrive out of order.
 */
const timeOf = (line: LogLine | undefined): number => Date.parse(String(line?.['time']));

/** The process's lines from the signal on, with their times, for the messages. */
const shutdownLines = (logs: readonly LogLine[]): string =>
  logs
    .filter((line) => timeOf(line) >= timeOf(logs.find(isSignal)))
    .map((line) => `${String(line['time'])} ${String(line.msg)}${typeof line['step'] === 'string' ? ` (${line['step']})` : ''}`)
    .join('; ');

/**
 * The shutdown as the process logged it: the signal, then every step in order (others may come
 * between them), then a clean "shutdown complete" after the last; never the deadline, no step
 * failed. With exit code 0, this is what "it exited in time" means without a clock in the test:
 * the deadline (SHUTDOWN_TIMEOUT_MS) would have logged its line and exited 1.
 */
function assertCleanShutdown(t: Pick<typeof tap, 'ok' | 'notOk' | 'match'>, app: AppProcess, steps: readonly string[]): void {
  const { logs } = app;
  const seen = shutdownLines(logs);
  let previous = logs.find(isSignal);
  t.ok(previous, 'the signal was logged');
  let previousName = 'the signal';
  for (const step of steps) {
    const done = logs.find(stepDone(step));
    t.ok(timeOf(done) >= timeOf(previous), `step "${step}" done, not before ${previousName}`, { seen });
    previous = done ?? previous;
    previousName = `"${step}"`;
  }
  const complete = logs.find((line) => line.msg === 'shutdown complete');
  t.ok(timeOf(complete) >= timeOf(previous), `shutdown complete, not before ${previousName}`, { seen });
  t.match(complete, { clean: true }, 'a clean shutdown was logged');
  t.notOk(logs.some((line) => line.msg === 'shutdown step failed'), 'no step failed');
  t.notOk(logs.some((line) => line.msg === 'shutdown deadline passed, exiting now'), 'not cut short by the deadline');
}

tap.test('API: SIGTERM with requests in flight', async (t) => {
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
  // Each asks for "100 Continue", which the server sends as it hands the request to the app: once
  // every one has it, every one is in flight on the server, whatever the machine's speed.
  const inFlightIds = [0, 1, 2, 10, 11, 12].map((i) => `in-flight-${i}`);
  const headers = (i: number) => ({ expect: '100-continue', 'x-request-id': `in-flight-${i}` });
  const inFlight = [
    ...[0, 1, 2].map((i) => slowPost(`${api.url}/api/entries`, entryBody(i), headers(i))),
    ...[10, 11, 12].map((i) => slowPost(`${api.url}/api/entries`, entryBody(i), headers(i), keepAlive)),
  ];
  await Promise.all(inFlight.map((request) => request.received));

  api.signal('SIGTERM');
  await api.waitForLog((line) => line.msg === 'shutting down');

  // New connections are refused at once. (Over a connection of its own: fetch could reuse an
  // idle keep-alive one from its pool, which a draining API may still serve, with "Connection: close".)
  await t.rejects(rawRequest(`${api.url}/healthz`), { code: 'ECONNREFUSED' }, 'a new connection is refused while draining');

  // The requests in flight, held open across the start of the drain, complete normally.
  for (const request of inFlight) request.finish();
  const results = await Promise.all(inFlight.map((request) => request.response));
  for (const result of results) {
    t.equal(result.status, 202, `in-flight request answered 202 (${result.text})`);
    t.equal(result.headers['x-instance-id'], 'api-1');
  }

  const code = await api.closed;
  t.equal(code, 0, 'exit code 0');
  assertCleanShutdown(t, api, API_STEPS);
  // Each in-flight request was answered (its log line is written when the response is sent)
  // after the signal and before the drain step ended, so before the exit.
  const signalled = timeOf(api.logs.find(isSignal));
  const drained = timeOf(api.logs.find(stepDone('drain http')));
  for (const id of inFlightIds) {
    const answered = timeOf(api.logs.find((line) => (line['req'] as { id?: string } | undefined)?.id === id));
    t.ok(signalled <= answered && answered <= drained, `${id} answered while draining`, { seen: shutdownLines(api.logs) });
  }

  // Nothing accepted is lost: the worker (still running) persists every 202.
  const ids = results.map((result) => (JSON.parse(result.text) as Accepted).id);
  await waitFor(async () => {
    const stored = new Set((await stack.rows()).map((row) => row.id));
    return ids.every((id) => stored.has(id));
  }, { timeoutMs: 15_000, what: 'the in-flight entries to be persisted' });
  t.pass('every in-flight entry was persisted');
});

tap.test('API: SIGTERM in the middle of a burst loses no accepted entry', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 1 });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');

  const accepted: string[] = [];
  let refused = 0;
  const burst = mapLimit(Array.from({ length: 400 }, (_, i) => i), 16, async (i) => {
    if (i === 150) api.signal('SIGTERM');
    try {
      const result = await postEntry(api.url, { author: 'burst', message: `burst ${i}` });
      if (result.status === 202) accepted.push(result.body.id);
      else t.fail(`POST ${i}: ${result.status} ${result.text}`);
    } catch {
      refused += 1; // connection refused or closed: the client knows it was not accepted
    }
  });
  await burst;
  const code = await api.closed;
  t.equal(code, 0, 'exit code 0');
  assertCleanShutdown(t, api, API_STEPS);
  t.ok(accepted.length >= 100, `${accepted.length} accepted before or while draining`);
  t.ok(refused > 0, `${refused} refused once the API stopped listening`);

  await waitFor(async () => (await stack.countRows()) >= accepted.length, { timeoutMs: 20_000, what: 'every accepted entry to be persisted' });
  // No job left to run: a request the client saw fail, had it been enqueued after all, has its
  // row by now.
  await waitForQueueDrained(stack.redis.client, { timeoutMs: 30_000 });
  const stored = new Set((await stack.rows()).map((row) => row.id));
  t.ok(accepted.every((id) => stored.has(id)), 'every 202 was persisted');
  t.equal(stored.size, accepted.length, 'and nothing else');
});

tap.test('worker: SIGTERM with a backlog finishes its active jobs and exits 0', async (t) => {
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

  // The worker's INSERTs are held by a table lock, so that it certainly has jobs in the middle of
  // being written when the signal comes, and the backlog is certainly still there, however fast
  // the machine: nothing commits until the lock goes, and that happens only once the shutdown
  // has begun. A deliberately small concurrency: it holds exactly that many jobs then.
  const concurrency = 8;
  const blocker = new pg.Client({ host: '127.0.0.1', port: stack.pg.port, user: 'inflow', database: 'inflow' });
  await blocker.connect();
  t.teardown(() => blocker.end().catch(() => undefined));
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE entries IN SHARE ROW EXCLUSIVE MODE');

  const first = await stack.addWorker({ WORKER_CONCURRENCY: String(concurrency) });
  await waitFor(async () => (await stack.redis.client.llen('bull:entries:active')) === concurrency, {
    timeoutMs: 30_000,
    what: `${concurrency} jobs to be active in the worker`,
  });
  await waitFor(
    async () =>
      ((await blocker.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'inflow-worker/%' AND wait_event_type = 'Lock'")).rowCount ?? 0) > 0,
    { timeoutMs: 30_000, what: 'an INSERT waiting for the lock' },
  );
  // The worker holds as many jobs as it may and none can finish: this set cannot change now.
  const activeAtSignal = await stack.redis.client.lrange('bull:entries:active', 0, -1);
  first.signal('SIGTERM');
  await first.waitForLog((line) => line.msg === 'shutting down');
  await blocker.query('COMMIT');
  const code = await first.closed;
  t.equal(code, 0, 'exit code 0');
  assertCleanShutdown(t, first, WORKER_STEPS);
  t.notOk(first.logs.some((line) => typeof line.msg === 'string' && line.msg.startsWith('forcing the worker closed')), 'not forced');

  const persistedByFirst = await stack.rows();
  t.ok(persistedByFirst.length > 0 && persistedByFirst.length < total, `${persistedByFirst.length} of ${total} persisted by the first worker`);
  t.same(
    persistedByFirst.map((row) => row.id).sort(),
    [...activeAtSignal].sort(),
    'the first worker finished exactly the jobs it held when the signal came, and took no more',
  );
  t.equal(await stack.redis.client.llen('bull:entries:active'), 0, 'no job left active (locked) by the stopped worker');
  t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, 'no job failed');

  // A new worker persists the rest; once no job is left to run, nothing more can be written.
  const second = await stack.addWorker();
  await waitFor(async () => (await stack.countRows()) >= total, { timeoutMs: 30_000, what: `${total} rows`, intervalMs: 200 });
  await waitForQueueDrained(stack.redis.client, { timeoutMs: 30_000 });
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
