/**
 * Jobs that cannot be persisted end in BullMQ's failed set, and GET /api/entries/:id reports them
 * as "failed" with the reason: an invalid payload added straight to the queue (unrecoverable at
 * once), a payload the database refuses, and a job that exhausts its attempts on an error that
 * is not an outage. The failed set is kept (never aged out), and the replay command
 * (apps/worker/src/replay.ts) lists its entries and persists them once the cause is gone.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ENTRIES_QUEUE, entryJobOptions, PERSIST_ENTRY_JOB } from '@inflow/shared';
import { Queue } from 'bullmq';
import t from 'tap';
import { nodeCommand, REPO_ROOT, startStack, waitFor, waitForEntryStatus } from '@inflow/test-support';

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

/** Runs the replay command with the worker's environment; resolves with its exit code and output. */
function replay(args: readonly string[]): Promise<{ code: number | null; lines: Record<string, unknown>[]; stderr: string }> {
  const [command, base] = nodeCommand(join(REPO_ROOT, 'apps/worker/dist/replay.js'));
  const child = spawn(command, [...base, ...args], { env: { PATH: process.env['PATH'] ?? '', ...stack.env, INSTANCE_ID: 'replay' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stderr, lines: stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) });
    });
  });
}

t.test('a job that exhausts its attempts shows failed with the last reason, and a replay persists it', async (t) => {
  // Neither an outage nor the database refusing the worker (those spend no attempt, see
  // postgres-down.test.ts and database-refuses.test.ts): a trigger raises an error of no known
  // class (SQLSTATE P0001), as a bug would.
  await stack.pg.query("CREATE FUNCTION inflow_test_bug() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'a bug nobody anticipated'; END $$");
  await stack.pg.query('CREATE TRIGGER inflow_test_bug BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION inflow_test_bug()');
  const id = randomUUID();
  // Few, quick attempts, so the test need not wait out the production backoff.
  await queue.add(PERSIST_ENTRY_JOB, validPayload(id), { ...entryJobOptions(id, { attempts: 3, delayMs: 100 }) });
  await waitFor(async () => (await queue.getJobState(id)) === 'failed', { timeoutMs: 20_000, what: 'the job to fail for good' });
  const retries = worker.logs.filter((line) => line['entryId'] === id && line.msg === 'entry attempt failed, will retry');
  t.equal(retries.length, 2, 'two retries were logged before giving up');
  await stack.pg.query('DROP TRIGGER inflow_test_bug ON entries');
  await stack.pg.query('DROP FUNCTION inflow_test_bug()');
  const failed = await waitForEntryStatus(api.url, id, 'failed', 15_000);
  // Clients read a sentence of the API's own; the database's text is for the operator.
  t.match(failed, { status: 'failed', id, failedReason: 'the entry could not be stored', attemptsMade: 3 });
  t.equal(await stack.countRows(), 0, 'not written');

  const listed = await replay(['--list']);
  t.equal(listed.code, 0, listed.stderr);
  const record = listed.lines.find((line) => line['id'] === id);
  t.match(record, { id, failedReason: /a bug nobody anticipated/, attemptsMade: 3 }, '--list shows it with its reason');

  const replayed = await replay([id]);
  t.equal(replayed.code, 0, replayed.stderr);
  t.same(replayed.lines, [{ replayed: id, failedReason: record?.['failedReason'] }]);
  const entry = await waitForEntryStatus(api.url, id, 'persisted', 20_000);
  t.match(entry, { id, persistedBy: 'worker-1' });

  const again = await replay([id]);
  t.equal(again.code, 1, 'replaying an entry that is no longer failed is refused');
  t.match(again.lines, [{ notReplayed: id }]);
  t.equal(await stack.countRows(), 1, 'and the row stays single');
});

t.test('replay --all replays every failed entry, once each', async (t) => {
  await stack.pg.query("CREATE FUNCTION inflow_test_bug() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'a bug nobody anticipated'; END $$");
  await stack.pg.query('CREATE TRIGGER inflow_test_bug BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION inflow_test_bug()');
  const ids = Array.from({ length: 3 }, () => randomUUID());
  for (const id of ids) await queue.add(PERSIST_ENTRY_JOB, validPayload(id), entryJobOptions(id, { attempts: 1, delayMs: 100 }));
  await waitFor(async () => (await Promise.all(ids.map((id) => queue.getJobState(id)))).every((state) => state === 'failed'), {
    timeoutMs: 20_000,
    what: 'the jobs to fail',
  });
  await stack.pg.query('DROP TRIGGER inflow_test_bug ON entries');
  await stack.pg.query('DROP FUNCTION inflow_test_bug()');
  const before = await stack.countRows();
  const result = await replay(['--all']);
  t.equal(result.code, 0, result.stderr);
  // The invalid payloads of the first test fail again at once; the three valid ones persist.
  t.ok(ids.every((id) => result.lines.some((line) => line['replayed'] === id)), 'each valid entry was replayed');
  for (const id of ids) await waitForEntryStatus(api.url, id, 'persisted', 20_000);
  t.equal(await stack.countRows(), before + ids.length, 'one row each');
  const usage = await replay([]);
  t.equal(usage.code, 64, 'no arguments: usage');
});

t.test('a valid job added straight to the queue is persisted like any other', async (t) => {
  const id = randomUUID();
  await queue.add(PERSIST_ENTRY_JOB, validPayload(id), entryJobOptions(id));
  const entry = await waitForEntryStatus(api.url, id, 'persisted', 20_000);
  t.match(entry, { id, acceptedBy: 'test', persistedBy: 'worker-1' });
});
