/**
 * The API's database shares (shared/src/database.ts, createApiDatabase) against a real
 * PostgreSQL: list reads that ask for every connection of DB_POOL_MAX get their share only, and
 * small reads and readiness still answer. Issue 20, finding 2; docs/api.md#capacity-of-a-replica.
 */
import { apiPoolShares, createApiDatabase, createLogger, loadApiConfig } from '@inflow/shared';
import { startPostgres, waitFor } from '@inflow/test-support';
import { sql } from 'kysely';
import t from 'tap';

t.test('DB_POOL_MAX is shared out whole: one for readiness, about half the rest for list reads, the rest for small reads', async (t) => {
  t.same(apiPoolShares(10), { readiness: 1, list: 4, small: 5 }, 'the default');
  t.same(apiPoolShares(3), { readiness: 1, list: 1, small: 1 }, 'the least');
  for (let poolMax = 3; poolMax <= 100; poolMax += 1) {
    const { readiness, list, small } = apiPoolShares(poolMax);
    if (readiness + list + small !== poolMax || list < 1 || small < list) t.fail(`DB_POOL_MAX=${String(poolMax)}: ${JSON.stringify({ readiness, list, small })}`);
  }
  t.throws(() => apiPoolShares(2), RangeError, 'two connections cannot make three shares');
});

t.test('reads holding every connection they can get leave the other shares theirs: list reads to small reads and readiness, small reads to readiness', async (t) => {
  const postgres = await startPostgres(t);
  const config = loadApiConfig({ ...postgres.env, REDIS_HOST: '127.0.0.1', DB_POOL_MAX: '5' });
  const database = createApiDatabase(config.db, createLogger({ service: 'api', instanceId: 'shares-test', level: 'silent' }));
  let closed = false;
  t.teardown(async () => {
    if (!closed) await database.close();
  });
  const sessions = async () => (await postgres.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'inflow'")).rows[0]?.n;

  // As many reads as the whole pool has connections, each keeping its connection until let go.
  // Those past their share wait for it; how they end (a connection, or the pool's 5 s connection
  // timeout) is not what this test is about.
  let letGo = () => {};
  const released = new Promise<void>((resolve) => {
    letGo = resolve;
  });
  const entered = { list: 0, small: 0 };
  const holdEvery = (share: 'list' | 'small') =>
    Array.from({ length: config.db.poolMax }, () =>
      (share === 'list' ? database.listDb : database.db).connection().execute(async (connection) => {
        entered[share] += 1;
        await sql`SELECT 1`.execute(connection);
        await released;
      }),
    );

  const holding = holdEvery('list');
  await waitFor(async () => (await sessions()) === database.shares.list, { timeoutMs: 10_000, what: 'the list share to be connected' });
  const row = await database.db.selectFrom('entries').select('id').limit(1).executeTakeFirst();
  t.equal(row, undefined, 'a small read answers (no row: the table is empty)');
  await t.resolves(database.ping(), 'readiness answers');
  t.equal(entered.list, database.shares.list, 'the list reads got their share of connections and no more');

  holding.push(...holdEvery('small'));
  await waitFor(() => entered.small === database.shares.small, { timeoutMs: 10_000, what: 'the small share to be taken' });
  await t.resolves(database.ping(), 'readiness answers with both read shares taken');
  t.equal(entered.small, database.shares.small, 'the small reads got their share and no more');
  t.equal(await sessions(), config.db.poolMax, 'DB_POOL_MAX connections in all, not one more');

  letGo();
  await Promise.allSettled(holding);

  closed = true;
  await database.close();
  await waitFor(async () => (await sessions()) === 0, { timeoutMs: 10_000, what: 'every pool to be closed' });
  t.pass('close ends every share');
});
