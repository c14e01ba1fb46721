/**
 * List reads are admitted per address and per replica (src/entries/read-admission.ts), in this
 * process over the API's real dependencies: while list reads are held in progress (a lock on the
 * entries table makes their SELECT wait), the same address's next one is 429, a full replica's is
 * 503, /readyz still answers 200 with the list share taken, another address gets its page once
 * the lock is gone, and every slot comes back, answered or aborted. The counting itself is
 * read-admission.test.ts; the pool shares, database-shares.test.ts. Issue 20, finding 2;
 * docs/api.md#capacity-of-a-replica.
 */
import { createDatabase, loadApiConfig } from '@inflow/shared';
import { assertError, http, waitFor } from '@inflow/test-support';
import { sql } from 'kysely';
import t from 'tap';
import { startRealApp } from './utils/real-app.ts';

// The least pool the API takes: a list share of one connection, so the bounds are small (2 per
// address, 4 per replica) and one held read takes the whole share.
const app = await startRealApp(t, { env: { DB_POOL_MAX: '3' } });
const base = app.url;
const { listReads } = app.deps;
const { perAddress, perReplica } = listReads.bounds;

// TRUST_PROXY_HOPS is 1 (the default), so req.ip is the address a proxy in front names.
const from = (address: string): RequestInit => ({ headers: { 'x-forwarded-for': address } });
const page = `${base}/api/entries?limit=5`;

/**
 * Holds ACCESS EXCLUSIVE on entries in a connection of its own, so that every SELECT on the table
 * waits, until the returned function (idempotent) is called.
 */
async function lockEntries(): Promise<() => Promise<void>> {
  const { db } = loadApiConfig({ ...app.postgres.env, REDIS_HOST: '127.0.0.1' });
  const blocker = createDatabase({ ...db, poolMax: 1 }, app.deps.logger);
  let unlock = () => {};
  const released = new Promise<void>((resolve) => {
    unlock = resolve;
  });
  let locked = () => {};
  const lockTaken = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const transaction = blocker.db.transaction().execute(async (trx) => {
    await sql`LOCK TABLE entries IN ACCESS EXCLUSIVE MODE`.execute(trx);
    locked();
    await released;
  });
  await lockTaken;
  let unlocked: Promise<void> | undefined;
  return () => {
    unlocked ??= (async () => {
      unlock();
      await transaction;
      await blocker.close();
    })();
    return unlocked;
  };
}

/** List queries of the app waiting for the lock. */
async function waitingForLock(): Promise<number> {
  const { rows } = await app.postgres.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'inflow-api/%' AND wait_event_type = 'Lock' AND query ILIKE 'select%entries%'",
  );
  return rows[0]?.n ?? 0;
}

t.test('over its bound an address gets 429, a full replica 503; readiness and other addresses are served', async (t) => {
  t.same({ perAddress, perReplica }, { perAddress: 2, perReplica: 4 }, 'the bounds of a list share of one');
  const unlock = await lockEntries();
  t.teardown(unlock);

  // Another address first: its query takes the list share's one connection and waits for the lock.
  const other = http(page, from('198.51.100.2'));
  await waitFor(async () => (await waitingForLock()) === app.deps.database.shares.list, { timeoutMs: 10_000, what: 'the list share to be taken' });

  const busy = '198.51.100.1';
  const held = Array.from({ length: perAddress }, () => http(page, from(busy)));
  await waitFor(() => listReads.inProgressOf(busy) === perAddress, { timeoutMs: 10_000, what: `${busy} to have ${String(perAddress)} list reads in progress` });
  const refused = await http(page, from(busy));
  assertError(t, refused, 429, 'rate_limited');
  t.equal(refused.headers.get('retry-after'), '1');

  const ready = await http(`${base}/readyz`);
  t.equal(ready.status, 200, `/readyz answers while the list share is taken and ${String(listReads.inProgress - 1)} more reads wait for it`);

  // The rest of the replica's slots, from an address that then hangs up.
  const hangUp = new AbortController();
  const leaving = Array.from({ length: perReplica - perAddress - 1 }, () =>
    fetch(page, { ...from('198.51.100.3'), signal: hangUp.signal }).then(
      () => 'answered',
      () => 'aborted',
    ),
  );
  await waitFor(() => listReads.inProgress === perReplica, { timeoutMs: 10_000, what: 'the replica to be full' });
  const full = await http(page, from('198.51.100.4'));
  assertError(t, full, 503, 'too_many_reads');
  t.equal(full.headers.get('retry-after'), '1');
  // A refusal by design, not a failure: what is logged of that request is one warning.
  const requestId = full.headers.get('x-request-id');
  const ofRefusal = () => app.logs.filter((line) => (line['req'] as { id?: string } | undefined)?.id === requestId);
  await waitFor(() => ofRefusal().length > 0, { timeoutMs: 10_000, what: 'the 503 request line' });
  t.match(ofRefusal(), [{ level: 40, msg: 'GET /api/entries 503' }], 'the refusal is logged once, as a warning');
  hangUp.abort();
  t.same(new Set(await Promise.all(leaving)), new Set(['aborted']));

  await unlock();
  const served = await other;
  t.equal(served.status, 200, 'the other address gets its page once the lock is gone');
  t.same(served.body, { entries: [], next: null });
  // The busy address's own reads waited for the connection behind the lock: 200, or 503
  // database_unavailable had they waited past the pool's 5 s; either way their slots come back.
  await Promise.all(held);
  await waitFor(() => listReads.inProgress === 0, { timeoutMs: 10_000, what: 'every slot to be released, answered and aborted alike' });
  t.equal((await http(page, from(busy))).status, 200, 'the busy address reads again');
});
