/**
 * The worker is SIGKILLed while entries stream in, with jobs in the middle of being written. A
 * new worker takes over: every accepted entry ends up as exactly one row. The jobs the dead
 * worker held come back through BullMQ's stalled-job check once their locks expire (the worker's
 * lockDuration), so the test waits for that to have happened, not for a time.
 */
import pg from 'pg';
import t from 'tap';
import { mapLimit, persistedEntry, postEntry, startStack, unfinishedJobs, waitFor } from '@inflow/test-support';

t.setTimeout(180_000);

// The sessions of the worker that is killed, and of any worker (shared/src/database.ts names them).
const FIRST_WORKER = "application_name = 'inflow-worker/worker-1'";
const ANY_WORKER = "application_name LIKE 'inflow-worker/%'";

t.test('SIGKILL the worker mid-stream: exactly one row per accepted entry', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 1 });
  const [api] = stack.apis;
  const [first] = stack.workers;
  if (api === undefined || first === undefined) throw new Error('no stack');
  const total = 500;
  // Held back until the table is locked, so that jobs are still coming when the INSERTs are
  // held, however fast the worker caught up with the first part of the stream.
  const heldFrom = 200;
  const locked = Promise.withResolvers<undefined>();

  // The stream: 500 POSTs, a few at a time, running while the worker is killed and replaced.
  const stream = mapLimit(Array.from({ length: total }, (_, i) => i), 4, async (i) => {
    if (i >= heldFrom) await locked.promise;
    const result = await postEntry(api.url, { author: 'stream', message: `stream entry ${i}` });
    if (result.status !== 202) throw new Error(`POST ${i} answered ${result.status}: ${result.text}`);
    if (i % 25 === 0) await new Promise((resolve) => setTimeout(resolve, 20)); // keep it a stream, not a burst
    return result.body.id;
  });
  stream.catch(() => undefined); // awaited below; a failure must not be an unhandled rejection meanwhile

  await waitFor(async () => (await stack.countRows()) >= 100, { timeoutMs: 30_000, what: '100 rows before the kill' });

  // Hold the worker's INSERTs with a table lock, so that jobs are certainly mid-flight (active,
  // locked by the worker, not committed) when it dies, rather than by luck of timing.
  const blocker = new pg.Client({ host: '127.0.0.1', port: stack.pg.port, user: 'inflow', database: 'inflow' });
  await blocker.connect();
  t.teardown(() => blocker.end().catch(() => undefined));
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE entries IN SHARE ROW EXCLUSIVE MODE');
  locked.resolve(undefined);
  await waitFor(async () => (await stack.redis.client.llen('bull:entries:active')) >= 3, {
    timeoutMs: 15_000,
    what: 'jobs to be active in the worker',
  });
  // Several INSERTs (one per batch, each on its own pooled connection) now wait for the lock.
  await waitFor(
    async () =>
      ((await blocker.query(`SELECT 1 FROM pg_stat_activity WHERE ${FIRST_WORKER} AND wait_event_type = 'Lock'`)).rowCount ?? 0) > 0,
    { timeoutMs: 15_000, what: 'an INSERT waiting for the lock' },
  );
  first.signal('SIGKILL');
  t.equal(await first.exited, 'SIGKILL', 'the worker was killed');
  // Nothing moves the active list now: its owner is dead and no other worker runs yet.
  const activeAtKill = await stack.redis.client.lrange('bull:entries:active', 0, -1);
  const rowsAtKill = await stack.countRows();
  // The dead worker's statements are still queued in PostgreSQL behind the lock. Terminate
  // the first of them: its rows are lost with the worker and come back only through redelivery.
  // The others commit once the lock is gone, although no worker will acknowledge their jobs:
  // redelivery then finds the rows (ON CONFLICT DO NOTHING) and writes nothing.
  const blocked = await blocker.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE ${FIRST_WORKER} AND wait_event_type = 'Lock' ORDER BY query_start`,
  );
  const terminated = blocked.rows.slice(0, Math.max(1, Math.floor(blocked.rows.length / 2)));
  for (const { pid } of terminated) await blocker.query('SELECT pg_terminate_backend($1)', [pid]);
  await blocker.query('COMMIT');
  // Wait until every session of the dead worker has ended: each ends once it has run what its
  // socket still held (the statements behind the lock, and any the worker sent just before it
  // died that PostgreSQL had not read yet) and reads the end of the connection. Then nothing of
  // the dead worker can write any more, and the table says what it wrote.
  await waitFor(async () => (await blocker.query(`SELECT 1 FROM pg_stat_activity WHERE ${FIRST_WORKER}`)).rowCount === 0, {
    timeoutMs: 30_000,
    what: "the dead worker's sessions to end",
  });
  const stored = new Set((await stack.rows()).map((row) => row.id));
  const committedUnacked = activeAtKill.filter((id) => stored.has(id));
  const lost = activeAtKill.filter((id) => !stored.has(id));
  t.comment(
    `killed with ${activeAtKill.length} active jobs and ${rowsAtKill} rows; ${blocked.rows.length} INSERTs blocked, ` +
      `${terminated.length} terminated: ${lost.length} entries not written, ${committedUnacked.length} written but unacknowledged`,
  );
  t.ok(activeAtKill.length >= 3, 'jobs were in flight');
  t.ok(lost.length >= 1, 'some in-flight entries were not written when the worker died');

  const killedAt = Date.now();
  await stack.addWorker();
  const accepted = await stream;
  t.equal(accepted.length, total, 'every POST was accepted');

  // Done when every row is there, no job is left to run (the stalled ones included) and no
  // INSERT is still running: nothing is left that could write a late duplicate.
  const rows = await waitFor(
    async () => {
      if ((await unfinishedJobs(stack.redis.client)) > 0) return undefined;
      const inserting = await blocker.query(`SELECT 1 FROM pg_stat_activity WHERE ${ANY_WORKER} AND state = 'active' AND query ILIKE 'insert%'`);
      if ((inserting.rowCount ?? 0) > 0) return undefined;
      const current = await stack.rows();
      return current.length >= total ? current : undefined;
    },
    { timeoutMs: 120_000, what: `${total} rows and an empty queue`, intervalMs: 500 },
  );
  t.comment(`all rows ${Math.round((Date.now() - killedAt) / 1000)} s after the kill`);
  // A marker entry, accepted after that: the new worker writes its log lines in order, so once
  // the marker's line is in, so is every line about the redelivered jobs.
  const second = stack.workers[1];
  if (second === undefined) throw new Error('no second worker');
  const marker = await postEntry(api.url, { author: 'marker', message: 'after the stream' });
  t.equal(marker.status, 202);
  await second.waitForLog((line) => persistedEntry(line, marker.body.id) !== undefined, 30_000);
  const all = await stack.rows();
  const final = all.filter((row) => row.author === 'stream');
  t.equal(final.length, total, `exactly ${total} rows`);
  t.equal(all.length, total + 1, 'and the marker, nothing else');
  t.equal(rows.length, total);
  const ids = new Set(final.map((row) => row.id));
  t.ok(accepted.every((id) => ids.has(id)), 'every 202 id is present');
  t.equal(new Set(final.map((row) => row.message)).size, total, 'no entry stored twice');
  t.ok(final.some((row) => row.persisted_by === 'worker-2'), 'the new worker took over');
  const redelivered = second.logs.filter((line) => line.msg === 'entry already persisted, redelivery ignored').map((line) => line['entryId']);
  t.same([...redelivered].sort(), [...committedUnacked].sort(), 'each written-but-unacknowledged job was redelivered and ignored');
  // `lost` holds exactly the in-flight entries that had no row once the dead worker's statements
  // had ended: only a redelivery to worker-2 can have written them.
  for (const id of lost) t.ok(final.some((row) => row.id === id && row.persisted_by === 'worker-2'), `lost entry ${id} persisted by worker-2`);
  t.equal(await stack.redis.client.llen('bull:entries:active'), 0, 'no job left active');
  t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, 'no job failed');
});
