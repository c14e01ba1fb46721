/**
 * The batcher against a real PostgreSQL (a throwaway server from the test harness, with the real
 * init.sql schema): group commit, per-row failure isolation and redelivery handling.
 */
import { randomUUID } from 'node:crypto';
import { startPostgres } from '@inflow/test-support';
import { createDatabase, createLogger, type NewEntryRow } from '@inflow/shared';
import t from 'tap';
import { EntriesRepository } from '../src/entries/entries.repository.ts';
import { EntryBatcher, type PersistOutcome } from '../src/entries/entry-batcher.ts';

const logger = createLogger({ service: 'test', instanceId: 'test', level: 'silent', sync: true });
const pg = await startPostgres(t);
const dbConfig = pg.databaseConfig({ poolMax: 10 });
const database = createDatabase(dbConfig, logger);
t.teardown(() => database.close());
const repository = new EntriesRepository(database.db);

/**
 * A batcher whose INSERTs are recorded: the size of each statement, in order, and the most that
 * were in flight at once.
 */
function recordingBatcher(options: { maxBatch: number; maxConcurrentWrites: number }) {
  const batches: number[] = [];
  const inFlight = { now: 0, most: 0 };
  const batcher = new EntryBatcher(async (rows) => {
    batches.push(rows.length);
    inFlight.now += 1;
    inFlight.most = Math.max(inFlight.most, inFlight.now);
    try {
      return await repository.insertMany(rows);
    } finally {
      inFlight.now -= 1;
    }
  }, options);
  return { batcher, batches, inFlight };
}

let serial = 0;
function row(overrides: Partial<NewEntryRow> = {}): NewEntryRow {
  serial += 1;
  return {
    id: randomUUID(),
    author: `author ${serial}`,
    message: `message ${serial}`,
    accepted_by: 'api-1',
    persisted_by: 'worker-test',
    created_at: new Date(),
    ...overrides,
  };
}

async function countRows(ids: readonly string[]): Promise<number> {
  const result = await pg.query<{ n: string }>('SELECT count(*) AS n FROM entries WHERE id = ANY($1::uuid[])', [ids]);
  return Number(result.rows[0]?.n);
}

t.test('options are checked', async (t) => {
  const insert = () => Promise.resolve([]);
  t.throws(() => new EntryBatcher(insert, { maxBatch: 0, maxConcurrentWrites: 1 }), RangeError);
  t.throws(() => new EntryBatcher(insert, { maxBatch: 1.5, maxConcurrentWrites: 1 }), RangeError);
  t.throws(() => new EntryBatcher(insert, { maxBatch: 1, maxConcurrentWrites: 0 }), RangeError);
  t.throws(() => new EntryBatcher(insert, { maxBatch: 1, maxConcurrentWrites: Number.NaN }), RangeError);
  t.same(await repository.insertMany([]), [], 'an empty insert is no statement');
});

t.test('rows that arrive while an INSERT commits share the next one', async (t) => {
  const { batcher, batches } = recordingBatcher({ maxBatch: 100, maxConcurrentWrites: 1 });
  const rows = Array.from({ length: 10 }, () => row());
  const outcomes = await Promise.all(rows.map((r) => batcher.persist(r)));
  t.same(batches, [1, 9], 'the first row at once, the nine that came meanwhile in one statement');
  for (const outcome of outcomes) t.match(outcome, { inserted: true, queueLatencyMs: Number });
  t.equal(await countRows(rows.map((r) => r.id)), 10);
  const stored = await pg.query<{ author: string; persisted_by: string }>('SELECT author, persisted_by FROM entries WHERE id = $1', [rows[3]?.id]);
  t.same(stored.rows, [{ author: rows[3]?.author, persisted_by: 'worker-test' }], 'the row is written as given');
});

t.test('a batch never exceeds maxBatch', async (t) => {
  const { batcher, batches } = recordingBatcher({ maxBatch: 4, maxConcurrentWrites: 1 });
  const rows = Array.from({ length: 10 }, () => row());
  const outcomes = await Promise.all(rows.map((r) => batcher.persist(r)));
  t.same(batches, [1, 4, 4, 1]);
  t.equal(outcomes.filter((o) => o.inserted).length, 10);
  t.equal(await countRows(rows.map((r) => r.id)), 10);
});

t.test('no more than maxConcurrentWrites INSERTs run at once', async (t) => {
  const { batcher, batches, inFlight } = recordingBatcher({ maxBatch: 3, maxConcurrentWrites: 2 });
  const rows = Array.from({ length: 30 }, () => row());
  const outcomes = await Promise.all(rows.map((r) => batcher.persist(r)));
  t.equal(inFlight.most, 2, 'two in flight, never more');
  t.ok(batches.every((size) => size <= 3), `statements of at most 3 rows: ${batches.join(', ')}`);
  t.equal(outcomes.filter((o) => o.inserted).length, 30);
  t.equal(await countRows(rows.map((r) => r.id)), 30);
});

t.test('rows that arrive apart are written apart, at once', async (t) => {
  const { batcher, batches } = recordingBatcher({ maxBatch: 100, maxConcurrentWrites: 2 });
  for (let i = 0; i < 3; i += 1) {
    const startedAt = performance.now();
    t.match(await batcher.persist(row()), { inserted: true });
    t.ok(performance.now() - startedAt < 2_000, 'a lone row is not held for company');
  }
  t.same(batches, [1, 1, 1]);
});

t.test('a bad row in a batch fails only its own promise', async (t) => {
  const { batcher, batches } = recordingBatcher({ maxBatch: 100, maxConcurrentWrites: 1 });
  // Holds the write slot, so that the next six rows go as one batch.
  const opener = batcher.persist(row());
  const good = Array.from({ length: 4 }, () => row());
  // Bypasses the payload schema on purpose: the database's CHECK constraints are the last guard.
  const tooLong = row({ author: 'a'.repeat(81) });
  const nul = row({ message: 'before\u0000after' });
  const rows = [good[0], tooLong, good[1], good[2], nul, good[3]] as NewEntryRow[];
  const settled = await Promise.allSettled(rows.map((r) => batcher.persist(r)));

  const byId = new Map(rows.map((r, i) => [r.id, settled[i]]));
  for (const r of good) t.match(byId.get(r.id), { status: 'fulfilled', value: { inserted: true } }, 'a good row is written');
  t.match(byId.get(tooLong.id), { status: 'rejected', reason: { code: '23514' } }, 'the check violation is its own');
  t.match(byId.get(nul.id), { status: 'rejected', reason: { code: '22021' } }, 'the NUL byte is its own');
  t.match(await opener, { inserted: true });
  t.equal(batches[1], 6, 'tried together first');
  t.same(batches.slice(2), [1, 1, 1, 1, 1, 1], 'then one by one');
  t.equal(await countRows(good.map((r) => r.id)), 4);
  t.equal(await countRows([tooLong.id, nul.id]), 0);
});

t.test('redelivered rows resolve inserted:false and are not written twice', async (t) => {
  const { batcher } = recordingBatcher({ maxBatch: 100, maxConcurrentWrites: 1 });
  const first = row();
  t.match(await batcher.persist(first), { inserted: true });

  // The same entry again, as a redelivered job: persisted_by may differ (another worker).
  const again = await batcher.persist({ ...first, persisted_by: 'worker-other' });
  t.same(again, { inserted: false });

  // Mixed with new rows in one batch.
  const fresh = [row(), row()];
  const outcomes = await Promise.all([batcher.persist(fresh[0] as NewEntryRow), batcher.persist({ ...first }), batcher.persist(fresh[1] as NewEntryRow)]);
  t.match(outcomes, [{ inserted: true }, { inserted: false }, { inserted: true }]);

  const stored = await pg.query<{ persisted_by: string }>('SELECT persisted_by FROM entries WHERE id = $1', [first.id]);
  t.same(stored.rows, [{ persisted_by: 'worker-test' }], 'exactly one row, the first write wins');
});

t.test('queueLatencyMs is persisted_at minus created_at', async (t) => {
  const { batcher } = recordingBatcher({ maxBatch: 10, maxConcurrentWrites: 1 });
  const acceptedAt = new Date(Date.now() - 1_500);
  const outcome: PersistOutcome = await batcher.persist(row({ created_at: acceptedAt }));
  t.ok(outcome.inserted);
  if (outcome.inserted) {
    t.ok(outcome.queueLatencyMs >= 1_500, `latency ${outcome.queueLatencyMs} ms covers the wait`);
    t.ok(outcome.queueLatencyMs < 60_000, 'and is not absurd');
  }
});

t.test('when the database is unreachable every promise rejects (no hang)', async (t) => {
  // A closed port on loopback: connections are refused at once.
  const unreachable = createDatabase({ ...dbConfig, port: 1 }, logger);
  t.teardown(() => unreachable.close());
  const offline = new EntriesRepository(unreachable.db);
  const batcher = new EntryBatcher((rows) => offline.insertMany(rows), { maxBatch: 100, maxConcurrentWrites: 2 });
  const settled = await Promise.allSettled([batcher.persist(row()), batcher.persist(row()), batcher.persist(row())]);
  for (const result of settled) t.match(result, { status: 'rejected', reason: { code: 'ECONNREFUSED' } });
});
