/**
 * A PostgreSQL that answers but refuses the API as configured (a privilege revoked, a login
 * refused, a table missing) is the database's fault, not the request's: reads answer
 * `503 database_unavailable` with Retry-After, never `500 internal_error`, and accepting an entry
 * still needs only Redis. The classification: shared/src/database-errors.ts (issue 21).
 */
import { randomUUID } from 'node:crypto';
import { waitFor } from '@inflow/test-support';
import t from 'tap';
import { startRealApp, startServers } from './utils/real-app.ts';

// The app logs in as a role of its own, without superuser rights, so privileges apply to it.
const servers = await startServers(t);
const role = 'inflow_api_test';
await servers.postgres.query(`CREATE ROLE ${role} LOGIN`);
await servers.postgres.query(`GRANT SELECT, INSERT ON entries TO ${role}`);
const app = await startRealApp(t, { servers, env: { DB_USER: role } });

async function call(path: string, init: RequestInit = {}) {
  const response = await fetch(`${app.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

const unavailable = { error: { code: 'database_unavailable', message: 'the database is unavailable right now, please retry' } };

/** The reads that need PostgreSQL answer 503 database_unavailable; a keyed POST and its retry are still accepted. */
async function readsAre503(t: Pick<typeof import('tap').t, 'equal' | 'same'>, what: string): Promise<void> {
  for (const path of ['/api/entries', `/api/entries/${randomUUID()}`]) {
    const read = await call(path);
    t.equal(read.status, 503, `${what}: GET ${path.replace(/[0-9a-f-]{36}$/, ':id')} answers 503`);
    t.same(read.body, unavailable, `${what}: database_unavailable`);
    t.equal(read.headers.get('retry-after'), '1');
  }
  const key = randomUUID();
  const post = () =>
    call('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json', 'Idempotency-Key': key }, body: JSON.stringify({ author: 'ada', message: what }) });
  const first = await post();
  t.equal(first.status, 202, `${what}: a POST is accepted (it needs only Redis)`);
  const retried = await post();
  t.equal(retried.status, 202, `${what}: its retry too, though the database cannot say whether the row exists`);
  t.equal(retried.body?.['id'], first.body?.['id']);
}

/** Waits until the list answers 200 again: the API needs no restart. */
async function readsWork(): Promise<void> {
  await waitFor(async () => (await call('/api/entries')).status === 200, { timeoutMs: 15_000, what: 'reads to work again' });
}

t.test('a privilege revoked (42501)', async (t) => {
  await servers.postgres.query(`REVOKE SELECT ON entries FROM ${role}`);
  await readsAre503(t, 'SELECT revoked');
  await servers.postgres.query(`GRANT SELECT ON entries TO ${role}`);
  await readsWork();
});

t.test('the table missing (42P01)', async (t) => {
  await servers.postgres.query('ALTER TABLE entries RENAME TO entries_elsewhere');
  await readsAre503(t, 'no entries table');
  await servers.postgres.query('ALTER TABLE entries_elsewhere RENAME TO entries');
  await readsWork();
});

t.test('the login refused (28000)', async (t) => {
  await servers.postgres.query(`ALTER ROLE ${role} NOLOGIN`);
  // Connections made before keep working: end them, so the pool has to log in again.
  await servers.postgres.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
  await waitFor(() => app.deps.database.ping().then(() => false, (error: unknown) => (error as { code?: unknown }).code === '28000'), {
    timeoutMs: 10_000,
    what: "the app's logins to be refused",
  });
  await readsAre503(t, 'login refused');
  await servers.postgres.query(`ALTER ROLE ${role} LOGIN`);
  await readsWork();
});
